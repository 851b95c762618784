package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/approvalbot/approvalbot/internal/teamstest"
)

// actionToken finds the one-time token of the card's Action.Execute with
// the verb, "" when the card has none.
func actionToken(v any, verb string) string {
	switch x := v.(type) {
	case map[string]any:
		if x["type"] == "Action.Execute" && x["verb"] == verb {
			if data, ok := x["data"].(map[string]any); ok {
				t, _ := data["t"].(string)
				return t
			}
		}
		for _, e := range x {
			if t := actionToken(e, verb); t != "" {
				return t
			}
		}
	case []any:
		for _, e := range x {
			if t := actionToken(e, verb); t != "" {
				return t
			}
		}
	}
	return ""
}

// teamsClick sends the member's click on the card's action, signed as the
// channel signs it, and returns the invoke answer.
func teamsClick(t *testing.T, e *env, tm *teamstest.Server, m teamstest.Member, conv, verb string, data map[string]string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url+"/teams/messages", bytes.NewReader(tm.Click(m, conv, verb, data)))
	req.Header.Set("Authorization", tm.ChannelToken(tm.ServiceURL()))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, out
}

// A task goes to Slack and Microsoft Teams; Alice approves in Teams and
// again in Slack (one vote: one email), Bob approves in Teams and
// decides; FlexDeploy is told once, and both chats' messages end final.
func TestTeamsBesideSlack(t *testing.T) {
	t.Parallel()
	tm := teamstest.New(t)
	alice := teamstest.Member{ID: "29:alice", Name: "Alice", AADObjectID: "aad-alice", Email: "alice@example.com"}
	bob := teamstest.Member{ID: "29:bob", Name: "Bob", AADObjectID: "aad-bob", Email: "bob@example.com"}
	tm.AddMember(alice)
	tm.AddMember(bob)
	e := newEnv(t)
	e.slack.Emails["alice@example.com"] = "UALICE"
	e.slack.Emails["bob@example.com"] = "UBOB"
	e.extra = fmt.Sprintf("teams: {app_id: %q, app_password: %q, tenant_id: %q, service_url: %q, channel: %q, openid_metadata: %q, token_url: %q}",
		teamstest.AppID, teamstest.AppPassword, teamstest.Tenant, tm.ServiceURL(), "19:default@thread.tacv2", tm.OpenIDMetadata(), tm.TokenURL())
	const conv = "19:prod@thread.tacv2"
	e.policies = `
  - name: production
    match: {environment: "PROD*"}
    channel: CPROD
    teams: {channel: "` + conv + `"}
    approvers: {users: [UALICE, UBOB], emails: [alice@example.com, bob@example.com]}
    required_approvals: 2
`
	e.serverCfg = `{listen: "127.0.0.1:0", shutdown_timeout: 5s, public_url: "https://approvalbot.example.com"}`
	e.start()
	id := e.submit(`{"taskid":"8920","description":"v2.5 to PROD","environment":"PROD","requestedBy":"dev@example.com"}`)
	msg := e.message("8920")
	var token string
	waitFor(t, "the card in the policy's Teams channel", func() bool {
		for _, a := range tm.Activities() {
			if a.Conversation == conv && a.ReplyTo == "" {
				token = actionToken(a.Card(), "approve")
			}
		}
		return token != ""
	})
	if token != msg.Buttons()[0].Value {
		t.Errorf("the card and the Slack message carry different tokens")
	}

	if status, out := teamsClick(t, e, tm, alice, conv, "approve", map[string]string{"t": token}); status != http.StatusOK || out["type"] != "application/vnd.microsoft.card.adaptive" {
		t.Fatalf("Alice's click in Teams: %d %v", status, out)
	}
	e.click(msg, "approve", "UALICE", "alice")
	waitFor(t, "Alice's second vote refused", func() bool {
		_, task := e.task(id)
		return strings.Contains(fmt.Sprint(task["audit"]), "already voted")
	})
	if _, task := e.task(id); task["status"] != "pending" || len(task["approvals"].([]any)) != 1 {
		t.Fatalf("after Alice voted in both chats: %v %v; want pending with one approval", task["status"], task["approvals"])
	}
	// A refusal is the clicker's alone: a message in the invoke answer.
	if status, out := teamsClick(t, e, tm, alice, conv, "approve", map[string]string{"t": token}); status != http.StatusOK || out["type"] != "application/vnd.microsoft.activity.message" {
		t.Errorf("Alice's third click: %d %v; want a message to her alone", status, out)
	}

	if status, _ := teamsClick(t, e, tm, bob, conv, "approve", map[string]string{"t": token}); status != http.StatusOK {
		t.Fatalf("Bob's click in Teams: %d", status)
	}
	task := e.waitTask(id, "delivered", delivered)
	if task["status"] != "approved" {
		t.Fatalf("status %v", task["status"])
	}
	decisions := e.fd.Decisions()
	if len(decisions) != 1 {
		t.Fatalf("%d FlexDeploy decisions, want 1", len(decisions))
	}
	if notes := decisions[0].Notes(); !strings.HasPrefix(notes, "Approved in Microsoft Teams by Alice (alice@example.com) and Bob (bob@example.com) at 20") {
		t.Errorf("notes %q", notes)
	}
	waitFor(t, "both messages final", func() bool {
		teamsFinal := false
		for _, a := range tm.Activities() {
			if a.Conversation == conv && a.ReplyTo == "" && a.Updates > 0 {
				teamsFinal = actionToken(a.Card(), "approve") == ""
			}
		}
		ups := e.slack.CallsTo("chat.update")
		return teamsFinal && len(ups) > 0 && len(ups[len(ups)-1].Buttons()) == 0
	})
}
