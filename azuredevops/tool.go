package azuredevops

import "github.com/approvalbot/approvalbot/approvals"

// displayName is how people read Azure DevOps' name.
const displayName = "Azure DevOps"

// IntakePath is where Azure Pipelines' checks post, under /v1/.
const IntakePath = "azure-devops/checks"

// Tool is Azure DevOps as approvalbot's core knows it: the intake of its
// "Invoke REST API" checks (answered 200 whatever happens, with or without
// a body, as Azure Pipelines wants), their completion, their status read
// and the status log in the pipeline. The intake seals job tokens with c's
// key and takes PlanUrls on c's allowed hosts only, so that what it accepts
// is what c will send to. c is nil when no encryption key is configured:
// the intake then refuses every check (an internal error), and nothing is
// sent anywhere.
func Tool(c *Client) approvals.Tool {
	in := NewIntake(nil, nil)
	if c != nil {
		in = &Intake{sealer: c.sealer, hosts: c.hosts}
	}
	t := approvals.Tool{
		Name:        Source,
		DisplayName: displayName,
		Intakes:     []approvals.Intake{{Path: IntakePath, Parse: in.Parse, AnswerOK: true, BodyOptional: true}},
	}
	if c != nil {
		t.Decide = c.Decide
		t.Status = c.Status
		t.Announce = c.Announce
	}
	return t
}
