package approvals_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/tokens"
)

// The lifecycle tests drive the Service by hand: a round of the outbox is
// one call of Work, time moves when the test says so, and every neighbour
// is a fake of func fields. Nothing runs in the background.

// toolCalls counts what the fake tool was asked.
type toolCalls struct {
	decides  []approvals.Action
	statuses int
	remote   approvals.Status // what the tool holds
}

// lifecycle is a Service on a memory store with a tool whose behaviour the
// test sets.
type lifecycle struct {
	svc      *approvals.Service
	store    *memStore
	clock    *manualClock
	calls    *toolCalls
	tokens   []string          // every token handed to Post and Update
	posted   []*approvals.Task // what each post showed
	onUpdate func(*approvals.Task)
	postErrs []error               // the answers of the next posts, before they go through
	jobs     []approvals.EventType // the outbox's job events, in order
}

// newLifecycle builds the service; tool is the tool "acme", which the test
// may give any Decide and Status (a nil Status: no status read).
func newLifecycle(t *testing.T, tool func(c *toolCalls) approvals.Tool) *lifecycle {
	t.Helper()
	l := &lifecycle{store: newMemStore(), clock: &manualClock{now: time.Now().UTC().Truncate(time.Second)}, calls: &toolCalls{remote: approvals.StatusPending}}
	issuer, err := tokens.NewIssuer([]tokens.Key{{ID: "k1", Secret: []byte(strings.Repeat("s", 32))}})
	if err != nil {
		t.Fatal(err)
	}
	tt := tool(l.calls)
	tt.Name = "acme"
	tt.DisplayName = "Acme Deploy"
	svc, err := approvals.NewService(approvals.Config{
		Store:  l.store,
		Tokens: issuer,
		Tools:  mustTools(t, tt),

		Rules: func() approvals.Rules {
			return approvals.Rules{DefaultTTL: time.Hour, Policies: []approvals.Policy{
				{Name: "quorum", Match: map[string]string{"environment": "quorum"}, RequiredApprovals: 2, Approvers: approvals.Approvers{Users: []string{"UALICE", "UBOB"}}},
				{Name: "three", Match: map[string]string{"environment": "three"}, RequiredApprovals: 3, Approvers: approvals.Approvers{Users: []string{"UALICE", "UBOB", "UCAROL"}}},
				{Name: "all", Approvers: approvals.Approvers{Users: []string{"UALICE", "UBOB"}}, OnExpiry: approvals.ExpiryReject},
			}}
		},
		Clock: l.clock.Now,
		Observer: approvals.ObserverFunc(func(_ context.Context, e approvals.Event) {
			if e.Job != "" {
				l.jobs = append(l.jobs, e.Type)
			}
		}),
		RetryMin: time.Second,
		RetryMax: 4 * time.Second,
		Chats: testChats(funcNotifier{
			post: func(task *approvals.Task, token string) (approvals.MessageRef, error) {
				if len(l.postErrs) > 0 {
					err := l.postErrs[0]
					l.postErrs = l.postErrs[1:]
					return approvals.MessageRef{}, err
				}
				cp := *task
				l.posted = append(l.posted, &cp)
				l.tokens = append(l.tokens, token)
				return approvals.MessageRef{Channel: "C1", TS: "1.000001"}, nil
			},
			update: func(t *approvals.Task, token string) error {
				if (t.Status == approvals.StatusPending) != (token != "") {
					return fmt.Errorf("update of a %s task with token %q", t.Status, token)
				}
				l.tokens = append(l.tokens, token)
				if l.onUpdate != nil {
					l.onUpdate(t)
				}
				return nil
			},
		}, funcDirectory{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	l.svc = svc
	return l
}

// appliedButLate is a tool whose decision call reaches the tool, which
// applies it, but whose answer is lost (a timeout, a dropped connection).
func appliedButLate(withStatus bool) func(c *toolCalls) approvals.Tool {
	return func(c *toolCalls) approvals.Tool {
		tool := approvals.Tool{
			Decide: func(_ context.Context, _ *approvals.Task, a approvals.Action, _ string, _ bool) error {
				c.decides = append(c.decides, a)
				if c.remote != approvals.StatusPending {
					return fmt.Errorf("%w: task is not in PENDING status", approvals.ErrToolDecided)
				}
				c.remote = approvals.StatusApproved
				if a == approvals.ActionReject {
					c.remote = approvals.StatusRejected
				}
				if len(c.decides) == 1 {
					return errors.New("acme did not answer within 10s")
				}
				return nil
			},
		}
		if withStatus {
			tool.Status = func(context.Context, *approvals.Task) (approvals.Status, error) {
				c.statuses++
				return c.remote, nil
			}
		}
		return tool
	}
}

// submit records a task and runs its first round (the post).
func (l *lifecycle) submit(t *testing.T, taskID, env string) *approvals.Task {
	t.Helper()
	task, created, err := l.svc.Submit(context.Background(), approvals.Submission{Source: "acme", TaskID: taskID, Context: approvals.Context{Environment: env}})
	if err != nil || !created {
		t.Fatalf("submit: created=%v err=%v", created, err)
	}
	l.work(t, task.ID)
	return l.store.task(t, task.ID)
}

// work runs one round and fails the test on an error.
func (l *lifecycle) work(t *testing.T, id string) approvals.Round {
	t.Helper()
	r, err := l.svc.Work(context.Background(), id)
	if err != nil {
		t.Fatalf("work %s: %v", id, err)
	}
	return r
}

// decide clicks with the task's token.
func (l *lifecycle) decide(t *testing.T, id string, a approvals.Action, user string) (*approvals.Task, error) {
	t.Helper()
	return l.svc.Decide(context.Background(), approvals.DecideRequest{Token: l.tokens[0], Action: a, User: approvals.Person{ID: user, Name: user}})
}

// untilIdle runs a round, then more, moving the clock to each retry, until
// the outbox is empty.
func (l *lifecycle) untilIdle(t *testing.T, id string) *approvals.Task {
	t.Helper()
	l.work(t, id)
	for range 20 {
		task := l.store.task(t, id)
		if len(task.Outbox) == 0 {
			return task
		}
		if due, ok := task.DueAt(); ok && due.After(l.clock.Now()) {
			l.clock.Advance(due.Sub(l.clock.Now()))
		}
		l.work(t, id)
	}
	t.Fatalf("task %s never became idle: %+v", id, l.store.task(t, id).Outbox)
	return nil
}

func TestLateAnswerIsAskedAboutNotSentAgain(t *testing.T) {
	t.Parallel()
	l := newLifecycle(t, appliedButLate(true))
	task := l.submit(t, "late", "prod")
	if _, err := l.decide(t, task.ID, approvals.ActionApprove, "UALICE"); err != nil {
		t.Fatal(err)
	}
	l.work(t, task.ID) // the call goes out; its answer is lost
	mid := l.store.task(t, task.ID)
	if mid.Delivery.State != approvals.DeliveryPending || !strings.Contains(mid.Delivery.LastError, "did not answer") {
		t.Fatalf("after the lost answer: delivery %+v", mid.Delivery)
	}
	done := l.untilIdle(t, task.ID)
	if len(l.calls.decides) != 1 {
		t.Errorf("decision calls = %d, want exactly 1", len(l.calls.decides))
	}
	if l.calls.statuses == 0 {
		t.Error("the retry did not read the tool's status first")
	}
	if done.Status != approvals.StatusApproved || done.Delivery.State != approvals.DeliveryDelivered {
		t.Errorf("final: status %s, delivery %+v; want approved and delivered", done.Status, done.Delivery)
	}
}

func TestToolWithoutStatusReadCountsAlreadyDecidedAsDelivered(t *testing.T) {
	t.Parallel()
	l := newLifecycle(t, appliedButLate(false))
	task := l.submit(t, "late", "prod")
	if _, err := l.decide(t, task.ID, approvals.ActionApprove, "UALICE"); err != nil {
		t.Fatal(err)
	}
	done := l.untilIdle(t, task.ID)
	if len(l.calls.decides) != 2 {
		t.Errorf("decision calls = %d, want 2 (the retry is answered 'already decided')", len(l.calls.decides))
	}
	if done.Delivery.State != approvals.DeliveryDelivered {
		t.Errorf("delivery %+v, want delivered", done.Delivery)
	}
}

// TestDecideIsToldWhenItIsARepeat: the outbox, which alone knows whether
// an earlier call may have gone through, tells the tool: the first call is
// no repeat, the one after a lost answer is.
func TestDecideIsToldWhenItIsARepeat(t *testing.T) {
	t.Parallel()
	var repeats []bool
	l := newLifecycle(t, func(c *toolCalls) approvals.Tool {
		tool := appliedButLate(false)(c)
		decide := tool.Decide
		tool.Decide = func(ctx context.Context, task *approvals.Task, a approvals.Action, notes string, repeat bool) error {
			repeats = append(repeats, repeat)
			return decide(ctx, task, a, notes, repeat)
		}
		return tool
	})
	task := l.submit(t, "repeat", "prod")
	if _, err := l.decide(t, task.ID, approvals.ActionApprove, "UALICE"); err != nil {
		t.Fatal(err)
	}
	l.untilIdle(t, task.ID)
	if want := []bool{false, true}; !slices.Equal(repeats, want) {
		t.Errorf("repeat of each call = %v, want %v", repeats, want)
	}
}

func TestAlreadyDecidedOnTheFirstCallIsAFailure(t *testing.T) {
	t.Parallel()
	l := newLifecycle(t, func(c *toolCalls) approvals.Tool {
		return approvals.Tool{Decide: func(context.Context, *approvals.Task, approvals.Action, string, bool) error {
			c.decides = append(c.decides, approvals.ActionApprove)
			return fmt.Errorf("%w: decided in its own UI", approvals.ErrToolDecided)
		}}
	})
	task := l.submit(t, "ui", "prod")
	if _, err := l.decide(t, task.ID, approvals.ActionApprove, "UALICE"); err != nil {
		t.Fatal(err)
	}
	done := l.untilIdle(t, task.ID)
	if len(l.calls.decides) != 1 || done.Delivery.State != approvals.DeliveryFailed {
		t.Errorf("calls %d, delivery %+v; want 1 call and a failed delivery", len(l.calls.decides), done.Delivery)
	}
}

func TestStatusReadFailingHoldsTheDecisionBack(t *testing.T) {
	t.Parallel()
	statusUp := false
	l := newLifecycle(t, func(c *toolCalls) approvals.Tool {
		tool := appliedButLate(true)(c)
		tool.Status = func(context.Context, *approvals.Task) (approvals.Status, error) {
			c.statuses++
			if !statusUp {
				return "", errors.New("acme: 503")
			}
			return c.remote, nil
		}
		return tool
	})
	task := l.submit(t, "blind", "prod")
	if _, err := l.decide(t, task.ID, approvals.ActionApprove, "UALICE"); err != nil {
		t.Fatal(err)
	}
	l.work(t, task.ID) // sent, answer lost
	for range 3 {
		l.clock.Advance(5 * time.Second)
		l.work(t, task.ID)
	}
	if len(l.calls.decides) != 1 || l.calls.statuses != 3 {
		t.Fatalf("while the status read fails: %d calls, %d reads; want 1 call and a read per round", len(l.calls.decides), l.calls.statuses)
	}
	statusUp = true
	if done := l.untilIdle(t, task.ID); done.Delivery.State != approvals.DeliveryDelivered || len(l.calls.decides) != 1 {
		t.Errorf("after recovery: delivery %+v, %d calls", done.Delivery, len(l.calls.decides))
	}
}

func TestTokensAreMintedByTheOutboxAndHandedOver(t *testing.T) {
	t.Parallel()
	l := newLifecycle(t, func(*toolCalls) approvals.Tool {
		return approvals.Tool{Decide: func(context.Context, *approvals.Task, approvals.Action, string, bool) error { return nil }}
	})
	task := l.submit(t, "q", "quorum")
	if _, err := l.decide(t, task.ID, approvals.ActionApprove, "UALICE"); err != nil {
		t.Fatal(err)
	}
	l.untilIdle(t, task.ID) // the progress update
	if _, err := l.decide(t, task.ID, approvals.ActionApprove, "UBOB"); err != nil {
		t.Fatal(err)
	}
	l.untilIdle(t, task.ID)
	// post, progress update (pending: the same token), final updates (none).
	if len(l.tokens) < 3 || l.tokens[0] == "" || l.tokens[1] != l.tokens[0] {
		t.Fatalf("tokens handed over: %q", l.tokens)
	}
	for _, tok := range l.tokens[2:] {
		if tok != "" {
			t.Errorf("a final task's update got a token")
		}
	}
}

func TestExpiryInARound(t *testing.T) {
	t.Parallel()
	l := newLifecycle(t, appliedButLate(true))
	task := l.submit(t, "exp", "prod")
	l.clock.Advance(2 * time.Hour)
	done := l.untilIdle(t, task.ID)
	if done.Status != approvals.StatusExpired || len(l.calls.decides) != 1 || l.calls.decides[0] != approvals.ActionReject {
		t.Errorf("status %s, calls %v; want expired and one reject (on_expiry: reject)", done.Status, l.calls.decides)
	}
}

func TestReconcileOneTask(t *testing.T) {
	t.Parallel()
	l := newLifecycle(t, appliedButLate(true))
	task := l.submit(t, "ui", "prod")
	if err := l.svc.Reconcile(context.Background(), l.store.task(t, task.ID)); err != nil {
		t.Fatal(err)
	}
	if got := l.store.task(t, task.ID); got.Status != approvals.StatusPending {
		t.Fatalf("reconciled a task still pending at the tool: %s", got.Status)
	}
	l.calls.remote = approvals.StatusRejected
	if err := l.svc.Reconcile(context.Background(), l.store.task(t, task.ID)); err != nil {
		t.Fatal(err)
	}
	done := l.untilIdle(t, task.ID)
	if done.Status != approvals.StatusRejected || done.Delivery.State != approvals.DeliveryNotNeeded || len(l.calls.decides) != 0 {
		t.Errorf("status %s, delivery %+v, %d calls; want rejected, nothing told", done.Status, done.Delivery, len(l.calls.decides))
	}
	if !strings.Contains(done.Reason, "Acme Deploy") {
		t.Errorf("reason %q does not name the tool by its display name", done.Reason)
	}
}

func TestUnknownSourceIsRefusedAtIntake(t *testing.T) {
	t.Parallel()
	l := newLifecycle(t, appliedButLate(true))
	_, _, err := l.svc.Submit(context.Background(), approvals.Submission{Source: "other", TaskID: "1"})
	if !errors.Is(err, approvals.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

func TestLookupByTheToolsOwnID(t *testing.T) {
	t.Parallel()
	l := newLifecycle(t, func(c *toolCalls) approvals.Tool {
		tool := appliedButLate(true)(c)
		tool.ReadByTaskID = true
		return tool
	})
	task := l.submit(t, "8900", "prod")
	for _, id := range []string{task.ID, "8900"} {
		got, err := l.svc.Lookup(context.Background(), id)
		if err != nil || got.ID != task.ID {
			t.Errorf("Lookup(%q) = %v, %v", id, got, err)
		}
	}
	if _, err := l.svc.Lookup(context.Background(), "nope"); !errors.Is(err, approvals.ErrNotFound) {
		t.Errorf("Lookup(nope) err = %v", err)
	}
}

func TestCorruptRecordFailsItsOwnWorkOnly(t *testing.T) {
	t.Parallel()
	l := newLifecycle(t, appliedButLate(true))
	good := l.submit(t, "good", "prod")
	bad := l.submit(t, "bad", "prod")
	l.store.corrupt[bad.ID] = true
	if _, err := l.svc.Work(context.Background(), bad.ID); !errors.Is(err, approvals.ErrCorrupt) {
		t.Fatalf("work on the damaged record: %v, want ErrCorrupt", err)
	}
	if _, err := l.svc.Get(context.Background(), bad.ID); !errors.Is(err, approvals.ErrCorrupt) {
		t.Fatalf("get of the damaged record: %v, want ErrCorrupt", err)
	}
	l.clock.Advance(2 * time.Hour)
	if done := l.untilIdle(t, good.ID); done.Status != approvals.StatusExpired {
		t.Errorf("the good task: %s, want expired", done.Status)
	}
}

func TestEnrichmentHappensInTheOutboxBeforeThePost(t *testing.T) {
	t.Parallel()
	enriched := 0
	l := newLifecycle(t, func(c *toolCalls) approvals.Tool {
		return approvals.Tool{Enrich: func(_ context.Context, sub *approvals.Submission) error {
			enriched++
			sub.Environment = "quorum" // the webhook lacked it; the quorum policy matches on it
			return nil
		}}
	})
	task, _, err := l.svc.Submit(context.Background(), approvals.Submission{Source: "acme", TaskID: "e1"})
	if err != nil {
		t.Fatal(err)
	}
	if enriched != 0 {
		t.Fatal("intake waited on the tool")
	}
	if task.Policy != "all" {
		t.Fatalf("policy at intake %q", task.Policy)
	}
	done := l.untilIdle(t, task.ID)
	posted := l.posted
	if enriched != 1 || len(posted) != 1 {
		t.Fatalf("enriched %d times, posted %d times", enriched, len(posted))
	}
	if posted[0].Environment != "quorum" || posted[0].Policy != "quorum" || done.RequiredApprovals != 2 {
		t.Errorf("posted with environment %q, policy %q, quorum %d: want the enriched context and the policy it matches", posted[0].Environment, posted[0].Policy, done.RequiredApprovals)
	}
	// The buttons carry a token of the final policy's expiry.
	if _, err := l.svc.Decide(context.Background(), approvals.DecideRequest{Token: l.tokens[0], Action: approvals.ActionApprove, User: approvals.Person{ID: "UALICE"}}); err != nil {
		t.Errorf("the posted token does not work: %v", err)
	}
}

// A tool that says an intake's context is complete has its task posted in
// the first round: no round of enrichment (a read and a write) first.
func TestCompleteIntakeIsPostedInTheFirstRound(t *testing.T) {
	t.Parallel()
	enriched := 0
	l := newLifecycle(t, func(c *toolCalls) approvals.Tool {
		return approvals.Tool{
			Enrich: func(_ context.Context, sub *approvals.Submission) error {
				enriched++
				sub.Environment = "quorum"
				return nil
			},
			NeedsEnrichment: func(c approvals.Context) bool { return c.Environment == "" },
		}
	})
	complete, _, err := l.svc.Submit(context.Background(), approvals.Submission{Source: "acme", TaskID: "c1", Context: approvals.Context{Environment: "prod"}})
	if err != nil {
		t.Fatal(err)
	}
	l.work(t, complete.ID)
	if got := l.store.task(t, complete.ID); enriched != 0 || postedTS(got) == "" || len(got.Outbox) != 0 {
		t.Errorf("complete intake after one round: enriched %d times, message %q, outbox %+v; want posted, never enriched", enriched, postedTS(got), got.Outbox)
	}
	sparse, _, err := l.svc.Submit(context.Background(), approvals.Submission{Source: "acme", TaskID: "c2"})
	if err != nil {
		t.Fatal(err)
	}
	if done := l.untilIdle(t, sparse.ID); enriched != 1 || done.Environment != "quorum" || postedTS(done) == "" {
		t.Errorf("sparse intake: enriched %d times, environment %q, message %q; want enriched, then posted", enriched, done.Environment, postedTS(done))
	}
}

func TestFailingEnrichmentStillPosts(t *testing.T) {
	t.Parallel()
	tries := 0
	l := newLifecycle(t, func(c *toolCalls) approvals.Tool {
		return approvals.Tool{Enrich: func(context.Context, *approvals.Submission) error {
			tries++
			return errors.New("acme did not answer within 10s")
		}}
	})
	task, _, err := l.svc.Submit(context.Background(), approvals.Submission{Source: "acme", TaskID: "e2"})
	if err != nil {
		t.Fatal(err)
	}
	done := l.untilIdle(t, task.ID)
	if tries != 3 || postedTS(done) == "" || len(l.tokens) != 1 {
		t.Errorf("after %d tries: message %q, %d posts; want 3 tries and the message posted", tries, postedTS(done), len(l.tokens))
	}
}

func TestStatusReadRefusedForGoodIsNotFollowedByABlindCall(t *testing.T) {
	t.Parallel()
	l := newLifecycle(t, func(c *toolCalls) approvals.Tool {
		tool := appliedButLate(true)(c)
		tool.Status = func(context.Context, *approvals.Task) (approvals.Status, error) {
			c.statuses++
			return "", approvals.Permanent(errors.New("acme: 404 task not found"))
		}
		return tool
	})
	task := l.submit(t, "gone", "prod")
	if _, err := l.decide(t, task.ID, approvals.ActionApprove, "UALICE"); err != nil {
		t.Fatal(err)
	}
	done := l.untilIdle(t, task.ID)
	if len(l.calls.decides) != 1 || done.Delivery.State != approvals.DeliveryFailed {
		t.Errorf("%d calls, delivery %+v; want the first call only and a failed delivery", len(l.calls.decides), done.Delivery)
	}
}

// A vote that arrives while the message is being redrawn saw that update
// waiting and queued none; the round must then queue another, or the
// message would show the state before the vote.
func TestVoteDuringARedrawIsDrawnToo(t *testing.T) {
	t.Parallel()
	l := newLifecycle(t, func(*toolCalls) approvals.Tool {
		return approvals.Tool{Decide: func(context.Context, *approvals.Task, approvals.Action, string, bool) error { return nil }}
	})
	task := l.submit(t, "race", "three")
	if _, err := l.decide(t, task.ID, approvals.ActionApprove, "UALICE"); err != nil {
		t.Fatal(err)
	}
	var drawn []int
	voted := false
	l.onUpdate = func(u *approvals.Task) {
		drawn = append(drawn, len(u.Approvals))
		if !voted {
			voted = true
			// Bob approves while Alice's vote is on its way to Slack.
			if _, err := l.decide(t, task.ID, approvals.ActionApprove, "UBOB"); err != nil {
				t.Errorf("Bob: %v", err)
			}
		}
	}
	done := l.untilIdle(t, task.ID)
	if done.Status != approvals.StatusPending || len(drawn) < 2 || drawn[len(drawn)-1] != 2 {
		t.Errorf("status %s, the message was drawn with %v approvals; want it drawn again after Bob's", done.Status, drawn)
	}
}

// A post sent away to come back at its turn under a rate limit this
// process keeps is no failure: no attempt is counted (so a later failure's
// backoff starts from the first), and the lease is kept through the turn,
// however far off, since only this process's queue holds the place. A
// Retry-After of the remote side as long is a failure like any other, and
// past the outbox's longest retry the lease goes back.
func TestTurnWaitIsNoFailureAndKeepsTheLease(t *testing.T) {
	t.Parallel()
	l := newLifecycle(t, func(*toolCalls) approvals.Tool { return approvals.Tool{} })
	turn := func(d time.Duration) error {
		return &approvals.RetryAfterError{Err: errors.New("slack: ratelimited"), After: d, Turn: true}
	}
	l.postErrs = []error{turn(3 * time.Minute), turn(time.Minute), errors.New("slack: HTTP 503")}
	task, _, err := l.svc.Submit(context.Background(), approvals.Submission{Source: "acme", TaskID: "turn"})
	if err != nil {
		t.Fatal(err)
	}
	for _, wait := range []time.Duration{3 * time.Minute, time.Minute} {
		start := l.clock.Now()
		round := l.work(t, task.ID)
		got := l.store.task(t, task.ID)
		post := got.Outbox[len(got.Outbox)-1]
		if post.Kind != approvals.JobPost || post.Attempts != 0 || !post.Waiting || post.LastError != "" || !post.NotBefore.Equal(start.Add(wait)) {
			t.Fatalf("after a turn of %v: post job %+v; want no attempt, waiting until %v", wait, post, start.Add(wait))
		}
		if got.Lease.Owner != l.svc.Owner() || got.Lease.Until.Before(start.Add(wait)) {
			t.Errorf("after a turn of %v: lease %+v; want this process's through %v", wait, got.Lease, start.Add(wait))
		}
		if !round.RetryAt.Equal(start.Add(wait)) {
			t.Errorf("after a turn of %v: the round comes back at %v, want %v", wait, round.RetryAt, start.Add(wait))
		}
		l.clock.Advance(wait)
	}
	l.work(t, task.ID) // the 503: the first failure
	got := l.store.task(t, task.ID)
	post := got.Outbox[len(got.Outbox)-1]
	if post.Attempts != 1 || post.Waiting || post.NotBefore.After(l.clock.Now().Add(time.Second)) {
		t.Errorf("after the 503: post job %+v; want attempt 1, retried within the first backoff (1 s)", post)
	}
	if done := l.untilIdle(t, task.ID); postedTS(done) == "" {
		t.Errorf("never posted: %+v", done.Outbox)
	}
	want := []approvals.EventType{approvals.EventJobWait, approvals.EventJobWait, approvals.EventJobRetry, approvals.EventJobDone}
	if fmt.Sprint(l.jobs) != fmt.Sprint(want) {
		t.Errorf("job events %v, want %v", l.jobs, want)
	}

	// The remote side's own Retry-After, as long: a failure, and beyond the
	// longest retry (4 s here) the lease is handed back.
	l.postErrs = []error{&approvals.RetryAfterError{Err: errors.New("slack: ratelimited"), After: 3 * time.Minute}}
	other, _, err := l.svc.Submit(context.Background(), approvals.Submission{Source: "acme", TaskID: "remote"})
	if err != nil {
		t.Fatal(err)
	}
	round := l.work(t, other.ID)
	got = l.store.task(t, other.ID)
	post = got.Outbox[len(got.Outbox)-1]
	if post.Attempts != 1 || post.Waiting || got.Lease.Owner != "" || !round.RetryAt.IsZero() {
		t.Errorf("after Slack's own Retry-After of 3m: post %+v, lease %+v, back at %v; want attempt 1 and the lease handed back", post, got.Lease, round.RetryAt)
	}
}
