// Package bot is approvalbot's Slack adapter: it renders tasks as Block Kit
// messages, posts and updates them through the Slack Web API (the
// approvals.Notifier), answers who is who (the approvals.Directory), and
// serves the interactions endpoint and Socket Mode that turn button clicks
// into decisions. Runtime holds them all as the settings in force make
// them, and rebuilds them when the settings change.
package bot

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/slack-go/slack"
)

// The message's interactive contract. Users script against these names (see
// DESIGN.md, "Slack message"); keep them stable.
const (
	blockIDDecision = "decision"
	actionApprove   = string(approvals.ActionApprove)
	actionReject    = string(approvals.ActionReject)
	// actionReview is a require_sso task's link button to the web page
	// that signs the person in and decides; Slack tells the bot of its
	// clicks, which change nothing.
	actionReview         = "review"
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
	blockIDGate        = "gate"
	blockIDOutcome     = "outcome"
	blockIDDelivery    = "delivery"
	blockIDLink        = "link"
	blockIDReceipt     = "receipt"
	blockIDReview      = "review"
	blockIDChange      = "change"
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
	// buttons are gone even before the sweeper marks it expired), and
	// whether the policy's windows and freezes let approving happen (the
	// zero time does not say).
	Now time.Time
	// PublicURL is where people reach the bot (server.public_url): the
	// review link of a require_sso task starts with it. Without it such a
	// task shows no link.
	PublicURL string
}

// RenderTask renders a task's message (see RenderOptions).
//
// Everything a deployment tool or a user supplied is escaped, so that a
// description cannot mention @channel or smuggle in a link, and cut to
// Slack's limits: each element's, and the whole message's (blocksBudget).
// When the message would be too large, the longest texts are cut first, in
// the order of cutOrder; the header, the expiry, the buttons (their token
// and confirm dialog) and the link to the task stay. text is the plain
// summary that notifications show.
func RenderTask(t *approvals.Task, opts RenderOptions) (text string, blocks []slack.Block) {
	r := newRendering(t, opts)
	return r.fallbackText(), r.fit()
}

// RenderMinimal renders the task's minimal message: the header, the
// expiry, the buttons while it is pending (or its outcome), and a link to
// the task (its URL if it has one). The Notifier sends it when Slack
// refuses the full message's blocks, so that a task is never left without
// its message. bare leaves the task's own texts out of the blocks (the
// header names no subject; no link, no reason, no names but Slack ids), for
// when Slack refuses even the minimal message.
func RenderMinimal(t *approvals.Task, opts RenderOptions, bare bool) (text string, blocks []slack.Block) {
	r := newRendering(t, opts)
	c := minimalCuts()
	c.bare = bare
	if bare {
		c.reason = 0
	}
	return r.fallbackText(), r.blocks(c)
}

// rendering is one task's message being rendered under the options; it
// is rendered again under tighter cuts until it fits, so what every
// rendering needs is worked out once.
type rendering struct {
	t        *approvals.Task
	token    string
	policy   *approvals.Policy
	tool     string // the tool's name, or genericTool
	display  string // the tool's display name as given, maybe ""
	subject  string
	pending  bool
	timedOut bool
	now      time.Time
	// publicURL is RenderOptions.PublicURL.
	publicURL string
	// approvers mention the policy's approvers; voters those who
	// approved, votersWithIDs those of them with a Slack id.
	approvers, voters, votersWithIDs []string
	// url is the task's URL fit for a mrkdwn link, or "".
	url string
}

func newRendering(t *approvals.Task, opts RenderOptions) *rendering {
	tool := toolName(opts.Tool)
	pending := !t.Status.Final()
	r := &rendering{
		t:             t,
		token:         opts.Token,
		policy:        opts.Policy,
		tool:          tool,
		display:       opts.Tool,
		subject:       subjectOf(t, tool),
		pending:       pending,
		timedOut:      pending && !t.ExpiresAt.IsZero() && t.Expired(opts.Now),
		now:           opts.Now,
		publicURL:     opts.PublicURL,
		voters:        voters(t, false),
		votersWithIDs: voters(t, true),
		url:           safeLink(t.URL),
	}
	if opts.Policy != nil {
		r.approvers = approverMentions(opts.Policy, nil)
	}
	return r
}

// votersFor are the voters the cuts let the message name.
func (r *rendering) votersFor(c cuts) []string {
	if c.bare {
		return r.votersWithIDs
	}
	return r.voters
}

