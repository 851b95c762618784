package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/pagerdutytest"
	"github.com/approvalbot/approvalbot/internal/slacktest"
)

// A production hotfix goes to the hotfix policy's channel by its CEL
// condition; a production release that is no hotfix, to the production
// policy's; and the hotfix policy's approvers decide its task.
func TestE2EHotfixConditionRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.policies = `
  - name: hotfix
    match: {environment: "PROD*", when: 'task.release.startsWith("hotfix/") && task.project in ["shop", "pay"]'}
    channel: CHOTFIX
    approvers: {users: [USRELEAD]}
` + defaultPolicies
	e.start()
	e.submit(`{"taskId":"cel-hot","environment":"PROD-EU","project":"shop","release":"hotfix/2.3.1"}`)
	e.submit(`{"taskId":"cel-rel","environment":"PROD-EU","project":"shop","release":"2.4.0"}`)
	hot, rel := e.message("cel-hot"), e.message("cel-rel")
	if got := hot.Form.Get("channel"); got != "CHOTFIX" {
		t.Errorf("hotfix posted to %q, want CHOTFIX", got)
	}
	if got := rel.Form.Get("channel"); got != "CPROD" {
		t.Errorf("release posted to %q, want CPROD", got)
	}
	// Alice approves production releases, not hotfixes: refused.
	if code := e.click(hot, "approve", "UALICE", "Alice"); code != http.StatusOK {
		t.Fatalf("click: %d", code)
	}
	if code := e.click(hot, "approve", "USRELEAD", "Sam"); code != http.StatusOK {
		t.Fatalf("click: %d", code)
	}
	task := e.waitTask("flexdeploy-cel-hot", "hotfix approved by the SRE lead", func(task map[string]any) bool {
		return task["status"] == "approved"
	})
	waitFor(t, "the hotfix delivered", func() bool { return len(e.fd.Decisions()) == 1 })
	if notes := e.fd.Decisions()[0].Notes(); task["policy"] != "hotfix" || !strings.HasPrefix(notes, "Approved in Slack by Sam (USRELEAD)") {
		t.Fatalf("task %v, notes %q", task, notes)
	}
}

// config check compiles every condition: an invalid one fails it, naming
// the policy and the place in the expression.
func TestConfigCheckInvalidCondition(t *testing.T) {
	t.Parallel()
	bad := writeConfig(t, `
tokens: {signing_keys: [{id: k1, secret: "`+testSigningKey+`"}]}
policies:
  - name: hotfix
    match: {when: 'task.environment == "PROD" && task.release.startsWith(1)'}
    approvers: {users: [U1]}
`)
	_, errOut, err := runCLI(t, "config", "check", "--config", bad)
	if !errors.Is(err, errReported) {
		t.Fatalf("config check of an invalid condition: %v\n%s", err, errOut)
	}
	want := `policies[0].match.when: policy "hotfix": line 1, column 54: found no matching overload for 'startsWith'`
	if !strings.Contains(errOut, want) {
		t.Fatalf("config check does not say %q:\n%s", want, errOut)
	}
}

const testPDToken = "e2e-pagerduty-token-0123456789"

// onCallEnv is a bot whose production approvers are Alice and whoever is
// on call on PSCHED1, asked of a fake PagerDuty.
func onCallEnv(t *testing.T) (*env, *pagerdutytest.Server) {
	t.Helper()
	pd := pagerdutytest.New(testPDToken)
	t.Cleanup(pd.Close)
	pd.SetOnCall("PSCHED1", "oncall@example.com")
	e := newEnv(t)
	e.slack.Emails["oncall@example.com"] = "UONCALL"
	e.slack.Emails["off@example.com"] = "UOFF"
	e.policies = `
  - name: production
    match: {environment: "PROD*"}
    channel: CPROD
    approvers: {users: [UALICE], pagerduty: {schedules: [PSCHED1]}}
`
	e.extra = fmt.Sprintf("pagerduty: {api_url: %q, token: %q}\n", pd.URL(), testPDToken)
	t.Cleanup(func() {
		if strings.Contains(e.logs.String(), testPDToken) {
			t.Error("the PagerDuty token reached the logs")
		}
		if m := pd.Mistakes(); len(m) > 0 {
			t.Errorf("PagerDuty would have refused: %v", m)
		}
	})
	return e, pd
}

