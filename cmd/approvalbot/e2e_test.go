package main

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/flexdeploytest"
	"github.com/approvalbot/approvalbot/internal/slacktest"
)

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// TestApproveEndToEnd: intake → message with the contract's buttons → signed
// click → one correct PUT to FlexDeploy → message updated → status JSON.
func TestApproveEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start()
	id := e.submit(`{"taskid":"8900","description":"v2.3 is about to be deployed to PROD","environment":"PROD","project":"shop","release":"v2.3","requestedBy":"dev@example.com"}`)
	if id != "flexdeploy-8900" {
		t.Fatalf("task id %q", id)
	}
	msg := e.message("8900")
	if got := msg.Form.Get("channel"); got != "CPROD" {
		t.Errorf("posted to %q, want the policy's channel CPROD", got)
	}
	if msg.Token() != testBotToken {
		t.Errorf("posted without the bot token")
	}
	buttons := msg.Buttons()
	if len(buttons) != 2 || buttons[0].ActionID != "approve" || buttons[0].Style != "primary" || !buttons[0].Confirm ||
		buttons[1].ActionID != "reject" || buttons[1].Style != "danger" || buttons[0].Value == "" || buttons[0].Value != buttons[1].Value {
		t.Fatalf("buttons %+v", buttons)
	}
	// The status JSON never shows the token.
	_, pending := e.task(id)
	if strings.Contains(fmt.Sprint(pending), buttons[0].Value) {
		t.Fatal("the task JSON shows the token")
	}

	if status := e.click(msg, "approve", "UALICE", "Alice"); status != http.StatusOK {
		t.Fatalf("click answered %d", status)
	}
	task := e.waitTask(id, "delivered", func(task map[string]any) bool { return delivered(task) })
	decisions := e.fd.Decisions()
	if len(decisions) != 1 {
		t.Fatalf("%d FlexDeploy decisions, want 1", len(decisions))
	}
	put := decisions[0]
	if put.Path != flexdeploytest.Root+"/tasks/approval/approve/8900" || put.Auth != basicAuth("approvalbot", testFDPassword) || put.ContentType != "application/json" {
		t.Errorf("PUT %s auth %q content type %q", put.Path, put.Auth, put.ContentType)
	}
	if notes := put.Notes(); !strings.HasPrefix(notes, "Approved in Slack by Alice (UALICE) at 20") {
		t.Errorf("notes %q", notes)
	}
	if task["status"] != "approved" || task["decidedBy"].(map[string]any)["user"] != "UALICE" || task["decidedAt"] == nil {
		t.Errorf("task %v", task)
	}
	waitFor(t, "message updated", func() bool {
		ups := e.slack.CallsTo("chat.update")
		if len(ups) == 0 {
			return false
		}
		last := ups[len(ups)-1]
		return len(last.Buttons()) == 0 && last.Form.Get("blocks") != "" && strings.Contains(last.Text(), "Approved by") && strings.Contains(last.Text(), "accepted")
	})
	code, _ := e.task(id)
	if code != http.StatusOK {
		t.Errorf("status of a decided task answered %d, want 200", code)
	}
}

func TestReadyLogGivesSlackRequestURL(t *testing.T) {
	t.Parallel()
	plain := newEnv(t)
	plain.start()
	if strings.Contains(plain.logs.String(), "slack_request_url") {
		t.Error("request URL logged without server.public_url")
	}
	public := newEnv(t)
	public.serverCfg = `{listen: "127.0.0.1:0", shutdown_timeout: 5s, public_url: "https://bot.example.com/"}`
	public.start()
	if !strings.Contains(public.logs.String(), `"slack_request_url":"https://bot.example.com/slack/interactions"`) {
		t.Errorf("ready line lacks the request URL:\n%s", public.logs.String())
	}
}

func TestRejectEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start()
	id := e.submit(`{"taskId": 77, "environmentName": "PROD-EU", "description": "hotfix"}`)
	msg := e.message("77")
	if status := e.click(msg, "reject", "UBOB", "Bob"); status != http.StatusOK {
		t.Fatalf("click answered %d", status)
	}
	task := e.waitTask(id, "delivered", delivered)
	decisions := e.fd.Decisions()
	if len(decisions) != 1 || decisions[0].Path != flexdeploytest.Root+"/tasks/approval/reject/77" || !strings.Contains(decisions[0].Notes(), "Rejected in Slack by Bob (UBOB)") {
		t.Fatalf("decisions %+v", decisions)
	}
	if task["status"] != "rejected" {
		t.Fatalf("task %v", task)
	}
	waitFor(t, "message updated", func() bool {
		ups := e.slack.CallsTo("chat.update")
		return len(ups) > 0 && strings.Contains(ups[len(ups)-1].Text(), "Rejected by")
	})
}

