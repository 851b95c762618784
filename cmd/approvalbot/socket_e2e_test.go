package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/slacktest"
)

const testAppToken = "xapp-1-A1-e2e-app-token-0123456789"

// TestSocketModeEndToEnd: no public endpoint; the click arrives over Socket
// Mode, is acked within Slack's 3 seconds, and the decision reaches
// FlexDeploy once. The HTTP endpoint refuses clicks, as nothing can verify
// them without a signing secret.
func TestSocketModeEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.slack.EnableSocketMode(testAppToken)
	e.tokens = append(e.tokens, testAppToken)
	e.slackCfg = fmt.Sprintf("{mode: socket, bot_token: %q, app_token: %q, api_url: %q, channel: CDEFAULT}", testBotToken, testAppToken, e.slack.APIURL())
	e.start()
	waitFor(t, "a Socket Mode connection", e.slack.SocketConnected)

	id := e.submit(`{"taskId":"socket","environment":"PROD"}`)
	msg := e.message("socket")
	click := slacktest.Click{ActionID: "approve", Value: msg.Buttons()[0].Value, UserID: "UALICE", UserName: "Alice", Channel: "CPROD", MessageTS: "1700000000.000001"}
	if _, err := e.slack.SendInteractive("env-1", click.Payload(), 3*time.Second); err != nil {
		t.Fatalf("click over Socket Mode: %v", err)
	}
	e.waitTask(id, "delivered", delivered)
	time.Sleep(200 * time.Millisecond)
	if n := len(e.fd.Decisions()); n != 1 {
		t.Fatalf("%d FlexDeploy calls, want 1", n)
	}
	// A second delivery of the same click (Slack retries unacked ones) changes nothing.
	if _, err := e.slack.SendInteractive("env-2", click.Payload(), 3*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "already-decided reply", func() bool { return ephemeralTo(e, "UALICE", "already been decided") })
	if n := len(e.fd.Decisions()); n != 1 {
		t.Fatalf("%d FlexDeploy calls after a repeated click, want 1", n)
	}

	req, _ := slacktest.InteractionRequest(e.url+"/slack/interactions", "", time.Now(), click.Payload())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("HTTP click in socket mode without a signing secret: %d", res.StatusCode)
	}
}
