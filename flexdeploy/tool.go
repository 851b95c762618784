package flexdeploy

import "github.com/approvalbot/approvalbot/approvals"

// displayName is how people read FlexDeploy's name.
const displayName = "FlexDeploy"

// Tool is FlexDeploy as approvalbot's core knows it: its intake at
// /v1/tasks, its tasks readable by their FlexDeploy task ids, and, through
// c, its decision call, status read and (when enrich is true) the context
// it fills in from its own record of a task. c is nil when no connection is
// configured: the intake works all the same, and decisions wait in the
// outbox until the bot is started with one.
func Tool(c *Client, enrich bool) approvals.Tool {
	t := approvals.Tool{
		Name:         Source,
		DisplayName:  displayName,
		Intakes:      []approvals.Intake{{Path: "tasks", Parse: parseIntake}},
		ReadByTaskID: true,
	}
	if c != nil {
		t.Decide = c.Decide
		t.Status = c.Status
		if enrich {
			t.Enrich = c.Enrich
			t.NeedsEnrichment = NeedsDetails
		}
	}
	return t
}

// parseIntake is ParseTask as an intake parser: FlexDeploy's task is all in
// the body.
func parseIntake(_ func(name string) string, body []byte) (approvals.Submission, error) {
	return ParseTask(body)
}
