package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/slacktest"
)

// Where approvers already are, end to end on the fake Slack: the App Home
// (app_home_opened through POST /slack/events or Socket Mode), /approvals,
// direct messages to every approver, escalation, and require_sso's link.

// surfacePolicies DM production's approvers; QA's approver is someone
// else. Production needs two approvals: the first one's redraw of every
// copy shows that the copies are recorded with the task before the second
// decides it. (A decision that lands while the copies are being sent
// drops the job that records them; see the report of issue 15.)
const surfacePolicies = `
  - name: production
    match: {environment: "PROD*"}
    channel: CPROD
    approvers: {users: [UALICE, UBOB, UCAROL], groups: [SREL], emails: [lead@example.com]}
    required_approvals: 2
    notify: {dm: true}
  - name: qa
    match: {environment: "QA"}
    channel: CQA
    approvers: {users: [UQA]}
`

// productionPeople are everyone production names, resolved: its users, the
// member of SREL, and lead@example.com's user.
var productionPeople = []string{"UALICE", "UBOB", "UCAROL", "UGROUP", "ULEAD"}

// postEvent sends a signed Events API body (retry > 0: Slack's retry
// number) and returns the answer.
func (e *env) postEvent(body string, retry int) (int, string) {
	e.t.Helper()
	req, err := slacktest.EventRequest(e.url+"/slack/events", testSigningSecret, time.Now(), body, retry)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) (int, string) {
	e.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(out)
}

// openHome sends app_home_opened for the user's Home tab.
func (e *env) openHome(eventID, user string) {
	e.t.Helper()
	if status, out := e.postEvent(slacktest.AppHomeOpened(eventID, user, "home"), 0); status != http.StatusOK {
		e.t.Fatalf("app_home_opened: %d %s", status, out)
	}
}

// home waits for a publish of the user's App Home that satisfies cond and
// returns it; the tokens on it join those that must reach no log.
func (e *env) home(user, what string, cond func(slacktest.Call) bool) slacktest.Call {
	e.t.Helper()
	var found slacktest.Call
	waitFor(e.t, user+"'s App Home "+what, func() bool {
		homes := e.slack.HomesOf(user)
		if len(homes) == 0 || !cond(homes[len(homes)-1]) {
			return false
		}
		found = homes[len(homes)-1]
		return true
	})
	for _, b := range found.ViewButtons() {
		e.tokens = append(e.tokens, b.Value)
	}
	return found
}

