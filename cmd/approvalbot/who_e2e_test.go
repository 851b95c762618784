package main

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/approvalbot/approvalbot/internal/pagerdutytest"
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
