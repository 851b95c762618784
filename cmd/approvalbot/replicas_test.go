package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/dynalitetest"
	"github.com/approvalbot/approvalbot/internal/flexdeploytest"
)

// replicas starts n bots sharing one dynalite table and the same slacktest.
func replicas(t *testing.T, n int, extra string) []*env {
	t.Helper()
	_, table := dynalitetest.NewTable(t)
	store := fmt.Sprintf("{driver: dynamodb, dynamodb: {table: %q, region: %q, endpoint: %q}}", table, dynalitetest.Region, dynalitetest.Endpoint())
	first := newEnv(t)
	first.store, first.extra = store, extra
	first.start()
	out := []*env{first}
	for range n - 1 {
		e := newEnv(t)
		e.slack.Close()
		e.fd.Close()
		e.slack, e.fd, e.store, e.extra = first.slack, first.fd, store, extra
		e.start()
		out = append(out, e)
	}
	return out
}

// TestReplicasDecideOnce: intake on one replica, 50 concurrent signed
// clicks spread over two → exactly one FlexDeploy call and one message
// update.
func TestReplicasDecideOnce(t *testing.T) {
	t.Parallel()
	r := replicas(t, 2, "")
	id := r[0].submit(`{"taskId":"replicated","environment":"PROD"}`)
	msg := r[0].message("replicated")
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			users := []string{"UALICE", "UBOB", "UCAROL"}
			if status := r[i%2].click(msg, "approve", users[i%3], users[i%3]); status != http.StatusOK {
				t.Errorf("click answered %d", status)
			}
		}()
	}
	wg.Wait()
	r[1].waitTask(id, "delivered", delivered)
	time.Sleep(500 * time.Millisecond) // sweeps run every 200ms on both: a duplicate would show
	if n := len(r[0].fd.Decisions()); n != 1 {
		t.Fatalf("%d FlexDeploy calls, want 1", n)
	}
	if n := len(r[0].slack.CallsTo("chat.update")); n != 1 {
		t.Fatalf("%d message updates, want 1", n)
	}
	if n := len(r[0].slack.CallsTo("chat.postMessage")); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}

// TestReplicaTakesOverAfterLease: the replica that took the decision dies
// while FlexDeploy is still answering; the other takes the work over once
// the lease has run out, asks FlexDeploy first, and does not decide twice.
func TestReplicaTakesOverAfterLease(t *testing.T) {
	t.Parallel()
	r := replicas(t, 2, "outbox: {lease: 2s}")
	id := r[0].submit(`{"taskId":"takeover","environment":"PROD"}`)
	msg := r[0].message("takeover")
	r[0].fd.SetDelay(time.Minute)
	r[0].fd.SetAnswer(func(c flexdeploytest.Call, _ int) (int, string) { return 0, "" })
	if status := r[0].click(msg, "approve", "UALICE", "Alice"); status != http.StatusOK {
		t.Fatalf("click answered %d", status)
	}
	waitFor(t, "the first replica calling FlexDeploy", func() bool { return len(r[0].fd.Decisions()) == 1 })
	// FlexDeploy took the decision, but the replica dies before it hears so.
	r[0].fd.SetStatus("takeover", "APPROVED")
	killedAt := time.Now()
	r[0].stop()
	r[0].fd.SetDelay(0)
	task := r[1].waitTask(id, "delivered by the other replica", delivered)
	if took := time.Since(killedAt); took < time.Second {
		t.Errorf("taken over after %v, before the lease ran out", took)
	}
	if n := len(r[1].fd.Decisions()); n != 1 {
		t.Fatalf("%d FlexDeploy decision calls, want the one that went through", n)
	}
	var asked bool
	for _, c := range r[1].fd.Calls() {
		asked = asked || (c.Method == http.MethodGet && strings.HasSuffix(c.Path, "/tasks/approval/takeover"))
	}
	if !asked || task["status"] != "approved" {
		t.Fatalf("asked FlexDeploy first: %v; task %v", asked, task)
	}
	waitFor(t, "message updated by the survivor", func() bool {
		ups := r[1].slack.CallsTo("chat.update")
		return len(ups) > 0 && strings.Contains(ups[len(ups)-1].Text(), "Approved by")
	})
}

// TestStoreUnreachable: with the store down the bot says it is not ready,
// and intake answers 503 rather than pretending.
func TestStoreUnreachable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.store = `{driver: dynamodb, dynamodb: {table: approvalbot, region: us-east-1, endpoint: "http://127.0.0.1:1"}}`
	e.start()
	res, err := http.Get(e.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz answered %d with the store down", res.StatusCode)
	}
	status, h, body := e.api("POST", "/v1/tasks", `{"taskId":"lost"}`)
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || !strings.Contains(body["error"].(string), "store unavailable") {
		t.Fatalf("intake with the store down: %d %v", status, body)
	}
	if n := len(e.slack.CallsTo("chat.postMessage")); n != 0 {
		t.Fatalf("%d messages posted for a task that was not recorded", n)
	}
}

// TestReplicasExpireOnce: both replicas sweep the same table; a task that
// runs out of time is expired, rejected in FlexDeploy and shown as
// expired once.
func TestReplicasExpireOnce(t *testing.T) {
	t.Parallel()
	r := replicas(t, 2, "")
	for _, e := range r {
		e.policies = `
  - name: quick
    approvers: {users: [UALICE]}
    ttl: 1s
    on_expiry: reject
`
	}
	// The policies are read at start: restart both with the quick one.
	r[0].restart()
	r[1].restart()
	id := r[0].submit(`{"taskId":"expire-once"}`)
	r[0].message("expire-once")
	r[1].waitTask(id, "expired and rejected", delivered)
	time.Sleep(600 * time.Millisecond) // three more sweeps on each replica
	if n := len(r[0].fd.Decisions()); n != 1 {
		t.Fatalf("%d FlexDeploy rejections, want 1", n)
	}
	if n := len(r[0].slack.CallsTo("chat.update")); n != 1 {
		t.Fatalf("%d message updates, want 1", n)
	}
}
