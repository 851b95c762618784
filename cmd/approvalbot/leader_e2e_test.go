package main

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/dynalitetest"
	"github.com/approvalbot/approvalbot/internal/flexdeploytest"
)

// TestOneReplicaReconciles: three replicas share a table; each pending task
// is asked about by one of them per interval, not by all three; when that
// replica stops, another takes the loop over.
func TestOneReplicaReconciles(t *testing.T) {
	t.Parallel()
	_, table := dynalitetest.NewTable(t)
	store := fmt.Sprintf("{driver: dynamodb, dynamodb: {table: %q, region: %q, endpoint: %q}}", table, dynalitetest.Region, dynalitetest.Endpoint())
	extra := "reconcile: {interval: 300ms}"
	var bots []*env
	for i := range 3 {
		e := newEnv(t)
		if i > 0 {
			e.slack.Close()
			e.fd.Close()
			e.slack, e.fd = bots[0].slack, bots[0].fd
		}
		e.store, e.extra, e.fdUser = store, extra, fmt.Sprintf("replica%d", i)
		e.start()
		bots = append(bots, e)
	}
	fd := bots[0].fd
	const n = 20
	for i := range n {
		bots[i%3].submit(fmt.Sprintf(`{"taskId":"lead%02d","environment":"PROD"}`, i))
	}
	readers := func(since int) map[string]int {
		out := map[string]int{}
		for _, r := range fd.Reads()[since:] {
			out[r.User()]++
		}
		return out
	}
	// Several rounds: every read comes from one replica.
	waitFor(t, "a few reconcile rounds", func() bool { return len(fd.Reads()) >= 4*n })
	who := readers(0)
	if len(who) != 1 {
		t.Fatalf("reads by replica: %v; want one replica reconciling", who)
	}
	var leader int
	for user := range who {
		fmt.Sscanf(user, "replica%d", &leader)
	}
	// Stop the leader: another takes the loop over.
	start, mark := time.Now(), len(fd.Reads())
	bots[leader].stop()
	waitFor(t, "another replica reconciling", func() bool {
		for user := range readers(mark) {
			if user != fmt.Sprintf("replica%d", leader) {
				return true
			}
		}
		return false
	})
	t.Logf("reconcile taken over %s after the leader stopped", time.Since(start).Round(time.Millisecond))
	waitFor(t, "another round", func() bool { return len(fd.Reads()) >= mark+2*n })
	if who := readers(mark + n); len(who) != 1 {
		t.Errorf("after the hand-over, reads by replica: %v", who)
	}
}

// TestStoppedReplicaHandsItsWorkOver: a replica whose delivery is waiting
// for a retry stops (SIGTERM's graceful stop); it hands the task's lease
// back, so another replica delivers at once instead of waiting the 60 s
// lease out.
func TestStoppedReplicaHandsItsWorkOver(t *testing.T) {
	t.Parallel()
	r := replicas(t, 2, "outbox: {lease: 60s}")
	var failing atomic.Bool
	failing.Store(true)
	r[0].fd.SetAnswer(func(c flexdeploytest.Call, n int) (int, string) {
		if failing.Load() {
			return http.StatusServiceUnavailable, `{"message":"down"}`
		}
		return 0, ""
	})
	id := r[0].submit(`{"taskId":"handover","environment":"PROD"}`)
	msg := r[0].message("handover")
	r[0].click(msg, "approve", "UALICE", "Alice")
	r[0].waitTask(id, "a failed delivery attempt", func(task map[string]any) bool {
		d, _ := task["delivery"].(map[string]any)
		a, _ := d["attempts"].(float64)
		return a >= 1
	})
	failing.Store(false)
	start := time.Now()
	// r[0] may have delivered on its own retry meanwhile; either way the
	// task must be delivered without waiting the lease out.
	r[0].stop()
	r[1].waitTask(id, "delivered by the other replica", delivered)
	t.Logf("delivered %s after the stop", time.Since(start).Round(time.Millisecond))
	if n := len(r[1].fd.Decisions()); n < 2 {
		t.Fatalf("%d decision calls, want the failed one and the one that went through", n)
	}
}