// homeTasks are the task ids a home view has buttons for.
func homeTasks(view slacktest.Call) []string {
	var ids []string
	for _, b := range view.ViewButtons() {
		if id, ok := strings.CutPrefix(b.BlockID, "decision:"); ok && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// clickInHome sends the user's signed click on a button of their home.
func (e *env) clickInHome(view slacktest.Call, action, taskID, user, name string) int {
	e.t.Helper()
	click, err := slacktest.ClickInView(view, action, "decision:"+taskID, user, name)
	if err != nil {
		e.t.Fatal(err)
	}
	req, err := slacktest.InteractionRequest(e.url+"/slack/interactions", testSigningSecret, time.Now(), click.Payload())
	if err != nil {
		e.t.Fatal(err)
	}
	status, _ := e.do(req)
	return status
}

// postsTo are the messages (not thread replies) of the FlexDeploy task
// posted to channel, a user id for a direct message.
func postsTo(e *env, taskID, channel string) []slacktest.Call {
	var out []slacktest.Call
	for _, c := range e.slack.CallsTo("chat.postMessage") {
		if c.Form.Get("channel") == channel && c.Form.Get("thread_ts") == "" && strings.Contains(c.Text(), "FlexDeploy task "+taskID) {
			out = append(out, c)
		}
	}
	return out
}

// waitCopies waits for a direct message of the task to each person, with
// working buttons, and returns them by person.
func waitCopies(e *env, taskID string, people []string) map[string]slacktest.Call {
	e.t.Helper()
	copies := map[string]slacktest.Call{}
	waitFor(e.t, "direct messages of "+taskID+" to "+strings.Join(people, ", "), func() bool {
		for _, p := range people {
			if posts := postsTo(e, taskID, p); len(posts) > 0 {
				copies[p] = posts[0]
			}
		}
		return len(copies) == len(people)
	})
	for p, c := range copies {
		if b := c.Buttons(); len(b) != 2 || b[0].ActionID != "approve" || b[0].Value == "" {
			e.t.Errorf("the copy to %s has buttons %+v", p, b)
		}
		for _, b := range c.Buttons() {
			e.tokens = append(e.tokens, b.Value)
		}
	}
	return copies
}

// waitAllUpdated waits until the task's channel message and its copy to
// each person have been updated to show want, without buttons.
func waitAllUpdated(e *env, taskID string, channels []string, want string) {
	e.t.Helper()
	waitAllShow(e, taskID, channels, want, true)
}

// waitAllShow waits until the task's channel message and its copy to each
// person have been updated to show want, without buttons if final, with
// them otherwise.
func waitAllShow(e *env, taskID string, channels []string, want string, final bool) {
	e.t.Helper()
	waitFor(e.t, fmt.Sprintf("every copy of %s updated to %q", taskID, want), func() bool {
		done := map[string]bool{}
		for _, c := range updatesOf(e, taskID) {
			if strings.Contains(c.Text(), want) && (len(c.Buttons()) == 0) == final {
				done[c.Form.Get("channel")] = true
			}
		}
		for _, ch := range channels {
			if !done[ch] {
				return false
			}
		}
		return true
	})
}

// TestSurfacesURLVerification: Slack's check of the events request URL
// is answered with its challenge, and only when signed.
func TestSurfacesURLVerification(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start()
	status, out := e.postEvent(slacktest.URLVerification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"), 0)
	var answer map[string]string
	if status != http.StatusOK || json.Unmarshal([]byte(out), &answer) != nil || answer["challenge"] != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Errorf("url_verification: %d %s", status, out)
	}
	req, _ := http.NewRequest(http.MethodPost, e.url+"/slack/events", strings.NewReader(slacktest.URLVerification("x")))
	req.Header.Set("Content-Type", "application/json")
	if status, out := e.do(req); status != http.StatusUnauthorized || strings.Contains(out, `"challenge"`) {
		t.Errorf("unsigned url_verification: %d %s, want 401", status, out)
	}
}

// TestHomeQueueAndClicks: an approver's App Home lists exactly the pending
// tasks they may decide, across policies and channels, with buttons that
// work: a click there decides once, and the channel message and every
// direct-message copy are updated; a second click is refused in the home;
// the home follows the change. A non-approver's home lists nothing.
func TestHomeQueueAndClicks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.policies = surfacePolicies
	e.start()
	h1 := e.submit(`{"taskid":"home1","environment":"PROD","project":"shop","release":"v1"}`)
	e.submit(`{"taskid":"home2","environment":"PROD-EU","project":"shop","release":"v2"}`)
	q1 := e.submit(`{"taskid":"homeqa","environment":"QA"}`)
	msg := e.message("home1")
	e.message("home2")
	e.message("homeqa")
	waitCopies(e, "home1", productionPeople)

	e.openHome("EvHome1", "UALICE")
	view := e.home("UALICE", "listing her tasks", func(c slacktest.Call) bool { return len(homeTasks(c)) > 0 })
	if got := homeTasks(view); !slices.Equal(got, []string{"flexdeploy-home1", "flexdeploy-home2"}) {
		t.Fatalf("UALICE's home lists %q, want exactly home1 and home2", got)
	}
	if !strings.Contains(view.ViewText(), "Waiting for you (2)") {
		t.Errorf("the home's title: %s", view.ViewText())
	}
	e.openHome("EvHome2", "UQA")
	if got := homeTasks(e.home("UQA", "published", func(slacktest.Call) bool { return true })); !slices.Equal(got, []string{q1}) {
		t.Errorf("UQA's home lists %q, want only %s", got, q1)
	}
	e.openHome("EvHome3", "UNOBODY")
	nobody := e.home("UNOBODY", "published", func(slacktest.Call) bool { return true })
	if n := len(nobody.ViewButtons()); n != 0 || !strings.Contains(nobody.ViewText(), "Nothing waits for your decision") {
		t.Errorf("a non-approver's home has %d buttons: %s", n, nobody.ViewText())
	}

	// Bob's approval on the channel message redraws every copy, and
	// Alice's home with it.
	if code := e.click(msg, "approve", "UBOB", "Bob"); code != http.StatusOK {
		t.Fatalf("Bob's click: %d", code)
	}
	waitAllShow(e, "home1", append([]string{"CPROD"}, productionPeople...), "1 of 2 approvals", false)
	view = e.home("UALICE", "showing Bob's vote", func(c slacktest.Call) bool {
		return strings.Contains(c.ViewText(), "1 of 2 approvals") && len(homeTasks(c)) == 2
	})

	if status := e.clickInHome(view, "approve", h1, "UALICE", "Alice"); status != http.StatusOK {
		t.Fatalf("click in the home: %d", status)
	}
	e.waitTask(h1, "approved and delivered", func(task map[string]any) bool { return task["status"] == "approved" && delivered(task) })
	waitAllUpdated(e, "home1", append([]string{"CPROD"}, productionPeople...), "Approved")
	if n := len(decisionsFor(e, "home1")); n != 1 {
		t.Errorf("FlexDeploy received %d decisions, want 1", n)
	}

	// The same button again: refused, in the home, deciding nothing.
	if status := e.clickInHome(view, "approve", h1, "UALICE", "Alice"); status != http.StatusOK {
		t.Fatalf("second click: %d", status)
	}
	e.home("UALICE", "saying the task was decided", func(c slacktest.Call) bool {
		return strings.Contains(c.ViewText(), "already been decided")
	})
	// The home follows the decision: home1 is decided, home2 still waits.
	after := e.home("UALICE", "without home1", func(c slacktest.Call) bool {
		return slices.Equal(homeTasks(c), []string{"flexdeploy-home2"}) && strings.Contains(c.ViewText(), "Recently decided")
	})
	if !strings.Contains(after.ViewText(), `"block_id":"recent:flexdeploy-home1"`) {
		t.Errorf("home1 is not among the recently decided: %s", after.ViewText())
	}
	if n := len(decisionsFor(e, "home1")); n != 1 {
		t.Errorf("FlexDeploy received %d decisions after a second click, want 1", n)
	}
}

// TestEventsRetryHandledOnce: Slack's retries of an event (the same
// event_id, with X-Slack-Retry-Num) are answered 200 and dropped.
func TestEventsRetryHandledOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.policies = surfacePolicies
	e.start()
	body := slacktest.AppHomeOpened("EvRetry1", "UCAROL", "home")
	for retry := range 3 {
		if status, _ := e.postEvent(body, retry); status != http.StatusOK {
			t.Fatalf("delivery %d: %d", retry, status)
		}
	}
	e.home("UCAROL", "published", func(slacktest.Call) bool { return true })
	// Each retry is dropped before the answer, and says so in the log.
	dropped := 0
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, `"event_id":"EvRetry1"`) && strings.Contains(line, "slack: event handled already; dropped") {
			dropped++
		}
	}
	if n := dropped; n != 2 {
		t.Errorf("%d retries dropped, want 2:\n%s", n, e.logs.String())
	}
	// A new event is acted on.
	e.openHome("EvRetry2", "UBOB")
	e.home("UBOB", "published", func(slacktest.Call) bool { return true })
	if n := len(e.slack.HomesOf("UCAROL")); n != 1 {
		t.Errorf("UCAROL's home published %d times, want 1", n)
	}
}