// blocks renders the message as far as the cuts allow.
func (r *rendering) blocks(c cuts) []slack.Block {
	t := r.t
	header := "Deployment approval"
	if r.subject != "" && !c.bare {
		header += ": " + r.subject
	}
	blocks := []slack.Block{slack.NewHeaderBlock(
		slack.NewTextBlockObject(slack.PlainTextType, plainTrunc(header, maxHeaderChars), true, false),
		slack.HeaderBlockOptionBlockID(blockIDHeader))}

	if d := strings.TrimSpace(t.Description); d != "" && !c.minimal && c.description > 0 {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(escapeTrunc(d, min(c.description, maxSectionChars))), nil, nil,
			slack.SectionBlockOptionBlockID(blockIDDescription)))
	}

	link := r.link(c)
	linkInline := false
	if !c.minimal {
		var fields []*slack.TextBlockObject
		fields, linkInline = contextFields(t, r.display, link, c.field)
		if len(fields) > 0 {
			blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil, slack.SectionBlockOptionBlockID(blockIDFields)))
		}
	}
	if !linkInline {
		if b := r.linkBlock(link, c); b != nil {
			blocks = append(blocks, b)
		}
	}
	if b := changeBlock(t, r.now); b != nil && !c.minimal {
		blocks = append(blocks, b)
	}

	var context []slack.MixedElement
	if r.pending && !t.ExpiresAt.IsZero() {
		verb := "Expires"
		if r.timedOut {
			verb = "Expired"
		}
		context = append(context, mrkdwn(verb+" "+slackDate(t.ExpiresAt)))
	}
	if r.policy != nil && !c.minimal {
		context = append(context, mrkdwn(policyLine(t, r.policy, r.approvers, c.people)))
	}
	if len(context) > 0 {
		blocks = append(blocks, slack.NewContextBlock(blockIDContext, context...))
	}

	if r.pending {
		return append(blocks, r.pendingBlocks(c)...)
	}
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(truncKeepEntities(outcomeText(t, r.policy, r.tool, r.votersFor(c), c), maxSectionChars)), nil, nil,
		slack.SectionBlockOptionBlockID(blockIDOutcome)))
	if line := deliveryLine(t, r.tool, c.lastError); line != "" {
		blocks = append(blocks, slack.NewContextBlock(blockIDDelivery, mrkdwn(line)))
	}
	if b := receiptBlock(t); b != nil {
		blocks = append(blocks, b)
	}
	return blocks
}

// receiptBlock quotes the decision's receipt by its short hash, as
// `approvalbot receipt verify` and GET /v1/tasks/{id}/receipt name it; nil
// while the task has none.
func receiptBlock(t *approvals.Task) slack.Block {
	h := t.Seal.ShortHash()
	if h == "" {
		return nil
	}
	return slack.NewContextBlock(blockIDReceipt, mrkdwn("Receipt "+escape(h)))
}

// link is the task's URL fit for a mrkdwn link, or "" when it has none
// (or none that is safe, or the cuts leave it out).
func (r *rendering) link(c cuts) string {
	if c.noLink || c.bare {
		return ""
	}
	return r.url
}

// linkBlock links to the task when its link did not fit the fields: a
// section of its own holds a URL as long as the intake accepts. The
// minimal message names the task here even without a link.
func (r *rendering) linkBlock(link string, c cuts) slack.Block {
	label := sourceLabel(r.t, r.display, maxSourceChars)
	var text string
	if link != "" {
		name := label
		if name == "" {
			name = "Open in " + escape(r.tool)
		}
		for _, l := range []string{name, "Open"} {
			if s := "<" + link + "|" + l + ">"; utf8.RuneCountInString(s) <= maxSectionChars {
				text = s
				break
			}
		}
	}
	if text == "" && c.minimal && !c.bare {
		text = label
	}
	if text == "" {
		return nil
	}
	return slack.NewSectionBlock(mrkdwn(text), nil, nil, slack.SectionBlockOptionBlockID(blockIDLink))
}

