package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestMetricsAfterARun scrapes /metrics after intake, a refusal, a decision
// and its delivery, and checks the counters say so.
func TestMetricsAfterARun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start()
	id := e.submit(`{"taskId":"metrics","environment":"PROD"}`)
	e.submit(`{"taskId":"metrics-2","environment":"PROD"}`)
	msg := e.message("metrics")
	e.click(msg, "approve", "UMALLORY", "Mallory")
	waitFor(t, "refusal", func() bool { return ephemeralTo(e, "UMALLORY", "not an approver") })
	e.click(msg, "approve", "UALICE", "Alice")
	e.waitTask(id, "delivered", delivered)
	waitFor(t, "message updated", func() bool { return strings.Contains(lastUpdateText(e), "accepted") })

	var text string
	waitFor(t, "metrics", func() bool {
		res, err := http.Get(e.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		text = string(raw)
		return strings.Contains(text, `approvalbot_outbox_attempts_total{job="update",result="ok",target="chat"} 1`)
	})
	for _, want := range []string{
		`approvalbot_tasks_received_total{source="flexdeploy"} 2`,
		`approvalbot_decisions_total{outcome="approved"} 1`,
		`approvalbot_refusals_total{reason="not_approver"} 1`,
		`approvalbot_outbox_attempts_total{job="post",result="ok",target="chat"} 2`,
		`approvalbot_outbox_attempts_total{job="deliver",result="ok",target="flexdeploy"} 1`,
		`approvalbot_outbox_attempt_seconds_count{job="deliver"} 1`,
		`approvalbot_http_request_seconds_count{code="202",route="POST /v1/tasks"} 2`,
		`approvalbot_http_request_seconds_count{code="200",route="POST /slack/interactions"} 2`,
		`approvalbot_store_operation_seconds_count{op="create",result="ok"} 2`,
		`approvalbot_outbox_due_tasks 0`,
		`approvalbot_outbox_oldest_due_seconds 0`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
