package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/slacktest"
)

// Clicks on a direct-message copy and on the escalation's copy are checked
// as a channel click is: a forged signature or a stale (replayed)
// timestamp is refused with 401 and decides nothing; a click replayed
// within Slack's five minutes, once the task is decided, changes nothing;
// a copy's token does not let someone the policy does not name decide.
func TestForgedAndReplayedClicksOnCopies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var ahead atomic.Int64
	e.clock = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	e.policies = `
  - name: production
    match: {environment: "PROD*"}
    channel: CPROD
    approvers: {users: [UALICE]}
    notify: {dm: true}
    escalate: {after: 30m, to: {users: [UBOSS]}}
`
	e.start()
	id := e.submit(`{"taskid":"forge-dm","environment":"PROD"}`)
	e.message("forge-dm")
	alice := waitCopies(e, "forge-dm", []string{"UALICE"})["UALICE"]
	ahead.Store(int64(31 * time.Minute))
	boss := waitCopies(e, "forge-dm", []string{"UBOSS"})["UBOSS"]

	send := func(copy slacktest.Call, user string, at time.Time, secret string) int {
		t.Helper()
		click, err := slacktest.ClickOn(copy, "approve", user, user)
		if err != nil {
			t.Fatal(err)
		}
		click.Channel = user // a direct message's channel
		payload := click.Payload()
		req, err := slacktest.InteractionRequest(e.url+"/slack/interactions", testSigningSecret, at, payload)
		if err != nil {
			t.Fatal(err)
		}
		if secret != testSigningSecret {
			_, sig := slacktest.Sign(secret, at, url.Values{"payload": {payload}}.Encode())
			req.Header.Set("X-Slack-Signature", sig)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for name, copy := range map[string]slacktest.Call{"Alice's copy": alice, "the escalation's copy": boss} {
		if code := send(copy, "UALICE", time.Now(), "not-the-signing-secret"); code != http.StatusUnauthorized {
			t.Errorf("%s, forged signature: %d, want 401", name, code)
		}
		if code := send(copy, "UALICE", time.Now().Add(-6*time.Minute), testSigningSecret); code != http.StatusUnauthorized {
			t.Errorf("%s, replayed after five minutes: %d, want 401", name, code)
		}
	}
	// Someone the policy does not name, with a copy's genuine token.
	if code := send(boss, "UMALLORY", time.Now(), testSigningSecret); code != http.StatusOK {
		t.Fatalf("Mallory's click: %d", code)
	}
	waitFor(t, "Mallory refused", func() bool { return ephemeralTo(e, "UMALLORY", "not an approver") })
	if _, task := e.task(id); task["status"] != "pending" || len(e.fd.Decisions()) != 0 {
		t.Fatalf("after forged clicks: status %v, %d FlexDeploy calls; want pending and none", task["status"], len(e.fd.Decisions()))
	}

	// The escalation's approver decides from their copy; the same signed
	// click sent again, and Alice's from hers, decide nothing more.
	at := time.Now()
	if code := send(boss, "UBOSS", at, testSigningSecret); code != http.StatusOK {
		t.Fatalf("the boss's click: %d", code)
	}
	e.waitTask(id, "delivered", delivered)
	send(boss, "UBOSS", at, testSigningSecret)
	send(alice, "UALICE", time.Now(), testSigningSecret)
	waitFor(t, "the replays refused", func() bool {
		_, task := e.task(id)
		return strings.Count(strings.ToLower(fmt.Sprint(task["audit"])), "already decided") >= 2
	})
	if n := len(e.fd.Decisions()); n != 1 {
		t.Errorf("%d FlexDeploy decisions, want 1", n)
	}
}