func TestFiftyConcurrentClicksOneDecision(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start()
	id := e.submit(`{"taskId":"race","environment":"PROD"}`)
	msg := e.message("race")
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user, action := "UALICE", "approve"
			if i%3 == 1 {
				user, action = "UBOB", "reject"
			} else if i%3 == 2 {
				user = "UCAROL"
			}
			if status := e.click(msg, action, user, user); status != http.StatusOK {
				t.Errorf("click answered %d", status)
			}
		}()
	}
	wg.Wait()
	e.waitTask(id, "delivered", delivered)
	time.Sleep(300 * time.Millisecond) // time for a wrong second delivery to show
	if n := len(e.fd.Decisions()); n != 1 {
		t.Fatalf("%d FlexDeploy calls, want 1", n)
	}
	// The losers were told, privately.
	waitFor(t, "refusals", func() bool { return len(e.slack.CallsTo("chat.postEphemeral")) == 49 })
}

func TestForgedClicksAreRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start()
	id := e.submit(`{"taskId":"forge","environment":"PROD"}`)
	msg := e.message("forge")
	token := msg.Buttons()[0].Value
	payload := slacktest.Click{ActionID: "approve", Value: token, UserID: "UALICE", UserName: "Alice", Channel: "CPROD"}.Payload()
	body := url.Values{"payload": {payload}}.Encode()
	post := func(mutate func(*http.Request)) int {
		req, _ := slacktest.InteractionRequest(e.url+"/slack/interactions", testSigningSecret, time.Now(), payload)
		mutate(req)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	cases := map[string]func(*http.Request){
		"forged signature": func(r *http.Request) {
			_, sig := slacktest.Sign("not-the-secret", time.Now(), body)
			r.Header.Set("X-Slack-Signature", sig)
		},
		"stale timestamp": func(r *http.Request) {
			ts, sig := slacktest.Sign(testSigningSecret, time.Now().Add(-6*time.Minute), body)
			r.Header.Set("X-Slack-Request-Timestamp", ts)
			r.Header.Set("X-Slack-Signature", sig)
		},
		"future timestamp": func(r *http.Request) {
			ts, sig := slacktest.Sign(testSigningSecret, time.Now().Add(6*time.Minute), body)
			r.Header.Set("X-Slack-Request-Timestamp", ts)
			r.Header.Set("X-Slack-Signature", sig)
		},
		"missing headers": func(r *http.Request) {
			r.Header.Del("X-Slack-Signature")
			r.Header.Del("X-Slack-Request-Timestamp")
		},
	}
	for name, mutate := range cases {
		if status := post(mutate); status != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, status)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(e.fd.Decisions()); n != 0 {
		t.Fatalf("%d FlexDeploy calls after forged clicks", n)
	}
	if _, task := e.task(id); task["status"] != "pending" {
		t.Fatalf("task %v", task["status"])
	}
}

func TestNonApproverIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start()
	id := e.submit(`{"taskId":"nope","environment":"PROD"}`)
	msg := e.message("nope")
	if status := e.click(msg, "approve", "UMALLORY", "Mallory"); status != http.StatusOK {
		t.Fatalf("click answered %d", status)
	}
	waitFor(t, "ephemeral refusal", func() bool {
		for _, c := range e.slack.CallsTo("chat.postEphemeral") {
			if c.Form.Get("user") == "UMALLORY" && strings.Contains(c.Form.Get("text"), "not an approver") {
				return true
			}
		}
		return false
	})
	if _, task := e.task(id); task["status"] != "pending" || len(e.fd.Decisions()) != 0 {
		t.Fatalf("task %v after a refusal, %d calls", task["status"], len(e.fd.Decisions()))
	}
	// A member of an approver user group, and an approver named by email, may decide.
	if status := e.click(msg, "approve", "UGROUP", "Grace"); status != http.StatusOK {
		t.Fatalf("group member click answered %d", status)
	}
	e.waitTask(id, "approved by a group member", func(task map[string]any) bool { return task["status"] == "approved" })
}

func TestExpiredTokenIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.policies = `
  - name: quick
    approvers: {users: [UALICE]}
    ttl: 1s
`
	e.start()
	id := e.submit(`{"taskId":"late"}`)
	msg := e.message("late")
	e.waitTask(id, "expired", func(task map[string]any) bool { return task["status"] == "expired" })
	if status := e.click(msg, "approve", "UALICE", "Alice"); status != http.StatusOK {
		t.Fatalf("click answered %d", status)
	}
	waitFor(t, "ephemeral refusal", func() bool {
		for _, c := range e.slack.CallsTo("chat.postEphemeral") {
			if strings.Contains(strings.ToLower(c.Form.Get("text")), "expired") {
				return true
			}
		}
		return false
	})
	if n := len(e.fd.Decisions()); n != 0 {
		t.Fatalf("%d FlexDeploy calls for an expired task", n)
	}
	waitFor(t, "message shows the expiry", func() bool {
		ups := e.slack.CallsTo("chat.update")
		return len(ups) > 0 && len(ups[len(ups)-1].Buttons()) == 0 && strings.Contains(ups[len(ups)-1].Text(), "Expired")
	})
}

