package bot

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/slacktest"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
)

const socketAppToken = "xapp-1-A1-123-test"

// newSocketFake starts the shared fake Slack with Socket Mode granted to
// socketAppToken.
func newSocketFake(t *testing.T) *slacktest.Server {
	t.Helper()
	f := newFakeSlack(t)
	f.EnableSocketMode(socketAppToken)
	return f
}

// Slack wants an envelope acknowledged within 3 s of delivery; that is the
// protocol's deadline, not a performance target.
const socketAckDeadline = 3 * time.Second

// sendEnvelope waits for the client to connect, sends it an envelope and
// returns the ack's payload.
func sendEnvelope(t *testing.T, fake *slacktest.Server, envelopeID, typ, payload string, acceptsResponse bool, within time.Duration) json.RawMessage {
	t.Helper()
	if err := fake.WaitSocket(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	ack, err := fake.SendEnvelope(envelopeID, typ, payload, acceptsResponse, within)
	if err != nil {
		t.Fatalf("%s: %v", envelopeID, err)
	}
	return ack
}

// handlerFunc adapts a function to InteractionHandler.
type handlerFunc func(ctx context.Context, cb slack.InteractionCallback) any

func (f handlerFunc) Handle(ctx context.Context, cb slack.InteractionCallback) any { return f(ctx, cb) }

// lockedBuffer collects log lines written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runSocket runs s until the test ends and reports Run's result. Its log,
// at debug level, goes to logs if not nil.
func runSocket(t *testing.T, s *Socket, logs ...io.Writer) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if len(logs) > 0 {
		ctx = zerolog.New(logs[0]).Level(zerolog.DebugLevel).WithContext(ctx)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run after cancel: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context was cancelled")
		}
	})
	return done
}

// socketBlockActions is a click as Socket Mode delivers it.
func socketBlockActions(userID, actionID, value string) string {
	return slacktest.Click{ActionID: actionID, Value: value, UserID: userID, UserName: "alice",
		Channel: "C1", MessageTS: "1700000000.000100", TriggerID: "trigger-1"}.Payload()
}

// socketViewSubmission is a reject-reason submission as Socket Mode
// delivers it.
func socketViewSubmission(reason string) string {
	return slacktest.Submission{CallbackID: callbackRejectReason, PrivateMetadata: "tok", UserID: "U3", UserName: "carol",
		Values: map[string]map[string]string{blockIDReason: {actionIDReason: reason}}}.Payload()
}

func TestSocketBlockActions(t *testing.T) {
	t.Parallel()
	fake := newSocketFake(t)
	got := make(chan slack.InteractionCallback, 1)
	s := NewSocket(SocketConfig{
		BotToken: "xoxb-test", AppToken: socketAppToken, APIURL: fake.Server.URL, // no trailing slash: NewSocket adds it
		Handler: handlerFunc(func(_ context.Context, cb slack.InteractionCallback) any {
			got <- cb
			return nil
		}),
		Debug: true,
	})
	runSocket(t, s)

	ack := sendEnvelope(t, fake, "env-1", "interactive", socketBlockActions("U123", "approve", "one-time-token"), false, socketAckDeadline)
	if len(ack) != 0 {
		t.Errorf("block_actions ack carries a payload: %s", ack)
	}
	cb := waitFor(t, got)
	if cb.Type != slack.InteractionTypeBlockActions || cb.User.ID != "U123" {
		t.Errorf("callback type %q user %q", cb.Type, cb.User.ID)
	}
	if len(cb.ActionCallback.BlockActions) != 1 {
		t.Fatalf("callback has %d block actions, want 1", len(cb.ActionCallback.BlockActions))
	}
	if a := cb.ActionCallback.BlockActions[0]; a.ActionID != "approve" || a.Value != "one-time-token" {
		t.Errorf("action %q value %q", a.ActionID, a.Value)
	}
	if n := fake.SocketOpens(); n != 1 {
		t.Errorf("apps.connections.open called %d times, want 1", n)
	}
	if bad := fake.RefusedAuth(); len(bad) != 0 {
		t.Errorf("app token not sent as Bearer: %q", bad)
	}
}

func TestSocketReconnects(t *testing.T) {
	t.Parallel()
	fake := newSocketFake(t)
	fake.CloseAfterHello(1) // as a refreshed or failed link does
	got := make(chan slack.InteractionCallback, 2)
	s := NewSocket(SocketConfig{
		AppToken: socketAppToken, APIURL: fake.APIURL(),
		Handler: handlerFunc(func(_ context.Context, cb slack.InteractionCallback) any {
			got <- cb
			return nil
		}),
	})
	runSocket(t, s)

	// The fake counts only the second connection as connected, so this
	// goes over it.
	sendEnvelope(t, fake, "env-2", "interactive", socketBlockActions("U456", "reject", "tok-2"), false, socketAckDeadline)
	cb := waitFor(t, got)
	if cb.User.ID != "U456" || len(cb.ActionCallback.BlockActions) != 1 || cb.ActionCallback.BlockActions[0].ActionID != "reject" {
		t.Errorf("callback after reconnect: user %q actions %d", cb.User.ID, len(cb.ActionCallback.BlockActions))
	}
	if n := fake.SocketOpens(); n != 2 {
		t.Errorf("apps.connections.open called %d times, want 2", n)
	}
}

