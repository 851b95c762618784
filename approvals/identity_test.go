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

func TestParseRequester(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want approvals.Requester
	}{
		{"", approvals.Requester{}},
		{"  ", approvals.Requester{}},
		{"Dev@Example.com", approvals.Requester{Email: "dev@example.com"}},
		{"mailto:dev@example.com", approvals.Requester{Email: "dev@example.com"}},
		{"MAILTO: dev@example.com ", approvals.Requester{Email: "dev@example.com"}},
		{"dev\u200b@example.com", approvals.Requester{Email: "dev@example.com"}},
		{"U0123ABCD", approvals.Requester{UserID: "U0123ABCD"}},
		{"<@U0123ABCD>", approvals.Requester{UserID: "U0123ABCD"}},
		{"<@W0123ABCD|dev>", approvals.Requester{UserID: "W0123ABCD"}},
		{"Alice\u00ad Smith\x07", approvals.Requester{Name: "alice smith"}},
		{"@alice", approvals.Requester{Name: "@alice"}},
	} {
		if got := approvals.ParseRequester(tc.in, nil); got != tc.want {
			t.Errorf("ParseRequester(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// selfApprovalService is a Service whose directory's email look-up the
// test controls, with one policy that forbids self-approval.
func selfApprovalService(t *testing.T, byEmail func(string) (string, error)) (*approvals.Service, *memStore, *[]string) {
	t.Helper()
	store := newMemStore()
	issuer, err := tokens.NewIssuer([]tokens.Key{{ID: "k1", Secret: []byte(strings.Repeat("s", 32))}})
	if err != nil {
		t.Fatal(err)
	}
	var posted []string
	svc, err := approvals.NewService(approvals.Config{
		Store: store, Tokens: issuer, Tools: mustTools(t, approvals.Tool{Name: "acme"}),

		Rules: func() approvals.Rules {
			return approvals.Rules{DefaultTTL: time.Hour, Policies: []approvals.Policy{{Name: "p", Approvers: approvals.Approvers{Users: []string{"UDEV", "UALICE"}}}}}
		},
		Chats: testChats(funcNotifier{post: func(_ *approvals.Task, token string) (approvals.MessageRef, error) {
			posted = append(posted, token)
			return approvals.MessageRef{Channel: "C1", TS: "1.1"}, nil
		}}, funcDirectory{byEmail: byEmail}),
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc, store, &posted
}

func TestSelfApprovalFailsClosedWhenTheLookupFails(t *testing.T) {
	t.Parallel()
	slackUp := false
	svc, store, posted := selfApprovalService(t, func(email string) (string, error) {
		if !slackUp {
			return "", errors.New("slack: users.lookupByEmail: ratelimited")
		}
		if email == "dev@example.com" {
			return "UDEV", nil
		}
		return "", approvals.ErrNotFound
	})
	ctx := context.Background()
	task, _, err := svc.Submit(ctx, approvals.Submission{Source: "acme", TaskID: "1", Context: approvals.Context{RequestedBy: "Dev@Example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Work(ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	click := func(user string) error {
		_, err := svc.Decide(ctx, approvals.DecideRequest{Token: (*posted)[0], Action: approvals.ActionApprove, User: approvals.Person{ID: user, Name: user}})
		return err
	}
	if err := click("UDEV"); !errors.Is(err, approvals.ErrIdentityUnknown) {
		t.Fatalf("the requester's click while the look-up fails: %v, want ErrIdentityUnknown", err)
	}
	if got := store.task(t, task.ID); got.Status != approvals.StatusPending || len(got.Approvals) != 0 {
		t.Fatalf("the refused click changed the task: %s, %d approvals", got.Status, len(got.Approvals))
	}
	if got := approvals.KindOf(click("UDEV")).Text("", "Slack"); !strings.Contains(got, "could not check who requested this") && !strings.Contains(got, "Could not check who requested this") {
		t.Errorf("reply %q", got)
	}
	slackUp = true
	if err := click("UDEV"); !errors.Is(err, approvals.ErrSelfApproval) {
		t.Fatalf("the requester's click once the look-up works: %v, want ErrSelfApproval", err)
	}
	if err := click("UALICE"); err != nil {
		t.Fatalf("another approver: %v", err)
	}
	if got := store.task(t, task.ID); got.Status != approvals.StatusApproved || got.DecidedBy.ID != "UALICE" {
		t.Errorf("task %s decided by %+v", got.Status, got.DecidedBy)
	}
}
