package approvals_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/store/bolt"
	"github.com/approvalbot/approvalbot/tokens"
)

// fakeNotifier records what would reach Slack; its func fields inject failures.
type fakeNotifier struct {
	mu      sync.Mutex
	posts   []string // tokens posted
	updates []*approvals.Task
	reminds int
	post    func(t *approvals.Task) error
	update  func(t *approvals.Task) error
}

func (n *fakeNotifier) Post(_ context.Context, t *approvals.Task, _, token string) (approvals.MessageRef, error) {
	if n.post != nil {
		if err := n.post(t); err != nil {
			return approvals.MessageRef{}, err
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.posts = append(n.posts, token)
	return approvals.MessageRef{Channel: "C1", TS: fmt.Sprintf("1700000000.%06d", len(n.posts))}, nil
}

func (n *fakeNotifier) Update(_ context.Context, t *approvals.Task, _ []approvals.MessageRef, token string) error {
	if t.Status == approvals.StatusPending && token == "" {
		return errors.New("a pending task updated without its token")
	}
	if t.Status.Final() && token != "" {
		return errors.New("a final task updated with a token")
	}
	if n.update != nil {
		if err := n.update(t); err != nil {
			return err
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	cp := *t
	n.updates = append(n.updates, &cp)
	return nil
}

func (n *fakeNotifier) Direct(context.Context, *approvals.Task, []approvals.MessageRef, string) ([]approvals.MessageRef, error) {
	return nil, nil
}

func (n *fakeNotifier) Notice(context.Context, *approvals.Task, approvals.MessageRef, approvals.NoticeKind) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reminds++
	return nil
}

func (n *fakeNotifier) token(t *testing.T) string {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.posts) == 0 {
		t.Fatal("nothing posted")
	}
	return n.posts[len(n.posts)-1]
}

func (n *fakeNotifier) counts() (posts, updates int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.posts), len(n.updates)
}

func (n *fakeNotifier) lastUpdate() *approvals.Task {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.updates) == 0 {
		return nil
	}
	return n.updates[len(n.updates)-1]
}

type delivery struct {
	action approvals.Action
	notes  string
}

type fakeDeployer struct {
	mu      sync.Mutex
	calls   []delivery
	deliver func(call int) error // call counts from 1
	remote  func() (approvals.Status, error)
}

// tool is the fake as a registered deployment tool.
func (d *fakeDeployer) tool() approvals.Tool {
	return approvals.Tool{Name: "acme", DisplayName: "Acme Deploy", ReadByTaskID: true, Decide: d.Deliver, Status: d.RemoteStatus}
}

func (d *fakeDeployer) Deliver(_ context.Context, _ *approvals.Task, action approvals.Action, notes string, _ bool) error {
	d.mu.Lock()
	d.calls = append(d.calls, delivery{action, notes})
	n := len(d.calls)
	d.mu.Unlock()
	if d.deliver != nil {
		return d.deliver(n)
	}
	return nil
}

func (d *fakeDeployer) RemoteStatus(context.Context, *approvals.Task) (approvals.Status, error) {
	if d.remote != nil {
		return d.remote()
	}
	return approvals.StatusPending, nil
}

func (d *fakeDeployer) Calls() []delivery {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]delivery(nil), d.calls...)
}

type fakeDirectory struct {
	groups map[string][]string
	emails map[string]string
}

func (d *fakeDirectory) GroupMembers(_ context.Context, id string) ([]string, error) {
	return d.groups[id], nil
}

func (d *fakeDirectory) UserIDByEmail(_ context.Context, email string) (string, error) {
	if id, ok := d.emails[email]; ok {
		return id, nil
	}
	return "", approvals.ErrNotFound
}

// clock is a settable clock; zero means the real time.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

type harness struct {
	svc      *approvals.Service
	sched    *approvals.Scheduler
	schedCfg approvals.SchedulerConfig
	store    *bolt.Store
	path     string
	notifier *fakeNotifier
	deployer *fakeDeployer
	clock    *clock
	cfg      approvals.Config
	cancel   context.CancelFunc
	done     chan struct{}
}

