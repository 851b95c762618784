// Package bot is approvalbot's Slack adapter: it renders tasks as Block Kit
// messages, posts and updates them through the Slack Web API (the
// approvals.Notifier), answers who is who (the approvals.Directory), and
// serves the interactions endpoint and Socket Mode that turn button clicks
// into decisions. Runtime holds them all as the settings in force make
// them, and rebuilds them when the settings change.
package bot

import (
	"fmt"
	"strings"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/slack-go/slack"
)

// The message's interactive contract. Users script against these names (see
// DESIGN.md, "Slack message"); keep them stable.
const (
	blockIDDecision      = "decision"
	actionApprove        = string(approvals.ActionApprove)
	actionReject         = string(approvals.ActionReject)
	callbackRejectReason = "reject_reason"
	blockIDReason        = "reason"
	actionIDReason       = "reason"
)

// Block ids of the informational blocks; they let tests and readers of the
// message find a block without relying on its position.
const (
	blockIDHeader      = "header"
	blockIDDescription = "description"
	blockIDFields      = "fields"
	blockIDContext     = "context"
	blockIDNoPolicy    = "no_policy"
	blockIDProgress    = "progress"
	blockIDOutcome     = "outcome"
	blockIDDelivery    = "delivery"
)

// genericTool stands for a task's deployment tool when it has no name.
const genericTool = "the deployment tool"

// toolName is how the message calls the task's deployment tool: its display
// name, or genericTool.
func toolName(displayName string) string {
	if n := strings.TrimSpace(oneLine(displayName)); n != "" {
		return n
	}
	return genericTool
}

// RenderOptions is what a task's message is rendered from besides the task.
type RenderOptions struct {
	// Token is the task's one-time token, the value of both buttons. A
	// pending task rendered without one shows no buttons.
	Token string
	// Policy is the task's policy, nil when none matched: then the message
	// has no buttons and says that nobody can decide the task from Slack.
	Policy *approvals.Policy
	// Tool is the display name of the task's deployment tool
	// (approvals.Tools.DisplayName); "" calls it "the deployment tool".
	Tool string
	// Now decides whether a pending task's time has run out (then its
	// buttons are gone even before the sweeper marks it expired).
	Now time.Time
}

// RenderTask renders a task's message (see RenderOptions).
//
// Everything a deployment tool or a user supplied is escaped, so that a
// description cannot mention @channel or smuggle in a link, and cut to
// Slack's limits. text is the plain summary that notifications show.
func RenderTask(t *approvals.Task, opts RenderOptions) (text string, blocks []slack.Block) {
	token, policy, now := opts.Token, opts.Policy, opts.Now
	tool := toolName(opts.Tool)
	subject := subjectOf(t, tool)

	header := "Deployment approval"
	if subject != "" {
		header += ": " + subject
	}
	blocks = append(blocks, slack.NewHeaderBlock(
		slack.NewTextBlockObject(slack.PlainTextType, plainTrunc(header, maxHeaderChars), true, false),
		slack.HeaderBlockOptionBlockID(blockIDHeader)))

	if d := strings.TrimSpace(t.Description); d != "" {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(escapeTrunc(d, maxSectionChars)), nil, nil,
			slack.SectionBlockOptionBlockID(blockIDDescription)))
	}

	if fields := contextFields(t, opts.Tool); len(fields) > 0 {
		blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil, slack.SectionBlockOptionBlockID(blockIDFields)))
	}

	pending := !t.Status.Final()
	timedOut := pending && !t.ExpiresAt.IsZero() && t.Expired(now)

	var context []slack.MixedElement
	if pending && !t.ExpiresAt.IsZero() {
		verb := "Expires"
		if timedOut {
			verb = "Expired"
		}
		context = append(context, mrkdwn(verb+" "+slackDate(t.ExpiresAt)))
	}
	if policy != nil {
		context = append(context, mrkdwn(policyLine(t, policy)))
	}
	if len(context) > 0 {
		blocks = append(blocks, slack.NewContextBlock(blockIDContext, context...))
	}

	if pending {
		blocks = append(blocks, pendingBlocks(t, token, policy, tool, timedOut)...)
	} else {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(plainTruncKeepEntities(outcomeText(t, policy, tool))), nil, nil,
			slack.SectionBlockOptionBlockID(blockIDOutcome)))
		if line := deliveryLine(t, tool); line != "" {
			blocks = append(blocks, slack.NewContextBlock(blockIDDelivery, mrkdwn(line)))
		}
	}

	return fallbackText(t, subject, policy, tool), blocks
}