// The person on call approves; someone off call is refused.
func TestE2EOnCallApproves(t *testing.T) {
	t.Parallel()
	e, pd := onCallEnv(t)
	e.start()
	e.submit(`{"taskId":"oc-1","environment":"PROD"}`)
	msg := e.message("oc-1")
	e.click(msg, "approve", "UOFF", "Olaf")
	waitFor(t, "off call refused", func() bool { return ephemeralTo(e, "UOFF", "You are not an approver") })
	e.click(msg, "approve", "UONCALL", "Oona")
	e.waitTask("flexdeploy-oc-1", "approved by the person on call", func(task map[string]any) bool {
		return task["status"] == "approved" && task["decidedBy"].(map[string]any)["user"] == "UONCALL"
	})
	if pd.Calls() != 1 {
		t.Errorf("PagerDuty asked %d times, want 1 (answers are cached)", pd.Calls())
	}
}

// PagerDuty failing refuses the click, with a clear text; nothing is
// decided, and the named approver still decides.
func TestE2EOnCallFailureRefuses(t *testing.T) {
	t.Parallel()
	e, pd := onCallEnv(t)
	pd.SetFailure(http.StatusTooManyRequests)
	e.start()
	e.submit(`{"taskId":"oc-2","environment":"PROD"}`)
	msg := e.message("oc-2")
	e.click(msg, "approve", "UONCALL", "Oona")
	waitFor(t, "refused: could not check who is on call", func() bool {
		return ephemeralTo(e, "UONCALL", "Could not check who is on call; try again in a minute")
	})
	if _, task := e.task("flexdeploy-oc-2"); task["status"] != "pending" {
		t.Fatalf("status %v after a failed look-up", task["status"])
	}
	e.click(msg, "approve", "UALICE", "Alice")
	e.waitTask("flexdeploy-oc-2", "approved by the named approver", func(task map[string]any) bool { return task["status"] == "approved" })
}

// command sends a signed /approvals with the text as the user and returns
// the reply's text.
func (e *env) command(user, name, text string) string {
	e.t.Helper()
	req, err := slacktest.CommandRequest(e.url+"/slack/commands", testSigningSecret, time.Now(), slacktest.SlashCommand{Command: "/approvals", Text: text, UserID: user, UserName: name, ChannelID: "D" + user})
	if err != nil {
		e.t.Fatal(err)
	}
	status, out := e.do(req)
	var reply map[string]any
	_ = json.Unmarshal([]byte(out), &reply)
	if status != http.StatusOK {
		e.t.Fatalf("/approvals %s: %d %s", text, status, out)
	}
	s, _ := reply["text"].(string)
	return s
}

// dmsTo are the texts of the direct messages the bot sent the user
// (chat.postMessage to the user's id).
func dmsTo(e *env, user string) []string {
	var out []string
	for _, c := range e.slack.CallsTo("chat.postMessage") {
		if c.Form.Get("channel") == user {
			out = append(out, c.Form.Get("text"))
		}
	}
	return out
}

// inAWeek is a delegation's end date a week from now.
func inAWeek() string { return time.Now().UTC().AddDate(0, 0, 7).Format(time.DateOnly) }

