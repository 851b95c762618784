package approvals_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/tokens"
)

// TestWaitingAndRecentlyDecided: a person's queue holds exactly the pending
// tasks they may decide, newest first, across policies; once decided a task
// moves to their recently decided list.
func TestWaitingAndRecentlyDecided(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	clock := &manualClock{now: time.Now().UTC().Truncate(time.Second)}
	issuer, _ := tokens.NewIssuer([]tokens.Key{{ID: "k1", Secret: []byte(strings.Repeat("s", 32))}})
	tokensByTask := map[string]string{}
	svc, err := approvals.NewService(approvals.Config{
		Store: store, Tokens: issuer, Clock: clock.Now,
		Tools: mustTools(t, approvals.Tool{Name: "acme"}, approvals.Tool{Name: "other"}),

		Rules: func() approvals.Rules {
			return approvals.Rules{DefaultTTL: time.Hour, Policies: []approvals.Policy{
				{Name: "prod", Match: map[string]string{"environment": "prod"}, Approvers: approvals.Approvers{Users: []string{"UALICE"}},
					RequireFrom: []approvals.Requirement{{Group: "SQA", Count: 1}}},
				{Name: "rest", Approvers: approvals.Approvers{Users: []string{"UBOB"}}},
			}}
		},
		Chats: testChats(funcNotifier{post: func(task *approvals.Task, token string) (approvals.MessageRef, error) {
			tokensByTask[task.ID] = token
			return approvals.MessageRef{Channel: "C1", TS: "1.1"}, nil
		}}, funcDirectory{members: func(g string) ([]string, error) {
			if g == "SQA" {
				return []string{"UQA"}, nil
			}
			return nil, nil
		}}),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	submit := func(source, id, env string) string {
		task, _, err := svc.Submit(ctx, approvals.Submission{Source: source, TaskID: id, Context: approvals.Context{Environment: env}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Work(ctx, task.ID); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		return task.ID
	}
	p1 := submit("acme", "1", "prod")
	p2 := submit("other", "2", "prod")
	r1 := submit("acme", "3", "dev")
	ids := func(user string) []string {
		tasks, err := svc.Waiting(ctx, approvals.Person{ID: user})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, task := range tasks {
			out = append(out, task.ID)
		}
		return out
	}
	for user, want := range map[string][]string{"UALICE": {p2, p1}, "UQA": {p2, p1}, "UBOB": {r1}, "UNOBODY": nil} {
		if got := ids(user); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s waits for %v, want %v", user, got, want)
		}
	}
	if _, err := svc.Decide(ctx, approvals.DecideRequest{Token: tokensByTask[r1], Action: approvals.ActionReject, User: approvals.Person{ID: "UBOB"}}); err != nil {
		t.Fatal(err)
	}
	if got := ids("UBOB"); len(got) != 0 {
		t.Errorf("a decided task still waits: %v", got)
	}
	recent, err := svc.RecentlyDecided(ctx, approvals.Person{ID: "UBOB"}, 10)
	if err != nil || len(recent) != 1 || recent[0].ID != r1 {
		t.Errorf("recently decided for UBOB: %v %v", recent, err)
	}
	if recent, _ := svc.RecentlyDecided(ctx, approvals.Person{ID: "UALICE"}, 10); len(recent) != 0 {
		t.Errorf("Alice sees a task she could not decide: %v", recent)
	}
}

// countingDelegations is a DelegationStore in memory that counts its reads.
type countingDelegations struct {
	mu    sync.Mutex
	all   []approvals.Delegation
	reads int
}

func (d *countingDelegations) Delegations(context.Context) ([]approvals.Delegation, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads++
	return slices.Clone(d.all), nil
}

func (d *countingDelegations) UpdateDelegations(_ context.Context, fn func([]approvals.Delegation) ([]approvals.Delegation, error)) ([]approvals.Delegation, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	next, err := fn(slices.Clone(d.all))
	if err != nil {
		return nil, err
	}
	d.all = next
	return slices.Clone(next), nil
}

// A person's list of waiting tasks reads the delegations once, however
// many tasks wait (on DynamoDB a read a task would cost one request each),
// and still shows the tasks they may decide as a delegate.
func TestWaitingReadsDelegationsOnce(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	now := time.Now().UTC().Truncate(time.Second)
	issuer, _ := tokens.NewIssuer([]tokens.Key{{ID: "k1", Secret: []byte(strings.Repeat("s", 32))}})
	delegations := &countingDelegations{}
	svc, err := approvals.NewService(approvals.Config{
		Store: store, Tokens: issuer, Clock: func() time.Time { return now },
		Tools:       mustTools(t, approvals.Tool{Name: "acme"}),
		Delegations: delegations,
		Rules: func() approvals.Rules {
			return approvals.Rules{DefaultTTL: time.Hour, Policies: []approvals.Policy{
				{Name: "prod", Approvers: approvals.Approvers{Users: []string{"UALICE"}}},
			}}
		},
		Chats: testChats(funcNotifier{}, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 20 {
		if _, _, err := svc.Submit(ctx, approvals.Submission{Source: "acme", TaskID: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	alice, bob := approvals.Person{ID: "UALICE", Name: "alice"}, approvals.Person{ID: "UBOB", Name: "bob"}
	if _, err := svc.Delegate(ctx, alice, bob, now.Add(24*time.Hour), "leave"); err != nil {
		t.Fatal(err)
	}
	delegations.mu.Lock()
	delegations.reads = 0
	delegations.mu.Unlock()
	waiting, err := svc.Waiting(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	if len(waiting) != 20 {
		t.Errorf("Bob, Alice's delegate, sees %d tasks waiting, want 20", len(waiting))
	}
	if delegations.reads != 1 {
		t.Errorf("listing 20 tasks read the delegations %d times, want once", delegations.reads)
	}
}
