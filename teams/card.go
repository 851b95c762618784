package teams

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

// The card's contract: Action.Execute verbs and the data and input ids a
// click carries back (value.action.verb, value.action.data).
const (
	VerbApprove    = "approve"
	VerbReject     = "reject"
	VerbBreakGlass = "break_glass"
	dataToken      = "t"
	inputReason    = "reason"
	inputConfirm   = "confirm"

	cardContentType = "application/vnd.microsoft.card.adaptive"
	cardSchema      = "http://adaptivecards.io/schemas/adaptive-card.json"
	cardVersion     = "1.5"

	// Limits of what a card quotes, so that a card stays far below Teams'
	// 28 KB message limit whatever the intake sent (the intake caps each
	// field at 2,000 characters).
	maxFactChars   = 300
	maxDescChars   = 1500
	maxReasonChars = 1000
	maxErrorChars  = 300
	maxPeople      = 20
)

// Card is an Adaptive Card.
type Card struct {
	Type    string    `json:"type"`
	Schema  string    `json:"$schema"`
	Version string    `json:"version"`
	Body    []Element `json:"body"`
	Actions []Action  `json:"actions,omitempty"`
}

// Element is a body element: a TextBlock, a FactSet or an Input.Text.
type Element struct {
	Type        string `json:"type"`
	ID          string `json:"id,omitempty"`
	Text        string `json:"text,omitempty"`
	Size        string `json:"size,omitempty"`
	Weight      string `json:"weight,omitempty"`
	Color       string `json:"color,omitempty"`
	IsSubtle    bool   `json:"isSubtle,omitempty"`
	Wrap        bool   `json:"wrap,omitempty"`
	Facts       []Fact `json:"facts,omitempty"`
	Label       string `json:"label,omitempty"`
	Placeholder string `json:"placeholder,omitempty"`
	IsMultiline bool   `json:"isMultiline,omitempty"`
	MaxLength   int    `json:"maxLength,omitempty"`
	IsRequired  bool   `json:"isRequired,omitempty"`
	ErrorMsg    string `json:"errorMessage,omitempty"`
}

// Fact is one title and value of a FactSet.
type Fact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// Action is an Action.Execute or an Action.OpenUrl.
type Action struct {
	Type  string            `json:"type"`
	Title string            `json:"title"`
	Verb  string            `json:"verb,omitempty"`
	Style string            `json:"style,omitempty"`
	Data  map[string]string `json:"data,omitempty"`
	URL   string            `json:"url,omitempty"`
}

// RenderOptions is what a card is rendered from besides the task.
type RenderOptions struct {
	// Token is the task's one-time token, carried by the actions; a pending
	// task rendered without one has none.
	Token string
	// Policy is the task's policy; nil when none matched (nobody can
	// decide it from Teams).
	Policy *approvals.Policy
	// Tool is the display name of the task's deployment tool.
	Tool string
	// Now decides whether the task's time has run out and whether
	// approving is open (the zero time does not say).
	Now time.Time
	// PublicURL starts a require_sso task's link to the web page.
	PublicURL string
}

