package flexdeploy

import (
	"context"
	"fmt"
	"strings"

	"github.com/approvalbot/approvalbot/approvals"
)

// Enrich fills in the context a webhook left out (environment, release,
// pipeline, project) from FlexDeploy's task details. It asks only when
// something is missing, so a complete webhook costs no call.
func (c *Client) Enrich(ctx context.Context, sub *approvals.Submission) error {
	if !NeedsDetails(sub.Context) {
		return nil
	}
	d, err := c.Details(ctx, sub.TaskID)
	if err != nil {
		return fmt.Errorf("flexdeploy: enrich task %s: %w", sub.TaskID, err)
	}
	ApplyDetails(sub, d)
	return nil
}

// NeedsDetails reports whether an intake's context lacks a field that
// FlexDeploy's task details fill in (see ApplyDetails).
func NeedsDetails(c approvals.Context) bool {
	return c.Environment == "" || c.Release == "" || c.Pipeline == "" || c.Project == ""
}

// ApplyDetails fills the context fields the intake left empty from
// FlexDeploy's own record of the task; what the caller sent always wins.
func ApplyDetails(sub *approvals.Submission, d Details) {
	if sub == nil {
		return
	}
	fill := func(field *string, value string) {
		if *field == "" {
			*field = approvals.CapRunes(strings.TrimSpace(value), maxFieldRunes)
		}
	}
	fill(&sub.Environment, d.EnvironmentName)
	fill(&sub.Release, d.ReleaseName)
	fill(&sub.Pipeline, d.PipelineName)
	fill(&sub.Project, d.ProjectName)
}