var testPolicies = []approvals.Policy{
	{Name: "prod", Match: map[string]string{"environment": "PROD*"}, RequiredApprovals: 2, OnExpiry: approvals.ExpiryReject, TTL: time.Hour,
		Approvers: approvals.Approvers{Users: []string{"UALICE", "UBOB", "UCAROL"}}},
	{Name: "strict", Match: map[string]string{"environment": "strict"}, RequireRejectReason: true, AllowSelfApproval: false,
		Approvers: approvals.Approvers{Groups: []string{"SREL"}, Emails: []string{"lead@example.com"}}},
	{Name: "self", Match: map[string]string{"environment": "self"}, AllowSelfApproval: true,
		Approvers: approvals.Approvers{Users: []string{"UALICE"}}},
	{Name: "default", Approvers: approvals.Approvers{Users: []string{"UALICE", "UBOB"}, Groups: []string{"SREL"}}},
}

func newHarness(t *testing.T, mutate func(*approvals.Config)) *harness {
	t.Helper()
	path := filepath.Join(t.TempDir(), "approvalbot.db")
	h := &harness{path: path, notifier: &fakeNotifier{}, deployer: &fakeDeployer{}, clock: &clock{}}
	h.open(t)
	issuer, err := tokens.NewIssuer([]tokens.Key{{ID: "k1", Secret: []byte(strings.Repeat("s", 32))}})
	if err != nil {
		t.Fatal(err)
	}
	h.cfg = approvals.Config{
		Tokens: issuer,

		Tools: mustTools(t, h.deployer.tool()),
		Rules: func() approvals.Rules {
			return approvals.Rules{Policies: testPolicies, DefaultTTL: 24 * time.Hour}
		},
		Clock:    h.clock.Now,
		RetryMin: 10 * time.Millisecond,
		RetryMax: 50 * time.Millisecond,
		Chats:    testChats(h.notifier, &fakeDirectory{groups: map[string][]string{"SREL": {"UGROUPIE"}}, emails: map[string]string{"lead@example.com": "ULEAD", "dev@example.com": "UDEV"}}),
	}
	h.schedCfg = approvals.SchedulerConfig{
		SweepInterval:     time.Hour, // tests sweep by hand
		ReconcileInterval: -1,
	}
	if mutate != nil {
		mutate(&h.cfg)
	}
	h.start(t)
	t.Cleanup(func() { h.stop() })
	return h
}

func (h *harness) open(t *testing.T) {
	t.Helper()
	s, err := bolt.Open(h.path)
	if err != nil {
		t.Fatal(err)
	}
	h.store = s
}

func (h *harness) start(t *testing.T) {
	t.Helper()
	h.cfg.Store = h.store
	svc, err := approvals.NewService(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc
	h.sched = approvals.NewScheduler(svc, h.schedCfg)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		_ = h.sched.Run(ctx)
	}()
}

func (h *harness) stop() {
	if h.cancel != nil {
		h.cancel()
		<-h.done
		h.cancel = nil
		_ = h.store.Close()
	}
}

func (h *harness) submit(t *testing.T, taskID, env string) *approvals.Task {
	t.Helper()
	task, created, err := h.svc.Submit(context.Background(), approvals.Submission{
		Source: "acme", TaskID: taskID,
		Context: approvals.Context{Environment: env, RequestedBy: "dev@example.com", Description: "deploy " + taskID},
	})
	if err != nil || !created {
		t.Fatalf("submit: created=%v err=%v", created, err)
	}
	return task
}

// posted submits a task and waits for its message, returning the token.
func (h *harness) posted(t *testing.T, taskID, env string) (*approvals.Task, string) {
	t.Helper()
	task := h.submit(t, taskID, env)
	waitFor(t, "message posted", func() bool {
		got, err := h.store.Get(context.Background(), task.ID)
		return err == nil && postedTS(got) != ""
	})
	return task, h.notifier.token(t)
}