// RenderCard renders a task's card: its header and context, its state, and
// while it is pending an optional reason input and the two actions (or a
// require_sso task's link to the web page). A final task's card has no
// actions: outcome, who, when, reason, receipt.
func RenderCard(t *approvals.Task, opts RenderOptions) Card {
	tool := opts.Tool
	if strings.TrimSpace(tool) == "" {
		tool = "the deployment tool"
	}
	c := newCard()
	c.Body = append(c.Body,
		Element{Type: "TextBlock", Text: text(headline(t), maxFactChars), Size: "Medium", Weight: "Bolder", Wrap: true})
	if s := subjectOf(t, tool); s != "" {
		c.Body = append(c.Body, Element{Type: "TextBlock", Text: text(s, maxFactChars), Weight: "Bolder", Wrap: true})
	}
	if d := strings.TrimSpace(t.Description); d != "" {
		c.Body = append(c.Body, Element{Type: "TextBlock", Text: text(d, maxDescChars), Wrap: true})
	}
	if facts := factsOf(t, opts.Tool); len(facts) > 0 {
		c.Body = append(c.Body, Element{Type: "FactSet", Facts: facts})
	}
	timedOut := !opts.Now.IsZero() && t.Expired(opts.Now)
	if t.Status.Final() {
		c.Body = append(c.Body, Element{Type: "TextBlock", Text: outcomeText(t, opts.Policy, tool), Wrap: true})
		if line := deliveryLine(t, tool); line != "" {
			c.Body = append(c.Body, Element{Type: "TextBlock", Text: line, IsSubtle: true, Wrap: true})
		}
		if h := t.Seal.ShortHash(); h != "" {
			c.Body = append(c.Body, Element{Type: "TextBlock", Text: "Receipt " + h, IsSubtle: true, Size: "Small"})
		}
		return c
	}
	p := opts.Policy
	if p == nil {
		c.Body = append(c.Body, Element{Type: "TextBlock", Color: "Warning", Wrap: true,
			Text: "⚠️ No policy names approvers for this task, so nobody can decide it from Microsoft Teams. Decide it in " + text(tool, maxFactChars) + "."})
		return c
	}
	c.Body = append(c.Body, Element{Type: "TextBlock", Text: policyLine(t, p), IsSubtle: true, Wrap: true})
	if !t.ExpiresAt.IsZero() {
		c.Body = append(c.Body, Element{Type: "TextBlock", Text: "Expires " + date(t.ExpiresAt), IsSubtle: true, Wrap: true})
	}
	if !timedOut && !opts.Now.IsZero() {
		if open, why := approvals.ApprovingOpen(p, opts.Now); !open && why != "" {
			c.Body = append(c.Body, Element{Type: "TextBlock", Color: "Warning", Wrap: true,
				Text: "⏸️ " + text(capitalize(why), 400) + " · rejecting still works"})
		}
	}
	if opts.Token == "" || timedOut {
		return c
	}
	if p.RequireSSO {
		if opts.PublicURL == "" {
			c.Body = append(c.Body, Element{Type: "TextBlock", IsSubtle: true, Wrap: true,
				Text: "🔐 Decided on the web after signing in; server.public_url is not set, so there is no link to the page yet."})
			return c
		}
		c.Actions = []Action{{Type: "Action.OpenUrl", Title: "Review and sign in", URL: ReviewURL(opts.PublicURL, t.ID, opts.Token)}}
		return c
	}
	label := "Reason (optional)"
	if p.RequireRejectReason {
		label = "Reason (required to reject)"
	}
	c.Body = append(c.Body, Element{Type: "Input.Text", ID: inputReason, Label: label, IsMultiline: true, MaxLength: maxReasonChars})
	c.Actions = []Action{
		{Type: "Action.Execute", Title: "Approve", Verb: VerbApprove, Style: "positive", Data: map[string]string{dataToken: opts.Token}},
		{Type: "Action.Execute", Title: "Reject", Verb: VerbReject, Style: "destructive", Data: map[string]string{dataToken: opts.Token}},
	}
	return c
}

