package bot

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/slack-go/slack"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/slack")

var (
	renderNow = time.Date(2026, 11, 22, 14, 0, 0, 0, time.UTC)
	decidedAt = time.Date(2026, 11, 22, 14, 2, 0, 0, time.UTC)
)

// testTools is a registry with the real tools' display names, built by
// hand: bot knows no tool by name.
var testTools = func() *approvals.Tools {
	tools, err := approvals.NewTools(
		approvals.Tool{Name: "flexdeploy", DisplayName: "FlexDeploy"},
		approvals.Tool{Name: "azure-devops", DisplayName: "Azure DevOps"},
	)
	if err != nil {
		panic(err)
	}
	return tools
}()

// render renders a task as the Notifier does, naming its tool from
// testTools.
func render(task *approvals.Task, token string, policy *approvals.Policy, now time.Time) (string, []slack.Block) {
	return RenderTask(task, RenderOptions{Token: token, Policy: policy, Tool: testTools.DisplayName(task.Source), Now: now})
}

func fixtureTask() *approvals.Task {
	created := time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)
	return &approvals.Task{
		ID:     "flexdeploy-8900",
		Source: "flexdeploy",
		TaskID: "8900",
		Context: approvals.Context{
			Description: "v2.3 is about to be deployed to PROD",
			Environment: "PROD",
			Project:     "shop",
			Release:     "v2.3",
			Pipeline:    "main",
			Stage:       "deploy",
			RequestedBy: "dev@example.com",
			URL:         "https://fd.example.com/flexdeploy/#/tasks/8900",
		},
		Status:            approvals.StatusPending,
		RequiredApprovals: 1,
		CreatedAt:         created,
		ExpiresAt:         created.Add(4 * time.Hour),
		Policy:            "production",
		OnExpiry:          approvals.ExpiryIgnore,
		Messages:          []approvals.MessageRef{approvals.MessageRef{Channel: "C0PROD", TS: "1700000000.000100"}},
		Delivery:          approvals.Delivery{State: approvals.DeliveryNotNeeded},
	}
}

func singlePolicy() *approvals.Policy {
	return &approvals.Policy{
		Name:              "production",
		Approvers:         approvals.Approvers{Users: []string{"U1"}, Groups: []string{"S2"}, Emails: []string{"lead@example.com"}},
		RequiredApprovals: 1,
	}
}

func quorumPolicy() *approvals.Policy {
	return &approvals.Policy{
		Name:              "production",
		Approvers:         approvals.Approvers{Users: []string{"U1", "U2", "U3"}},
		RequiredApprovals: 2,
		OnExpiry:          approvals.ExpiryReject,
	}
}

// requireFromPolicy needs an SRE and a QA among two approvals.
func requireFromPolicy() *approvals.Policy {
	p := quorumPolicy()
	p.RequireFrom = []approvals.Requirement{{Label: "SRE", Group: "S0SRE", Count: 1}, {Label: "QA", Group: "S0QA", Count: 1}}
	return p
}

// frozenPolicy is frozen at renderNow, by a freeze with a reason.
func frozenPolicy() *approvals.Policy {
	p := singlePolicy()
	p.Freezes = []approvals.Freeze{{From: renderNow.Add(-48 * time.Hour), To: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), Reason: "Black Friday freeze"}}
	p.BreakGlass = approvals.Approvers{Groups: []string{"S0ONCALL"}}
	return p
}

// windowPolicy opens on weekdays in Amsterdam; renderNow is a Sunday.
func windowPolicy() *approvals.Policy {
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		panic(err)
	}
	p := singlePolicy()
	p.Windows = []approvals.Window{{Days: []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}, From: 9 * 60, To: 17 * 60, Location: loc}}
	return p
}

type renderCase struct {
	name   string
	task   func() *approvals.Task
	token  string
	policy *approvals.Policy
	final  bool
}