func (h *harness) get(t *testing.T, id string) *approvals.Task {
	t.Helper()
	got, err := h.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func alice() approvals.Person { return approvals.Person{ID: "UALICE", Name: "Alice"} }
func bob() approvals.Person   { return approvals.Person{ID: "UBOB", Name: "Bob"} }

func idle(t *testing.T, h *harness, id string) *approvals.Task {
	t.Helper()
	var got *approvals.Task
	waitFor(t, "outbox empty", func() bool {
		got = h.get(t, id)
		return len(got.Outbox) == 0
	})
	return got
}

func TestSubmitIsIdempotent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	first, _ := h.posted(t, "8900", "dev")
	again, created, err := h.svc.Submit(context.Background(), approvals.Submission{Source: "acme", TaskID: "8900", Context: approvals.Context{Description: "resubmitted"}})
	if err != nil || created {
		t.Fatalf("repeat: created=%v err=%v", created, err)
	}
	if again.ID != first.ID || string(again.TokenHash) != string(first.TokenHash) || again.Description != "deploy 8900" {
		t.Fatalf("repeat changed the record: %+v", again)
	}
	idle(t, h, first.ID)
	if posts, _ := h.notifier.counts(); posts != 1 {
		t.Fatalf("%d messages posted, want 1", posts)
	}
	if first.ID != "acme-8900" || first.Policy != "default" || first.RequiredApprovals != 1 {
		t.Fatalf("task: id %q policy %q required %d", first.ID, first.Policy, first.RequiredApprovals)
	}
	if len(first.TokenHash) != 32 {
		t.Fatalf("token hash of %d bytes", len(first.TokenHash))
	}
}

func TestSubmitValidates(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, sub := range []approvals.Submission{{Source: "acme"}, {TaskID: "1"}, {Source: "acme", TaskID: "  "}} {
		if _, _, err := h.svc.Submit(context.Background(), sub); !errors.Is(err, approvals.ErrInvalid) {
			t.Errorf("submit %+v: %v, want ErrInvalid", sub, err)
		}
	}
}

func TestApproveDeliversOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	task, token := h.posted(t, "1", "dev")
	got, err := h.svc.Decide(context.Background(), approvals.DecideRequest{Token: token, Action: approvals.ActionApprove, User: alice()})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != approvals.StatusApproved || got.DecidedBy.ID != "UALICE" {
		t.Fatalf("after approve: %s by %+v", got.Status, got.DecidedBy)
	}
	final := idle(t, h, task.ID)
	calls := h.deployer.Calls()
	if len(calls) != 1 || calls[0].action != approvals.ActionApprove || !strings.Contains(calls[0].notes, "Alice (UALICE)") {
		t.Fatalf("deliveries: %+v", calls)
	}
	if final.Delivery.State != approvals.DeliveryDelivered || final.Lease.Owner != "" {
		t.Fatalf("delivery %+v lease %+v", final.Delivery, final.Lease)
	}
	if u := h.notifier.lastUpdate(); u == nil || u.Status != approvals.StatusApproved || u.Delivery.State != approvals.DeliveryDelivered {
		t.Fatalf("last message update: %+v", u)
	}
	// One update shows both the decision and the delivery.
	if _, updates := h.notifier.counts(); updates != 1 {
		t.Fatalf("%d message updates, want 1", updates)
	}
	if _, err := h.svc.Decide(context.Background(), approvals.DecideRequest{Token: token, Action: approvals.ActionReject, User: bob()}); !errors.Is(err, approvals.ErrAlreadyDecided) {
		t.Fatalf("second decision: %v", err)
	}
}

func TestConcurrentClicksDecideExactlyOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	task, token := h.posted(t, "50", "dev")
	var wins, decidedAlready atomic.Int32
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := alice()
			action := approvals.ActionApprove
			if i%2 == 1 {
				user, action = bob(), approvals.ActionReject
			}
			_, err := h.svc.Decide(context.Background(), approvals.DecideRequest{Token: token, Action: action, User: user})
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, approvals.ErrAlreadyDecided), errors.Is(err, approvals.ErrAlreadyVoted):
				decidedAlready.Add(1)
			default:
				t.Errorf("click: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || decidedAlready.Load() != 49 {
		t.Fatalf("%d clicks decided, %d refused; want 1 and 49", wins.Load(), decidedAlready.Load())
	}
	idle(t, h, task.ID)
	if n := len(h.deployer.Calls()); n != 1 {
		t.Fatalf("%d deliveries, want 1", n)
	}
}

