package approvals_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/tokens"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

var weekdays = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}

// A click one minute before, inside and one minute after a window, in
// three time zones, across a DST change (Europe and the US change on
// different Sundays; Tokyo has none).
func TestWindowsAcrossZonesAndDST(t *testing.T) {
	t.Parallel()
	for _, zone := range []string{"Europe/Amsterdam", "America/New_York", "Asia/Tokyo"} {
		loc := mustZone(t, zone)
		p := &approvals.Policy{Windows: []approvals.Window{{Days: weekdays, From: 9 * 60, To: 17 * 60, Location: loc}}}
		// The Mondays before and after Europe's (2026-03-29) and the US's
		// (2026-03-08) spring change.
		for _, day := range []string{"2026-03-02", "2026-03-09", "2026-03-23", "2026-03-30"} {
			d, _ := time.ParseInLocation("2006-01-02", day, loc)
			open := time.Date(d.Year(), d.Month(), d.Day(), 9, 0, 0, 0, loc)
			close := time.Date(d.Year(), d.Month(), d.Day(), 17, 0, 0, 0, loc)
			for _, tc := range []struct {
				at   time.Time
				open bool
			}{
				{open.Add(-time.Minute), false},
				{open, true},
				{open.Add(4 * time.Hour), true},
				{close.Add(-time.Minute), true},
				{close.Add(time.Minute), false},
			} {
				got, why := approvals.ApprovingOpen(p, tc.at)
				if got != tc.open {
					t.Errorf("%s %s: open=%v (%s), want %v", zone, tc.at.In(loc), got, why, tc.open)
				}
				if !got && !strings.Contains(why, "opens ") {
					t.Errorf("%s %s: %q does not say when it opens", zone, tc.at.In(loc), why)
				}
			}
		}
		// Friday evening: opens Monday 09:00 in the window's zone.
		fri := time.Date(2026, 3, 27, 18, 0, 0, 0, loc)
		if _, why := approvals.ApprovingOpen(p, fri); !strings.Contains(why, "opens Mon 09:00 "+zone) {
			t.Errorf("%s Friday evening: %q", zone, why)
		}
	}
}

func TestFreezeClosesApproving(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC)
	to := time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC)
	p := &approvals.Policy{Freezes: []approvals.Freeze{{From: from, To: to, Reason: "Year-end freeze"}}}
	for _, tc := range []struct {
		at   time.Time
		open bool
	}{{from.Add(-time.Minute), true}, {from, false}, {to.Add(-time.Minute), false}, {to, true}} {
		got, why := approvals.ApprovingOpen(p, tc.at)
		if got != tc.open {
			t.Errorf("%s: open=%v, want %v", tc.at, got, tc.open)
		}
		if !got && why != "Year-end freeze: frozen until 2027-01-04 00:00 UTC" {
			t.Errorf("%s: why %q", tc.at, why)
		}
	}
}

// rulesEnv is a Service with one policy the test sets, its clock, and a
// directory with groups SRE = {USRE1, USRE2, UBOTH} and QA = {UQA, UBOTH}.
type rulesEnv struct {
	svc    *approvals.Service
	store  *memStore
	clock  *manualClock
	token  string
	notice []approvals.NoticeKind
	notes  []string
}