func renderCases() []renderCase {
	return []renderCase{
		{name: "pending_single", token: "tok-single", policy: singlePolicy(), task: fixtureTask},
		{name: "pending_quorum_one_vote", token: "tok-quorum", policy: quorumPolicy(), task: func() *approvals.Task {
			t := fixtureTask()
			t.RequiredApprovals = 2
			t.Approvals = []approvals.Vote{{Person: approvals.Person{ID: "U1", Name: "alice"}, At: decidedAt}}
			return t
		}},
		{name: "no_policy", token: "tok-none", policy: nil, task: func() *approvals.Task {
			t := fixtureTask()
			t.Policy = ""
			return t
		}},
		{name: "approved_delivered", policy: singlePolicy(), final: true, task: func() *approvals.Task {
			t := fixtureTask()
			t.Status = approvals.StatusApproved
			t.Approvals = []approvals.Vote{{Person: approvals.Person{ID: "U1", Name: "alice"}, At: decidedAt}}
			t.DecidedBy = &approvals.Person{ID: "U1", Name: "alice"}
			t.DecidedAt = &decidedAt
			t.Delivery = approvals.Delivery{State: approvals.DeliveryDelivered, Attempts: 1, DeliveredAt: &decidedAt}
			return t
		}},
		{name: "approved_retrying", policy: quorumPolicy(), final: true, task: func() *approvals.Task {
			t := fixtureTask()
			t.Status = approvals.StatusApproved
			t.RequiredApprovals = 2
			t.Approvals = []approvals.Vote{
				{Person: approvals.Person{ID: "U1", Name: "alice"}, At: decidedAt.Add(-time.Minute)},
				{Person: approvals.Person{ID: "U2", Name: "bob"}, At: decidedAt},
			}
			t.DecidedBy = &approvals.Person{ID: "U2", Name: "bob"}
			t.DecidedAt = &decidedAt
			t.Delivery = approvals.Delivery{State: approvals.DeliveryPending, Attempts: 2, LastError: "dial tcp 10.0.0.7:8000: connection refused"}
			return t
		}},
		{name: "rejected_failed", policy: quorumPolicy(), final: true, task: func() *approvals.Task {
			t := fixtureTask()
			t.Status = approvals.StatusRejected
			t.RequiredApprovals = 2
			t.DecidedBy = &approvals.Person{ID: "U3", Name: "carol"}
			t.DecidedAt = &decidedAt
			t.Reason = "Change freeze until Monday <@U1> & friends"
			t.Delivery = approvals.Delivery{State: approvals.DeliveryFailed, Attempts: 1, LastError: "HTTP 400: <html>task 8900 is not pending</html>"}
			return t
		}},
		{name: "expired_auto_reject", policy: quorumPolicy(), final: true, task: func() *approvals.Task {
			t := fixtureTask()
			t.Status = approvals.StatusExpired
			t.RequiredApprovals = 2
			t.OnExpiry = approvals.ExpiryReject
			t.DecidedAt = &t.ExpiresAt
			t.Delivery = approvals.Delivery{State: approvals.DeliveryPending}
			return t
		}},
		{name: "decided_elsewhere", policy: singlePolicy(), final: true, task: func() *approvals.Task {
			t := fixtureTask()
			t.Status = approvals.StatusApproved
			t.DecidedAt = &decidedAt
			t.Reason = "decided in FlexDeploy"
			t.Delivery = approvals.Delivery{State: approvals.DeliveryNotNeeded}
			return t
		}},
		{name: "pending_require_from", token: "tok-groups", policy: requireFromPolicy(), task: func() *approvals.Task {
			t := fixtureTask()
			t.RequiredApprovals = 2
			t.Approvals = []approvals.Vote{{Person: approvals.Person{ID: "U1", Name: "alice"}, At: decidedAt, Fills: []string{"SRE"}}}
			return t
		}},
		{name: "pending_frozen", token: "tok-frozen", policy: frozenPolicy(), task: fixtureTask},
		{name: "pending_outside_window", token: "tok-window", policy: windowPolicy(), task: fixtureTask},
		{name: "approved_break_glass", policy: frozenPolicy(), final: true, task: func() *approvals.Task {
			t := fixtureTask()
			t.Status = approvals.StatusApproved
			t.Approvals = []approvals.Vote{{Person: approvals.Person{ID: "U4", Name: "dev"}, At: decidedAt, BreakGlass: true}}
			t.DecidedBy = &approvals.Person{ID: "U4", Name: "dev"}
			t.DecidedAt = &decidedAt
			t.Reason = "payments are down, hotfix"
			t.Delivery = approvals.Delivery{State: approvals.DeliveryDelivered, Attempts: 1, DeliveredAt: &decidedAt}
			return t
		}},
		{name: "hostile_description", token: "tok-hostile", policy: singlePolicy(), task: func() *approvals.Task {
			t := fixtureTask()
			t.Description = "<!channel> <https://evil|click> & stuff"
			t.RequestedBy = "<@U999> <!here>"
			t.Release = "v2.3 <!everyone>"
			t.URL = "javascript:alert(1)"
			return t
		}},
	}
}