// pendingBlocks are what a task still open shows: why nobody can decide it,
// or the quorum so far and the buttons.
func (r *rendering) pendingBlocks(c cuts) []slack.Block {
	t, policy := r.t, r.policy
	if policy == nil {
		msg := fmt.Sprintf("⚠️ No policy names approvers for this task, so nobody can decide it from Slack. Decide it in %s.",
			escape(r.tool))
		return []slack.Block{slack.NewSectionBlock(mrkdwn(msg), nil, nil, slack.SectionBlockOptionBlockID(blockIDNoPolicy))}
	}
	var blocks []slack.Block
	var progress []string
	if need := requiredApprovals(t, policy); need > 1 {
		line := fmt.Sprintf("%d of %d approvals", len(t.Approvals), need)
		if voters := joinPeople(r.votersFor(c), c.people); voters != "" {
			line += ": " + voters
		}
		progress = append(progress, line)
	}
	if line := requirementLine(t, policy); line != "" {
		progress = append(progress, line)
	}
	if len(progress) > 0 {
		// Joined last, so that the entries' line is never cut for voters.
		line := strings.Join(progress, "\n")
		if utf8.RuneCountInString(line) > maxSectionChars && len(progress) == 2 {
			line = truncKeepEntities(progress[0], maxSectionChars-1-utf8.RuneCountInString(progress[1])) + "\n" + progress[1]
		}
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(truncKeepEntities(line, maxSectionChars)), nil, nil,
			slack.SectionBlockOptionBlockID(blockIDProgress)))
	}
	if b := r.gateBlock(); b != nil {
		blocks = append(blocks, b)
	}
	// A button without a token could only be refused; a task whose time
	// has run out can only be refused too.
	if r.token != "" && !r.timedOut {
		if policy.RequireSSO {
			blocks = append(blocks, r.reviewBlock())
		} else {
			blocks = append(blocks, r.decisionButtons(c))
		}
	}
	return blocks
}

// reviewBlock is a require_sso task's way to be decided: a link button to
// its web page, which signs the person in first, in place of the deciding
// buttons. Without a public URL there is no page to link to, and it says
// so.
func (r *rendering) reviewBlock() slack.Block {
	if r.publicURL == "" {
		return slack.NewContextBlock(blockIDReview, mrkdwn("🔐 Decided on the web after signing in; server.public_url is not set, so there is no link to the page yet."))
	}
	review := slack.NewButtonBlockElement(actionReview, "", plainText("Review and sign in")).
		WithStyle(slack.StylePrimary).
		WithURL(reviewURL(r.publicURL, r.t.ID, r.token))
	return slack.NewActionBlock(blockIDDecision, review)
}

// reviewURL is the web page of a task, carrying its token:
// {public_url}/approve/{id}?t={token}, as the web surface serves it
// (web.ReviewURL; surfaces do not import each other).
func reviewURL(publicURL, taskID, token string) string {
	return strings.TrimSuffix(publicURL, "/") + "/approve/" + url.PathEscape(taskID) + "?" + url.Values{"t": {token}}.Encode()
}