// TestCommandApprovals: /approvals answers, signed, with the caller's
// pending tasks and their buttons (which decide); /approvals ID with one
// task's status and audit; unsigned or stale, 401.
func TestCommandApprovals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.policies = surfacePolicies
	e.start()
	id := e.submit(`{"taskid":"cmd1","environment":"PROD"}`)
	qa := e.submit(`{"taskid":"cmdqa","environment":"QA"}`)
	e.message("cmd1")
	e.message("cmdqa")

	ask := func(secret string, at time.Time, user, text string) (int, map[string]any) {
		req, err := slacktest.CommandRequest(e.url+"/slack/commands", secret, at, slacktest.SlashCommand{Command: "/approvals", Text: text, UserID: user, UserName: "x", ChannelID: "D" + user})
		if err != nil {
			t.Fatal(err)
		}
		status, out := e.do(req)
		var reply map[string]any
		_ = json.Unmarshal([]byte(out), &reply)
		return status, reply
	}
	status, reply := ask(testSigningSecret, time.Now(), "UBOB", "")
	if status != http.StatusOK || reply["response_type"] != "ephemeral" || reply["text"] != "1 deployment waits for your decision." {
		t.Fatalf("/approvals: %d %v", status, reply)
	}
	buttons := slacktest.Call{JSON: reply}.Buttons()
	if len(buttons) != 2 || buttons[0].BlockID != "decision:"+id || buttons[0].Value == "" {
		t.Fatalf("/approvals buttons %+v", buttons)
	}
	e.tokens = append(e.tokens, buttons[0].Value)
	if _, reply := ask(testSigningSecret, time.Now(), "UNOBODY", ""); reply["text"] != "Nothing waits for your decision." {
		t.Errorf("a non-approver's /approvals: %v", reply["text"])
	}
	for name, at := range map[string]time.Time{"now": time.Now(), "stale": time.Now().Add(-6 * time.Minute)} {
		secret := testSigningSecret
		if name == "now" {
			secret = "not-the-signing-secret"
		}
		if status, _ := ask(secret, at, "UBOB", ""); status != http.StatusUnauthorized {
			t.Errorf("%s, badly signed: %d, want 401", name, status)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, e.url+"/slack/commands", strings.NewReader(slacktest.SlashCommand{Command: "/approvals", UserID: "UBOB"}.Form().Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if status, _ := e.do(req); status != http.StatusUnauthorized {
		t.Errorf("unsigned: %d, want 401", status)
	}

	// The list's button decides like the message's.
	_, reply = ask(testSigningSecret, time.Now(), "UQA", "")
	qaButtons := slacktest.Call{JSON: reply}.Buttons()
	if len(qaButtons) != 2 || qaButtons[0].BlockID != "decision:"+qa {
		t.Fatalf("UQA's /approvals buttons %+v", qaButtons)
	}
	e.tokens = append(e.tokens, qaButtons[0].Value)
	click := slacktest.Click{ActionID: "approve", Value: qaButtons[0].Value, UserID: "UQA", UserName: "Quinn", Channel: "DUQA", MessageTS: "1700000000.999999"}
	creq, _ := slacktest.InteractionRequest(e.url+"/slack/interactions", testSigningSecret, time.Now(), click.Payload())
	if status, _ := e.do(creq); status != http.StatusOK {
		t.Fatalf("click in the list: %d", status)
	}
	e.waitTask(qa, "approved", func(task map[string]any) bool { return task["status"] == "approved" && delivered(task) })

	// /approvals ID: the status and the audit, by the tool's own id too.
	for _, arg := range []string{qa, "cmdqa"} {
		_, reply := ask(testSigningSecret, time.Now(), "UQA", arg)
		raw, _ := json.Marshal(reply)
		text := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">").Replace(string(raw))
		for _, want := range []string{"Approved", "Audit trail", "received", "approved by <@UQA>", "delivered"} {
			if !strings.Contains(text, want) {
				t.Errorf("/approvals %s lacks %q: %s", arg, want, text)
			}
		}
	}
	// A pending task's status carries its buttons for who may decide it.
	_, reply = ask(testSigningSecret, time.Now(), "UBOB", id)
	if b := (slacktest.Call{JSON: reply}).Buttons(); len(b) != 2 || !strings.Contains(fmt.Sprint(reply["text"]), "Deployment approval needed") {
		t.Errorf("/approvals %s for an approver: %v, buttons %+v", id, reply["text"], b)
	}
	for _, pair := range [][2]string{{"UQA", id}, {"UBOB", qa}} {
		if _, reply := ask(testSigningSecret, time.Now(), pair[0], pair[1]); !strings.HasPrefix(fmt.Sprint(reply["text"]), "No task") {
			t.Errorf("%s, whom the policy does not name, sees %s: %v", pair[0], pair[1], reply["text"])
		}
	}
	if _, reply := ask(testSigningSecret, time.Now(), "UBOB", "help"); !strings.Contains(fmt.Sprint(reply["text"]), "/approvals ID") {
		t.Errorf("/approvals help: %v", reply["text"])
	}
}

// TestDMCopiesEveryApprover: notify: {dm: true} sends every named approver
// (users, the group's member, the email's user) the message with buttons;
// a click on a copy decides, and every copy and the channel message show
// the outcome and the receipt.
func TestDMCopiesEveryApprover(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.policies = surfacePolicies
	e.extra = "receipts: {signing_key: " + testReceiptSeed + "}\n"
	e.start()
	id := e.submit(`{"taskid":"dm1","environment":"PROD","project":"shop","release":"v3"}`)
	e.message("dm1")
	copies := waitCopies(e, "dm1", productionPeople)
	for _, p := range []string{"UQA", "UNOBODY"} {
		if n := len(postsTo(e, "dm1", p)); n != 0 {
			t.Errorf("%s, whom production does not name, was sent %d copies", p, n)
		}
	}
	if code := e.click(copies["UGROUP"], "approve", "UGROUP", "Grace"); code != http.StatusOK {
		t.Fatalf("click on a copy: %d", code)
	}
	waitAllShow(e, "dm1", append([]string{"CPROD"}, productionPeople...), "1 of 2 approvals", false)
	if code := e.click(copies["ULEAD"], "approve", "ULEAD", "Lee"); code != http.StatusOK {
		t.Fatalf("click on a copy: %d", code)
	}
	e.waitTask(id, "approved", func(task map[string]any) bool { return task["status"] == "approved" && delivered(task) })
	_, _, receipt := e.api("GET", "/v1/tasks/"+id+"/receipt", "")
	head, _ := receipt["head"].(string)
	if len(head) < 12 {
		t.Fatalf("receipt %v", receipt)
	}
	waitAllUpdated(e, "dm1", append([]string{"CPROD"}, productionPeople...), "Receipt "+head[:12])
	for _, p := range productionPeople {
		if n := len(postsTo(e, "dm1", p)); n != 1 {
			t.Errorf("%s was sent %d copies, want 1", p, n)
		}
	}
}

// TestEscalationAfterRestart: a task still pending after escalate.after
// escalates although the bot restarted in between: the escalation's
// approver is mentioned in the thread and sent a copy, may decide from
// then on (not before), and the audit records it.
func TestEscalationAfterRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// The domain's clock runs with the wall clock, and jumps ahead when
	// the test says (a frozen clock would never see a retry come due).
	var ahead atomic.Int64
	e.clock = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	e.policies = `
  - name: production
    match: {environment: "PROD*"}
    channel: CPROD
    approvers: {users: [UALICE, UBOB]}
    required_approvals: 2
    notify: {dm: true}
    escalate: {after: 30m, to: {users: [UBOSS]}}
`
	e.start()
	id := e.submit(`{"taskid":"esc1","environment":"PROD"}`)
	msg := e.message("esc1")
	waitCopies(e, "esc1", []string{"UALICE", "UBOB"})
	if code := e.click(msg, "approve", "UBOSS", "Boss"); code != http.StatusOK {
		t.Fatalf("click: %d", code)
	}
	waitFor(t, "UBOSS refused before the escalation", func() bool { return ephemeralTo(e, "UBOSS", "not an approver") })

	e.restart()
	ahead.Store(int64(31 * time.Minute))
	waitFor(t, "the escalation notice in the thread", func() bool {
		for _, c := range e.slack.CallsTo("chat.postMessage") {
			if c.Form.Get("thread_ts") != "" && c.Form.Get("channel") == "CPROD" && strings.Contains(c.Form.Get("text"), "escalated") && strings.Contains(c.Form.Get("text"), "<@UBOSS>") {
				return true
			}
		}
		return false
	})
	copies := waitCopies(e, "esc1", []string{"UBOSS"})
	task := e.waitTask(id, "escalated in the audit", func(task map[string]any) bool {
		audit, _ := task["audit"].([]any)
		for _, a := range audit {
			if m, _ := a.(map[string]any); m["event"] == "escalated" {
				return true
			}
		}
		return false
	})
	if task["status"] != "pending" {
		t.Fatalf("status %v after the escalation", task["status"])
	}
	// Alice's approval redraws every copy, the escalation's too.
	if code := e.click(msg, "approve", "UALICE", "Alice"); code != http.StatusOK {
		t.Fatalf("click: %d", code)
	}
	waitAllShow(e, "esc1", []string{"CPROD", "UALICE", "UBOB", "UBOSS"}, "1 of 2 approvals", false)
	if code := e.click(copies["UBOSS"], "approve", "UBOSS", "Boss"); code != http.StatusOK {
		t.Fatalf("click: %d", code)
	}
	e.waitTask(id, "approved by the escalation's approver", func(task map[string]any) bool {
		by, _ := task["decidedBy"].(map[string]any)
		return task["status"] == "approved" && by["user"] == "UBOSS"
	})
	waitAllUpdated(e, "esc1", []string{"CPROD", "UALICE", "UBOB", "UBOSS"}, "Approved")
}

