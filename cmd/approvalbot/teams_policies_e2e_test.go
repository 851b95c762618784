package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/pagerdutytest"
	"github.com/approvalbot/approvalbot/internal/teamstest"
)

// Every policy rule, worked from Microsoft Teams against the fake Bot
// Framework: the card each rule shows, the invoke answer each click gets
// (a refreshed card, a card asking for an input, or a message to the
// clicker alone) and what FlexDeploy is told.

// teamsChannel is the Teams channel every task of these tests goes to
// (teams.channel, the default).
const teamsChannel = "19:approvals@thread.tacv2"

// The Teams people of these tests; Slack knows the same emails as UALICE,
// UBOB, UCAROL and UDEV.
var (
	tAlice = teamstest.Member{ID: "29:alice", Name: "Alice", AADObjectID: "aad-alice", Email: "alice@example.com"}
	tBob   = teamstest.Member{ID: "29:bob", Name: "Bob", AADObjectID: "aad-bob", Email: "bob@example.com"}
	tCarol = teamstest.Member{ID: "29:carol", Name: "Carol", AADObjectID: "aad-carol", Email: "carol@example.com"}
	tDev   = teamstest.Member{ID: "29:dev", Name: "Dev", AADObjectID: "aad-dev", Email: "dev@example.com"}
)

// teamsEnv is a bot posting to Slack and Teams.
type teamsEnv struct {
	*env
	tm *teamstest.Server
}

// newTeamsEnv is a bot with Teams configured (teams.channel set) and the
// people above known to both chats; the caller sets the policies and
// starts it.
func newTeamsEnv(t *testing.T) *teamsEnv {
	t.Helper()
	tm := teamstest.New(t)
	e := newEnv(t)
	for _, m := range []teamstest.Member{tAlice, tBob, tCarol, tDev} {
		tm.AddMember(m)
		e.slack.Emails[m.Email] = "U" + strings.ToUpper(m.Name)
	}
	e.extra = teamsYAML(tm)
	e.serverCfg = `{listen: "127.0.0.1:0", shutdown_timeout: 5s, public_url: "https://approvalbot.example.com"}`
	t.Cleanup(func() {
		if strings.Contains(e.logs.String(), teamstest.AppPassword) {
			t.Error("teams.app_password reached the logs")
		}
	})
	return &teamsEnv{env: e, tm: tm}
}

func teamsYAML(tm *teamstest.Server) string {
	return fmt.Sprintf("teams: {app_id: %q, app_password: %q, tenant_id: %q, service_url: %q, channel: %q, openid_metadata: %q, token_url: %q}\n",
		teamstest.AppID, teamstest.AppPassword, teamstest.Tenant, tm.ServiceURL(), teamsChannel, tm.OpenIDMetadata(), tm.TokenURL())
}

// cardTexts are every string of the card (texts, labels, titles, facts,
// URLs), one a line.
func cardTexts(card map[string]any) string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			out = append(out, x)
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(card)
	return strings.Join(out, "\n")
}

