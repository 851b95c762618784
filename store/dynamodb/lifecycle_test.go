package dynamodb_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/dynalitetest"
	ddbstore "github.com/approvalbot/approvalbot/store/dynamodb"
	"github.com/approvalbot/approvalbot/tokens"
)

// recorder stands in for Slack and FlexDeploy: it only remembers.
type recorder struct {
	mu      sync.Mutex
	token   string
	updates int
	calls   int
}

func (r *recorder) Post(_ context.Context, _ *approvals.Task, _, token string) (approvals.MessageRef, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.token = token
	return approvals.MessageRef{Channel: "C1", TS: "1.000001"}, nil
}

func (r *recorder) Update(context.Context, *approvals.Task, []approvals.MessageRef, string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updates++
	return nil
}

func (r *recorder) Notice(context.Context, *approvals.Task, approvals.MessageRef, approvals.NoticeKind) error {
	return nil
}
func (r *recorder) Direct(context.Context, *approvals.Task, []approvals.MessageRef, string) ([]approvals.MessageRef, error) {
	return nil, nil
}

func (r *recorder) Deliver(context.Context, *approvals.Task, approvals.Action, string, bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	return nil
}

func (r *recorder) state() (token string, updates, calls int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.token, r.updates, r.calls
}

// TestWritesPerTaskLifecycle counts the DynamoDB calls the service makes for
// one whole task: intake, post, decide, deliver, update. The design's
// budget is at most 4 writes, and never a Scan.
func TestWritesPerTaskLifecycle(t *testing.T) {
	t.Parallel()
	_, table := dynalitetest.NewTable(t)
	counter := dynalitetest.NewCounter()
	store := ddbstore.New(dynalitetest.NewClient(t, counter.Option()), table)
	issuer, err := tokens.NewIssuer([]tokens.Key{{ID: "k1", Secret: []byte(strings.Repeat("k", 32))}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	tools, err := approvals.NewTools(approvals.Tool{Name: "flexdeploy", Decide: rec.Deliver})
	if err != nil {
		t.Fatal(err)
	}
	chats, err := approvals.NewChats(approvals.Chat{Name: "slack", Notifier: rec, PostsByDefault: true, Primary: true})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := approvals.NewService(approvals.Config{
		Store: store, Tokens: issuer, Chats: chats, Tools: tools,
		Rules: func() approvals.Rules {
			return approvals.Rules{DefaultTTL: time.Hour, Policies: []approvals.Policy{{Name: "all", Approvers: approvals.Approvers{Users: []string{"U1"}}}}}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	scheduler := approvals.NewScheduler(svc, approvals.SchedulerConfig{SweepInterval: time.Hour, ReconcileInterval: -1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = scheduler.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	// The start-up sweep ran before the task exists; count from here.
	waitUntil("start-up sweep", func() bool { return counter.Count("Query") > 0 })
	counter.Reset()

	task, _, err := svc.Submit(ctx, approvals.Submission{Source: "flexdeploy", TaskID: "count"})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil("posted", func() bool {
		got, err := store.Get(ctx, task.ID)
		return err == nil && len(got.Messages) > 0 && got.Messages[0].Posted() && len(got.Outbox) == 0
	})
	token, _, _ := rec.state()
	if _, err := svc.Decide(ctx, approvals.DecideRequest{Token: token, Action: approvals.ActionApprove, User: approvals.Person{ID: "U1", Name: "Alice"}}); err != nil {
		t.Fatal(err)
	}
	var final *approvals.Task
	waitUntil("delivered and updated", func() bool {
		final, err = store.Get(ctx, task.ID)
		return err == nil && final.Delivery.State == approvals.DeliveryDelivered && len(final.Outbox) == 0
	})
	if _, updates, calls := rec.state(); updates != 1 || calls != 1 {
		t.Fatalf("%d message updates and %d deliveries, want 1 and 1", updates, calls)
	}
	// The test's own reads above are GetItems; count only writes and scans.
	puts, updates, scans := counter.Count("PutItem"), counter.Count("UpdateItem"), counter.Count("Scan")
	t.Logf("DynamoDB calls for one task lifecycle: %v", counter.Snapshot())
	if puts != 1 || updates != 3 || scans != 0 {
		t.Fatalf("PutItem %d, UpdateItem %d, Scan %d; want 1, 3, 0 (4 writes)", puts, updates, scans)
	}
}