// pendingBlocks are what a task still open shows: why nobody can decide it,
// or the quorum so far and the buttons.
func pendingBlocks(t *approvals.Task, token string, policy *approvals.Policy, tool string, timedOut bool) []slack.Block {
	if policy == nil {
		msg := fmt.Sprintf("⚠️ No policy names approvers for this task, so nobody can decide it from Slack. Decide it in %s.",
			escape(tool))
		return []slack.Block{slack.NewSectionBlock(mrkdwn(msg), nil, nil, slack.SectionBlockOptionBlockID(blockIDNoPolicy))}
	}
	var blocks []slack.Block
	if need := requiredApprovals(t, policy); need > 1 {
		line := fmt.Sprintf("%d of %d approvals", len(t.Approvals), need)
		if voters := votersList(t); voters != "" {
			line += ": " + voters
		}
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(plainTruncKeepEntities(line)), nil, nil,
			slack.SectionBlockOptionBlockID(blockIDProgress)))
	}
	// A button without a token could only be refused; a task whose time
	// has run out can only be refused too.
	if token != "" && !timedOut {
		blocks = append(blocks, decisionButtons(t, token, tool))
	}
	return blocks
}

// decisionButtons is the actions block of the contract: approve (primary,
// confirmed) and reject (danger), both carrying the token.
func decisionButtons(t *approvals.Task, token, tool string) slack.Block {
	what := "this deployment"
	if s := subjectOf(t, tool); s != "" {
		what = "the deployment " + s
	}
	confirmText := fmt.Sprintf("You are approving %s. %s will continue it.", what, capitalize(tool))
	confirm := slack.NewConfirmationBlockObject(
		plainText("Approve deployment?"),
		plainText(plainTrunc(confirmText, maxConfirmChars)),
		plainText("Approve"),
		plainText("Cancel"),
	)
	approve := slack.NewButtonBlockElement(actionApprove, token, plainText("Approve")).
		WithStyle(slack.StylePrimary).
		WithConfirm(confirm)
	reject := slack.NewButtonBlockElement(actionReject, token, plainText("Reject")).
		WithStyle(slack.StyleDanger)
	return slack.NewActionBlock(blockIDDecision, approve, reject)
}

// subjectOf names what is deployed where, in plain text: "shop v2.3 → PROD",
// or else the tool's task.
func subjectOf(t *approvals.Task, tool string) string {
	var parts []string
	for _, s := range []string{t.Project, t.Release} {
		if s = strings.TrimSpace(oneLine(s)); s != "" {
			parts = append(parts, s)
		}
	}
	subject := strings.Join(parts, " ")
	if env := strings.TrimSpace(oneLine(t.Environment)); env != "" {
		if subject == "" {
			subject = env
		} else {
			subject += " → " + env
		}
	}
	if subject == "" && t.TaskID != "" {
		subject = tool + " task " + oneLine(t.TaskID)
	}
	return subject
}

// contextFields are the task's context; the source field names the tool by
// displayName, or not at all when it has none.
func contextFields(t *approvals.Task, displayName string) []*slack.TextBlockObject {
	var fields []*slack.TextBlockObject
	add := func(label, value string) {
		if value = strings.TrimSpace(oneLine(value)); value != "" {
			fields = append(fields, mrkdwn("*"+label+"*\n"+escapeTrunc(value, maxFieldChars-len(label)-3)))
		}
	}
	add("Environment", t.Environment)
	add("Project", t.Project)
	add("Release", t.Release)
	add("Pipeline", t.Pipeline)
	add("Stage", t.Stage)
	add("Requested by", t.RequestedBy)

	source := strings.TrimSpace(oneLine(displayName))
	if id := strings.TrimSpace(oneLine(t.TaskID)); id != "" {
		source = strings.TrimSpace(source + " task " + id)
	}
	if source != "" {
		label := escapeTrunc(source, 200)
		if link := safeLink(t.URL); link != "" && len(link) < maxFieldChars-250 {
			label = "<" + link + "|" + label + ">"
		}
		fields = append(fields, mrkdwn("*Source*\n"+label))
	}
	return fields
}

// policyLine says which policy applies and who may decide.
func policyLine(t *approvals.Task, p *approvals.Policy) string {
	need := requiredApprovals(t, p)
	noun := "approvals"
	if need == 1 {
		noun = "approval"
	}
	var who []string
	for _, u := range p.Approvers.Users {
		who = append(who, mentionUser(u, ""))
	}
	for _, g := range p.Approvers.Groups {
		who = append(who, mentionGroup(g))
	}
	for _, e := range p.Approvers.Emails {
		who = append(who, escape(oneLine(e)))
	}
	approvers := "none named"
	if len(who) > 0 {
		approvers = strings.Join(who, ", ")
	}
	line := fmt.Sprintf("Policy %s · %d %s needed · approvers: %s", escape(oneLine(p.Name)), need, noun, approvers)
	return plainTruncKeepEntities(line)
}

