package teams

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/teamstest"
)

func newNotifier(t *testing.T, fake *teamstest.Server, password string) *Notifier {
	t.Helper()
	conn := NewConnector(ConnectorConfig{AppID: teamstest.AppID, AppPassword: password, TenantID: teamstest.Tenant, TokenURL: fake.TokenURL(), Timeout: 5 * time.Second})
	p := testPolicy()
	return NewNotifier(NotifierConfig{
		Connector: conn, ServiceURL: fake.ServiceURL(), Channel: channel,
		Policies: func() []approvals.Policy { return []approvals.Policy{p} },
		Now:      func() time.Time { return renderNow },
	})
}

// TestPostUpdateNotice: a task is posted as a card into the default
// channel, updated in place (PUT) without actions once final, and a
// notice is a reply to it; one Entra token serves every call.
func TestPostUpdateNotice(t *testing.T) {
	t.Parallel()
	fake := teamstest.New(t)
	n := newNotifier(t, fake, teamstest.AppPassword)
	ctx := t.Context()
	task := pendingTask()
	ref, err := n.Post(ctx, task, "", "TOKEN")
	if err != nil {
		t.Fatal(err)
	}
	if ref.Chat != "teams" || ref.Channel != channel || ref.TS == "" {
		t.Fatalf("ref %+v", ref)
	}
	task.Status = approvals.StatusApproved
	if err := n.Update(ctx, task, []approvals.MessageRef{ref, {Chat: "slack", Channel: "C1", TS: "1.2"}}, ""); err != nil {
		t.Fatal(err)
	}
	if err := n.Notice(ctx, task, ref, approvals.NoticeReminder); err != nil {
		t.Fatal(err)
	}
	acts := fake.Activities()
	if len(acts) != 2 {
		t.Fatalf("%d activities, want the card and the reply", len(acts))
	}
	card := acts[0].Card()
	if acts[0].Updates != 1 || card == nil || card["actions"] != nil {
		t.Errorf("the card after the update: %d updates, %v", acts[0].Updates, card)
	}
	if acts[1].ReplyTo != ref.TS || !strings.Contains(acts[1].Body["text"].(string), "expires at") {
		t.Errorf("the reminder %+v", acts[1])
	}
	if got := fake.TokenCalls(); got != 1 {
		t.Errorf("Entra issued %d tokens for three calls, want 1", got)
	}
}

// TestConnectorErrors: the connector's 429 is a Retry-After for the
// outbox, a 500 a plain failure (retried), a 400 permanent, a refused
// credential a failure that never quotes the secret.
func TestConnectorErrors(t *testing.T) {
	t.Parallel()
	fake := teamstest.New(t)
	for _, tc := range []struct {
		name  string
		fault teamstest.Fault
		check func(error) bool
	}{
		{"429", teamstest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "30"}, func(err error) bool {
			after, ok := approvals.RetryAfter(err)
			return ok && after == 30*time.Second && !approvals.IsPermanent(err)
		}},
		{"500", teamstest.Fault{Status: http.StatusInternalServerError}, func(err error) bool {
			_, ok := approvals.RetryAfter(err)
			return err != nil && !ok && !approvals.IsPermanent(err)
		}},
		{"400", teamstest.Fault{Status: http.StatusBadRequest}, approvals.IsPermanent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake.SetFault(func(r *http.Request) *teamstest.Fault {
				if strings.HasPrefix(r.URL.Path, "/v3/") {
					return &tc.fault
				}
				return nil
			})
			defer fake.SetFault(nil)
			// A Pacer of its own that waits a moment at most, so that
			// Retry-After 30 is handed up and blocks no other case.
			n := newNotifier(t, fake, teamstest.AppPassword)
			n.cfg.Connector = NewConnector(ConnectorConfig{AppID: teamstest.AppID, AppPassword: teamstest.AppPassword, TenantID: teamstest.Tenant, TokenURL: fake.TokenURL(),
				Pacer: NewPacerForTest()})
			_, err := n.Post(context.Background(), pendingTask(), "", "TOKEN")
			if !tc.check(err) {
				t.Errorf("post answered %d: error %v", tc.fault.Status, err)
			}
		})
	}

	wrong := newNotifier(t, fake, "a-wrong-secret-value")
	_, err := wrong.Post(t.Context(), pendingTask(), "", "TOKEN")
	if err == nil || strings.Contains(err.Error(), "a-wrong-secret-value") || approvals.IsPermanent(err) {
		t.Errorf("a wrong secret: %v; want a failure that may mend by a reload and never quotes it", err)
	}
	if len(fake.Activities()) != 0 {
		t.Error("something was posted")
	}
}

// TestPostWithoutChannelIsPermanent: with no channel anywhere, a post
// cannot succeed by retrying.
func TestPostWithoutChannelIsPermanent(t *testing.T) {
	t.Parallel()
	fake := teamstest.New(t)
	n := newNotifier(t, fake, teamstest.AppPassword)
	n.cfg.Channel = ""
	if _, err := n.Post(t.Context(), pendingTask(), "", "T"); !approvals.IsPermanent(err) {
		t.Errorf("post without a channel: %v", err)
	}
	var p *approvals.PermanentError
	if _, err := n.Post(t.Context(), pendingTask(), "", "T"); !errors.As(err, &p) {
		t.Error("not a PermanentError")
	}
}