// goldenMessage is a chat.postMessage body, so a golden file can be pasted
// into Slack's Block Kit Builder.
type goldenMessage struct {
	Text   string        `json:"text"`
	Blocks []slack.Block `json:"blocks"`
}

func marshalMessage(t *testing.T, text string, blocks []slack.Block) []byte {
	t.Helper()
	out, err := json.MarshalIndent(goldenMessage{Text: text, Blocks: blocks}, "", "  ")
	if err != nil {
		t.Fatalf("marshal blocks: %v", err)
	}
	return append(out, '\n')
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("..", "testdata", "slack", name+".json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test ./bot -run TestRender.*Golden -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the rendering (rerun with -update if the change is intended)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestRenderGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range renderCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			text, blocks := render(tc.task(), tc.token, tc.policy, renderNow)
			checkGolden(t, tc.name, marshalMessage(t, text, blocks))
		})
	}
}

func actionBlocks(blocks []slack.Block) []*slack.ActionBlock {
	var out []*slack.ActionBlock
	for _, b := range blocks {
		if a, ok := b.(*slack.ActionBlock); ok {
			out = append(out, a)
		}
	}
	return out
}

// checkButtons asserts the message's interactive contract (DESIGN.md).
func checkButtons(t *testing.T, blocks []slack.Block, token string) {
	t.Helper()
	actions := actionBlocks(blocks)
	if len(actions) != 1 {
		t.Fatalf("got %d actions blocks, want 1", len(actions))
	}
	a := actions[0]
	if a.BlockID != "decision" {
		t.Errorf("actions block_id = %q, want decision", a.BlockID)
	}
	if a.Elements == nil || len(a.Elements.ElementSet) != 2 {
		t.Fatalf("actions block has %v elements, want 2", a.Elements)
	}
	approve, ok1 := a.Elements.ElementSet[0].(*slack.ButtonBlockElement)
	reject, ok2 := a.Elements.ElementSet[1].(*slack.ButtonBlockElement)
	if !ok1 || !ok2 {
		t.Fatalf("elements are not buttons: %T %T", a.Elements.ElementSet[0], a.Elements.ElementSet[1])
	}
	if approve.ActionID != "approve" || approve.Style != slack.StylePrimary || approve.Value != token || approve.Text.Text != "Approve" {
		t.Errorf("approve button = %+v", approve)
	}
	if reject.ActionID != "reject" || reject.Style != slack.StyleDanger || reject.Value != token || reject.Text.Text != "Reject" {
		t.Errorf("reject button = %+v", reject)
	}
	c := approve.Confirm
	if c == nil {
		t.Fatal("approve button has no confirm dialog")
	}
	if c.Title.Text != "Approve deployment?" || c.Confirm.Text != "Approve" || c.Deny == nil || c.Deny.Text != "Cancel" {
		t.Errorf("confirm = title %q confirm %q deny %v", c.Title.Text, c.Confirm.Text, c.Deny)
	}
	if n := utf8.RuneCountInString(c.Text.Text); n == 0 || n > 300 {
		t.Errorf("confirm text has %d characters, want 1..300", n)
	}
}

