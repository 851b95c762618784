package main

import (
	"fmt"
	"sync"
	"testing"
)

// TestReconcileReachesEveryPendingTask: of 1,200 pending tasks only the
// last 100 were decided in FlexDeploy's own UI; every one of them is closed
// within a few reconcile rounds, and no other.
func TestReconcileReachesEveryPendingTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.extra = "reconcile: {interval: 300ms}"
	e.start()
	const n, decided = 1200, 100
	ids := make([]string, n)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				ids[i] = e.submit(fmt.Sprintf(`{"taskId":"rc%04d","environment":"PROD"}`, i))
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	for i := n - decided; i < n; i++ {
		e.fd.SetStatus(fmt.Sprintf("rc%04d", i), "REJECTED")
	}
	for i := n - decided; i < n; i++ {
		e.waitTask(ids[i], "closed as decided in FlexDeploy", func(task map[string]any) bool { return task["status"] == "rejected" })
	}
	for i := range n - decided {
		if _, task := e.task(ids[i]); task["status"] != "pending" {
			t.Fatalf("task %s, never decided anywhere, is %v", ids[i], task["status"])
		}
	}
	if got := len(e.fd.Decisions()); got != 0 {
		t.Errorf("told FlexDeploy %d decisions it made itself", got)
	}
}