func TestQuorumCountsDistinctPeople(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	task, token := h.posted(t, "q", "PROD-eu")
	if task.RequiredApprovals != 2 || task.Policy != "prod" {
		t.Fatalf("policy %q required %d", task.Policy, task.RequiredApprovals)
	}
	ctx := context.Background()
	got, err := h.svc.Decide(ctx, approvals.DecideRequest{Token: token, Action: approvals.ActionApprove, User: alice()})
	if err != nil || got.Status != approvals.StatusPending || len(got.Approvals) != 1 {
		t.Fatalf("first vote: %v %+v", err, got)
	}
	if _, err := h.svc.Decide(ctx, approvals.DecideRequest{Token: token, Action: approvals.ActionApprove, User: alice()}); !errors.Is(err, approvals.ErrAlreadyVoted) {
		t.Fatalf("same person again: %v", err)
	}
	waitFor(t, "progress shown", func() bool { u := h.notifier.lastUpdate(); return u != nil && len(u.Approvals) == 1 })
	got, err = h.svc.Decide(ctx, approvals.DecideRequest{Token: token, Action: approvals.ActionApprove, User: bob()})
	if err != nil || got.Status != approvals.StatusApproved || got.DecidedBy.ID != "UBOB" {
		t.Fatalf("second vote: %v %+v", err, got)
	}
	idle(t, h, task.ID)
	calls := h.deployer.Calls()
	if len(calls) != 1 || !strings.Contains(calls[0].notes, "Alice (UALICE) and Bob (UBOB)") {
		t.Fatalf("deliveries: %+v", calls)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	_, devToken := h.posted(t, "r1", "dev")
	_, strictToken := h.posted(t, "r2", "strict")
	h.posted(t, "r3", "self")
	cases := []struct {
		name   string
		token  string
		action approvals.Action
		user   approvals.Person
		reason string
		want   error
	}{
		{"not an approver", devToken, approvals.ActionApprove, approvals.Person{ID: "UMALLORY"}, "", approvals.ErrNotApprover},
		{"requester may not approve", strictToken, approvals.ActionApprove, approvals.Person{ID: "UDEV"}, "", approvals.ErrNotApprover},
		{"reject needs a reason", strictToken, approvals.ActionReject, approvals.Person{ID: "UGROUPIE"}, "  ", approvals.ErrReasonRequired},
		{"tampered token", devToken[:len(devToken)-2] + "xx", approvals.ActionApprove, alice(), "", approvals.ErrBadToken},
		{"garbage token", "not-a-token", approvals.ActionApprove, alice(), "", approvals.ErrBadToken},
		{"unknown action", devToken, "merge", alice(), "", approvals.ErrInvalid},
	}
	for _, tc := range cases {
		_, err := h.svc.Decide(ctx, approvals.DecideRequest{Token: tc.token, Action: tc.action, User: tc.user, Reason: tc.reason})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// Nothing was decided and nothing delivered.
	for _, id := range []string{"acme-r1", "acme-r2", "acme-r3"} {
		if got := h.get(t, id); got.Status != approvals.StatusPending || len(got.Approvals) != 0 {
			t.Errorf("%s changed: %s %+v", id, got.Status, got.Approvals)
		}
	}
	if n := len(h.deployer.Calls()); n != 0 {
		t.Fatalf("%d deliveries after refusals", n)
	}
	// Refusals are audited.
	if audit := h.get(t, "acme-r1").Audit; !strings.Contains(fmt.Sprint(audit), "refused") {
		t.Errorf("no refusal in the audit trail: %+v", audit)
	}
	// A group member, and an approver named by email, may decide.
	if _, err := h.svc.Decide(ctx, approvals.DecideRequest{Token: strictToken, Action: approvals.ActionReject, User: approvals.Person{ID: "ULEAD"}, Reason: "freeze"}); err != nil {
		t.Fatalf("email approver: %v", err)
	}
	if _, err := h.svc.Decide(ctx, approvals.DecideRequest{Token: devToken, Action: approvals.ActionApprove, User: approvals.Person{ID: "UGROUPIE"}}); err != nil {
		t.Fatalf("group member: %v", err)
	}
	if got := h.get(t, "acme-r2"); got.Reason != "freeze" {
		t.Errorf("reason %q", got.Reason)
	}
}

func TestSelfApproval(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *approvals.Config) {
		c.Rules = func() approvals.Rules {
			return approvals.Rules{DefaultTTL: time.Hour, Policies: []approvals.Policy{
				{Name: "self", Match: map[string]string{"environment": "self"}, AllowSelfApproval: true, Approvers: approvals.Approvers{Users: []string{"UDEV"}}},
				{Name: "noself", Approvers: approvals.Approvers{Users: []string{"UDEV", "UALICE"}}},
			}}
		}
	})
	ctx := context.Background()
	_, noSelf := h.posted(t, "s1", "prod")
	if _, err := h.svc.Decide(ctx, approvals.DecideRequest{Token: noSelf, Action: approvals.ActionApprove, User: approvals.Person{ID: "UDEV"}}); !errors.Is(err, approvals.ErrSelfApproval) {
		t.Fatalf("requester approving own task: %v", err)
	}
	if _, err := h.svc.Decide(ctx, approvals.DecideRequest{Token: noSelf, Action: approvals.ActionReject, User: approvals.Person{ID: "UDEV"}}); err != nil {
		t.Fatalf("requester withdrawing own task: %v", err)
	}
	_, self := h.posted(t, "s2", "self")
	if _, err := h.svc.Decide(ctx, approvals.DecideRequest{Token: self, Action: approvals.ActionApprove, User: approvals.Person{ID: "UDEV"}}); err != nil {
		t.Fatalf("self-approval allowed by policy: %v", err)
	}
}