func TestRenderContract(t *testing.T) {
	t.Parallel()
	for _, tc := range renderCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			task := tc.task()
			text, blocks := render(task, tc.token, tc.policy, renderNow)
			if strings.TrimSpace(text) == "" {
				t.Error("fallback text is empty")
			}
			switch {
			case tc.final:
				if a := actionBlocks(blocks); len(a) != 0 {
					t.Errorf("final message has %d actions blocks, want none", len(a))
				}
				if findBlock(blocks, blockIDOutcome) == nil {
					t.Error("final message has no outcome")
				}
			case tc.policy == nil:
				if a := actionBlocks(blocks); len(a) != 0 {
					t.Errorf("message without a policy has %d actions blocks, want none", len(a))
				}
				if !strings.Contains(blockText(findBlock(blocks, blockIDNoPolicy)), "nobody can decide it from Slack") {
					t.Error("message without a policy does not say that nobody can decide it from Slack")
				}
			default:
				checkButtons(t, blocks, tc.token)
			}
			checkLimits(t, text, blocks)
			checkRoundTrip(t, blocks)
		})
	}
}

func TestRenderPendingWithoutButtons(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		token string
		now   time.Time
	}{
		{"no token", "", renderNow},
		{"time ran out", "tok", fixtureTask().ExpiresAt},
		{"long after expiry", "tok", fixtureTask().ExpiresAt.Add(time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, blocks := render(fixtureTask(), tc.token, singlePolicy(), tc.now)
			if a := actionBlocks(blocks); len(a) != 0 {
				t.Errorf("got %d actions blocks, want none", len(a))
			}
		})
	}
	_, blocks := render(fixtureTask(), "tok", singlePolicy(), fixtureTask().ExpiresAt.Add(-time.Second))
	checkButtons(t, blocks, "tok")
}

func TestRenderHostileTextIsInert(t *testing.T) {
	t.Parallel()
	hostile := "<!channel> <https://evil|click> & stuff <@U0BAD> <!subteam^S0BAD>"
	task := fixtureTask()
	task.Description = hostile
	task.Project = hostile
	task.Release = hostile
	task.Environment = hostile
	task.Pipeline = hostile
	task.Stage = hostile
	task.RequestedBy = hostile
	task.TaskID = hostile
	task.Policy = hostile
	task.Reason = hostile
	task.Status = approvals.StatusRejected
	task.DecidedBy = &approvals.Person{ID: "<!channel>", Name: hostile}
	task.DecidedAt = &decidedAt
	task.Delivery = approvals.Delivery{State: approvals.DeliveryFailed, LastError: hostile}
	policy := &approvals.Policy{Name: hostile, Approvers: approvals.Approvers{Users: []string{"<!channel>"}, Groups: []string{"S1>|x"}, Emails: []string{hostile}}}

	for _, status := range []approvals.Status{approvals.StatusPending, approvals.StatusRejected, approvals.StatusApproved} {
		task.Status = status
		text, blocks := render(task, "tok", policy, renderNow)
		// Plain-text objects (header, buttons, confirm dialog) are not
		// parsed by Slack and may carry the text as it is; every mrkdwn
		// text must be inert.
		out := strings.Join(mrkdwnTexts(blocks), "\n")
		for _, bad := range []string{"<!channel>", "<https://evil", "<@U0BAD>", "<!subteam^S0BAD>", "& stuff", "<!subteam^S1"} {
			if strings.Contains(out, bad) {
				t.Errorf("status %s: mrkdwn contains %q:\n%s", status, bad, out)
			}
		}
		if h := blocks[0].(*slack.HeaderBlock); h.Text.Type != slack.PlainTextType {
			t.Errorf("header is %s, want plain_text", h.Text.Type)
		}
		if strings.Contains(text, "<") {
			t.Errorf("status %s: fallback text %q is not escaped", status, text)
		}
	}
}