// PromptCard asks the clicker for what an approval or a rejection needs
// before it is decided (Teams has no modal): a reason to reject, a
// break-glass reason, the environment typed out. It is shown to the clicker
// only, in place of the task's card, and sends the input with the token.
func PromptCard(t *approvals.Task, err error, token string) (Card, bool) {
	c := newCard()
	subject := ""
	if t != nil {
		subject = subjectOf(t, "the deployment tool")
	}
	head := func(s string) {
		c.Body = append(c.Body, Element{Type: "TextBlock", Text: s, Size: "Medium", Weight: "Bolder", Wrap: true})
		if subject != "" {
			c.Body = append(c.Body, Element{Type: "TextBlock", Text: text(subject, maxFactChars), Wrap: true})
		}
	}
	data := map[string]string{dataToken: token}
	switch {
	case isKind(err, approvals.ErrReasonRequired):
		head("Reject: a reason is required")
		c.Body = append(c.Body, Element{Type: "Input.Text", ID: inputReason, Label: "Why is the deployment rejected?", IsMultiline: true, MaxLength: maxReasonChars, IsRequired: true, ErrorMsg: "Say why the deployment is rejected."})
		c.Actions = []Action{{Type: "Action.Execute", Title: "Reject", Verb: VerbReject, Style: "destructive", Data: data}}
	case isKind(err, approvals.ErrBreakGlassNeeded):
		head("🚨 Break glass")
		c.Body = append(c.Body,
			Element{Type: "TextBlock", Wrap: true, Text: text(approvals.BreakGlassWhy(err), 600) + " Breaking glass approves this deployment at once. It is marked BREAK-GLASS on the message, in the audit trail and in the notes to the deployment tool, and announced to every approver."},
			Element{Type: "Input.Text", ID: inputReason, Label: "Why can this not wait?", IsMultiline: true, MaxLength: maxReasonChars, IsRequired: true, ErrorMsg: "A reason is required to break glass."})
		c.Actions = []Action{{Type: "Action.Execute", Title: "Break glass & approve", Verb: VerbBreakGlass, Style: "destructive", Data: data}}
	case isKind(err, approvals.ErrConfirmRequired):
		env := ""
		if t != nil {
			env = strings.TrimSpace(t.Environment)
		}
		head("Confirm the approval")
		prompt := "Type the environment's name to approve."
		if env != "" {
			prompt = "Type " + text(env, maxFactChars) + " to approve."
		}
		c.Body = append(c.Body, Element{Type: "Input.Text", ID: inputConfirm, Label: prompt, IsRequired: true, MaxLength: 2000, ErrorMsg: "Type the environment's name."})
		c.Actions = []Action{{Type: "Action.Execute", Title: "Approve", Verb: VerbApprove, Style: "positive", Data: data}}
	default:
		return Card{}, false
	}
	return c, true
}

func newCard() Card {
	return Card{Type: "AdaptiveCard", Schema: cardSchema, Version: cardVersion, Body: []Element{}}
}

// isKind reports whether err is of target's kind in approvals' table: the
// first row it matches (a break-glass refusal wraps a self-approval).
func isKind(err error, target error) bool {
	return err != nil && approvals.KindOf(err).Code == approvals.KindOf(target).Code
}

// ReviewURL is the web page of a task, carrying its token:
// {public_url}/approve/{id}?t={token}, as the web surface serves it.
func ReviewURL(publicURL, taskID, token string) string {
	return strings.TrimSuffix(publicURL, "/") + "/approve/" + url.PathEscape(taskID) + "?" + url.Values{"t": {token}}.Encode()
}

func headline(t *approvals.Task) string {
	switch t.Status {
	case approvals.StatusApproved:
		if t.BrokeGlass() {
			return "Deployment approved (BREAK-GLASS)"
		}
		return "Deployment approved"
	case approvals.StatusRejected:
		return "Deployment rejected"
	case approvals.StatusExpired:
		return "Deployment approval expired"
	}
	return "Deployment approval needed"
}

// subjectOf names what is deployed where: "shop v2.3 → PROD", or else the
// tool's task. Not yet escaped.
func subjectOf(t *approvals.Task, tool string) string {
	var parts []string
	for _, s := range []string{t.Project, t.Release} {
		if s = flat(s); s != "" {
			parts = append(parts, s)
		}
	}
	subject := strings.Join(parts, " ")
	if env := flat(t.Environment); env != "" {
		if subject == "" {
			subject = env
		} else {
			subject += " → " + env
		}
	}
	if subject == "" && t.TaskID != "" {
		subject = tool + " task " + flat(t.TaskID)
	}
	return subject
}

func factsOf(t *approvals.Task, tool string) []Fact {
	var facts []Fact
	add := func(title, value string) {
		if value = flat(value); value != "" {
			facts = append(facts, Fact{Title: title, Value: text(value, maxFactChars)})
		}
	}
	add("Environment", t.Environment)
	add("Project", t.Project)
	add("Release", t.Release)
	add("Pipeline", t.Pipeline)
	add("Stage", t.Stage)
	add("Requested by", t.RequestedBy)
	source := flat(tool)
	if id := flat(t.TaskID); id != "" {
		source = strings.TrimSpace(source + " task " + id)
	}
	if source != "" {
		source = text(source, maxFactChars)
		if link := safeLink(t.URL); link != "" {
			source = "[" + source + "](" + link + ")"
		}
		facts = append(facts, Fact{Title: "Source", Value: source})
	}
	return facts
}