func TestNoPolicyFailsClosed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *approvals.Config) {
		c.Rules = func() approvals.Rules {
			return approvals.Rules{DefaultTTL: time.Hour, Policies: []approvals.Policy{
				{Name: "prod", Match: map[string]string{"environment": "prod"}, Approvers: approvals.Approvers{Users: []string{"UALICE"}}},
			}}
		}
	})
	task, token := h.posted(t, "np", "dev")
	if task.Policy != "" {
		t.Fatalf("policy %q matched", task.Policy)
	}
	if _, err := h.svc.Decide(context.Background(), approvals.DecideRequest{Token: token, Action: approvals.ActionApprove, User: alice()}); !errors.Is(err, approvals.ErrNoPolicy) {
		t.Fatalf("decide without policy: %v", err)
	}
}

func TestDeliveryRetriesUntilAccepted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.deployer.deliver = func(call int) error {
		if call <= 3 {
			return errors.New("acme: 503 Service Unavailable")
		}
		return nil
	}
	task, token := h.posted(t, "retry", "dev")
	if _, err := h.svc.Decide(context.Background(), approvals.DecideRequest{Token: token, Action: approvals.ActionApprove, User: alice()}); err != nil {
		t.Fatal(err)
	}
	final := idle(t, h, task.ID)
	if n := len(h.deployer.Calls()); n != 4 {
		t.Fatalf("%d delivery calls, want 4", n)
	}
	if final.Delivery.State != approvals.DeliveryDelivered || final.Delivery.Attempts != 4 {
		t.Fatalf("delivery %+v", final.Delivery)
	}
}