// cardActions are the card's actions, by type ("Action.Execute" …).
func cardActions(card map[string]any) []map[string]any {
	list, _ := card["actions"].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, a := range list {
		if m, ok := a.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// cardInput is the card's Input.Text with the id, nil when none.
func cardInput(card map[string]any, id string) map[string]any {
	body, _ := card["body"].([]any)
	for _, e := range body {
		if m, ok := e.(map[string]any); ok && m["type"] == "Input.Text" && m["id"] == id {
			return m
		}
	}
	return nil
}

// cardSource is the card's Source fact without its link: "FlexDeploy
// task 8920".
func cardSource(card map[string]any) string {
	body, _ := card["body"].([]any)
	for _, e := range body {
		m, _ := e.(map[string]any)
		facts, _ := m["facts"].([]any)
		for _, f := range facts {
			fact, _ := f.(map[string]any)
			if fact["title"] == "Source" {
				v, _ := fact["value"].(string)
				if link, _, ok := strings.Cut(strings.TrimPrefix(v, "["), "]("); ok {
					return link
				}
				return v
			}
		}
	}
	return ""
}

// teamsCard is the channel card of the FlexDeploy task as the connector
// holds it now; ok false while it is not posted.
func (te *teamsEnv) teamsCard(taskID string) (teamstest.Activity, bool) {
	for _, a := range te.tm.Activities() {
		if a.Conversation == teamsChannel && a.ReplyTo == "" && cardSource(a.Card()) == "FlexDeploy task "+taskID {
			return a, true
		}
	}
	return teamstest.Activity{}, false
}

// waitCard waits for the task's channel card to satisfy cond.
func (te *teamsEnv) waitCard(taskID, what string, cond func(card map[string]any) bool) teamstest.Activity {
	te.t.Helper()
	var found teamstest.Activity
	waitFor(te.t, taskID+": "+what, func() bool {
		a, ok := te.teamsCard(taskID)
		found = a
		return ok && cond(a.Card())
	})
	return found
}

// posted waits for the task's card with its actions and returns the
// token they carry.
func (te *teamsEnv) posted(taskID string) (map[string]any, string) {
	te.t.Helper()
	a := te.waitCard(taskID, "the card posted", func(map[string]any) bool { return true })
	token := actionToken(a.Card(), "approve")
	if token != "" {
		te.tokens = append(te.tokens, token)
	}
	return a.Card(), token
}

// answer is an invoke's HTTP answer.
type answer struct {
	status int
	body   map[string]any
}

// isMessage: a refusal, shown to the clicker only, containing text.
func (a answer) isMessage(text string) bool {
	v, _ := a.body["value"].(string)
	return a.status == http.StatusOK && a.body["statusCode"] == float64(200) &&
		a.body["type"] == "application/vnd.microsoft.activity.message" && strings.Contains(v, text)
}

// card is the card the answer holds, nil when it holds none.
func (a answer) card() map[string]any {
	if a.status != http.StatusOK || a.body["type"] != "application/vnd.microsoft.card.adaptive" {
		return nil
	}
	c, _ := a.body["value"].(map[string]any)
	return c
}

func (a answer) String() string {
	raw, _ := json.Marshal(a.body)
	return fmt.Sprintf("%d %s", a.status, raw)
}

// click is the member's click on an Action.Execute with the verb and the
// data (the token and the card's inputs), signed as the channel signs.
func (te *teamsEnv) click(m teamstest.Member, verb string, data map[string]string) answer {
	te.t.Helper()
	status, out := teamsClick(te.t, te.env, te.tm, m, teamsChannel, verb, data)
	return answer{status, out}
}

// post sends a raw activity with the Authorization header.
func (te *teamsEnv) post(body []byte, authorization string) answer {
	te.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, te.url+"/teams/messages", bytes.NewReader(body))
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		te.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return answer{res.StatusCode, out}
}

// undecided: the task is pending with no approvals, and FlexDeploy heard
// nothing of it.
func (te *teamsEnv) undecided(id, taskID, after string) {
	te.t.Helper()
	if _, task := te.task(id); status(task) != "pending" || approvalsOf(task) != 0 {
		te.t.Errorf("%s: task %v %v; want pending with no approval", after, task["status"], task["approvals"])
	}
	if d := decisionsFor(te.env, taskID); len(d) != 0 {
		te.t.Errorf("%s: FlexDeploy received %d decisions", after, len(d))
	}
}

func executeVerbs(card map[string]any) []string {
	var verbs []string
	for _, a := range cardActions(card) {
		if a["type"] == "Action.Execute" {
			v, _ := a["verb"].(string)
			verbs = append(verbs, v)
		}
	}
	return verbs
}

// TestTeamsRequireFrom: require_from names Slack user groups (and Slack
// ids), so a Teams person, named only by approvers.emails, counts toward
// required_approvals but fills no entry: two Teams approvals leave the
// SRE entry open, and the task waits for an SRE voting in Slack. The card
// shows the entry's count after each vote, and ends final without
// actions.
func TestTeamsRequireFrom(t *testing.T) {
	t.Parallel()
	te := newTeamsEnv(t)
	te.slack.Groups["SSRE"] = []string{"USRE"}
	te.policies = `
  - name: four-eyes
    match: {environment: "PROD"}
    channel: CPROD
    approvers: {emails: [alice@example.com, bob@example.com]}
    required_approvals: 2
    require_from:
      - {name: SRE, group: SSRE, count: 1}
`
	te.start()
	id := te.submit(`{"taskId":"rf-1","environment":"PROD"}`)
	card, token := te.posted("rf-1")
	if token == "" || !strings.Contains(cardTexts(card), "SRE 0/1") {
		t.Fatalf("the new card does not show the SRE entry, or has no actions:\n%s", cardTexts(card))
	}

	got := te.click(tAlice, "approve", map[string]string{"t": token})
	if c := got.card(); c == nil || !strings.Contains(cardTexts(c), "1 so far: Alice") || !strings.Contains(cardTexts(c), "SRE 0/1") || len(executeVerbs(c)) != 2 {
		t.Fatalf("Alice's approval answered %v", got)
	}
	got = te.click(tBob, "approve", map[string]string{"t": token})
	if c := got.card(); c == nil || !strings.Contains(cardTexts(c), "2 so far: Alice, Bob") || !strings.Contains(cardTexts(c), "SRE 0/1") {
		t.Fatalf("Bob's approval answered %v", got)
	}
	// Two approvals: the quorum is met, the SRE entry is not.
	if _, task := te.task(id); status(task) != "pending" || approvalsOf(task) != 2 {
		t.Fatalf("after two Teams approvals: %v %v; want pending with two", task["status"], task["approvals"])
	}
	te.waitCard("rf-1", "the channel card shows both votes", func(c map[string]any) bool {
		return strings.Contains(cardTexts(c), "2 so far: Alice, Bob") && strings.Contains(cardTexts(c), "SRE 0/1")
	})
	if d := decisionsFor(te.env, "rf-1"); len(d) != 0 {
		t.Fatalf("decided without an SRE: %+v", d)
	}

	// Someone not named at all is refused, privately.
	if got := te.click(tCarol, "approve", map[string]string{"t": token}); !got.isMessage("You are not an approver") {
		t.Errorf("Carol's click answered %v", got)
	}
	// An SRE in Slack fills the entry and decides.
	te.env.click(te.message("rf-1"), "approve", "USRE", "Sam")
	te.waitTask(id, "approved and delivered", delivered)
	d := decisionsFor(te.env, "rf-1")
	if len(d) != 1 || !strings.Contains(d[0].Path, "/approve/") {
		t.Fatalf("decisions %+v", d)
	}
	for _, who := range []string{"Alice (alice@example.com)", "Bob (bob@example.com)", "USRE"} {
		if !strings.Contains(d[0].Notes(), who) {
			t.Errorf("the notes %q do not name %s", d[0].Notes(), who)
		}
	}
	te.waitCard("rf-1", "the card final", func(c map[string]any) bool {
		return len(cardActions(c)) == 0 && strings.Contains(cardTexts(c), "Approved by")
	})
}

// TestTeamsFreezeAndWindows: inside a freeze, the card says approving is
// closed and rejecting still works; an approve click is refused with the
// reason and decides nothing; a reject click decides. Outside every
// window, likewise, with the next opening; inside it, approving decides.
func TestTeamsFreezeAndWindows(t *testing.T) {
	t.Parallel()
	from, to := freezeAroundNow()
	te := newTeamsEnv(t)
	clock := useClock(te.env, from.Add(time.Hour))
	te.policies = fmt.Sprintf(`
  - name: frozen
    match: {environment: "PROD"}
    channel: CPROD
    approvers: {emails: [alice@example.com, bob@example.com]}
    freezes:
      - {from: %s, to: %s, reason: Year-end freeze}
  - name: office
    match: {environment: "ams"}
    channel: CPROD
    approvers: {emails: [alice@example.com]}
    windows: [{days: [mon, tue, wed, thu, fri], from: "09:00", to: "17:00", timezone: Europe/Amsterdam}]
`, from.Format(time.RFC3339), to.Format(time.RFC3339))
	te.start()
	until := "Year-end freeze: frozen until " + to.Format("2006-01-02 15:04 UTC")

	id := te.submit(`{"taskId":"frz-1","environment":"PROD"}`)
	card, token := te.posted("frz-1")
	if text := cardTexts(card); !strings.Contains(text, until) || !strings.Contains(text, "rejecting still works") {
		t.Errorf("the card does not say approving is closed:\n%s", text)
	}
	if got := te.click(tAlice, "approve", map[string]string{"t": token}); !got.isMessage("Approving is closed now: " + until + ". Rejecting still works.") {
		t.Fatalf("an approval in the freeze answered %v", got)
	}
	te.undecided(id, "frz-1", "an approval in the freeze")
	got := te.click(tBob, "reject", map[string]string{"t": token, "reason": "not this year"})
	if c := got.card(); c == nil || len(cardActions(c)) != 0 || !strings.Contains(cardTexts(c), "Rejected by Bob") {
		t.Fatalf("a rejection in the freeze answered %v", got)
	}
	if task := te.waitTask(id, "rejected and delivered", delivered); status(task) != "rejected" || task["reason"] != "not this year" {
		t.Fatalf("task %v", task)
	}
	if d := decisionsFor(te.env, "frz-1"); len(d) != 1 || !strings.Contains(d[0].Path, "/reject/") || !strings.Contains(d[0].Notes(), "not this year") {
		t.Fatalf("decisions %+v", d)
	}

	// Windows: next year's first Monday of June, 08:59 in Amsterdam.
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	monday := time.Date(time.Now().Year()+1, time.June, 1, 0, 0, 0, 0, ams)
	for monday.Weekday() != time.Monday {
		monday = monday.AddDate(0, 0, 1)
	}
	clock.Set(at(monday, 8, 59))
	id = te.submit(`{"taskId":"win-1","environment":"ams"}`)
	card, token = te.posted("win-1")
	const opens = "outside the approval windows; opens Mon 09:00 Europe/Amsterdam"
	if text := cardTexts(card); !strings.Contains(text, "Outside the approval windows; opens Mon 09:00 Europe/Amsterdam") || !strings.Contains(text, "rejecting still works") {
		t.Errorf("the card does not say when approving opens:\n%s", text)
	}
	if got := te.click(tAlice, "approve", map[string]string{"t": token}); !got.isMessage("Approving is closed now: " + opens + ". Rejecting still works.") {
		t.Fatalf("an approval before the window answered %v", got)
	}
	te.undecided(id, "win-1", "an approval before the window")
	clock.Set(at(monday, 9, 0))
	if got := te.click(tAlice, "approve", map[string]string{"t": token}); got.card() == nil {
		t.Fatalf("an approval in the window answered %v", got)
	}
	if task := te.waitTask(id, "approved and delivered", delivered); status(task) != "approved" {
		t.Fatalf("task %v", task)
	}
}

// TestTeamsRejectReason: under require_reject_reason the card's input says
// so; a reject without a reason answers a card asking for it (nothing
// decided), whose submission with the reason rejects, and FlexDeploy gets
// the reason.
func TestTeamsRejectReason(t *testing.T) {
	t.Parallel()
	te := newTeamsEnv(t)
	te.policies = `
  - name: production
    match: {environment: "PROD"}
    channel: CPROD
    approvers: {emails: [alice@example.com]}
    require_reject_reason: true
`
	te.start()
	id := te.submit(`{"taskId":"why-1","environment":"PROD"}`)
	card, token := te.posted("why-1")
	if in := cardInput(card, "reason"); in == nil || in["label"] != "Reason (required to reject)" {
		t.Errorf("the card's reason input: %v", in)
	}

	got := te.click(tAlice, "reject", map[string]string{"t": token, "reason": "   "})
	prompt := got.card()
	if prompt == nil {
		t.Fatalf("a reject without a reason answered %v", got)
	}
	if in := cardInput(prompt, "reason"); in == nil || in["isRequired"] != true {
		t.Errorf("the prompt's reason input: %v", in)
	}
	if verbs := executeVerbs(prompt); !slices.Equal(verbs, []string{"reject"}) || actionToken(prompt, "reject") != token {
		t.Errorf("the prompt's actions: %v", cardActions(prompt))
	}
	te.undecided(id, "why-1", "a reject without a reason")

	// The prompt's submission: its inputs merged into the action's data.
	got = te.click(tAlice, "reject", map[string]string{"t": actionToken(prompt, "reject"), "reason": "integration tests are red"})
	if c := got.card(); c == nil || len(cardActions(c)) != 0 || !strings.Contains(cardTexts(c), "integration tests are red") {
		t.Fatalf("the reason's submission answered %v", got)
	}
	task := te.waitTask(id, "rejected and delivered", delivered)
	if status(task) != "rejected" || task["reason"] != "integration tests are red" {
		t.Fatalf("task %v", task)
	}
	if d := decisionsFor(te.env, "why-1"); len(d) != 1 || !strings.Contains(d[0].Path, "/reject/") ||
		!strings.HasPrefix(d[0].Notes(), "Rejected in Microsoft Teams by Alice") || !strings.HasSuffix(d[0].Notes(), ": integration tests are red") {
		t.Fatalf("decisions %+v", d)
	}
	te.waitCard("why-1", "the channel card final with the reason", func(c map[string]any) bool {
		return len(cardActions(c)) == 0 && strings.Contains(cardTexts(c), "Reason: integration tests are red")
	})
}

// TestTeamsConfirmEnvironment: approving answers a card asking for the
// environment's name; a wrong name decides nothing, the right one
// (whatever its case) approves.
func TestTeamsConfirmEnvironment(t *testing.T) {
	t.Parallel()
	te := newTeamsEnv(t)
	te.policies = `
  - name: production
    match: {environment: "PROD*"}
    channel: CPROD
    approvers: {emails: [alice@example.com]}
    confirm: type_environment
`
	te.start()
	id := te.submit(`{"taskId":"cnf-1","environment":"PROD-EU"}`)
	_, token := te.posted("cnf-1")
	got := te.click(tAlice, "approve", map[string]string{"t": token})
	prompt := got.card()
	if prompt == nil || cardInput(prompt, "confirm") == nil || !strings.Contains(cardTexts(prompt), "Type PROD-EU to approve.") ||
		!slices.Equal(executeVerbs(prompt), []string{"approve"}) || actionToken(prompt, "approve") != token {
		t.Fatalf("an approval answered %v; want the confirm card", got)
	}
	te.undecided(id, "cnf-1", "the click alone")

	if got := te.click(tAlice, "approve", map[string]string{"t": token, "confirm": "PROD-US"}); !got.isMessage("does not match; nothing was decided") {
		t.Errorf("a wrong environment answered %v", got)
	}
	te.undecided(id, "cnf-1", "a wrong environment")
	if got := te.click(tAlice, "approve", map[string]string{"t": token, "confirm": " prod-eu "}); got.card() == nil {
		t.Fatalf("the right environment answered %v", got)
	}
	if task := te.waitTask(id, "approved and delivered", delivered); status(task) != "approved" {
		t.Fatalf("task %v", task)
	}
	if d := decisionsFor(te.env, "cnf-1"); len(d) != 1 || !strings.Contains(d[0].Path, "/approve/") {
		t.Fatalf("decisions %+v", d)
	}
}

// TestTeamsBreakGlass: in a freeze, the requester, on call (break_glass by
// PagerDuty schedule, matched by email), approving their own task is
// answered a break-glass card asking for the reason; without a reason, or
// by someone who may not break glass, nothing is decided; with one the
// task is approved at once (of two approvals), FlexDeploy's notes say
// BREAK-GLASS, the card is marked, and the thread is told.
func TestTeamsBreakGlass(t *testing.T) {
	t.Parallel()
	from, to := freezeAroundNow()
	pd := pagerdutytest.New(testPDToken)
	t.Cleanup(pd.Close)
	pd.SetOnCall("PONCALL", "dev@example.com")
	te := newTeamsEnv(t)
	useClock(te.env, from.Add(time.Hour))
	te.policies = fmt.Sprintf(`
  - name: production
    match: {environment: "PROD*"}
    channel: CPROD
    approvers: {emails: [alice@example.com, dev@example.com]}
    required_approvals: 2
    freezes:
      - {from: %s, to: %s, reason: Year-end freeze}
    break_glass: {pagerduty: {schedules: [PONCALL]}}
`, from.Format(time.RFC3339), to.Format(time.RFC3339))
	te.extra += fmt.Sprintf("pagerduty: {api_url: %q, token: %q}\n", pd.URL(), testPDToken)
	te.start()

	id := te.submit(`{"taskId":"bg-1","environment":"PROD","requestedBy":"dev@example.com"}`)
	_, token := te.posted("bg-1")
	if got := te.click(tAlice, "approve", map[string]string{"t": token}); !got.isMessage("Approving is closed now: Year-end freeze") {
		t.Fatalf("Alice's approval in the freeze answered %v", got)
	}
	got := te.click(tDev, "approve", map[string]string{"t": token})
	prompt := got.card()
	if prompt == nil || !strings.Contains(cardTexts(prompt), "Break glass") || !strings.Contains(cardTexts(prompt), "Year-end freeze: frozen until") ||
		cardInput(prompt, "reason") == nil || !slices.Equal(executeVerbs(prompt), []string{"break_glass"}) || actionToken(prompt, "break_glass") != token {
		t.Fatalf("the requester's approval answered %v; want the break-glass card", got)
	}
	te.undecided(id, "bg-1", "the break-glass card")

	if got := te.click(tDev, "break_glass", map[string]string{"t": token, "reason": "  "}); !got.isMessage("A reason is required to break glass.") {
		t.Errorf("break glass without a reason answered %v", got)
	}
	if got := te.click(tAlice, "break_glass", map[string]string{"t": token, "reason": "I want to"}); !got.isMessage("not an approver") {
		t.Errorf("break glass by someone not on call answered %v", got)
	}
	te.undecided(id, "bg-1", "refused break-glass clicks")

	got = te.click(tDev, "break_glass", map[string]string{"t": token, "reason": "payments are down, hotfix"})
	if c := got.card(); c == nil || len(cardActions(c)) != 0 || !strings.Contains(cardTexts(c), "BREAK-GLASS") {
		t.Fatalf("break glass with a reason answered %v", got)
	}
	task := te.waitTask(id, "approved and delivered", delivered)
	if status(task) != "approved" || task["reason"] != "payments are down, hotfix" || approvalsOf(task) != 1 {
		t.Fatalf("task %v", task)
	}
	d := decisionsFor(te.env, "bg-1")
	if len(d) != 1 || !strings.Contains(d[0].Path, "/approve/") || !strings.HasPrefix(d[0].Notes(), "BREAK-GLASS: ") || !strings.Contains(d[0].Notes(), "payments are down, hotfix") {
		t.Fatalf("decisions %+v", d)
	}
	root := te.waitCard("bg-1", "the card marked", func(c map[string]any) bool {
		return len(cardActions(c)) == 0 && strings.Contains(cardTexts(c), "BREAK-GLASS") && strings.Contains(cardTexts(c), "payments are down, hotfix")
	})
	waitFor(t, "the break-glass notice in the card's thread", func() bool {
		for _, a := range te.tm.Activities() {
			text, _ := a.Body["text"].(string)
			if a.ReplyTo == root.ID && strings.Contains(text, "BREAK-GLASS") && strings.Contains(text, "Dev approved") &&
				strings.Contains(text, "payments are down, hotfix") && strings.Contains(text, "alice@example.com") {
				return true
			}
		}
		return false
	})
}

// TestTeamsSSORequired: a require_sso task's card opens the web page (an
// Action.OpenUrl carrying the task's token) and has no Action.Execute; a
// click sent from Teams all the same is refused, privately, and decides
// nothing.
func TestTeamsSSORequired(t *testing.T) {
	t.Parallel()
	te := newTeamsEnv(t)
	te.policies = `
  - name: production
    match: {environment: "PROD"}
    channel: CPROD
    approvers: {emails: [alice@example.com]}
    require_sso: true
`
	te.start()
	id := te.submit(`{"taskId":"sso-1","environment":"PROD"}`)
	card, _ := te.posted("sso-1")
	actions := cardActions(card)
	if len(actions) != 1 || actions[0]["type"] != "Action.OpenUrl" || len(executeVerbs(card)) != 0 {
		t.Fatalf("the card's actions: %v; want one Action.OpenUrl", actions)
	}
	link, _ := actions[0]["url"].(string)
	u, err := url.Parse(link)
	if err != nil || u.Scheme != "https" || u.Host != "approvalbot.example.com" || u.Path != "/approve/"+id || u.Query().Get("t") == "" {
		t.Fatalf("the card's link %q", link)
	}
	token := u.Query().Get("t")
	te.tokens = append(te.tokens, token)

	// The link's token is the task's: a click with it gets as far as the
	// SSO rule, which refuses it.
	for _, verb := range []string{"approve", "reject"} {
		if got := te.click(tAlice, verb, map[string]string{"t": token, "reason": "from Teams"}); !got.isMessage("decided on the web after signing in") {
			t.Errorf("a %s click from Teams answered %v", verb, got)
		}
	}
	te.undecided(id, "sso-1", "clicks from Teams")
}

// TestTeamsExpiry: a task that expires (on_expiry: reject) has its card
// replaced by a final one without actions; a click on the old card is
// refused and FlexDeploy is told once, by the expiry.
func TestTeamsExpiry(t *testing.T) {
	t.Parallel()
	te := newTeamsEnv(t)
	start := time.Now()
	clock := useClock(te.env, start)
	te.policies = `
  - name: production
    match: {environment: "PROD"}
    channel: CPROD
    approvers: {emails: [alice@example.com]}
    ttl: 1h
    on_expiry: reject
`
	te.start()
	id := te.submit(`{"taskId":"exp-1","environment":"PROD"}`)
	if _, token := te.posted("exp-1"); token == "" {
		t.Fatal("the card has no actions")
	}
	clock.Set(start.Add(61 * time.Minute))
	task := te.waitTask(id, "expired and delivered", delivered)
	if status(task) != "expired" {
		t.Fatalf("task %v", task)
	}
	final := te.waitCard("exp-1", "the card final", func(c map[string]any) bool {
		return len(cardActions(c)) == 0 && strings.Contains(cardTexts(c), "Expired with no decision")
	})
	if cardInput(final.Card(), "reason") != nil || !strings.Contains(cardTexts(final.Card()), "rejected in FlexDeploy automatically") {
		t.Errorf("the expired card:\n%s", cardTexts(final.Card()))
	}
	d := decisionsFor(te.env, "exp-1")
	if len(d) != 1 || !strings.Contains(d[0].Path, "/reject/") {
		t.Fatalf("decisions %+v", d)
	}
}

// TestTeamsDecidedElsewhere: a task decided in FlexDeploy itself is found
// by reconcile; its card becomes final (no actions, saying where it was
// decided), a click on the old card is refused, and FlexDeploy is told
// nothing.
func TestTeamsDecidedElsewhere(t *testing.T) {
	t.Parallel()
	te := newTeamsEnv(t)
	te.extra += "reconcile: {interval: 200ms}\n"
	te.policies = `
  - name: production
    match: {environment: "PROD"}
    channel: CPROD
    approvers: {emails: [alice@example.com]}
`
	te.start()
	id := te.submit(`{"taskId":"ui-1","environment":"PROD"}`)
	_, token := te.posted("ui-1")
	te.fd.SetStatus("ui-1", "APPROVED")
	te.waitTask(id, "approved in FlexDeploy", func(task map[string]any) bool { return status(task) == "approved" })
	te.waitCard("ui-1", "the card final", func(c map[string]any) bool {
		return len(cardActions(c)) == 0 && cardInput(c, "reason") == nil && strings.Contains(cardTexts(c), "✅ Approved") && strings.Contains(cardTexts(c), "FlexDeploy")
	})
	if got := te.click(tAlice, "approve", map[string]string{"t": token}); !got.isMessage("already been decided") {
		t.Errorf("a click on the old card answered %v", got)
	}
	if d := decisionsFor(te.env, "ui-1"); len(d) != 0 {
		t.Fatalf("%d decisions for a task FlexDeploy decided itself", len(d))
	}
}

// TestTeamsBadTokensDecideNothing: every activity whose token is forged,
// expired, not yet valid, for another bot, from another issuer, for
// another serviceUrl, signed by an unknown key or missing is answered
// 401 before anything of it is acted on (no member look-up), and one from
// another tenant 403; the task stays undecided. The same click with a
// good token then decides (the control).
func TestTeamsBadTokensDecideNothing(t *testing.T) {
	t.Parallel()
	te := newTeamsEnv(t)
	te.policies = `
  - name: production
    match: {environment: "PROD"}
    channel: CPROD
    approvers: {emails: [alice@example.com]}
`
	te.start()
	id := te.submit(`{"taskId":"tok-1","environment":"PROD"}`)
	_, token := te.posted("tok-1")
	body := te.tm.Click(tAlice, teamsChannel, "approve", map[string]string{"t": token})
	svc := te.tm.ServiceURL()
	forger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var foreign map[string]any
	if err := json.Unmarshal(body, &foreign); err != nil {
		t.Fatal(err)
	}
	foreign["conversation"].(map[string]any)["tenantId"] = "99999999-9999-4999-8999-999999999999"
	foreign["channelData"] = map[string]any{"tenant": map[string]any{"id": "99999999-9999-4999-8999-999999999999"}}
	foreignBody, _ := json.Marshal(foreign)

	cases := []struct {
		name, auth string
		body       []byte
		want       int
	}{
		{"no token", "", body, http.StatusUnauthorized},
		{"not a bearer token", strings.Replace(te.tm.ChannelToken(svc), "Bearer ", "Basic ", 1), body, http.StatusUnauthorized},
		{"forged: another key, the fake's kid", te.tm.Sign(teamstest.Claims{ServiceURL: svc, Key: forger}), body, http.StatusUnauthorized},
		{"an unknown kid", te.tm.Sign(teamstest.Claims{ServiceURL: svc, Key: forger, KeyID: "another-key"}), body, http.StatusUnauthorized},
		{"expired beyond the skew", te.tm.Sign(teamstest.Claims{ServiceURL: svc, IssuedAt: now.Add(-2 * time.Hour), NotBefore: now.Add(-2 * time.Hour), Expires: now.Add(-6 * time.Minute)}), body, http.StatusUnauthorized},
		{"not valid yet beyond the skew", te.tm.Sign(teamstest.Claims{ServiceURL: svc, NotBefore: now.Add(6 * time.Minute)}), body, http.StatusUnauthorized},
		{"another bot's", te.tm.Sign(teamstest.Claims{ServiceURL: svc, Audience: "33333333-3333-4333-8333-333333333333"}), body, http.StatusUnauthorized},
		{"another issuer", te.tm.Sign(teamstest.Claims{ServiceURL: svc, Issuer: "https://sts.windows.net/" + teamstest.Tenant + "/"}), body, http.StatusUnauthorized},
		{"another serviceUrl", te.tm.ChannelToken("https://smba.evil.example/teams/"), body, http.StatusUnauthorized},
		{"another tenant", te.tm.ChannelToken(svc), foreignBody, http.StatusForbidden},
	}
	for _, tc := range cases {
		got := te.post(tc.body, tc.auth)
		if got.status != tc.want || got.body["type"] != nil {
			t.Errorf("%s: answered %v; want %d and no invoke answer", tc.name, got, tc.want)
		}
	}
	for _, c := range te.tm.Calls() {
		if strings.Contains(c, "/members/") {
			t.Errorf("a refused activity was acted on: %s", c)
		}
	}
	te.undecided(id, "tok-1", "refused activities")
	if _, task := te.task(id); strings.Contains(fmt.Sprint(task["audit"]), "refused") {
		t.Errorf("a refused activity reached the task: %v", task["audit"])
	}

	// The control: the same click with the channel's token decides.
	if got := te.post(body, te.tm.ChannelToken(svc)); got.card() == nil {
		t.Fatalf("the signed click answered %v", got)
	}
	if task := te.waitTask(id, "approved and delivered", delivered); status(task) != "approved" {
		t.Fatalf("task %v", task)
	}
}

// TestTeamsFailedLookupRefuses: a click whose member look-up fails (the
// member unknown, the connector failing, the look-up naming another Entra
// user than the click, a member without an email) is refused, privately,
// and decides nothing; the failure is not cached, so once the look-up
// works the same person decides.
func TestTeamsFailedLookupRefuses(t *testing.T) {
	t.Parallel()
	te := newTeamsEnv(t)
	te.policies = `
  - name: production
    match: {environment: "PROD"}
    channel: CPROD
    approvers: {emails: [alice@example.com, erin@example.com]}
`
	te.start()
	id := te.submit(`{"taskId":"who-1","environment":"PROD"}`)
	_, token := te.posted("who-1")
	data := map[string]string{"t": token}

	// Erin is not a member of the conversation: the connector answers 404.
	erin := teamstest.Member{ID: "29:erin", Name: "Erin", AADObjectID: "aad-erin", Email: "erin@example.com"}
	if got := te.click(erin, "approve", data); !got.isMessage("try again") {
		t.Errorf("an unknown member's click answered %v", got)
	}
	// Mallory's member id, claiming Alice's Entra object id.
	te.tm.AddMember(teamstest.Member{ID: "29:mallory", Name: "Mallory", AADObjectID: "aad-mallory", Email: "mallory@example.com"})
	if got := te.click(teamstest.Member{ID: "29:mallory", Name: "Alice", AADObjectID: tAlice.AADObjectID}, "approve", data); !got.isMessage("try again") {
		t.Errorf("a click whose look-up names another user answered %v", got)
	}
	// A member without an email (a guest without a UPN).
	te.tm.AddMember(teamstest.Member{ID: "29:guest", Name: "Guest", AADObjectID: "aad-guest"})
	if got := te.click(teamstest.Member{ID: "29:guest", Name: "Guest", AADObjectID: "aad-guest"}, "approve", data); !got.isMessage("try again") {
		t.Errorf("a member without an email answered %v", got)
	}
	// The connector failing.
	te.tm.SetFault(func(r *http.Request) *teamstest.Fault {
		if strings.Contains(r.URL.Path, "/members/") {
			return &teamstest.Fault{Status: http.StatusInternalServerError}
		}
		return nil
	})
	if got := te.click(tAlice, "approve", data); !got.isMessage("try again") {
		t.Errorf("a click while the look-up fails answered %v", got)
	}
	te.undecided(id, "who-1", "clicks without a known email")

	// The look-up works again: the same person decides.
	te.tm.SetFault(nil)
	if got := te.click(tAlice, "approve", data); got.card() == nil {
		t.Fatalf("Alice's click answered %v", got)
	}
	task := te.waitTask(id, "approved and delivered", delivered)
	if by, _ := task["decidedBy"].(map[string]any); status(task) != "approved" || by["email"] != "alice@example.com" {
		t.Fatalf("task %v", task)
	}
}
