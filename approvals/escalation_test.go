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

// TestEscalationAndDirectMessages: a policy that DMs its approvers sends
// the copies once the message is posted; 30 minutes on, the task still
// pending, the escalation's approvers are added, announced, DMed and may
// decide. All of it is outbox work, so it survives a restart.
func TestEscalationAndDirectMessages(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	clock := &manualClock{now: time.Now().UTC().Truncate(time.Second)}
	issuer, _ := tokens.NewIssuer([]tokens.Key{{ID: "k1", Secret: []byte(strings.Repeat("s", 32))}})
	var token string
	var directed [][]string // the users each Direct call found without a copy
	var notices []approvals.NoticeKind
	people := func(t *approvals.Task, p approvals.Approvers) []string {
		var out []string
		for _, u := range p.Users {
			has := false
			for _, c := range copiesOf(t) {
				has = has || c.User == u
			}
			if !has {
				out = append(out, u)
			}
		}
		return out
	}
	policy := approvals.Policy{Name: "p", NotifyDM: true, Approvers: approvals.Approvers{Users: []string{"UALICE"}},
		Escalate: &approvals.Escalation{After: 30 * time.Minute, To: approvals.Approvers{Users: []string{"UBOSS"}}}}
	svc, err := approvals.NewService(approvals.Config{
		Store: store, Tokens: issuer, Clock: clock.Now,
		Tools: mustTools(t, approvals.Tool{Name: "acme", Decide: func(context.Context, *approvals.Task, approvals.Action, string, bool) error { return nil }}),

		Rules: func() approvals.Rules {
			return approvals.Rules{DefaultTTL: 4 * time.Hour, Policies: []approvals.Policy{policy}}
		},
		Chats: testChats(funcNotifier{
			post: func(_ *approvals.Task, tok string) (approvals.MessageRef, error) {
				token = tok
				return approvals.MessageRef{Channel: "C1", TS: "1.1"}, nil
			},
			direct: func(t *approvals.Task, tok string) ([]approvals.MessageRef, error) {
				if tok != token {
					return nil, errors.New("direct messages got another token")
				}
				named := people(t, policy.Approvers)
				if t.Escalated {
					named = append(named, people(t, policy.Escalate.To)...)
				}
				directed = append(directed, named)
				var out []approvals.MessageRef
				for _, u := range named {
					out = append(out, approvals.MessageRef{Channel: "D" + u, TS: "2.1", User: u})
				}
				return out, nil
			},
			notice: func(_ *approvals.Task, kind approvals.NoticeKind) error { notices = append(notices, kind); return nil },
		}, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	task, _, err := svc.Submit(ctx, approvals.Submission{Source: "acme", TaskID: "esc"})
	if err != nil {
		t.Fatal(err)
	}
	work := func() {
		t.Helper()
		if _, err := svc.Work(ctx, task.ID); err != nil {
			t.Fatal(err)
		}
	}
	work() // post, then the copies
	work()
	if got := store.task(t, task.ID); len(copiesOf(got)) != 1 || copiesOf(got)[0].User != "UALICE" {
		t.Fatalf("copies after the post: %+v", copiesOf(got))
	}
	click := func(user string) error {
		_, err := svc.Decide(ctx, approvals.DecideRequest{Token: token, Action: approvals.ActionApprove, User: approvals.Person{ID: user}})
		return err
	}
	if err := click("UBOSS"); !errors.Is(err, approvals.ErrNotApprover) {
		t.Fatalf("the escalation's approver before the escalation: %v", err)
	}
	clock.Advance(31 * time.Minute)
	work()
	work()
	got := store.task(t, task.ID)
	if !got.Escalated || len(notices) != 1 || notices[0] != approvals.NoticeEscalation {
		t.Fatalf("escalated %v, notices %v", got.Escalated, notices)
	}
	if len(copiesOf(got)) != 2 || copiesOf(got)[1].User != "UBOSS" || len(directed) != 2 || len(directed[1]) != 1 {
		t.Fatalf("after the escalation: copies %+v, direct calls %v (want one new copy, to UBOSS)", copiesOf(got), directed)
	}
	if !strings.Contains(auditText(got), "escalated") {
		t.Errorf("audit: %s", auditText(got))
	}
	if err := click("UBOSS"); err != nil {
		t.Fatalf("the escalation's approver after it: %v", err)
	}
}

// A task decided while its direct messages are going out: the copies that
// went out are recorded and updated with the decision, though the job that
// sent them was dropped when the task became final.
func TestCopiesSentWhileDecidedAreUpdated(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	issuer, _ := tokens.NewIssuer([]tokens.Key{{ID: "k1", Secret: []byte(strings.Repeat("s", 32))}})
	var svc *approvals.Service
	var updated [][]approvals.MessageRef
	policy := approvals.Policy{Name: "p", NotifyDM: true, Approvers: approvals.Approvers{Users: []string{"UALICE", "UBOB"}}}
	var err error
	svc, err = approvals.NewService(approvals.Config{
		Store: store, Tokens: issuer,
		Tools: mustTools(t, approvals.Tool{Name: "acme", Decide: func(context.Context, *approvals.Task, approvals.Action, string, bool) error { return nil }}),

		Rules: func() approvals.Rules {
			return approvals.Rules{DefaultTTL: time.Hour, Policies: []approvals.Policy{policy}}
		},
		Chats: testChats(funcNotifier{
			post: func(*approvals.Task, string) (approvals.MessageRef, error) {
				return approvals.MessageRef{Channel: "C1", TS: "1.1"}, nil
			},
			direct: func(task *approvals.Task, tok string) ([]approvals.MessageRef, error) {
				// Alice decides while her copy is on its way.
				if _, err := svc.Decide(context.Background(), approvals.DecideRequest{Token: tok, Action: approvals.ActionApprove, User: approvals.Person{ID: "UALICE"}}); err != nil {
					t.Errorf("decide: %v", err)
				}
				return []approvals.MessageRef{{Channel: "DUALICE", TS: "2.1", User: "UALICE"}, {Channel: "DUBOB", TS: "2.2", User: "UBOB"}}, nil
			},
			update: func(task *approvals.Task, _ string) error {
				if task.Status.Final() {
					updated = append(updated, copiesOf(task))
				}
				return nil
			},
		}, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	task, _, err := svc.Submit(ctx, approvals.Submission{Source: "acme", TaskID: "race"})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, err := svc.Work(ctx, task.ID); err != nil {
			t.Fatal(err)
		}
	}
	got := store.task(t, task.ID)
	if got.Status != approvals.StatusApproved || len(copiesOf(got)) != 2 {
		t.Fatalf("status %s, copies %+v; want approved with both copies recorded", got.Status, copiesOf(got))
	}
	if len(updated) == 0 || len(updated[len(updated)-1]) != 2 {
		t.Errorf("final updates saw copies %v; want the last to reach both", updated)
	}
}