func TestDeliveryRefusedIsFinal(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.deployer.deliver = func(int) error {
		return approvals.Permanent(errors.New("Acme Deploy answered 400 Bad Request: task is not pending"))
	}
	task, token := h.posted(t, "4xx", "dev")
	if _, err := h.svc.Decide(context.Background(), approvals.DecideRequest{Token: token, Action: approvals.ActionReject, User: alice()}); err != nil {
		t.Fatal(err)
	}
	final := idle(t, h, task.ID)
	if n := len(h.deployer.Calls()); n != 1 {
		t.Fatalf("%d delivery calls, want 1", n)
	}
	if final.Delivery.State != approvals.DeliveryFailed || !strings.Contains(final.Delivery.LastError, "not pending") {
		t.Fatalf("delivery %+v", final.Delivery)
	}
	if u := h.notifier.lastUpdate(); u == nil || u.Delivery.State != approvals.DeliveryFailed {
		t.Fatalf("message not updated with the failure: %+v", u)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	var first atomic.Int64
	var second atomic.Int64
	h := newHarness(t, nil)
	h.notifier.post = func(*approvals.Task) error {
		now := time.Now().UnixNano()
		if first.CompareAndSwap(0, now) {
			return &approvals.RetryAfterError{Err: errors.New("slack: rate limited"), After: 300 * time.Millisecond}
		}
		second.CompareAndSwap(0, now)
		return nil
	}
	task := h.submit(t, "429", "dev")
	idle(t, h, task.ID)
	if gap := time.Duration(second.Load() - first.Load()); gap < 300*time.Millisecond {
		t.Fatalf("retried after %v, before the 300ms Retry-After", gap)
	}
}

func TestRestartResumesDelivery(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	task, token := h.posted(t, "restart", "dev")
	// The click's write lands, then the process dies before its outbox runs:
	// a service that is not running records the decision only.
	h.stop()
	h.open(t)
	h.cfg.Store = h.store
	idleSvc, err := approvals.NewService(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := idleSvc.Decide(context.Background(), approvals.DecideRequest{Token: token, Action: approvals.ActionApprove, User: alice()}); err != nil {
		t.Fatal(err)
	}
	if n := len(h.deployer.Calls()); n != 0 {
		t.Fatalf("delivered before the restart: %d", n)
	}
	_ = h.store.Close()
	h.open(t)
	h.start(t)
	final := idle(t, h, task.ID)
	if n := len(h.deployer.Calls()); n != 1 || final.Delivery.State != approvals.DeliveryDelivered {
		t.Fatalf("after restart: %d calls, delivery %+v", n, final.Delivery)
	}
}

func TestResumedDeliveryAsksTheToolFirst(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	task, token := h.posted(t, "asked", "dev")
	h.stop()
	h.open(t)
	h.cfg.Store = h.store
	idleSvc, _ := approvals.NewService(h.cfg)
	if _, err := idleSvc.Decide(context.Background(), approvals.DecideRequest{Token: token, Action: approvals.ActionApprove, User: alice()}); err != nil {
		t.Fatal(err)
	}
	// The earlier process's call went through before it died.
	h.deployer.remote = func() (approvals.Status, error) { return approvals.StatusApproved, nil }
	_ = h.store.Close()
	h.open(t)
	h.start(t)
	final := idle(t, h, task.ID)
	if n := len(h.deployer.Calls()); n != 0 || final.Delivery.State != approvals.DeliveryDelivered {
		t.Fatalf("resumed delivery: %d calls, delivery %+v; want 0 and delivered", n, final.Delivery)
	}
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	cases := []struct {
		env      string
		policy   string
		calls    int
		delivery approvals.DeliveryState
	}{
		{"PROD", "prod", 1, approvals.DeliveryDelivered},   // on_expiry: reject
		{"dev", "default", 0, approvals.DeliveryNotNeeded}, // on_expiry: ignore
	}
	for _, tc := range cases {
		t.Run(tc.policy, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			task, token := h.posted(t, "exp", tc.env)
			h.clock.Advance(25 * time.Hour)
			if _, err := h.svc.Decide(context.Background(), approvals.DecideRequest{Token: token, Action: approvals.ActionApprove, User: alice()}); !errors.Is(err, approvals.ErrExpired) {
				t.Fatalf("click after expiry: %v", err)
			}
			h.sched.Sweep(context.Background())
			waitFor(t, "expired", func() bool { return h.get(t, task.ID).Status == approvals.StatusExpired })
			final := idle(t, h, task.ID)
			if final.Status != approvals.StatusExpired || final.Delivery.State != tc.delivery {
				t.Fatalf("after sweep: %s, delivery %+v", final.Status, final.Delivery)
			}
			calls := h.deployer.Calls()
			if len(calls) != tc.calls || (tc.calls == 1 && calls[0].action != approvals.ActionReject) {
				t.Fatalf("deliveries %+v", calls)
			}
			if u := h.notifier.lastUpdate(); u == nil || u.Status != approvals.StatusExpired {
				t.Fatalf("message not updated: %+v", u)
			}
			h.sched.Sweep(context.Background())
			time.Sleep(20 * time.Millisecond)
			if n := len(h.deployer.Calls()); n != tc.calls {
				t.Fatalf("a second sweep delivered again: %d", n)
			}
		})
	}
}

func TestExpiredOnRead(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	task, _ := h.posted(t, "read", "dev")
	h.clock.Advance(48 * time.Hour)
	got, err := h.svc.Get(context.Background(), task.ID)
	if err != nil || got.Status != approvals.StatusExpired {
		t.Fatalf("read after expiry: %v %+v", err, got)
	}
}

func TestReconcileClosesTasksDecidedElsewhere(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	task, token := h.posted(t, "ui", "dev")
	h.deployer.remote = func() (approvals.Status, error) { return approvals.StatusRejected, nil }
	h.sched.Reconcile(context.Background())
	final := idle(t, h, task.ID)
	if final.Status != approvals.StatusRejected || final.Delivery.State != approvals.DeliveryNotNeeded || !strings.Contains(final.Reason, "Acme Deploy") {
		t.Fatalf("after reconcile: %s %q %+v", final.Status, final.Reason, final.Delivery)
	}
	if n := len(h.deployer.Calls()); n != 0 {
		t.Fatalf("told the tool what it decided itself: %d calls", n)
	}
	if u := h.notifier.lastUpdate(); u == nil || u.Status != approvals.StatusRejected {
		t.Fatalf("message not updated: %+v", u)
	}
	if _, err := h.svc.Decide(context.Background(), approvals.DecideRequest{Token: token, Action: approvals.ActionApprove, User: alice()}); !errors.Is(err, approvals.ErrAlreadyDecided) {
		t.Fatalf("click after a decision elsewhere: %v", err)
	}
}

func TestPostsWaitForSlackCredentials(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *approvals.Config) { c.Chats = testChats(nil, nil) })
	task := h.submit(t, "wait", "dev")
	waitFor(t, "a failed post attempt", func() bool {
		got := h.get(t, task.ID)
		return len(got.Outbox) > 0 && got.Outbox[0].Attempts > 0
	})
	h.svc.SetNotifier("slack", h.notifier)
	waitFor(t, "message posted", func() bool { return postedTS(h.get(t, task.ID)) != "" })
}