func TestRenderSourceLink(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url, want, notWant string
	}{
		{"https://fd.example.com/tasks/8900", "<https://fd.example.com/tasks/8900|FlexDeploy task 8900>", ""},
		{"http://fd.internal:8000/a|b?x=1&y=2", "<http://fd.internal:8000/a%7Cb?x=1&amp;y=2|FlexDeploy task 8900>", "a|b"},
		{"javascript:alert(1)", "FlexDeploy task 8900", "javascript"},
		{"slack://open", "FlexDeploy task 8900", "slack:"},
		{"", "FlexDeploy task 8900", "<"},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			t.Parallel()
			task := fixtureTask()
			task.URL = tc.url
			_, blocks := render(task, "tok", singlePolicy(), renderNow)
			fields := findBlock(blocks, blockIDFields).(*slack.SectionBlock).Fields
			source := fields[len(fields)-1].Text
			if !strings.Contains(source, tc.want) {
				t.Errorf("source field %q does not contain %q", source, tc.want)
			}
			if tc.notWant != "" && strings.Contains(source, tc.notWant) {
				t.Errorf("source field %q contains %q", source, tc.notWant)
			}
		})
	}
}

func TestRenderFallbacks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		mutate     func(*approvals.Task)
		header     string
		wantFields []string
	}{
		{"everything", func(*approvals.Task) {}, "Deployment approval: shop v2.3 → PROD",
			[]string{"Environment", "Project", "Release", "Pipeline", "Stage", "Requested by", "Source"}},
		{"environment only", func(t *approvals.Task) {
			t.Project, t.Release, t.Pipeline, t.Stage, t.RequestedBy = "", "", "", "", ""
		}, "Deployment approval: PROD", []string{"Environment", "Source"}},
		{"task id only", func(t *approvals.Task) { t.Context = approvals.Context{} }, "Deployment approval: FlexDeploy task 8900", []string{"Source"}},
		{"nothing", func(t *approvals.Task) { t.Context, t.TaskID, t.Source = approvals.Context{}, "", "" }, "Deployment approval", nil},
		{"azure devops", func(t *approvals.Task) { t.Context, t.Source = approvals.Context{}, "azure-devops" }, "Deployment approval: Azure DevOps task 8900", []string{"Source"}},
		{"unregistered tool", func(t *approvals.Task) { t.Context, t.Source = approvals.Context{}, "jenkins" }, "Deployment approval: jenkins task 8900", []string{"Source"}},
		{"no source", func(t *approvals.Task) { t.Context, t.Source = approvals.Context{}, "" }, "Deployment approval: the deployment tool task 8900", []string{"Source"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			task := fixtureTask()
			tc.mutate(task)
			_, blocks := render(task, "tok", singlePolicy(), renderNow)
			if got := blocks[0].(*slack.HeaderBlock).Text.Text; got != tc.header {
				t.Errorf("header = %q, want %q", got, tc.header)
			}
			var labels []string
			if b := findBlock(blocks, blockIDFields); b != nil {
				for _, f := range b.(*slack.SectionBlock).Fields {
					labels = append(labels, strings.Trim(strings.SplitN(f.Text, "\n", 2)[0], "*"))
				}
			}
			if strings.Join(labels, ",") != strings.Join(tc.wantFields, ",") {
				t.Errorf("fields = %v, want %v", labels, tc.wantFields)
			}
			if task.Description == "" && findBlock(blocks, blockIDDescription) != nil {
				t.Error("empty description rendered")
			}
			checkLimits(t, "x", blocks)
		})
	}
}

