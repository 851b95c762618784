package approvals_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/tokens"
)

// pagingEnv is a Service and its Scheduler on a memory store, with small
// pages so that a few hundred tasks take many.
type pagingEnv struct {
	svc     *approvals.Service
	sched   *approvals.Scheduler
	store   *memStore
	decided sync.Map // task id at the tool → its status there
	asked   sync.Map // task id → how often the tool was asked
	corrupt atomic.Int32
	decides atomic.Int32
}

func newPagingEnv(t *testing.T, pageSize int, decide func(context.Context, *approvals.Task, approvals.Action, string, bool) error) *pagingEnv {
	t.Helper()
	e := &pagingEnv{store: newMemStore()}
	issuer, err := tokens.NewIssuer([]tokens.Key{{ID: "k1", Secret: []byte(strings.Repeat("s", 32))}})
	if err != nil {
		t.Fatal(err)
	}
	if decide == nil {
		decide = func(context.Context, *approvals.Task, approvals.Action, string, bool) error { return nil }
	}
	tool := approvals.Tool{
		Name: "acme",
		Decide: func(ctx context.Context, t *approvals.Task, a approvals.Action, notes string, repeat bool) error {
			e.decides.Add(1)
			return decide(ctx, t, a, notes, repeat)
		},
		Status: func(_ context.Context, t *approvals.Task) (approvals.Status, error) {
			n, _ := e.asked.LoadOrStore(t.TaskID, new(atomic.Int32))
			n.(*atomic.Int32).Add(1)
			if s, ok := e.decided.Load(t.TaskID); ok {
				return s.(approvals.Status), nil
			}
			return approvals.StatusPending, nil
		},
	}
	svc, err := approvals.NewService(approvals.Config{
		Store: e.store, Tokens: issuer, Tools: mustTools(t, tool),
		Rules: func() approvals.Rules {
			return approvals.Rules{DefaultTTL: time.Hour, Policies: []approvals.Policy{{Name: "all", Approvers: approvals.Approvers{Users: []string{"UALICE"}}}}}
		},
		RetryMin: time.Hour, RetryMax: time.Hour, // a failed delivery stays due later, untouched
		Observer: approvals.ObserverFunc(func(_ context.Context, ev approvals.Event) {
			if ev.Type == approvals.EventCorrupt {
				e.corrupt.Add(1)
			}
		}),
		Chats: testChats(funcNotifier{}, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	e.sched = approvals.NewScheduler(svc, approvals.SchedulerConfig{PageSize: pageSize, SweepInterval: time.Hour, ReconcileInterval: -1})
	return e
}

// seed records n pending tasks without running any outbox work.
func (e *pagingEnv) seed(t *testing.T, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		task, _, err := e.svc.Submit(context.Background(), approvals.Submission{Source: "acme", TaskID: fmt.Sprintf("%s%04d", prefix, i)})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = task.ID
	}
	return ids
}

func TestReconcileReachesEveryPendingTask(t *testing.T) {
	t.Parallel()
	e := newPagingEnv(t, 100, nil)
	ids := e.seed(t, "p", 1200)
	// Only the last 100 were decided in the tool's own UI.
	for i := 1100; i < 1200; i++ {
		e.decided.Store(fmt.Sprintf("p%04d", i), approvals.StatusApproved)
	}
	e.sched.Reconcile(context.Background())
	for i, id := range ids {
		got := e.store.task(t, id)
		if want := approvals.StatusPending; i >= 1100 {
			if got.Status != approvals.StatusApproved {
				t.Fatalf("task %d (decided in the tool) is %s after one reconcile round", i, got.Status)
			}
		} else if got.Status != want {
			t.Fatalf("task %d is %s, want pending", i, got.Status)
		}
	}
	// One round asks about each pending task once.
	for i := range 1200 {
		n, ok := e.asked.Load(fmt.Sprintf("p%04d", i))
		if !ok || n.(*atomic.Int32).Load() != 1 {
			t.Fatalf("task %d was asked %v times in one round, want once", i, n)
		}
	}
	if e.decides.Load() != 0 {
		t.Errorf("reconcile told the tool %d decisions", e.decides.Load())
	}
}

func TestRetryingDeliveriesDoNotStarvePendingTasks(t *testing.T) {
	t.Parallel()
	e := newPagingEnv(t, 100, func(context.Context, *approvals.Task, approvals.Action, string, bool) error {
		return fmt.Errorf("acme is down")
	})
	// 1,000 decided tasks whose deliveries keep failing: they are due
	// first in the index, before any pending task's expiry.
	stuck := e.seed(t, "s", 1000)
	for _, id := range stuck {
		if _, err := e.store.Update(context.Background(), id, func(t *approvals.Task) error {
			now := time.Now().UTC()
			t.Status, t.DecidedAt = approvals.StatusApproved, &now
			t.Outbox = []approvals.Job{{Seq: 99, Kind: approvals.JobDeliver, Attempts: 3, NotBefore: now.Add(-time.Minute)}}
			t.Lease = approvals.Lease{}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	pending := e.seed(t, "p", 50)
	for i := range 50 {
		e.decided.Store(fmt.Sprintf("p%04d", i), approvals.StatusRejected)
	}
	e.sched.Reconcile(context.Background())
	for _, id := range pending {
		if got := e.store.task(t, id); got.Status != approvals.StatusRejected {
			t.Fatalf("pending task %s behind 1,000 retrying deliveries is %s after a round", id, got.Status)
		}
	}
}

func TestSweepReachesEveryDueTaskAndSkipsDamagedRecords(t *testing.T) {
	t.Parallel()
	e := newPagingEnv(t, 100, nil)
	ids := e.seed(t, "d", 450)
	// Their messages are posted and nothing else is due but expiry; the
	// clock cannot move in a Scheduler, so make them expire now.
	for _, id := range ids {
		if _, err := e.store.Update(context.Background(), id, func(t *approvals.Task) error {
			t.ExpiresAt = time.Now().Add(-time.Second).UTC()
			t.Outbox, t.Lease = nil, approvals.Lease{}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	e.store.mu.Lock()
	e.store.corrupt[ids[0]] = true
	e.store.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.sched.Run(ctx) }() // Run sweeps at once
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range ids[1:] {
		for e.store.task(t, id).Status != approvals.StatusExpired {
			if time.Now().After(deadline) {
				t.Fatalf("task %s was not expired by the sweep", id)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	e.sched.Sweep(context.Background()) // a second round meets the damaged record again
	if n := e.corrupt.Load(); n != 1 {
		t.Errorf("the damaged record was reported %d times, want once", n)
	}
}
