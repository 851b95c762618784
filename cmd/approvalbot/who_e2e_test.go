package main

import (
	"errors"
	"net/http"
	"strings"
	"testing"
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