func TestFlexDeployFailsThenRecovers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fd.SetAnswer(func(_ flexdeploytest.Call, n int) (int, string) {
		if n <= 3 {
			return http.StatusServiceUnavailable, `{"message":"down for maintenance"}`
		}
		return 0, ""
	})
	e.start()
	id := e.submit(`{"taskId":"flaky","environment":"PROD"}`)
	e.click(e.message("flaky"), "approve", "UALICE", "Alice")
	task := e.waitTask(id, "delivered", delivered)
	if n := len(e.fd.Decisions()); n != 4 {
		t.Fatalf("%d FlexDeploy calls, want 3 failures and 1 success", n)
	}
	if task["status"] != "approved" {
		t.Fatalf("task %v", task)
	}
}

func TestFlexDeployRefusalIsFinalAndShown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fd.SetAnswer(func(flexdeploytest.Call, int) (int, string) {
		return http.StatusBadRequest, `{"message":"Task 55 is not pending"}`
	})
	e.start()
	id := e.submit(`{"taskId":"55","environment":"PROD"}`)
	e.click(e.message("55"), "approve", "UALICE", "Alice")
	task := e.waitTask(id, "delivery failed", func(task map[string]any) bool { return deliveryState(task) == "failed" })
	if n := len(e.fd.Decisions()); n != 1 {
		t.Fatalf("%d FlexDeploy calls, want 1 (a 4xx is final)", n)
	}
	if last := task["delivery"].(map[string]any)["lastError"].(string); !strings.Contains(last, "not pending") {
		t.Fatalf("lastError %q", last)
	}
	waitFor(t, "failure on the message", func() bool {
		ups := e.slack.CallsTo("chat.update")
		return len(ups) > 0 && strings.Contains(ups[len(ups)-1].Text(), "not pending")
	})
}

func TestSlackRateLimitIsHonoured(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var mu sync.Mutex
	limited := false
	e.slack.SetAnswer(func(c slacktest.Call) *slacktest.Answer {
		mu.Lock()
		defer mu.Unlock()
		if c.Method == "chat.postMessage" && !limited {
			limited = true
			return &slacktest.Answer{Status: http.StatusTooManyRequests, Header: map[string]string{"Retry-After": "1"}, Body: `{"ok":false,"error":"ratelimited"}`}
		}
		return nil
	})
	e.start()
	id := e.submit(`{"taskId":"busy","environment":"PROD"}`)
	e.waitTask(id, "message posted", func(task map[string]any) bool { return task["message"] != nil })
	posts := e.slack.CallsTo("chat.postMessage")
	if len(posts) != 2 {
		t.Fatalf("%d posts, want the limited one and the retry", len(posts))
	}
	if gap := posts[1].At.Sub(posts[0].At); gap < time.Second {
		t.Fatalf("retried after %v, before Retry-After: 1", gap)
	}
}

// TestRestartBetweenClickAndDelivery: the click is answered and recorded,
// the bot stops before FlexDeploy took the decision, and the next start
// delivers it, once.
func TestRestartBetweenClickAndDelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var mu sync.Mutex
	down := true
	e.fd.SetAnswer(func(flexdeploytest.Call, int) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return http.StatusBadGateway, "proxy error"
		}
		return 0, ""
	})
	e.start()
	id := e.submit(`{"taskId":"restart","environment":"PROD"}`)
	msg := e.message("restart")
	if status := e.click(msg, "approve", "UALICE", "Alice"); status != http.StatusOK {
		t.Fatalf("click answered %d", status)
	}
	waitFor(t, "a failed delivery attempt", func() bool { return len(e.fd.Decisions()) > 0 })
	e.stop()
	mu.Lock()
	down = false
	mu.Unlock()
	failed := len(e.fd.Decisions())
	e.start()
	e.waitTask(id, "delivered after restart", delivered)
	time.Sleep(300 * time.Millisecond)
	var successes int
	for _, c := range e.fd.Decisions()[failed:] {
		if c.Path == flexdeploytest.Root+"/tasks/approval/approve/restart" {
			successes++
		}
	}
	if successes != 1 {
		t.Fatalf("%d deliveries after the restart, want 1", successes)
	}
}

func TestIntakeIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start()
	body := `{"eventType":"TASK_CREATED","actor":"dev@example.com","object":"Task","timestamp":"2026-11-22T14:00:00Z","payload":{"taskId":4242,"environmentName":"PROD","description":"resubmitted"}}`
	id := e.submit(body)
	e.message("4242")
	status, h, again := e.api("POST", "/v1/tasks", body)
	if status != http.StatusAccepted || again["id"] != id || h.Get("Location") != "/v1/tasks/"+id {
		t.Fatalf("repeat: %d %v %q", status, again["id"], h.Get("Location"))
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(e.slack.CallsTo("chat.postMessage")); n != 1 {
		t.Fatalf("%d messages for one task", n)
	}
}
