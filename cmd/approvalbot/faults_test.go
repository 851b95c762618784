package main

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/flexdeploytest"
	"github.com/approvalbot/approvalbot/internal/slacktest"
)

// TestFlexDeployDownForAWhile: FlexDeploy is down for longer than one
// delivery's own retries; the message says the bot is retrying, and once
// FlexDeploy is back the decision is delivered once.
func TestFlexDeployDownForAWhile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var mu sync.Mutex
	down := true
	e.fd.SetAnswer(func(flexdeploytest.Call, int) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return http.StatusServiceUnavailable, `{"message":"maintenance"}`
		}
		return 0, ""
	})
	e.start()
	id := e.submit(`{"taskId":"down","environment":"PROD"}`)
	e.click(e.message("down"), "approve", "UALICE", "Alice")
	waitFor(t, "the message saying it is retrying", func() bool { return strings.Contains(lastUpdateText(e), "retrying") })
	if _, task := e.task(id); deliveryState(task) != "pending" || task["status"] != "approved" {
		t.Fatalf("while FlexDeploy is down: %v", task)
	}
	mu.Lock()
	down = false
	failed := len(e.fd.Decisions())
	mu.Unlock()
	e.waitTask(id, "delivered after recovery", delivered)
	time.Sleep(300 * time.Millisecond)
	if ok := len(e.fd.Decisions()) - failed; ok != 1 {
		t.Fatalf("%d calls after FlexDeploy came back, want 1", ok)
	}
	waitFor(t, "the message saying FlexDeploy accepted", func() bool { return strings.Contains(lastUpdateText(e), "accepted") })
}

// TestFlexDeploySlowerThanTimeout: an answer slower than
// flexdeploy.timeout is given up on and the decision retried.
func TestFlexDeploySlowerThanTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fd.SetDelay(5 * time.Second) // flexdeploy.timeout is 2s in the test configuration
	e.start()
	id := e.submit(`{"taskId":"slow","environment":"PROD"}`)
	e.click(e.message("slow"), "approve", "UALICE", "Alice")
	waitFor(t, "a first, slow call", func() bool { return len(e.fd.Decisions()) == 1 })
	e.fd.SetDelay(0)
	task := e.waitTask(id, "delivered", delivered)
	if n := len(e.fd.Decisions()); n < 2 {
		t.Fatalf("%d calls: the slow one was not given up on", n)
	}
	if task["status"] != "approved" {
		t.Fatalf("task %v", task)
	}
}

// TestSlackServerErrors: Slack answering 5xx delays the message, never
// loses it or posts it twice.
func TestSlackServerErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var mu sync.Mutex
	failures := 0
	e.slack.SetAnswer(func(c slacktest.Call) *slacktest.Answer {
		mu.Lock()
		defer mu.Unlock()
		if c.Method == "chat.postMessage" && failures < 2 {
			failures++
			return &slacktest.Answer{Status: http.StatusInternalServerError, Body: "upstream connect error"}
		}
		return nil
	})
	e.start()
	id := e.submit(`{"taskId":"5xx","environment":"PROD"}`)
	e.waitTask(id, "posted", func(task map[string]any) bool { return task["message"] != nil })
	time.Sleep(300 * time.Millisecond)
	if n := len(e.slack.CallsTo("chat.postMessage")); n != 3 {
		t.Fatalf("%d posts, want 2 failed and 1 posted", n)
	}
	e.click(e.message("5xx"), "approve", "UALICE", "Alice")
	e.waitTask(id, "delivered", delivered)
}