// A delegate approves for the delegator: the delegation survives a
// restart, the delegate is told by DM and sees the task in their App Home,
// the notes name both; the delegate approves neither the delegator's
// request nor their own.
func TestE2EDelegateApprovesForDelegator(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start()
	reply := e.command("UALICE", "alice", "delegate <@UDAVE|dave> until "+inAWeek()+" on leave")
	if !strings.Contains(reply, "<@UDAVE> may decide wherever you may") {
		t.Fatalf("delegate reply %q", reply)
	}
	if got := e.command("UALICE", "alice", "delegate <@UALICE|alice> until "+inAWeek()); !strings.Contains(got, "you cannot delegate to yourself") {
		t.Errorf("self-delegation: %q", got)
	}
	if got := e.command("UBOB", "bob", "delegate <@UDAVE|dave> until "+time.Now().UTC().AddDate(0, 0, 45).Format(time.DateOnly)); !strings.Contains(got, "at most 30 days") {
		t.Errorf("45 days: %q", got)
	}
	// No chains: Dave, the delegate, delegates to Carol; nobody delegates
	// to Alice, who is away herself.
	if got := e.command("UBOB", "bob", "delegate <@UALICE|alice> until "+inAWeek()); !strings.Contains(got, "no chains") {
		t.Errorf("delegating to someone away: %q", got)
	}
	waitFor(t, "the delegate told by DM", func() bool {
		dms := dmsTo(e, "UDAVE")
		return len(dms) == 1 && strings.Contains(dms[0], "<@UALICE> has named you their delegate") && strings.Contains(dms[0], "on leave")
	})

	e.restart() // kept in the store
	if got := e.command("UDAVE", "dave", "delegations"); !strings.Contains(got, "You decide for <@UALICE> until "+inAWeek()+" (on leave)") {
		t.Fatalf("/approvals delegations after a restart: %q", got)
	}

	id := e.submit(`{"taskId":"dlg-1","environment":"PROD","requestedBy":"UERIN"}`)
	e.submit(`{"taskId":"dlg-alice","environment":"PROD","requestedBy":"UALICE"}`)
	e.submit(`{"taskId":"dlg-dave","environment":"PROD","requestedBy":"UDAVE"}`)
	msg, alices, daves := e.message("dlg-1"), e.message("dlg-alice"), e.message("dlg-dave")

	e.openHome("EvDave1", "UDAVE")
	home := e.home("UDAVE", "lists what Dave may decide for Alice", func(c slacktest.Call) bool { return len(homeTasks(c)) == 3 })
	if got := homeTasks(home); !slices.Contains(got, id) {
		t.Fatalf("Dave's home lists %v", got)
	}

	e.click(alices, "approve", "UDAVE", "Dave")
	e.click(daves, "approve", "UDAVE", "Dave")
	waitFor(t, "both self-approvals refused", func() bool {
		return len(ephemeralsTo(e, "UDAVE", "You requested this deployment")) == 2
	})
	e.click(msg, "approve", "UDAVE", "Dave")
	task := e.waitTask(id, "approved by Dave for Alice", func(task map[string]any) bool { return task["status"] == "approved" })
	votes := task["approvals"].([]any)
	vote := votes[0].(map[string]any)
	if vote["user"] != "UALICE" || vote["by"].(map[string]any)["user"] != "UDAVE" {
		t.Fatalf("vote %v", vote)
	}
	waitFor(t, "delivered", func() bool { return len(e.fd.Decisions()) == 1 })
	if notes := e.fd.Decisions()[0].Notes(); !strings.HasPrefix(notes, "Approved in Slack by Dave (UDAVE) for alice (UALICE) at ") {
		t.Fatalf("notes %q", notes)
	}
	audit := fmt.Sprint(task["audit"])
	if !strings.Contains(audit, "Dave (UDAVE) for alice") {
		t.Fatalf("audit %s", audit)
	}
	for _, other := range []string{"flexdeploy-dlg-alice", "flexdeploy-dlg-dave"} {
		if _, task := e.task(other); task["status"] != "pending" {
			t.Errorf("%s is %v", other, task["status"])
		}
	}

	// Cancelled: Dave decides nothing for Alice any more, and is told.
	if got := e.command("UALICE", "alice", "delegate cancel"); !strings.Contains(got, "Cancelled") {
		t.Fatalf("cancel: %q", got)
	}
	e.click(alices, "reject", "UDAVE", "Dave")
	waitFor(t, "Dave refused after the cancel", func() bool { return len(ephemeralsTo(e, "UDAVE", "You are not an approver")) == 1 })
	waitFor(t, "the cancel told", func() bool { return len(dmsTo(e, "UDAVE")) == 2 })
}

func ephemeralsTo(e *env, user, contains string) []string {
	var out []string
	for _, c := range e.slack.CallsTo("chat.postEphemeral") {
		if c.Form.Get("user") == user && strings.Contains(c.Form.Get("text"), contains) {
			out = append(out, c.Form.Get("text"))
		}
	}
	return out
}