// decisionButtons is the actions block of the contract: approve (primary,
// confirmed) and reject (danger), both carrying the token.
func (r *rendering) decisionButtons(c cuts) *slack.ActionBlock {
	tail := ". " + capitalize(r.tool) + " will continue it."
	what := "this deployment"
	if r.subject != "" && !c.shortConfirm && !c.bare {
		// The sentence stays whole: the subject is what gets cut.
		lead := "the deployment "
		what = lead + plainTrunc(r.subject, maxConfirmChars-utf8.RuneCountInString("You are approving "+lead+tail))
	}
	confirm := slack.NewConfirmationBlockObject(
		plainText("Approve deployment?"),
		plainText(plainTrunc("You are approving "+what+tail, maxConfirmChars)),
		plainText("Approve"),
		plainText("Cancel"),
	)
	approve := slack.NewButtonBlockElement(actionApprove, r.token, plainText("Approve")).
		WithStyle(slack.StylePrimary).
		WithConfirm(confirm)
	reject := slack.NewButtonBlockElement(actionReject, r.token, plainText("Reject")).
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

// contextFields are the task's context, each value cut to most
// characters. The source field names the tool by displayName (or not at
// all when it has none) and links to the task when link fits the field;
// inline reports whether it did.
func contextFields(t *approvals.Task, displayName, link string, most int) (fields []*slack.TextBlockObject, inline bool) {
	add := func(label, value string) {
		if value = strings.TrimSpace(oneLine(value)); value != "" {
			fields = append(fields, mrkdwn("*"+label+"*\n"+escapeTrunc(value, min(most, maxFieldChars-len(label)-3))))
		}
	}
	add("Environment", t.Environment)
	add("Project", t.Project)
	add("Release", t.Release)
	add("Pipeline", t.Pipeline)
	add("Stage", t.Stage)
	add("Requested by", t.RequestedBy)

	if label := sourceLabel(t, displayName, min(most, maxSourceChars)); label != "" {
		text := "*Source*\n" + label
		if linked := "*Source*\n<" + link + "|" + label + ">"; link != "" && utf8.RuneCountInString(linked) <= maxFieldChars {
			text, inline = linked, true
		}
		fields = append(fields, mrkdwn(text))
	}
	return fields, inline
}

// sourceLabel names the task at its tool, escaped: "FlexDeploy task 8900".
func sourceLabel(t *approvals.Task, displayName string, most int) string {
	source := strings.TrimSpace(oneLine(displayName))
	if id := strings.TrimSpace(oneLine(t.TaskID)); id != "" {
		source = strings.TrimSpace(source + " task " + id)
	}
	if source == "" {
		return ""
	}
	return escapeTrunc(source, most)
}

// policyLine says which policy applies and who may decide, naming as many
// of the approvers (who, rendered) as fit people characters.
func policyLine(t *approvals.Task, p *approvals.Policy, who []string, people int) string {
	need := requiredApprovals(t, p)
	noun := "approvals"
	if need == 1 {
		noun = "approval"
	}
	approvers := "none named"
	if len(who) > 0 {
		if approvers = joinPeople(who, people); approvers == "" {
			approvers = fmt.Sprintf("%d named", len(who))
		}
	}
	line := fmt.Sprintf("Policy %s · %d %s needed · approvers: %s", escapeTrunc(oneLine(p.Name), maxNameChars), need, noun, approvers)
	return truncKeepEntities(line, maxSectionChars)
}

// maxGateChars bounds the line that says approving is closed: a freeze's
// reason is at most 200 characters (config), the rest the bot's.
const maxGateChars = 400

// gateBlock says, while the policy's windows or a freeze keep approving
// closed at the time of rendering, why and until when; rejecting still
// works, and those who may break glass still can. nil while it is open.
func (r *rendering) gateBlock() slack.Block {
	if r.policy == nil || r.timedOut || r.now.IsZero() {
		return nil
	}
	open, why := approvals.ApprovingOpen(r.policy, r.now)
	if open || why == "" {
		return nil
	}
	text := "⏸️ " + escapeTrunc(capitalize(oneLine(why)), maxGateChars) + " · rejecting still works"
	return slack.NewContextBlock(blockIDGate, mrkdwn(text))
}

// requirementLine is each require_from entry's count, "SRE 1/1 · QA 0/1";
// an entry without a name shows its group as a mention. "" when the policy
// has none.
func requirementLine(t *approvals.Task, p *approvals.Policy) string {
	progress := approvals.RequirementProgress(t, p)
	parts := make([]string, 0, len(progress))
	for i, e := range progress {
		name := escapeTrunc(oneLine(e.Name), maxNameChars)
		if r := p.RequireFrom[i]; r.Label == "" && r.Group != "" {
			name = mentionGroup(r.Group)
		}
		parts = append(parts, fmt.Sprintf("%s %d/%d", name, e.Have, e.Need))
	}
	return truncKeepEntities(strings.Join(parts, " · "), maxSectionChars/2)
}

// approverMentions mentions the policy's approvers: users (but those skip
// leaves out), groups, emails.
func approverMentions(p *approvals.Policy, skip func(user string) bool) []string {
	var who []string
	for _, u := range p.Approvers.Users {
		if skip == nil || !skip(u) {
			who = append(who, mentionUser(u, ""))
		}
	}
	for _, g := range p.Approvers.Groups {
		who = append(who, mentionGroup(g))
	}
	for _, e := range p.Approvers.Emails {
		who = append(who, escapeTrunc(oneLine(e), maxNameChars))
	}
	return who
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

// voters mentions everyone whose approval is counted, once each; idsOnly
// leaves out those who have no Slack id.
func voters(t *approvals.Task, idsOnly bool) []string {
	seen := make(map[string]bool, len(t.Approvals))
	var who []string
	for _, v := range t.Approvals {
		if seen[v.ID] || (idsOnly && !slackIDPattern.MatchString(v.ID)) {
			continue
		}
		seen[v.ID] = true
		who = append(who, mentionUser(v.ID, v.Name))
	}
	return who
}

// joinPeople lists rendered mentions, as many as fit most characters, and
// says how many more there are: "<@U1>, <@U2> and 7 more". It never cuts a
// mention; "" when not even the first fits.
func joinPeople(who []string, most int) string {
	var b strings.Builder
	n := 0
	best, shown := -1, 0 // the longest prefix that fits with its " and N more"
	for i, w := range who {
		if i > 0 {
			w = ", " + w
		}
		if n += utf8.RuneCountInString(w); n > most {
			break
		}
		b.WriteString(w)
		rest := len(who) - i - 1
		if rest == 0 {
			return b.String()
		}
		if n+len(andMore(rest)) <= most {
			best, shown = b.Len(), i+1
		}
	}
	if best < 0 {
		return ""
	}
	return b.String()[:best] + andMore(len(who)-shown)
}

func andMore(n int) string { return " and " + strconv.Itoa(n) + " more" }

// outcomeText says how a final task ended: who (voters are those who
// approved, rendered), when and why, the lists and the reason as long as
// the cuts allow.
func outcomeText(t *approvals.Task, p *approvals.Policy, tool string, voters []string, c cuts) string {
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
		} else if t.BrokeGlass() {
			verb = "🚨 *BREAK-GLASS* · " + verb
		}
		if t.DecidedBy == nil {
			// Decided elsewhere, typically in the deployment tool's own
			// UI; the reason says where.
			if reason == "" || c.reason == 0 {
				return verb + at + " · decided outside Slack"
			}
			return verb + at + " · " + escapeTrunc(oneLine(reason), min(c.reason, maxSectionChars/2))
		}
		var who string
		if !c.bare || slackIDPattern.MatchString(t.DecidedBy.ID) {
			who = mentionUser(t.DecidedBy.ID, t.DecidedBy.Name)
		}
		if t.Status == approvals.StatusApproved {
			if list := joinPeople(voters, c.people); list != "" {
				who = list
			}
		}
		line := verb
		if who != "" {
			line += " by " + who
		}
		line += at
		if reason != "" && c.reason > 0 {
			line += "\nReason: " + escapeTrunc(reason, min(c.reason, maxSectionChars/2))
		}
		return line
	}
	return "Status: " + escapeTrunc(oneLine(string(t.Status)), maxNameChars)
}