func TestReminder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *approvals.Config) {
		c.Rules = func() approvals.Rules {
			return approvals.Rules{Policies: []approvals.Policy{{Name: "p", TTL: 2 * time.Hour, RemindBefore: 30 * time.Minute, Approvers: approvals.Approvers{Users: []string{"UALICE"}}}}}
		}
	})
	task, _ := h.posted(t, "remind", "dev")
	h.clock.Advance(91 * time.Minute)
	h.sched.Sweep(context.Background())
	waitFor(t, "reminder", func() bool { h.notifier.mu.Lock(); defer h.notifier.mu.Unlock(); return h.notifier.reminds > 0 })
	final := idle(t, h, task.ID)
	h.notifier.mu.Lock()
	reminds := h.notifier.reminds
	h.notifier.mu.Unlock()
	if reminds != 1 || final.Status != approvals.StatusPending {
		t.Fatalf("%d reminders, status %s", reminds, final.Status)
	}
}

// TestTokenDecidesOnlyItsTask: a token names its task, and the stored hash
// binds it: even a validly signed token for another task's id (one that
// was not minted for that record) is refused.
func TestTokenDecidesOnlyItsTask(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	a, tokenA := h.posted(t, "bind-a", "dev")
	b := h.submit(t, "bind-b", "dev")
	waitFor(t, "b posted", func() bool { return postedTS(h.get(t, b.ID)) != "" })

	forged := *h.get(t, b.ID)
	forged.Nonce = a.Nonce // a signing-key holder's token for b's id, not b's own
	forgedToken, err := h.cfg.Tokens.Mint(&forged)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Decide(context.Background(), approvals.DecideRequest{Token: forgedToken, Action: approvals.ActionApprove, User: alice()}); !errors.Is(err, approvals.ErrBadToken) {
		t.Fatalf("forged token for b: %v, want ErrBadToken", err)
	}
	got, err := h.svc.Decide(context.Background(), approvals.DecideRequest{Token: tokenA, Action: approvals.ActionApprove, User: alice()})
	if err != nil || got.ID != a.ID {
		t.Fatalf("a's token decided %v (%v)", got, err)
	}
	if h.get(t, b.ID).Status != approvals.StatusPending {
		t.Fatal("b was decided by a's token")
	}
}

