// Package gitlab adapts GitLab deployment approvals to approvalbot: a
// deployment to a protected environment that needs approval is "blocked"
// in GitLab (Premium/Ultimate) until approved.
//
// Intake is two ways into one task: the "Deployment events" webhook
// (POST /gitlab/webhook, X-Gitlab-Token compared in constant time;
// status "blocked" makes a task), and, for GitLab versions that send no
// blocked event, polling of gitlab.projects for blocked deployments
// (approvals.Tool.Poll, one replica at a time under the loop lease). Both
// name the task {project id}-{deployment id}, so Submit's idempotence
// keeps them one task. Later statuses of a deployment are not acted on by
// the webhook: reconcile reads the deployment and closes the task.
//
// The decision is one POST to the deployment's approval API with the bot
// user's PRIVATE-TOKEN per outbox attempt; the outbox reads the
// deployment's status before any repeat. GitLab's 400/403 to an approval
// of a deployment that is no longer blocked counts as decided there once
// a status read confirms it is not blocked. The token goes only to
// gitlab.api_url's scheme, host and port: every URL is built from it.
package gitlab

import "github.com/approvalbot/approvalbot/approvals"

// Source is the name approvalbot knows GitLab's tasks by.
const Source = "gitlab"

// displayName is how people read GitLab's name.
const displayName = "GitLab"

// WebhookPath is where GitLab's deployment events are posted: the
// webhook's URL is the bot's public URL followed by it.
const WebhookPath = "/gitlab/webhook"

// Tool is GitLab as approvalbot's core knows it.
func Tool(c *Client) approvals.Tool {
	t := approvals.Tool{
		Name:         Source,
		DisplayName:  displayName,
		Decide:       c.Decide,
		Status:       c.Status,
		MapRequester: c.MapUser,
	}
	if c.webhookToken != "" {
		t.Intakes = []approvals.Intake{{Path: WebhookPath, Signed: true, Parse: c.Parse, AnswerOK: true}}
	}
	if len(c.projects) > 0 {
		t.Poll, t.PollInterval = c.Poll, c.pollInterval
	}
	return t
}