// TestSSOReviewLinkOnSurfaces: a require_sso task's message, copies and
// home show a "Review and sign in" link to its web page instead of the
// deciding buttons; Slack's report of a click on it decides nothing.
func TestSSOReviewLinkOnSurfaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.serverCfg = `{listen: "127.0.0.1:0", shutdown_timeout: 5s, public_url: "https://approvalbot.example.com"}`
	e.policies = `
  - name: production
    match: {environment: "PROD*"}
    channel: CPROD
    approvers: {users: [UALICE]}
    notify: {dm: true}
    require_sso: true
`
	e.start()
	id := e.submit(`{"taskid":"sso-slack","environment":"PROD"}`)
	msg := e.message("sso-slack")
	for _, m := range []slacktest.Call{msg, waitCopies2(e, "sso-slack", "UALICE")} {
		b := m.Buttons()
		if len(b) != 1 || b[0].ActionID != "review" || b[0].Value != "" ||
			!strings.HasPrefix(b[0].URL, "https://approvalbot.example.com/approve/"+id+"?t=") {
			t.Fatalf("buttons %+v, want one review link", b)
		}
		e.tokens = append(e.tokens, strings.TrimPrefix(b[0].URL, "https://approvalbot.example.com/approve/"+id+"?t="))
	}
	e.openHome("EvSSO", "UALICE")
	view := e.home("UALICE", "with the review link", func(c slacktest.Call) bool { return len(c.ViewButtons()) > 0 })
	if b := view.ViewButtons(); len(b) != 1 || b[0].ActionID != "review" || b[0].URL != msg.Buttons()[0].URL {
		t.Errorf("home buttons %+v, want the same review link", b)
	}
	click := slacktest.Click{ActionID: "review", UserID: "UALICE", UserName: "Alice", Channel: "CPROD", MessageTS: "1700000000.000001"}
	req, _ := slacktest.InteractionRequest(e.url+"/slack/interactions", testSigningSecret, time.Now(), click.Payload())
	if status, out := e.do(req); status != http.StatusOK || out != "" {
		t.Errorf("the link's click: %d %q, want 200 and nothing", status, out)
	}
	if _, task := e.task(id); task["status"] != "pending" || len(task["approvals"].([]any)) != 0 {
		t.Errorf("the link's click changed the task: %v", task)
	}
}