func TestRenderDelivery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		delivery approvals.Delivery
		want     string
	}{
		{approvals.Delivery{State: approvals.DeliveryPending}, "Sending to FlexDeploy…"},
		{approvals.Delivery{State: approvals.DeliveryPending, Attempts: 3, LastError: "timeout"}, "Sending to FlexDeploy… retrying (attempt 3): timeout"},
		{approvals.Delivery{State: approvals.DeliveryDelivered, Attempts: 1}, "FlexDeploy accepted the decision"},
		{approvals.Delivery{State: approvals.DeliveryFailed, LastError: "HTTP 404"}, "⚠️ FlexDeploy refused: HTTP 404"},
		{approvals.Delivery{State: approvals.DeliveryNotNeeded}, ""},
	}
	for _, tc := range tests {
		t.Run(string(tc.delivery.State)+tc.delivery.LastError, func(t *testing.T) {
			t.Parallel()
			task := fixtureTask()
			task.Status = approvals.StatusApproved
			task.DecidedBy = &approvals.Person{ID: "U1"}
			task.Delivery = tc.delivery
			_, blocks := render(task, "", singlePolicy(), renderNow)
			if got := blockText(findBlock(blocks, blockIDDelivery)); got != tc.want {
				t.Errorf("delivery line = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestRenderToolName: the message names the tool it is given, and "the
// deployment tool" when it is given none.
func TestRenderToolName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ tool, want, capitalized string }{
		{"FlexDeploy", "FlexDeploy", "FlexDeploy"},
		{"", "the deployment tool", "The deployment tool"},
	} {
		pending := fixtureTask()
		pending.Context = approvals.Context{}
		_, blocks := RenderTask(pending, RenderOptions{Token: "tok", Policy: singlePolicy(), Tool: tc.tool, Now: renderNow})
		confirm := actionBlocks(blocks)[0].Elements.ElementSet[0].(*slack.ButtonBlockElement).Confirm.Text.Text
		if !strings.Contains(confirm, tc.capitalized+" will continue it.") {
			t.Errorf("tool %q: confirm text %q", tc.tool, confirm)
		}
		if h := blocks[0].(*slack.HeaderBlock).Text.Text; h != "Deployment approval: "+tc.want+" task 8900" {
			t.Errorf("tool %q: header %q", tc.tool, h)
		}
		text, blocks := RenderTask(pending, RenderOptions{Tool: tc.tool, Now: renderNow})
		if want := "Decide it in " + tc.want + "."; !strings.Contains(blockText(findBlock(blocks, blockIDNoPolicy)), want) {
			t.Errorf("tool %q: no-policy block does not say %q", tc.tool, want)
		}
		if want := "decide it in " + tc.want + ")"; !strings.Contains(text, want) {
			t.Errorf("tool %q: fallback %q does not say %q", tc.tool, text, want)
		}

		final := fixtureTask()
		final.Status = approvals.StatusExpired
		final.OnExpiry = approvals.ExpiryReject
		final.Delivery = approvals.Delivery{State: approvals.DeliveryDelivered}
		_, blocks = RenderTask(final, RenderOptions{Policy: singlePolicy(), Tool: tc.tool, Now: renderNow})
		if want := "rejected in " + tc.want + " automatically"; !strings.Contains(blockText(findBlock(blocks, blockIDOutcome)), want) {
			t.Errorf("tool %q: outcome does not say %q", tc.tool, want)
		}
		if got, want := blockText(findBlock(blocks, blockIDDelivery)), capitalize(tc.want)+" accepted the decision"; got != want {
			t.Errorf("tool %q: delivery %q, want %q", tc.tool, got, want)
		}
	}
}

func TestRenderLongFields(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("&<é>", 2000)
	task := fixtureTask()
	task.Description = long
	task.Project = long
	task.Release = long
	task.Environment = long
	task.Pipeline = long
	task.RequestedBy = long
	task.TaskID = long
	task.URL = "https://fd.example.com/" + strings.Repeat("a", 5000)
	policy := singlePolicy()
	policy.Name = long
	for i := 0; i < 300; i++ {
		policy.Approvers.Users = append(policy.Approvers.Users, "U0123456789")
	}
	for _, status := range []approvals.Status{approvals.StatusPending, approvals.StatusRejected, approvals.StatusExpired} {
		task.Status = status
		task.Reason = long
		task.DecidedBy = &approvals.Person{ID: "U1"}
		task.Delivery = approvals.Delivery{State: approvals.DeliveryFailed, LastError: long}
		text, blocks := render(task, "tok", policy, renderNow)
		checkLimits(t, text, blocks)
		if status == approvals.StatusPending {
			checkButtons(t, blocks, "tok")
		}
	}
}

func TestEscapeTrunc(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"a<b", 10, "a&lt;b"},
		{"&&&", 15, "&amp;&amp;&amp;"},
		{"&&&", 14, "&amp;&amp;…"},
		{"&&&", 6, "&amp;…"},
		{"&&&", 5, "…"},
		{"héllo wörld", 6, "héllo…"},
	}
	for _, tc := range tests {
		if got := escapeTrunc(tc.in, tc.max); got != tc.want {
			t.Errorf("escapeTrunc(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

// checkLimits asserts Slack's Block Kit limits and that no text ends in a
// broken entity.
func checkLimits(t *testing.T, text string, blocks []slack.Block) {
	t.Helper()
	limitPlain := func(what, s string, most int) {
		t.Helper()
		if n := utf8.RuneCountInString(s); n > most {
			t.Errorf("%s has %d characters, over Slack's %d", what, n, most)
		}
	}
	limit := func(what, s string, most int) {
		t.Helper()
		limitPlain(what, s, most)
		if i := strings.LastIndex(s, "&"); i >= 0 && !strings.Contains(s[i:], ";") {
			t.Errorf("%s ends in a broken entity: …%q", what, s[i:])
		}
	}
	limit("fallback text", text, 3000)
	if len(blocks) > 50 {
		t.Errorf("%d blocks, over Slack's 50", len(blocks))
	}
	for _, b := range blocks {
		switch b := b.(type) {
		case *slack.HeaderBlock:
			limitPlain("header", b.Text.Text, 150)
		case *slack.SectionBlock:
			if b.Text != nil {
				limit("section "+b.BlockID, b.Text.Text, 3000)
			}
			if len(b.Fields) > 10 {
				t.Errorf("section has %d fields, over 10", len(b.Fields))
			}
			for _, f := range b.Fields {
				limit("field", f.Text, 2000)
			}
		case *slack.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				if tb, ok := e.(*slack.TextBlockObject); ok {
					limit("context "+b.BlockID, tb.Text, 3000)
				}
			}
		case *slack.ActionBlock:
			for _, e := range b.Elements.ElementSet {
				btn := e.(*slack.ButtonBlockElement)
				limit("button value", btn.Value, 2000)
				if btn.Confirm != nil {
					limitPlain("confirm text", btn.Confirm.Text.Text, 300)
					limitPlain("confirm title", btn.Confirm.Title.Text, 100)
				}
			}
		}
	}
}

// checkRoundTrip asserts that slack-go reads the blocks back as it wrote
// them: an unknown block type would not survive.
func checkRoundTrip(t *testing.T, blocks []slack.Block) {
	t.Helper()
	raw, err := json.Marshal(slack.Blocks{BlockSet: blocks})
	if err != nil {
		t.Fatal(err)
	}
	var back slack.Blocks
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatalf("blocks do not parse back: %v", err)
	}
	again, err := json.Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, again) {
		t.Errorf("blocks changed on a round trip:\n%s\n%s", raw, again)
	}
}

func findBlock(blocks []slack.Block, id string) slack.Block {
	for _, b := range blocks {
		if b.ID() == id {
			return b
		}
	}
	return nil
}

// blockText returns the text of a section or a one-element context block.
func blockText(b slack.Block) string {
	switch b := b.(type) {
	case *slack.SectionBlock:
		if b.Text != nil {
			return b.Text.Text
		}
	case *slack.ContextBlock:
		var parts []string
		for _, e := range b.ContextElements.Elements {
			if tb, ok := e.(*slack.TextBlockObject); ok {
				parts = append(parts, tb.Text)
			}
		}
		return strings.Join(parts, " | ")
	}
	return ""
}

func mrkdwnTexts(blocks []slack.Block) []string {
	var out []string
	add := func(tb *slack.TextBlockObject) {
		if tb != nil && tb.Type == slack.MarkdownType {
			out = append(out, tb.Text)
		}
	}
	for _, b := range blocks {
		switch b := b.(type) {
		case *slack.SectionBlock:
			add(b.Text)
			for _, f := range b.Fields {
				add(f)
			}
		case *slack.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				if tb, ok := e.(*slack.TextBlockObject); ok {
					add(tb)
				}
			}
		}
	}
	return out
}
