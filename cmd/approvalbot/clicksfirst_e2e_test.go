package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestIntakeNeverWaitsOnTheTool: with FlexDeploy's reads hanging, 220
// intakes that need enrichment are all answered while every read is still
// held, and a click on an earlier task is answered and decides it.
func TestIntakeNeverWaitsOnTheTool(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.enrich = true
	// Room for every intake at once: what is under test is that none waits
	// on FlexDeploy, not the load shedding.
	e.serverCfg = `{listen: "127.0.0.1:0", shutdown_timeout: 5s, max_concurrent_requests: 100, max_outstanding_requests: 400}`
	e.start()
	// A complete task needs no enrichment: it is posted at once.
	id := e.submit(`{"taskId":"first","environment":"PROD","project":"p","release":"r","pipeline":"s"}`)
	msg := e.message("first")

	e.fd.SetHangingReads(true)
	const n = 220
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			status, _, _ := e.api("POST", "/v1/tasks", fmt.Sprintf(`{"taskId":"hang%03d"}`, i))
			statuses <- status
		})
	}
	wg.Wait() // every intake answered while no read has been
	close(statuses)
	for s := range statuses {
		if s != http.StatusAccepted {
			t.Fatalf("an intake answered %d while FlexDeploy hung", s)
		}
	}
	waitFor(t, "enrichment reads under way (and hanging)", func() bool { return len(e.fd.Reads()) > 0 })
	for _, r := range e.fd.Reads() {
		if r.Code != 0 {
			t.Fatalf("a read was answered (%d) while reads hang", r.Code)
		}
	}

	if status := e.click(msg, "approve", "UALICE", "Alice"); status != http.StatusOK {
		t.Fatalf("the click answered %d while intakes and the outbox wait on FlexDeploy", status)
	}
	e.waitTask(id, "approved", func(task map[string]any) bool { return task["status"] == "approved" })
	e.fd.SetHangingReads(false)
	// The 220 parallel intakes left connections the client dialled and
	// never used; the server's graceful stop would wait for them.
	http.DefaultClient.CloseIdleConnections()
}

// TestEnrichedTaskIsPostedUnderThePolicyItMatches: a webhook without the
// environment is enriched from FlexDeploy in the outbox, then posted to the
// channel of the policy the environment matches.
func TestEnrichedTaskIsPostedUnderThePolicyItMatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.enrich = true
	e.start()
	id := e.submit(`{"taskId":"bare1"}`) // the fake's task details say environment PROD
	msg := e.message("bare1")
	if got := msg.Form.Get("channel"); got != "CPROD" {
		t.Errorf("posted to %q, want CPROD (the enriched environment's policy)", got)
	}
	if !strings.Contains(msg.Text(), "PROD") {
		t.Errorf("the message does not show the enriched environment: %q", msg.Text())
	}
	_, task := e.task(id)
	if task["environment"] != "PROD" || task["policy"] != "production" {
		t.Errorf("task %v", task)
	}
	if status := e.click(msg, "approve", "UALICE", "Alice"); status != http.StatusOK {
		t.Fatalf("click answered %d", status)
	}
	e.waitTask(id, "delivered", delivered)
}