func requiredApprovals(t *approvals.Task, p *approvals.Policy) int {
	if t.RequiredApprovals > 0 {
		return t.RequiredApprovals
	}
	if p != nil && p.RequiredApprovals > 0 {
		return p.RequiredApprovals
	}
	return 1
}

// votersList mentions everyone whose approval is counted, once each.
func votersList(t *approvals.Task) string {
	seen := make(map[string]bool, len(t.Approvals))
	var who []string
	for _, v := range t.Approvals {
		if seen[v.ID] {
			continue
		}
		seen[v.ID] = true
		who = append(who, mentionUser(v.ID, v.Name))
	}
	return strings.Join(who, ", ")
}

// outcomeText says how a final task ended: who, when and why.
func outcomeText(t *approvals.Task, p *approvals.Policy, tool string) string {
	at := ""
	if t.DecidedAt != nil && !t.DecidedAt.IsZero() {
		at = " at " + slackDate(*t.DecidedAt)
	}
	reason := strings.TrimSpace(t.Reason)

	switch t.Status {
	case approvals.StatusExpired:
		line := "⌛ Expired with no decision"
		if !t.ExpiresAt.IsZero() {
			line += " at " + slackDate(t.ExpiresAt)
		}
		onExpiry := t.OnExpiry
		if onExpiry == "" && p != nil {
			onExpiry = p.OnExpiry
		}
		if onExpiry == approvals.ExpiryReject {
			line += " · rejected in " + escape(tool) + " automatically"
		}
		return line
	case approvals.StatusApproved, approvals.StatusRejected:
		verb := "✅ Approved"
		if t.Status == approvals.StatusRejected {
			verb = "❌ Rejected"
		}
		if t.DecidedBy == nil {
			// Decided elsewhere, typically in the deployment tool's own
			// UI; the reason says where.
			if reason == "" {
				reason = "decided outside Slack"
			}
			return verb + at + " · " + escapeTrunc(oneLine(reason), maxSectionChars/2)
		}
		who := mentionUser(t.DecidedBy.ID, t.DecidedBy.Name)
		if t.Status == approvals.StatusApproved {
			if voters := votersList(t); voters != "" {
				who = voters
			}
		}
		line := verb + " by " + who + at
		if reason != "" {
			line += "\nReason: " + escapeTrunc(reason, maxSectionChars/2)
		}
		return line
	}
	return "Status: " + escape(oneLine(string(t.Status)))
}

// deliveryLine says how far handing the outcome to the deployment tool got.
func deliveryLine(t *approvals.Task, tool string) string {
	name := escape(tool)
	lastError := escapeTrunc(oneLine(strings.TrimSpace(t.Delivery.LastError)), maxErrorChars)
	switch t.Delivery.State {
	case approvals.DeliveryPending:
		line := "Sending to " + name + "…"
		if t.Delivery.Attempts > 0 {
			line += fmt.Sprintf(" retrying (attempt %d)", t.Delivery.Attempts)
			if lastError != "" {
				line += ": " + lastError
			}
		}
		return line
	case approvals.DeliveryDelivered:
		return capitalize(name) + " accepted the decision"
	case approvals.DeliveryFailed:
		if lastError == "" {
			lastError = "no reason given"
		}
		return "⚠️ " + capitalize(name) + " refused: " + lastError
	}
	return ""
}

func fallbackText(t *approvals.Task, subject string, p *approvals.Policy, tool string) string {
	if subject == "" {
		subject = "a deployment"
	}
	var text string
	switch t.Status {
	case approvals.StatusApproved:
		text = "Approved: " + subject
	case approvals.StatusRejected:
		text = "Rejected: " + subject
	case approvals.StatusExpired:
		text = "Expired: " + subject
	default:
		text = "Deployment approval needed: " + subject
		if p == nil {
			text += " (no policy names approvers; decide it in " + tool + ")"
		}
	}
	// Slack parses the fallback text like mrkdwn, so it is escaped too.
	return escapeTrunc(text, maxSectionChars)
}

// plainTruncKeepEntities cuts already-rendered mrkdwn that is over the
// section limit. Such text holds only escaped user text and our own
// mentions; it is cut before the last complete line or mention so that no
// <…> or &…; is broken.
func plainTruncKeepEntities(s string) string {
	if len([]rune(s)) <= maxSectionChars {
		return s
	}
	r := []rune(s)[:maxSectionChars-1]
	cut := len(r)
	// Step back out of an unfinished <…> or &…;.
	for i := len(r) - 1; i >= 0 && i >= len(r)-64; i-- {
		if r[i] == '>' || r[i] == ';' {
			break
		}
		if r[i] == '<' || r[i] == '&' {
			cut = i
			break
		}
	}
	return string(r[:cut]) + "…"
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	return strings.ToUpper(string(r[0])) + string(r[1:])
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

func plainText(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, true, false)
}
