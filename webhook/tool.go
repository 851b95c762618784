// Package webhook lets any deployment tool wait on a Slack approval
// without a plugin of its own: Jenkins, Argo, Spinnaker's webhook stages
// or a script POST a task to /v1/webhook/tasks with a callbackUrl, and the
// decision is POSTed there, signed the Standard Webhooks way
// (standardwebhooks.com: webhook-id, webhook-timestamp, webhook-signature
// v1 with an HMAC-SHA256 key given as whsec_…).
//
// The receiver has no status the bot could read, so the outbox's rule for
// such tools holds: every attempt is one POST, retried by the outbox after
// a 5xx, a 429 or a timeout, and every attempt of one decision carries the
// same webhook-id, so that the receiver takes it once however often it
// arrives. A 2xx, 409 or 410 is delivered; any other 4xx is final.
//
// A callback URL may be a capability (Jenkins' webhook step, a token in
// the query): it is kept sealed in the task's Secret (AES-256-GCM, with a
// key derived from the signing secret), which the outbox drops once the
// decision is delivered, and no error or log quotes its query.
package webhook

import "github.com/approvalbot/approvalbot/approvals"

// Source is the name approvalbot knows these tasks by; their ids are
// webhook-….
const Source = "webhook"

// displayName is how people read the tool's name.
const displayName = "Webhook"

// IntakePath is where tasks are posted, under /v1/ (with the API key).
const IntakePath = "webhook/tasks"

// Tool is the signed-callback tool as approvalbot's core knows it: its
// intake, and the decision POSTed to the task's callback URL.
func Tool(c *Client) approvals.Tool {
	return approvals.Tool{
		Name:        Source,
		DisplayName: displayName,
		Intakes:     []approvals.Intake{{Path: IntakePath, Parse: c.Parse}},
		Decide:      c.Decide,
	}
}
