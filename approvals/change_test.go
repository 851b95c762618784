package approvals_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/tokens"
)

// changeLookup is a change system whose answer the test sets.
type changeLookup struct {
	calls  int
	answer func(number string) (approvals.ChangeRecord, error)
}

func (c *changeLookup) LookupChange(_ context.Context, number string) (approvals.ChangeRecord, error) {
	c.calls++
	return c.answer(number)
}

// changeEnv is a Service whose one policy requires a "snow" change, with a
// receipts key, and one task naming change CHG1 submitted and posted.
type changeEnv struct {
	svc    *approvals.Service
	store  *memStore
	clock  *manualClock
	lookup *changeLookup
	token  string
	id     string
	pub    ed25519.PublicKey
}

func newChangeEnv(t *testing.T, change string, answer func(string) (approvals.ChangeRecord, error)) *changeEnv {
	t.Helper()
	e := &changeEnv{store: newMemStore(), clock: &manualClock{now: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)}, lookup: &changeLookup{answer: answer}}
	issuer, _ := tokens.NewIssuer([]tokens.Key{{ID: "k1", Secret: []byte(strings.Repeat("s", 32))}})
	pub, key, _ := ed25519.GenerateKey(nil)
	e.pub = pub
	svc, err := approvals.NewService(approvals.Config{
		Store: e.store, Tokens: issuer, Clock: e.clock.Now, ReceiptKey: key,
		Tools: mustTools(t, approvals.Tool{Name: "acme", Decide: func(context.Context, *approvals.Task, approvals.Action, string, bool) error { return nil }}),

		Changes: approvals.ChangeSystems{"snow": e.lookup},
		Rules: func() approvals.Rules {
			return approvals.Rules{DefaultTTL: 24 * time.Hour, Policies: []approvals.Policy{{
				Name: "prod", Approvers: approvals.Approvers{Users: []string{"UA", "UB"}}, RequiredApprovals: 1, RequireChange: "snow"}}}
		},
		Chats: testChats(funcNotifier{post: func(_ *approvals.Task, token string) (approvals.MessageRef, error) {
			e.token = token
			return approvals.MessageRef{Channel: "C1", TS: "1.1"}, nil
		}}, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	task, _, err := svc.Submit(context.Background(), approvals.Submission{Source: "acme", TaskID: "t1", Context: approvals.Context{Environment: "production", Change: change}})
	if err != nil {
		t.Fatal(err)
	}
	e.id = task.ID
	if _, err := svc.Work(context.Background(), task.ID); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *changeEnv) decide(user string, a approvals.Action) (*approvals.Task, error) {
	return e.svc.Decide(context.Background(), approvals.DecideRequest{Token: e.token, Action: a, User: approvals.Person{ID: user, Name: user}, Reason: "r"})
}

func window(from, to time.Time) (*time.Time, *time.Time) { return &from, &to }

func TestChangeGateRefusesApprovalsUntilTheChangeHolds(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	start, end := window(now.Add(-time.Hour), now.Add(time.Hour))
	lateStart, lateEnd := window(now.Add(time.Hour), now.Add(2*time.Hour))
	for _, tc := range []struct {
		name    string
		change  string
		rec     approvals.ChangeRecord
		err     error
		want    error
		mention string // the refusal's text names this
	}{
		{"not approved", "CHG1", approvals.ChangeRecord{State: "Assess", NotApproved: "approval requested, state Assess", Start: start, End: end}, nil,
			approvals.ErrChangeNotReady, "change CHG1 is not approved (approval requested, state Assess)"},
		{"outside its window", "CHG1", approvals.ChangeRecord{State: "Scheduled", Approved: true, Start: lateStart, End: lateEnd}, nil,
			approvals.ErrChangeNotReady, "change CHG1 is not in its window (2026-06-01 11:00 UTC to 2026-06-01 12:00 UTC)"},
		{"unreachable", "CHG1", approvals.ChangeRecord{}, errors.New("snow: connection refused"),
			approvals.ErrChangeUnknown, "change CHG1 could not be looked up in snow"},
		{"does not exist", "CHG1", approvals.ChangeRecord{}, approvals.ErrNotFound,
			approvals.ErrChangeNotReady, "change CHG1 does not exist in snow"},
		{"names none", "", approvals.ChangeRecord{}, nil,
			approvals.ErrChangeNotReady, "names no change record, and policy prod requires an approved one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newChangeEnv(t, tc.change, func(string) (approvals.ChangeRecord, error) { return tc.rec, tc.err })
			_, err := e.decide("UA", approvals.ActionApprove)
			if !errors.Is(err, tc.want) {
				t.Fatalf("approve: %v, want %v", err, tc.want)
			}
			if reply := approvals.Reply(err, "Acme", "Slack"); !strings.Contains(reply, tc.mention) || !strings.Contains(reply, "Rejecting still works") {
				t.Errorf("reply %q does not say %q and that rejecting works", reply, tc.mention)
			}
			if got := e.store.task(t, e.id); got.Status != approvals.StatusPending || len(got.Approvals) != 0 {
				t.Fatalf("a refused approval changed the task: %s, %d approvals", got.Status, len(got.Approvals))
			}
			// Someone who may not decide is told so, without a look-up.
			calls := e.lookup.calls
			if _, err := e.decide("UNOBODY", approvals.ActionApprove); !errors.Is(err, approvals.ErrNotApprover) {
				t.Errorf("a non-approver: %v, want ErrNotApprover", err)
			}
			if e.lookup.calls != calls {
				t.Errorf("a non-approver's click looked the change up")
			}
			task, err := e.decide("UB", approvals.ActionReject)
			if err != nil || task.Status != approvals.StatusRejected {
				t.Fatalf("reject: %v (%v), want rejected", err, task)
			}
		})
	}
}

func TestChangeApprovedAndInWindowLetsApprovalsThroughAndIsSigned(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	start, end := window(now.Add(-time.Hour), now.Add(time.Hour))
	e := newChangeEnv(t, "CHG1", func(n string) (approvals.ChangeRecord, error) {
		return approvals.ChangeRecord{State: "Implement", Approved: true, Start: start, End: end, URL: "https://snow.example/" + n}, nil
	})
	task, err := e.decide("UA", approvals.ActionApprove)
	if err != nil || task.Status != approvals.StatusApproved {
		t.Fatalf("approve: %v, want approved", err)
	}
	rec := task.ChangeRecord
	if rec == nil || rec.Number != "CHG1" || rec.System != "snow" || rec.State != "Implement" || !rec.CheckedAt.Equal(now) {
		t.Fatalf("the decision kept change record %+v", rec)
	}
	receipt, err := approvals.ReceiptOf(task)
	if err != nil {
		t.Fatal(err)
	}
	if receipt.Change == nil || receipt.Change.Number != "CHG1" || receipt.Context.Change != "CHG1" {
		t.Errorf("the receipt does not name the change: %+v", receipt.Change)
	}
	if err := approvals.VerifyReceipt(receipt, e.pub); err != nil {
		t.Errorf("receipt: %v", err)
	}
	// The change record is signed: changing it breaks the receipt.
	receipt.Change.State = "Closed"
	if err := approvals.VerifyReceipt(receipt, e.pub); err == nil {
		t.Error("a receipt with its change record changed verifies")
	}
}

func TestChangeLookupsAreCachedForThirtySecondsAndFailuresNot(t *testing.T) {
	t.Parallel()
	fail := true
	e := newChangeEnv(t, "CHG1", func(string) (approvals.ChangeRecord, error) {
		if fail {
			return approvals.ChangeRecord{}, errors.New("down")
		}
		return approvals.ChangeRecord{State: "Assess"}, nil
	})
	calls := e.lookup.calls
	for range 2 {
		if _, err := e.decide("UA", approvals.ActionApprove); !errors.Is(err, approvals.ErrChangeUnknown) {
			t.Fatalf("approve: %v, want ErrChangeUnknown", err)
		}
	}
	if got := e.lookup.calls - calls; got < 2 {
		t.Errorf("a failed look-up was kept: %d look-ups for two clicks", got)
	}
	fail = false
	calls = e.lookup.calls
	for range 3 {
		if _, err := e.decide("UA", approvals.ActionApprove); !errors.Is(err, approvals.ErrChangeNotReady) {
			t.Fatalf("approve: %v, want ErrChangeNotReady", err)
		}
	}
	if got := e.lookup.calls - calls; got != 1 {
		t.Errorf("%d look-ups within 30 s, want 1", got)
	}
	e.clock.Advance(approvals.ChangeCacheTTL)
	if _, err := e.decide("UA", approvals.ActionApprove); !errors.Is(err, approvals.ErrChangeNotReady) {
		t.Fatal(err)
	}
	if got := e.lookup.calls - calls; got != 2 {
		t.Errorf("%d look-ups after 30 s, want 2", got)
	}
}

func TestParseChange(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"", "CHG0030001", "OPS-123", " OPS-123 ", "a.b_c"} {
		if _, err := approvals.ParseChange(ok); err != nil {
			t.Errorf("ParseChange(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"CHG1^ORnumber=CHG2", "../x", "a b", "-x", strings.Repeat("a", 65), "CHG=1", "x/y", "é"} {
		if _, err := approvals.ParseChange(bad); !errors.Is(err, approvals.ErrInvalid) {
			t.Errorf("ParseChange(%q): %v, want ErrInvalid", bad, err)
		}
	}
}