// TestFinishingLateKeepsATakenOverLease: a process whose work outlived its
// lease records what it did, but leaves the lease to the process that took
// the work over.
func TestFinishingLateKeepsATakenOverLease(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	h := newHarness(t, nil)
	h.notifier.post = func(*approvals.Task) error {
		close(entered)
		<-release
		return nil
	}
	task := h.submit(t, "late", "dev")
	<-entered
	other := approvals.Lease{Owner: "other-process", Until: time.Now().Add(time.Hour).UTC()}
	if _, err := h.store.Update(context.Background(), task.ID, func(t *approvals.Task) error {
		t.Lease = other
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	close(release)
	waitFor(t, "the post recorded", func() bool { return postedTS(h.get(t, task.ID)) != "" })
	if got := h.get(t, task.ID).Lease; got.Owner != other.Owner {
		t.Fatalf("lease after the late finish: %+v, want the other process's", got)
	}
}

func mustTools(t *testing.T, tools ...approvals.Tool) *approvals.Tools {
	t.Helper()
	r, err := approvals.NewTools(tools...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// While requests people and tools wait on are busy, the outbox's workers
// but the first yield before each task, for a bounded time; when they are
// not, nobody waits.
func TestWorkersYieldWhileRequestsAreBusy(t *testing.T) {
	t.Parallel()
	issuer, err := tokens.NewIssuer([]tokens.Key{{ID: "k1", Secret: []byte(strings.Repeat("s", 32))}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := approvals.NewService(approvals.Config{Store: newMemStore(), Tokens: issuer, Tools: mustTools(t, approvals.Tool{Name: "acme"}),
		Rules: func() approvals.Rules { return approvals.Rules{} }})
	if err != nil {
		t.Fatal(err)
	}
	checks := 0
	for _, tc := range []struct {
		name string
		busy func() bool
		want int
	}{
		{"no busy signal", nil, 0},
		{"idle", func() bool { return false }, 0},
		{"busy for three checks", func() bool { checks++; return checks <= 3 }, 3},
		{"busy throughout: bounded", func() bool { return true }, approvals.YieldBound},
	} {
		sc := approvals.NewScheduler(svc, approvals.SchedulerConfig{Busy: tc.busy})
		if got := approvals.YieldSteps(sc); got != tc.want {
			t.Errorf("%s: yielded %d steps, want %d", tc.name, got, tc.want)
		}
	}
}

// Busy throughout, the outbox still gets every task posted: yielding is
// bounded, and the first worker never yields.
func TestBusyRequestsNeverStopTheOutbox(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.stop()
	h.open(t)
	h.schedCfg.Busy = func() bool { return true }
	h.start(t)
	var ids []string
	for i := range 20 {
		ids = append(ids, h.submit(t, fmt.Sprintf("busy-%d", i), "dev").ID)
	}
	for _, id := range ids {
		waitFor(t, "message posted while busy", func() bool { return postedTS(h.get(t, id)) != "" })
	}
}

// TestPollingSubmitsWhatTheToolFinds: a tool's Poll runs once at the
// scheduler's start (and every PollInterval); what it finds becomes a task,
// and finding it again, as polling does, keeps it one task.
func TestPollingSubmitsWhatTheToolFinds(t *testing.T) {
	t.Parallel()
	var polls atomic.Int32
	found := approvals.Submission{TaskID: "42-7", Context: approvals.Context{Environment: "dev", Project: "shop"}}
	h := newHarness(t, func(c *approvals.Config) {
		tool := (&fakeDeployer{}).tool()
		tool.Name, tool.ReadByTaskID = "poller", false
		tool.PollInterval = time.Hour // the first round only, at the start
		tool.Poll = func(context.Context) ([]approvals.Submission, error) {
			polls.Add(1)
			return []approvals.Submission{found}, errors.New("one project could not be read")
		}
		c.Tools = mustTools(t, tool)
	})
	id := approvals.TaskRecordID("poller", "42-7")
	waitFor(t, "the polled task", func() bool {
		got, err := h.svc.Get(context.Background(), id)
		return err == nil && got.Context.Project == "shop"
	})
	tool, _ := h.svc.Tools().Get("poller")
	h.sched.PollOnce(context.Background(), tool)
	found.Source = "poller"
	if _, created, err := h.svc.Submit(context.Background(), found); err != nil || created || polls.Load() != 2 {
		t.Errorf("after %d polls: Submit created %v (%v), want the one task there already after 2 polls", polls.Load(), created, err)
	}
}
