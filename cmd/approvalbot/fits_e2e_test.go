package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// largestTask is the largest FlexDeploy task the intake accepts: every
// field at its cap, in multi-byte and mrkdwn-special characters.
func largestTask(taskID string) string {
	field := strings.Repeat("ü*_~<&>`", 250) // 2,000 runes
	body := map[string]string{
		"taskId": taskID, "description": field, "environment": "PROD" + field[:1900],
		"project": field, "release": field, "pipeline": field, "stage": field,
		"requestedBy": field, "url": "https://fd.example.com/" + strings.Repeat("a", 1970),
	}
	raw, _ := json.Marshal(body)
	return string(raw)
}

// TestLargestTaskGetsAMessage: the largest task the intake accepts is
// posted, and the fake Slack (which refuses what Slack refuses) accepts it
// with working buttons. Its requester is written in markup approvalbot
// cannot read, so approving is refused (fail closed) and rejecting decides.
func TestLargestTaskGetsAMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start()
	id := e.submit(largestTask("huge1"))
	msg := e.message("huge1")
	if msg.Refused != "" || len(msg.Buttons()) != 2 {
		t.Fatalf("posted message refused %q with %d buttons", msg.Refused, len(msg.Buttons()))
	}
	if status := e.click(msg, "approve", "UALICE", "Alice"); status != http.StatusOK {
		t.Fatalf("click answered %d", status)
	}
	waitFor(t, "the approval refused", func() bool { return ephemeralTo(e, "UALICE", "cannot read") })
	if status := e.click(msg, "reject", "UALICE", "Alice"); status != http.StatusOK {
		t.Fatalf("click answered %d", status)
	}
	if task := e.waitTask(id, "delivered", delivered); task["status"] != "rejected" {
		t.Fatalf("status %v, want rejected", task["status"])
	}
}

// TestRefusedBlocksFallBackToAMinimalMessage: when Slack refuses a
// message's blocks, the task still gets a message with working buttons.
func TestRefusedBlocksFallBackToAMinimalMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.slack.RefuseBlocks("invalid_blocks", 1)
	e.start()
	id := e.submit(`{"taskId":"refused1","environment":"PROD"}`)
	var minimal bool
	waitFor(t, "a message Slack accepted", func() bool {
		for _, c := range e.slack.CallsTo("chat.postMessage") {
			if c.Refused == "" && len(c.Buttons()) == 2 {
				minimal = true
			}
		}
		return minimal
	})
	posts := e.slack.CallsTo("chat.postMessage")
	if len(posts) != 2 || posts[0].Refused != "invalid_blocks" {
		t.Fatalf("posts %d, first refused %q; want a refused post then the minimal one", len(posts), posts[0].Refused)
	}
	if status := e.click(posts[1], "approve", "UALICE", "Alice"); status != http.StatusOK {
		t.Fatalf("click answered %d", status)
	}
	e.waitTask(id, "delivered", delivered)
}