// TestSocketAckCarriesResponse runs the real interactions handler: a reject
// reason left empty comes back as the dialog's error in the ack.
func TestSocketAckCarriesResponse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		handler InteractionHandler
		accepts bool
		want    string // the ack's payload, "" for none
	}{
		{
			name:    "errors from the interactions handler",
			handler: NewInteractions(InteractionsConfig{}),
			accepts: true,
			want:    `{"response_action":"errors","errors":{"reason":"Say why the deployment is rejected."}}`,
		},
		{
			name: "handler's own response",
			handler: handlerFunc(func(context.Context, slack.InteractionCallback) any {
				return slack.NewClearViewSubmissionResponse()
			}),
			accepts: true,
			want:    `{"response_action":"clear"}`,
		},
		{
			name: "no payload where Slack takes none",
			handler: handlerFunc(func(context.Context, slack.InteractionCallback) any {
				return slack.NewClearViewSubmissionResponse()
			}),
			accepts: false,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := newSocketFake(t)
			runSocket(t, NewSocket(SocketConfig{AppToken: socketAppToken, APIURL: fake.APIURL(), Handler: tc.handler}))
			ack := sendEnvelope(t, fake, "env-view", "interactive", socketViewSubmission("  "), tc.accepts, socketAckDeadline)
			checkJSONEqual(t, ack, tc.want)
		})
	}
}

// TestSocketSlowHandler checks that an envelope is acknowledged although
// its handler has not returned, and that a reject-reason dialog then stays
// open with a message instead of closing as if the reason had been taken.
func TestSocketSlowHandler(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		payload string
		accepts bool
		want    string
	}{
		{"block_actions", socketBlockActions("U1", "approve", "tok"), false, ""},
		{"reject reason", socketViewSubmission("because"), true, `{"response_action":"errors","errors":{"reason":"approvalbot did not answer in time; submit again."}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := newSocketFake(t)
			release := make(chan struct{})
			s := NewSocket(SocketConfig{
				AppToken: socketAppToken, APIURL: fake.APIURL(),
				Handler: handlerFunc(func(context.Context, slack.InteractionCallback) any {
					// A handler that ignores its context: the ack must not wait.
					<-release
					return slack.NewClearViewSubmissionResponse()
				}),
			})
			s.ackWithin = 50 * time.Millisecond
			runSocket(t, s)
			t.Cleanup(func() { close(release) }) // runs before Run is stopped: Run waits for handlers
			ack := sendEnvelope(t, fake, "env-slow", "interactive", tc.payload, tc.accepts, 10*time.Second)
			checkJSONEqual(t, ack, tc.want)
		})
	}
}

// TestSocketOtherEnvelopes checks that envelopes the bot does not act on
// are acknowledged all the same, so Slack does not redeliver them, and that
// serving goes on after them.
func TestSocketOtherEnvelopes(t *testing.T) {
	t.Parallel()
	type envelope struct{ id, typ, payload string }
	envelopes := []envelope{
		{"env-unreadable", "interactive", `["secret-button-token"]`},
		{"env-command", "slash_commands", `{"command":"/approve","text":"x"}`},
		{"env-click", "interactive", socketBlockActions("U9", "approve", "tok-9")},
	}
	fake := newSocketFake(t)
	var handled atomic.Int32
	var logs lockedBuffer
	// Registered before runSocket's, so it runs after Run has returned.
	t.Cleanup(func() {
		// Payloads carry buttons' one-time tokens: the log never shows one,
		// nor the app token, even at debug level.
		for _, secret := range []string{"secret-button-token", "tok-9", socketAppToken} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("log shows %q:\n%s", secret, logs.String())
			}
		}
		if !strings.Contains(logs.String(), "env-click") {
			t.Errorf("debug log does not name the envelopes:\n%s", logs.String())
		}
	})
	runSocket(t, NewSocket(SocketConfig{
		AppToken: socketAppToken, APIURL: fake.APIURL(), Debug: true,
		Handler: handlerFunc(func(context.Context, slack.InteractionCallback) any {
			handled.Add(1)
			return nil
		}),
	}), &logs)
	for _, e := range envelopes {
		sendEnvelope(t, fake, e.id, e.typ, e.payload, false, socketAckDeadline)
	}
	if n := handled.Load(); n != 1 {
		t.Errorf("handler called %d times, want 1 (the click only)", n)
	}
}

func TestSocketRefusedToken(t *testing.T) {
	t.Parallel()
	fake := newSocketFake(t)
	h := handlerFunc(func(context.Context, slack.InteractionCallback) any { return nil })
	cases := []struct {
		name    string
		cfg     SocketConfig
		wantErr string
	}{
		{"bot token instead of app token", SocketConfig{AppToken: "xoxb-not-an-app-token", Handler: h}, "app-level token"},
		{"no app token", SocketConfig{Handler: h}, "app-level token"},
		{"no handler", SocketConfig{AppToken: socketAppToken}, "handler"},
		{"Slack refuses the token", SocketConfig{AppToken: "xapp-revoked-secret", APIURL: fake.APIURL(), Handler: h}, "invalid_auth"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := NewSocket(tc.cfg).Run(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Run: %v, want an error about %q", err, tc.wantErr)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Run did not give up on a refused token: %v", err)
			}
			for _, secret := range []string{"xoxb-not-an-app-token", "xapp-revoked-secret"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows the token: %v", err)
				}
			}
		})
	}
	if bad := fake.RefusedAuth(); len(bad) != 1 || bad[0] != "Bearer xapp-revoked-secret" {
		t.Errorf("refused Authorization headers %q, want the revoked token once", bad)
	}
}

func waitFor[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatal("timed out waiting for the fake Slack")
	}
	var zero T
	return zero
}

func checkJSONEqual(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	if want == "" {
		if len(got) != 0 && string(got) != "null" {
			t.Errorf("payload %s, want none", got)
		}
		return
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("payload %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("payload %s, want %s", gb, wb)
	}
}