// Delegations are shared between replicas on DynamoDB: made on one, used
// on the other.
func TestE2EDelegationSharedByReplicas(t *testing.T) {
	t.Parallel()
	r := replicas(t, 2, "")
	if got := r[0].command("UALICE", "alice", "delegate <@UDAVE|dave> until "+inAWeek()); !strings.Contains(got, "may decide") {
		t.Fatalf("delegate: %q", got)
	}
	if got := r[1].command("UDAVE", "dave", "delegations"); !strings.Contains(got, "You decide for <@UALICE>") {
		t.Fatalf("the other replica: %q", got)
	}
	id := r[0].submit(`{"taskId":"dlg-rep","environment":"PROD"}`)
	msg := r[0].message("dlg-rep")
	r[1].click(msg, "approve", "UDAVE", "Dave")
	task := r[1].waitTask(id, "approved for Alice", func(task map[string]any) bool { return task["status"] == "approved" })
	if by := task["decidedBy"].(map[string]any); by["user"] != "UALICE" || !strings.Contains(by["userName"].(string), "Dave (UDAVE) for") {
		t.Fatalf("decidedBy %v", by)
	}
}

// The requester receives one DM per outcome (approved, rejected,
// expired), by user id or by email, and none where the policy says
// notify: {requester: false}; a restart sends none again.
func TestE2ERequesterTold(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.policies = defaultPolicies + `
  - name: quick
    match: {environment: "QA"}
    channel: CQA
    approvers: {users: [UALICE]}
    ttl: 1s
  - name: quiet
    match: {environment: "DEV"}
    channel: CDEV
    approvers: {users: [UALICE]}
    notify: {requester: false}
`
	e.start()
	e.submit(`{"taskId":"rq-ok","environment":"PROD","requestedBy":"<@UERIN>"}`)
	e.submit(`{"taskId":"rq-no","environment":"PROD","requestedBy":"dev@example.com"}`)
	e.submit(`{"taskId":"rq-exp","environment":"QA","requestedBy":"UERIN"}`)
	e.submit(`{"taskId":"rq-quiet","environment":"DEV","requestedBy":"UERIN"}`)
	e.click(e.message("rq-ok"), "approve", "UALICE", "Alice")
	e.click(e.message("rq-no"), "reject", "UBOB", "Bob")
	e.click(e.message("rq-quiet"), "approve", "UALICE", "Alice")
	e.waitTask("flexdeploy-rq-exp", "expired", func(task map[string]any) bool { return task["status"] == "expired" })
	e.waitTask("flexdeploy-rq-quiet", "approved", func(task map[string]any) bool { return task["status"] == "approved" })
	waitFor(t, "the requesters told", func() bool { return len(dmsTo(e, "UERIN")) == 2 && len(dmsTo(e, "UDEV")) == 1 })

	e.restart()
	e.submit(`{"taskId":"rq-last","environment":"PROD","requestedBy":"UERIN"}`)
	e.click(e.message("rq-last"), "approve", "UALICE", "Alice")
	waitFor(t, "the last requester told", func() bool { return len(dmsTo(e, "UERIN")) == 3 })
	erin, dev := dmsTo(e, "UERIN"), dmsTo(e, "UDEV")
	want := map[string]int{
		"Your deployment FlexDeploy task rq-ok → PROD was approved by Alice.":     1,
		"Your deployment FlexDeploy task rq-exp → QA expired without a decision.": 1,
		"Your deployment FlexDeploy task rq-last → PROD was approved by Alice.":   1,
		"Your deployment FlexDeploy task rq-no → PROD was rejected by Bob.":       1,
	}
	got := map[string]int{}
	for _, text := range append(erin, dev...) {
		got[text]++
	}
	if !maps.Equal(got, want) {
		t.Fatalf("DMs to the requesters:\n%v\nwant\n%v", got, want)
	}
	for _, text := range erin {
		if strings.Contains(text, "rq-quiet") {
			t.Fatal("told although the policy says notify: {requester: false}")
		}
	}
}