// deliveryLine says how far handing the outcome to the deployment tool got,
// quoting at most errorChars characters of the tool's error.
func deliveryLine(t *approvals.Task, tool string, errorChars int) string {
	name := escape(tool)
	lastError := ""
	if errorChars > 0 {
		lastError = escapeTrunc(oneLine(strings.TrimSpace(t.Delivery.LastError)), min(errorChars, maxErrorChars))
	}
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
			if errorChars > 0 {
				lastError = "no reason given"
			} else {
				return "⚠️ " + capitalize(name) + " refused the decision"
			}
		}
		return "⚠️ " + capitalize(name) + " refused: " + lastError
	}
	return ""
}

func (r *rendering) fallbackText() string {
	subject := r.subject
	if subject == "" {
		subject = "a deployment"
	}
	var text string
	switch r.t.Status {
	case approvals.StatusApproved:
		text = "Approved: " + subject
		if r.t.BrokeGlass() {
			text = "Approved (BREAK-GLASS): " + subject
		}
	case approvals.StatusRejected:
		text = "Rejected: " + subject
	case approvals.StatusExpired:
		text = "Expired: " + subject
	default:
		text = "Deployment approval needed: " + subject
		if r.policy == nil {
			text += " (no policy names approvers; decide it in " + r.tool + ")"
		}
	}
	// Slack parses the fallback text like mrkdwn, so it is escaped too.
	return escapeTrunc(text, maxFallbackChars)
}

// truncKeepEntities cuts already-rendered mrkdwn to most characters. Such
// text holds only escaped user text and our own mentions; it is cut before
// the last mention or entity that would be broken, so that no <…> or &…;
// is left open, and ends in "…".
func truncKeepEntities(s string, most int) string {
	if utf8.RuneCountInString(s) <= most {
		return s
	}
	r := []rune(s)[:most-1]
	cut := len(r)
	// Step back out of an unfinished <…> or &…;.
	for i := len(r) - 1; i >= 0; i-- {
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

// changeBlock shows what the task is bound to: the artifact's short
// digest, and the change record's number (linked), state and whether it
// allows approving; nil when the task names neither, so that such tasks'
// messages are as before.
func changeBlock(t *approvals.Task, now time.Time) slack.Block {
	var parts []*slack.TextBlockObject
	if a := t.Artifact; a != nil {
		parts = append(parts, mrkdwn("Artifact "+escapeTrunc(oneLine(a.Name), 200)+" `"+a.ShortDigest()+"`"))
	}
	if t.Change != "" {
		number := escape(t.Change)
		text := "Change " + number
		if rec := t.ChangeRecord; rec != nil && rec.Number == t.Change {
			if link := safeLink(rec.URL); link != "" {
				text = "Change <" + link + "|" + number + ">"
			}
			text += " · " + escapeTrunc(oneLine(rec.State), 100)
			if why := rec.Blocks(now); why != "" && t.Status == approvals.StatusPending {
				text += " · approving waits: " + escapeTrunc(oneLine(why), 300)
			}
		}
		parts = append(parts, mrkdwn(text))
	}
	if len(parts) == 0 {
		return nil
	}
	elems := make([]slack.MixedElement, len(parts))
	for i, p := range parts {
		elems[i] = p
	}
	return slack.NewContextBlock(blockIDChange, elems...)
}
