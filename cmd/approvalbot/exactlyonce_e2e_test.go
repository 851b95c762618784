package main

import (
	"strings"
	"testing"
)

// A decision call that reached the tool but whose answer was lost (late
// past flexdeploy.timeout, or the connection dropped) is not sent again:
// the retry asks FlexDeploy first, sees the decision, and counts it
// delivered.
func TestLostAnswerIsNotSentTwice(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		lose func(e *env)
	}{
		{"answer after the timeout", func(e *env) { e.fd.SetLateAnswers(1) }},
		{"connection dropped after the request", func(e *env) { e.fd.SetDroppedAnswers(1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.start()
			id := e.submit(`{"taskId":"lost1","environment":"PROD"}`)
			msg := e.message("lost1")
			tc.lose(e)
			e.click(msg, "approve", "UALICE", "Alice")
			task := e.waitTask(id, "delivered", delivered)
			if n := len(e.fd.Decisions()); n != 1 {
				t.Fatalf("%d approve PUTs reached FlexDeploy, want exactly 1", n)
			}
			if task["status"] != "approved" || deliveryState(task) != "delivered" {
				t.Fatalf("task %v", task)
			}
			if got := e.fd.StatusOf("lost1"); got != "APPROVED" {
				t.Errorf("FlexDeploy holds %q", got)
			}
			waitFor(t, "message shows approved and accepted", func() bool {
				text := lastUpdateText(e)
				return strings.Contains(text, "Approved by") && strings.Contains(text, "accepted")
			})
			if strings.Contains(lastUpdateText(e), "failed") {
				t.Errorf("the message says the delivery failed: %q", lastUpdateText(e))
			}
		})
	}
}