func newRulesEnv(t *testing.T, p approvals.Policy, now time.Time, requestedBy string) (*rulesEnv, string) {
	t.Helper()
	e := &rulesEnv{store: newMemStore(), clock: &manualClock{now: now}}
	issuer, _ := tokens.NewIssuer([]tokens.Key{{ID: "k1", Secret: []byte(strings.Repeat("s", 32))}})
	p.Name = "p"
	groups := map[string][]string{"SSRE": {"USRE1", "USRE2", "UBOTH"}, "SQA": {"UQA", "UBOTH"}, "SONCALL": {"UONCALL", "UDEV"}}
	svc, err := approvals.NewService(approvals.Config{
		Store: e.store, Tokens: issuer, Clock: e.clock.Now,
		Tools: mustTools(t, approvals.Tool{Name: "acme", Decide: func(_ context.Context, _ *approvals.Task, _ approvals.Action, notes string, _ bool) error {
			e.notes = append(e.notes, notes)
			return nil
		}}),

		Rules: func() approvals.Rules {
			return approvals.Rules{DefaultTTL: 30 * 24 * time.Hour, Policies: []approvals.Policy{p}}
		},
		Chats: testChats(funcNotifier{
			post: func(_ *approvals.Task, token string) (approvals.MessageRef, error) {
				e.token = token
				return approvals.MessageRef{Channel: "C1", TS: "1.1"}, nil
			},
			notice: func(_ *approvals.Task, kind approvals.NoticeKind) error {
				e.notice = append(e.notice, kind)
				return nil
			},
		}, funcDirectory{members: func(g string) ([]string, error) { return groups[g], nil }, byEmail: func(email string) (string, error) {
			if email == "dev@example.com" {
				return "UDEV", nil
			}
			return "", approvals.ErrNotFound
		}}),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	task, _, err := svc.Submit(context.Background(), approvals.Submission{Source: "acme", TaskID: "t1", Context: approvals.Context{Environment: "production", RequestedBy: requestedBy}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Work(context.Background(), task.ID); err != nil {
		t.Fatal(err)
	}
	return e, task.ID
}

func (e *rulesEnv) approve(user string, mutate ...func(*approvals.DecideRequest)) (*approvals.Task, error) {
	req := approvals.DecideRequest{Token: e.token, Action: approvals.ActionApprove, User: approvals.Person{ID: user, Name: user}}
	for _, m := range mutate {
		m(&req)
	}
	return e.svc.Decide(context.Background(), req)
}

func TestRequireFromEachGroupInEveryOrder(t *testing.T) {
	t.Parallel()
	policy := approvals.Policy{RequiredApprovals: 2, RequireFrom: []approvals.Requirement{
		{Label: "SRE", Group: "SSRE", Count: 1}, {Label: "QA", Group: "SQA", Count: 1},
	}}
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		overlap bool
		votes   []string
		decided int // the vote (1-based) that decides; 0: none does
	}{
		{"SRE then QA", false, []string{"USRE1", "UQA"}, 2},
		{"QA then SRE", false, []string{"UQA", "USRE1"}, 2},
		{"two SREs are not a QA", false, []string{"USRE1", "USRE2"}, 0},
		{"one in both counts once", false, []string{"UBOTH"}, 0},
		{"one in both, then an SRE: both filled", false, []string{"UBOTH", "USRE1"}, 2},
		{"an SRE, then one in both", false, []string{"USRE1", "UBOTH"}, 2},
		{"one in both, then one in both? no: a person votes once", false, []string{"UBOTH", "UBOTH"}, 0},
		{"overlap: one in both fills both, but two people are required", true, []string{"UBOTH"}, 0},
		{"overlap: one in both and anyone in a group", true, []string{"UBOTH", "USRE2"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := policy
			p.Overlap = tc.overlap
			e, id := newRulesEnv(t, p, now, "")
			decided := 0
			for i, user := range tc.votes {
				task, err := e.approve(user)
				if err != nil && !errors.Is(err, approvals.ErrAlreadyVoted) {
					t.Fatalf("vote %d by %s: %v", i+1, user, err)
				}
				if task != nil && task.Status == approvals.StatusApproved && decided == 0 {
					decided = i + 1
				}
			}
			if decided != tc.decided {
				t.Errorf("decided by vote %d, want %d", decided, tc.decided)
			}
			got := e.store.task(t, id)
			pol := p
			prog := approvals.RequirementProgress(got, &pol)
			if len(prog) != 2 || prog[0].Name != "SRE" || prog[1].Name != "QA" {
				t.Errorf("progress %+v", prog)
			}
		})
	}
}

func TestWindowGateOnDecisions(t *testing.T) {
	t.Parallel()
	loc := mustZone(t, "Europe/Amsterdam")
	p := approvals.Policy{Approvers: approvals.Approvers{Users: []string{"UALICE"}},
		Windows: []approvals.Window{{Days: weekdays, From: 9 * 60, To: 17 * 60, Location: loc}}}
	saturday := time.Date(2026, 6, 6, 12, 0, 0, 0, loc)
	e, id := newRulesEnv(t, p, saturday, "")
	_, err := e.approve("UALICE")
	var r *approvals.Refusal
	if !errors.Is(err, approvals.ErrApprovingClosed) || !errors.As(err, &r) || !strings.Contains(approvals.Reply(err, "", "Slack"), "opens Mon 09:00 Europe/Amsterdam") {
		t.Fatalf("approve on Saturday: %v (%q)", err, approvals.Reply(err, "", "Slack"))
	}
	// Rejects always work.
	if task, err := e.svc.Decide(context.Background(), approvals.DecideRequest{Token: e.token, Action: approvals.ActionReject, User: approvals.Person{ID: "UALICE"}}); err != nil || task.Status != approvals.StatusRejected || task.ID != id {
		t.Fatalf("reject on Saturday: %v", err)
	}
}

func TestWindowChangeRedrawsTheMessage(t *testing.T) {
	t.Parallel()
	loc := mustZone(t, "Europe/Amsterdam")
	p := approvals.Policy{Approvers: approvals.Approvers{Users: []string{"UALICE"}},
		Windows: []approvals.Window{{Days: weekdays, From: 9 * 60, To: 17 * 60, Location: loc}}}
	saturday := time.Date(2026, 6, 6, 12, 0, 0, 0, loc)
	e, id := newRulesEnv(t, p, saturday, "")
	task := e.store.task(t, id)
	var redraw time.Time
	for _, j := range task.Outbox {
		if j.Kind == approvals.JobUpdate {
			redraw = j.NotBefore
		}
	}
	if want := time.Date(2026, 6, 8, 9, 0, 0, 0, loc); !redraw.Equal(want) {
		t.Fatalf("message redraw queued for %v, want the opening %v", redraw, want)
	}
}

func TestBreakGlass(t *testing.T) {
	t.Parallel()
	freeze := approvals.Freeze{From: time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC), To: time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC), Reason: "Year-end freeze"}
	p := approvals.Policy{Approvers: approvals.Approvers{Users: []string{"UALICE", "UDEV"}}, RequiredApprovals: 2,
		Freezes: []approvals.Freeze{freeze}, BreakGlass: approvals.Approvers{Groups: []string{"SONCALL"}}}
	inFreeze := time.Date(2026, 12, 24, 3, 0, 0, 0, time.UTC)

	t.Run("an ordinary approver is refused in the freeze", func(t *testing.T) {
		t.Parallel()
		e, _ := newRulesEnv(t, p, inFreeze, "dev@example.com")
		if _, err := e.approve("UALICE"); !errors.Is(err, approvals.ErrApprovingClosed) || !strings.Contains(approvals.Reply(err, "", "Slack"), "Year-end freeze") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("the requester on call is offered break glass, then needs a reason", func(t *testing.T) {
		t.Parallel()
		e, _ := newRulesEnv(t, p, inFreeze, "dev@example.com")
		if _, err := e.approve("UDEV"); !errors.Is(err, approvals.ErrBreakGlassNeeded) {
			t.Fatalf("a plain click: %v, want ErrBreakGlassNeeded", err)
		}
		if _, err := e.approve("UDEV", func(r *approvals.DecideRequest) { r.BreakGlass = true }); !errors.Is(err, approvals.ErrBreakGlassReason) {
			t.Fatalf("break glass without a reason: %v", err)
		}
		if e.store.task(t, "acme-t1").Status != approvals.StatusPending {
			t.Fatal("a refused break glass decided")
		}
	})
	t.Run("with a reason: delivered, marked, announced", func(t *testing.T) {
		t.Parallel()
		e, id := newRulesEnv(t, p, inFreeze, "dev@example.com")
		task, err := e.approve("UDEV", func(r *approvals.DecideRequest) { r.BreakGlass = true; r.Reason = "payments down, hotfix" })
		if err != nil || task.Status != approvals.StatusApproved {
			t.Fatalf("break glass: %v %v", task, err)
		}
		for range 3 {
			if _, err := e.svc.Work(context.Background(), id); err != nil {
				t.Fatal(err)
			}
		}
		got := e.store.task(t, id)
		if !got.BrokeGlass() || !strings.Contains(auditText(got), "approved BREAK-GLASS: payments down") {
			t.Errorf("audit does not mark break glass: %+v", got.Audit)
		}
		if len(e.notes) != 1 || !strings.HasPrefix(e.notes[0], "BREAK-GLASS: Approved in Slack by UDEV") || !strings.Contains(e.notes[0], "payments down") {
			t.Errorf("notes %q", e.notes)
		}
		if len(e.notice) != 1 || e.notice[0] != approvals.NoticeBreakGlass {
			t.Errorf("notices %v, want the break-glass announcement", e.notice)
		}
	})
	t.Run("someone not on call cannot break glass", func(t *testing.T) {
		t.Parallel()
		e, _ := newRulesEnv(t, p, inFreeze, "dev@example.com")
		if _, err := e.approve("UALICE", func(r *approvals.DecideRequest) { r.BreakGlass = true; r.Reason = "x" }); !errors.Is(err, approvals.ErrNotApprover) {
			t.Fatalf("%v", err)
		}
	})
}

func auditText(t *approvals.Task) string {
	var b strings.Builder
	for _, r := range t.Audit {
		b.WriteString(r.Event + " " + r.Detail + "\n")
	}
	return b.String()
}

func TestTypeToConfirm(t *testing.T) {
	t.Parallel()
	p := approvals.Policy{Approvers: approvals.Approvers{Users: []string{"UALICE"}}, Confirm: approvals.ConfirmTypeEnvironment}
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	e, id := newRulesEnv(t, p, now, "")
	if _, err := e.approve("UALICE"); !errors.Is(err, approvals.ErrConfirmRequired) {
		t.Fatalf("no confirmation: %v", err)
	}
	if _, err := e.approve("UALICE", func(r *approvals.DecideRequest) { r.Confirm = "staging" }); !errors.Is(err, approvals.ErrConfirmMismatch) {
		t.Fatalf("wrong confirmation: %v", err)
	}
	if e.store.task(t, id).Status != approvals.StatusPending {
		t.Fatal("a wrong confirmation decided")
	}
	if task, err := e.approve("UALICE", func(r *approvals.DecideRequest) { r.Confirm = " Production " }); err != nil || task.Status != approvals.StatusApproved {
		t.Fatalf("right confirmation: %v", err)
	}
}
