package approvals_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/tokens"
)

// twoChats registers a primary chat (whose directory knows the user group
// SRE = {U1} and alice@example.com = U1) and a second chat without one.
func twoChats(t *testing.T, policy approvals.Policy) (*approvals.Service, string) {
	t.Helper()
	issuer, err := tokens.NewIssuer([]tokens.Key{{ID: "k1", Secret: []byte(strings.Repeat("s", 32))}})
	if err != nil {
		t.Fatal(err)
	}
	var token string
	dir := funcDirectory{
		members: func(g string) ([]string, error) {
			if g == "SRE" {
				return []string{"U1"}, nil
			}
			return nil, nil
		},
		byEmail: func(e string) (string, error) {
			if e == "alice@example.com" {
				return "U1", nil
			}
			return "", approvals.ErrNotFound
		},
	}
	post := funcNotifier{post: func(_ *approvals.Task, tok string) (approvals.MessageRef, error) {
		token = tok
		return approvals.MessageRef{Channel: "C1", TS: "1.1"}, nil
	}}
	chats, err := approvals.NewChats(
		approvals.Chat{Name: "slack", DisplayName: "Slack", Notifier: post, Directory: dir, PostsByDefault: true, Primary: true},
		approvals.Chat{Name: "other", DisplayName: "Other Chat", Notifier: funcNotifier{}, PostsByDefault: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	store := newMemStore()
	svc, err := approvals.NewService(approvals.Config{
		Store: store, Tokens: issuer, Tools: mustTools(t, approvals.Tool{Name: "acme"}), Chats: chats,
		Rules: func() approvals.Rules {
			return approvals.Rules{DefaultTTL: time.Hour, Policies: []approvals.Policy{policy}}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	task, _, err := svc.Submit(ctx, approvals.Submission{Source: "acme", TaskID: "1", Context: approvals.Context{RequestedBy: "dev@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Work(ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	return svc, token
}

// A person acting in another chat is the primary chat's user with their
// email: they fill a require_from entry of a primary-chat group, count
// once whichever chat they click in, and break glass when named by email.
func TestAPersonIsOneInEveryChat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	aliceElsewhere := approvals.Person{ID: "aad-alice", Name: "Alice", Email: "alice@example.com", Chat: "other"}
	// The primary chat's adapter tells the clicker's email when another
	// chat is registered (bot.RuntimeConfig.ClickerEmails).
	aliceInSlack := approvals.Person{ID: "U1", Name: "alice", Email: "alice@example.com", Chat: "slack"}

	t.Run("require_from group through the email", func(t *testing.T) {
		t.Parallel()
		svc, token := twoChats(t, approvals.Policy{Name: "p", RequiredApprovals: 1,
			RequireFrom: []approvals.Requirement{{Group: "SRE", Count: 1}}})
		task, err := svc.Decide(ctx, approvals.DecideRequest{Token: token, Action: approvals.ActionApprove, User: aliceElsewhere})
		if err != nil {
			t.Fatal(err)
		}
		if task.Status != approvals.StatusApproved || !slices.Contains(task.Approvals[0].Fills, "SRE") {
			t.Fatalf("status %s, fills %v; want approved, SRE filled", task.Status, task.Approvals[0].Fills)
		}
	})
	t.Run("one vote whichever chat", func(t *testing.T) {
		t.Parallel()
		svc, token := twoChats(t, approvals.Policy{Name: "p", RequiredApprovals: 2,
			Approvers: approvals.Approvers{Groups: []string{"SRE"}, Emails: []string{"bob@example.com"}}})
		if _, err := svc.Decide(ctx, approvals.DecideRequest{Token: token, Action: approvals.ActionApprove, User: aliceElsewhere}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Decide(ctx, approvals.DecideRequest{Token: token, Action: approvals.ActionApprove, User: aliceInSlack}); !errors.Is(err, approvals.ErrAlreadyVoted) {
			t.Fatalf("Alice again in the primary chat: %v, want ErrAlreadyVoted", err)
		}
	})
	t.Run("require_from emails", func(t *testing.T) {
		t.Parallel()
		svc, token := twoChats(t, approvals.Policy{Name: "p", RequiredApprovals: 1,
			RequireFrom: []approvals.Requirement{{Label: "leads", Emails: []string{"Alice@Example.com"}, Count: 1}}})
		task, err := svc.Decide(ctx, approvals.DecideRequest{Token: token, Action: approvals.ActionApprove, User: aliceElsewhere})
		if err != nil || task.Status != approvals.StatusApproved {
			t.Fatalf("%v %v; want approved by the entry's email", err, task)
		}
	})
	t.Run("break glass by email", func(t *testing.T) {
		t.Parallel()
		svc, token := twoChats(t, approvals.Policy{Name: "p", RequiredApprovals: 2,
			Approvers:  approvals.Approvers{Users: []string{"U9"}},
			BreakGlass: approvals.Approvers{Emails: []string{"alice@example.com"}}})
		task, err := svc.Decide(ctx, approvals.DecideRequest{Token: token, Action: approvals.ActionApprove, User: aliceElsewhere,
			BreakGlass: true, Reason: "payments down"})
		if err != nil || task.Status != approvals.StatusApproved || !task.BrokeGlass() {
			t.Fatalf("%v %+v; want approved by breaking glass", err, task)
		}
	})
}
