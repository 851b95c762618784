// Package github adapts GitHub Actions deployments to approvalbot: a GitHub
// App that is a custom deployment protection rule on an environment. GitHub
// posts the App's webhook (deployment_protection_rule, action requested) to
// the signed intake at /github/webhook; the decision made in Slack is the
// App's review of the rule, POSTed to the run's deployment_callback_url with
// an installation token; a status report on the run says where the
// approval waits.
//
// # Status: why pending_deployments
//
// The outbox sends a decision once per attempt and, on every attempt after
// the first, asks the tool first whether an earlier one went through (a
// review whose answer was lost to a timeout or a dropped connection must
// not be sent blindly again). GitHub's REST API has no read of "how did
// this App review this rule"; what it has, with the Actions: read
// permission a protection-rule App is given anyway, is
// GET /repos/{owner}/{repo}/actions/runs/{run_id}/pending_deployments: the
// environments of the run still waiting for their protection rules. So:
//
//   - the task's environment is listed: GitHub still waits, no review of
//     ours was taken, and the decision is (re)sent;
//   - it is not listed, and the bot has an outcome to deliver: GitHub waits
//     no more, so a review can change nothing now. Its rule's reviews come
//     from this App alone, and this App reviews a task one way only, so the
//     earlier attempt is what ended the wait (or the run ended meanwhile,
//     cancelled or failed by another rule): it counts as delivered;
//   - it is not listed while the task is still pending in the bot: the run
//     is read (GET /repos/{owner}/{repo}/actions/runs/{run_id}); once it is
//     completed (cancelled, rejected by another rule or reviewer, timed
//     out) the task ended in GitHub without a decision here (expired),
//     and until then it is pending, so that a moment of GitHub's eventual
//     consistency never closes a task.
//
// GitHub answers a review of a rule that no longer waits with 422 ("No
// pending deployment requests to approve or reject"); Decide reports that
// as approvals.ErrToolDecided, which on a first attempt is a final failure
// shown on the message (the run was cancelled before anyone decided).
// An environment that waits for other rules too (required reviewers, a
// wait timer) is still listed after this App's review, and so is one
// whose review GitHub has not caught up with yet: a repeat is then sent,
// and GitHub refuses it with 422 ("Deployment protection rule has already
// been reviewed"). On an attempt after the first that can only answer this
// App's own earlier review, so Decide counts it delivered. Should GitHub
// word that refusal otherwise, the repeat is an approvals.ErrToolDecided
// and the delivery is marked failed although the review went through;
// either way nothing is decided twice.
package github

import "github.com/approvalbot/approvalbot/approvals"

// displayName is how people read GitHub's name.
const displayName = "GitHub"

// WebhookPath is where the GitHub App's webhook posts: the App's "Webhook
// URL" is the bot's public URL followed by it.
const WebhookPath = "/github/webhook"

// Tool is GitHub as approvalbot's core knows it: the signed webhook intake
// (answered 200 whatever it records, as GitHub wants), the review of the
// rule, the status read through the run's pending deployments, and the
// status report on intake.
func Tool(c *Client) approvals.Tool {
	return approvals.Tool{
		Name:        Source,
		DisplayName: displayName,
		Intakes:     []approvals.Intake{{Path: WebhookPath, Signed: true, Parse: c.Parse, AnswerOK: true}},
		Decide:      c.Decide,
		Status:      c.Status,
		Announce:    c.Announce,
		// github.users is read at start-up: a login mapped since a task
		// came in applies to it after the restart.
		MapRequester: c.MapLogin,
	}
}