// safeLink is u when it is an http(s) URL that a markdown link can hold.
func safeLink(u string) string {
	parsed, err := url.Parse(strings.TrimSpace(u))
	if err != nil || (parsed.Scheme != "https" && parsed.Scheme != "http") || parsed.Host == "" {
		return ""
	}
	s := parsed.String()
	if strings.ContainsAny(s, " ()[]<>\"") || len(s) > 2000 {
		return ""
	}
	return s
}

func policyLine(t *approvals.Task, p *approvals.Policy) string {
	need := requiredApprovals(t, p)
	noun := "approvals"
	if need == 1 {
		noun = "approval"
	}
	line := fmt.Sprintf("Policy %s · %d %s needed", text(flat(p.Name), 100), need, noun)
	if len(t.Approvals) > 0 {
		line += fmt.Sprintf(" · %d so far: %s", len(t.Approvals), text(joinPeople(voterNames(t)), 600))
	}
	// The require_from entries' counts: without them a task with its
	// quorum met would look stuck. Teams people fill no entry (entries
	// name Slack ids and user groups), so the card says which are open.
	for _, e := range approvals.RequirementProgress(t, p) {
		line += fmt.Sprintf(" · %s %d/%d", text(flat(e.Name), 40), e.Have, e.Need)
	}
	return line
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

func voterNames(t *approvals.Task) []string {
	var names []string
	seen := map[string]bool{}
	for _, v := range t.Approvals {
		n := personName(v.Person)
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return names
}

func personName(p approvals.Person) string {
	if n := flat(p.Name); n != "" {
		return n
	}
	return flat(p.ID)
}

func joinPeople(names []string) string {
	if len(names) > maxPeople {
		return strings.Join(names[:maxPeople], ", ") + fmt.Sprintf(" and %d more", len(names)-maxPeople)
	}
	return strings.Join(names, ", ")
}

func outcomeText(t *approvals.Task, p *approvals.Policy, tool string) string {
	at := ""
	if t.DecidedAt != nil && !t.DecidedAt.IsZero() {
		at = " at " + date(*t.DecidedAt)
	}
	reason := strings.TrimSpace(t.Reason)
	switch t.Status {
	case approvals.StatusExpired:
		line := "⌛ Expired with no decision"
		if !t.ExpiresAt.IsZero() {
			line += " at " + date(t.ExpiresAt)
		}
		onExpiry := t.OnExpiry
		if onExpiry == "" && p != nil {
			onExpiry = p.OnExpiry
		}
		if onExpiry == approvals.ExpiryReject {
			line += " · rejected in " + text(tool, maxFactChars) + " automatically"
		}
		return line
	case approvals.StatusApproved, approvals.StatusRejected:
		verb := "✅ Approved"
		if t.Status == approvals.StatusRejected {
			verb = "❌ Rejected"
		} else if t.BrokeGlass() {
			verb = "🚨 **BREAK-GLASS** · " + verb
		}
		if t.DecidedBy == nil {
			if reason == "" {
				return verb + at + " · decided outside chat"
			}
			return verb + at + " · " + text(flat(reason), maxReasonChars)
		}
		who := personName(*t.DecidedBy)
		if t.Status == approvals.StatusApproved {
			if names := voterNames(t); len(names) > 0 {
				who = joinPeople(names)
			}
		}
		line := verb + " by " + text(who, 600) + at
		if reason != "" {
			line += "\n\nReason: " + text(reason, maxReasonChars)
		}
		return line
	}
	return "Status: " + text(string(t.Status), 40)
}

func deliveryLine(t *approvals.Task, tool string) string {
	name := text(tool, maxFactChars)
	lastError := text(flat(t.Delivery.LastError), maxErrorChars)
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

// date is a time as the card says it, in UTC.
func date(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// flat is s on one line.
func flat(s string) string { return strings.Join(strings.Fields(s), " ") }

// text escapes outside text for a TextBlock or a fact, whose markdown
// would otherwise turn it into links, emphasis or lists, and cuts it to
// most runes.
func text(s string, most int) string {
	if r := []rune(s); len(r) > most {
		s = string(r[:most-1]) + "…"
	}
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '*', '_', '[', ']', '(', ')', '`', '#', '<', '>', '{', '}', '~':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	return strings.ToUpper(string(r[0])) + string(r[1:])
}