// waitCopies2 waits for the task's copy to one person, whatever buttons it
// has.
func waitCopies2(e *env, taskID, person string) slacktest.Call {
	e.t.Helper()
	var found slacktest.Call
	waitFor(e.t, "a copy of "+taskID+" to "+person, func() bool {
		posts := postsTo(e, taskID, person)
		if len(posts) > 0 {
			found = posts[0]
		}
		return len(posts) > 0
	})
	return found
}

// TestSurfacesOverSocketMode: the same event and command arrive over
// Socket Mode, with no public endpoint: the home is published, and the
// command answered in the acknowledgement.
func TestSurfacesOverSocketMode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.policies = surfacePolicies
	e.slack.EnableSocketMode(testAppToken)
	e.tokens = append(e.tokens, testAppToken)
	e.slackCfg = fmt.Sprintf("{mode: socket, bot_token: %q, app_token: %q, api_url: %q, channel: CDEFAULT}", testBotToken, testAppToken, e.slack.APIURL())
	e.start()
	waitFor(t, "a Socket Mode connection", e.slack.SocketConnected)
	id := e.submit(`{"taskid":"sock1","environment":"PROD"}`)
	e.message("sock1")
	if _, err := e.slack.SendEnvelope("env-home", "events_api", slacktest.AppHomeOpened("EvSock", "UALICE", "home"), false, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	view := e.home("UALICE", "listing sock1", func(c slacktest.Call) bool { return len(homeTasks(c)) > 0 })
	if got := homeTasks(view); !slices.Equal(got, []string{id}) {
		t.Errorf("home lists %q", got)
	}
	cmd := slacktest.SlashCommand{Command: "/approvals", UserID: "UALICE", UserName: "alice", ChannelID: "DUALICE"}
	ack, err := e.slack.SendEnvelope("env-cmd", "slash_commands", cmd.Payload(), true, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var reply map[string]any
	if err := json.Unmarshal(ack, &reply); err != nil || reply["text"] != "1 deployment waits for your decision." {
		t.Fatalf("the command's ack: %s (%v)", ack, err)
	}
	for _, b := range (slacktest.Call{JSON: reply}).Buttons() {
		e.tokens = append(e.tokens, b.Value)
	}
	// Nothing to verify HTTP requests with in Socket Mode.
	req, _ := slacktest.EventRequest(e.url+"/slack/events", "", time.Now(), slacktest.AppHomeOpened("EvSock2", "UALICE", "home"), 0)
	if status, _ := e.do(req); status != http.StatusServiceUnavailable {
		t.Errorf("HTTP event in socket mode without a signing secret: %d, want 503", status)
	}
}
