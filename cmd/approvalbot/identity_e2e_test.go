package main

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/slacktest"
)

// TestSelfApprovalFailsClosed: the requester is named by the FlexDeploy
// envelope's actor, whose email comes before its name. While Slack's
// users.lookupByEmail is rate limited, the requester's own approve is
// refused and decides nothing; once it answers, the requester is refused
// as such, and another approver decides.
func TestSelfApprovalFailsClosed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var limited atomic.Bool
	limited.Store(true)
	e.slack.SetAnswer(func(c slacktest.Call) *slacktest.Answer {
		if c.Method == "users.lookupByEmail" && limited.Load() {
			return &slacktest.Answer{Status: http.StatusTooManyRequests, Header: map[string]string{"Retry-After": "1"}, Body: `{"ok":false,"error":"ratelimited"}`}
		}
		return nil
	})
	e.slack.Emails["dev@example.com"] = "UALICE" // Alice asked for this deployment
	e.start()
	id := e.submit(`{"eventType":"TaskCreated","actor":{"name":"Not Alice","email":"dev@example.com"},"payload":{"taskId":"self1","environment":"PROD"}}`)
	msg := e.message("self1")

	e.click(msg, "approve", "UALICE", "Alice")
	waitFor(t, "refused: could not check", func() bool { return ephemeralTo(e, "UALICE", "Could not check who requested this") })
	if _, task := e.task(id); task["status"] != "pending" || len(task["approvals"].([]any)) != 0 {
		t.Fatalf("the refused click changed the task: %v", task)
	}

	limited.Store(false)
	// The look-up is asked again once Slack's Retry-After has passed (the
	// bot paces it, bot/pace.go); until then clicks are refused as above.
	clicked := time.Now().Add(-time.Hour)
	waitFor(t, "refused as the requester", func() bool {
		if time.Since(clicked) > 300*time.Millisecond {
			e.click(msg, "approve", "UALICE", "Alice")
			clicked = time.Now()
		}
		return ephemeralTo(e, "UALICE", "You requested this deployment")
	})
	e.click(msg, "approve", "UBOB", "Bob")
	task := e.waitTask(id, "approved by Bob", func(task map[string]any) bool { return task["status"] == "approved" })
	if by := task["decidedBy"].(map[string]any)["user"]; by != "UBOB" {
		t.Errorf("decided by %v, want UBOB", by)
	}
}
