package bot

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/slacktest"
	"github.com/slack-go/slack"
)

// fakeService is the Runtime's Service: a fakeDecider that also records the
// notifiers it is given.
type fakeService struct {
	fakeDecider

	mu        sync.Mutex
	notifiers []approvals.Notifier
}

func (s *fakeService) SetNotifier(_ string, n approvals.Notifier) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notifiers = append(s.notifiers, n)
}

// The lists of the App Home and /approvals: the Runtime's tests list nothing.
func (s *fakeService) Waiting(context.Context, approvals.Person) ([]*approvals.Task, error) {
	return nil, nil
}
func (s *fakeService) RecentlyDecided(context.Context, approvals.Person, int) ([]*approvals.Task, error) {
	return nil, nil
}
func (s *fakeService) Token(*approvals.Task) (string, error) { return "", approvals.ErrAlreadyDecided }
func (s *fakeService) Lookup(context.Context, string) (*approvals.Task, error) {
	return nil, approvals.ErrNotFound
}
func (s *fakeService) MayDecide(context.Context, *approvals.Task, approvals.Person) (bool, error) {
	return false, nil
}

func (s *fakeService) Notifiers() []approvals.Notifier {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.notifiers)
}

// lastNotifier is the notifier the service was given last, failing the
// test unless it is a *Notifier.
func (s *fakeService) lastNotifier(t *testing.T) *Notifier {
	t.Helper()
	ns := s.Notifiers()
	if len(ns) == 0 {
		t.Fatal("the service was given no notifier")
	}
	n, ok := ns[len(ns)-1].(*Notifier)
	if !ok || n == nil {
		t.Fatalf("the service's notifier is %#v, want a *Notifier", ns[len(ns)-1])
	}
	return n
}

// newTestRuntime returns a Runtime wired to a fake service; it is closed
// when the test ends.
func newTestRuntime(t *testing.T) (*Runtime, *fakeService) {
	t.Helper()
	svc := &fakeService{}
	r := NewRuntime(RuntimeConfig{Tools: testTools, Policies: policies})
	r.SetService(svc)
	t.Cleanup(r.Close)
	return r, svc
}

// httpSettings are HTTP-mode settings for the fake.
func httpSettings(fake *slacktest.Server) Settings {
	return Settings{BotToken: testBotToken, SigningSecret: testSigningSecret, Mode: ModeHTTP, APIURL: fake.APIURL(), Channel: "CDEFAULT"}
}

// socketModeSettings are Socket Mode settings for the fake, without a signing
// secret.
func socketModeSettings(fake *slacktest.Server) Settings {
	return Settings{BotToken: testBotToken, AppToken: socketAppToken, Mode: ModeSocket, APIURL: fake.APIURL(), Channel: "CDEFAULT"}
}

// clickHTTP posts alice's click signed with secret to the runtime's
// endpoint and returns the status.
func clickHTTP(t *testing.T, r *Runtime, secret, payload string) int {
	t.Helper()
	req, err := slacktest.InteractionRequest("/slack/interactions", secret, time.Now(), payload)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	return rec.Code
}

// waitUntil polls cond until it holds, failing the test after a deadline
// that bounds the test (it measures nothing).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func isClosed(h *Interactions) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// startRunSocket runs r.RunSocket until stop is called or the test ends;
// stop checks that it returns nil.
func startRunSocket(t *testing.T, r *Runtime) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.RunSocket(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("RunSocket after cancel: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("RunSocket did not return after its context was cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestRuntimeUnconfigured(t *testing.T) {
	t.Parallel()
	for name, apply := range map[string]func(*Runtime){
		"never applied": func(*Runtime) {},
		"no bot token":  func(r *Runtime) { r.Apply(Settings{SigningSecret: testSigningSecret, Channel: "C1"}) },
		"token removed": func(r *Runtime) {
			r.Apply(Settings{BotToken: testBotToken, SigningSecret: testSigningSecret})
			r.Apply(Settings{})
		},
		"only in socket": func(r *Runtime) { r.Apply(Settings{AppToken: socketAppToken, Mode: ModeSocket}) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r, svc := newTestRuntime(t)
			apply(r)
			if ns := svc.Notifiers(); len(ns) > 0 && ns[len(ns)-1] != nil {
				t.Errorf("the service has a notifier: %#v", ns[len(ns)-1])
			}

			req, err := slacktest.InteractionRequest("/slack/interactions", testSigningSecret, time.Now(), blockActionsPayload("approve", clickToken))
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			var body struct{ Error string }
			if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Content-Type") != "application/json" ||
				json.Unmarshal(rec.Body.Bytes(), &body) != nil || !strings.Contains(body.Error, "not configured") {
				t.Errorf("interactions answered %d %q %q, want 503 with a JSON error", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
			}
			cb := mustCallback(t, blockActionsPayload("approve", clickToken))
			if resp := r.Handle(context.Background(), cb); resp != nil {
				t.Errorf("Handle = %v, want nil", resp)
			}
			if reqs := svc.Requests(); len(reqs) != 0 {
				t.Errorf("decided %+v without Slack configured", reqs)
			}

			if _, err := r.GroupMembers(context.Background(), "S2"); err == nil || !strings.Contains(err.Error(), "not configured") {
				t.Errorf("GroupMembers = %v, want a not-configured error", err)
			}
			if _, err := r.UserIDByEmail(context.Background(), "lead@example.com"); err == nil || !strings.Contains(err.Error(), "not configured") {
				t.Errorf("UserIDByEmail = %v, want a not-configured error", err)
			}
		})
	}
}

func mustCallback(t *testing.T, payload string) (cb slack.InteractionCallback) {
	t.Helper()
	if err := json.Unmarshal([]byte(payload), &cb); err != nil {
		t.Fatal(err)
	}
	return cb
}

// TestRuntimeHTTP: with a bot token and a signing secret, the service
// posts through a notifier with the bot token and the registry's names,
// signed clicks are decided, forged ones refused, and the directory asks
// Slack.
func TestRuntimeHTTP(t *testing.T) {
	t.Parallel()
	fake := newFakeSlack(t)
	fake.Groups["S2"] = []string{"U1", "U2"}
	r, svc := newTestRuntime(t)
	svc.decide = func(context.Context, approvals.DecideRequest) (*approvals.Task, error) {
		return fixtureTask(), approvals.ErrExpired
	}
	r.Apply(httpSettings(fake))

	if n := len(svc.Notifiers()); n != 1 {
		t.Fatalf("the service was given %d notifiers, want 1", n)
	}
	task := fixtureTask()
	task.Messages = []approvals.MessageRef{approvals.MessageRef{}}
	if _, err := svc.lastNotifier(t).Post(context.Background(), task, slackChannel(task), "tok-post"); err != nil {
		t.Fatalf("Post: %v", err)
	}
	posts := fake.CallsTo("chat.postMessage")
	checkToken(t, posts)
	if len(posts) != 1 || posts[0].Form.Get("channel") != "CDEFAULT" || !strings.Contains(posts[0].Text(), "FlexDeploy task 8900") {
		t.Errorf("posts = %+v, want one to CDEFAULT naming FlexDeploy", posts)
	}

	if status := clickHTTP(t, r, "forged-secret", blockActionsPayload("approve", clickToken)); status != http.StatusUnauthorized {
		t.Errorf("forged click answered %d, want 401", status)
	}
	if status := clickHTTP(t, r, testSigningSecret, blockActionsPayload("approve", clickToken)); status != http.StatusOK {
		t.Errorf("signed click answered %d, want 200", status)
	}
	if reqs := svc.Requests(); len(reqs) != 1 || reqs[0].Token != clickToken || reqs[0].User.ID != "U1" {
		t.Errorf("decisions = %+v, want alice's click", reqs)
	}
	waitUntil(t, "the refusal's reply", func() bool { return len(fake.CallsTo("chat.postEphemeral")) > 0 })
	reply := fake.CallsTo("chat.postEphemeral")[0]
	if got := reply.Form.Get("text"); got != "This approval request has expired. Decide it in FlexDeploy." {
		t.Errorf("reply %q, want the expiry naming FlexDeploy", got)
	}

	members, err := r.GroupMembers(context.Background(), "S2")
	if err != nil || !slices.Equal(members, []string{"U1", "U2"}) {
		t.Errorf("GroupMembers = %v, %v", members, err)
	}
	checkToken(t, fake.CallsTo("usergroups.users.list"))
}

// TestRuntimeSameSettings: applying the settings in force again rebuilds
// nothing, so the directory keeps its cache and nothing is swapped.
func TestRuntimeSameSettings(t *testing.T) {
	t.Parallel()
	fake := newFakeSlack(t)
	r, svc := newTestRuntime(t)
	r.Apply(httpSettings(fake))
	before := r.conn.Load()
	_, changed := r.socketState()
	r.Apply(httpSettings(fake))
	if r.conn.Load() != before {
		t.Error("the same settings rebuilt the connection")
	}
	if n := len(svc.Notifiers()); n != 1 {
		t.Errorf("the service was given %d notifiers, want 1", n)
	}
	if isClosed(before.interactions) {
		t.Error("the same settings closed the interactions")
	}
	if _, now := r.socketState(); now != changed {
		t.Error("the same settings woke the socket loop")
	}
}

// TestRuntimeSwapsCredentials: new credentials give the service a new
// notifier, the directory and the endpoint use them, and the replaced
// interactions are closed.
func TestRuntimeSwapsCredentials(t *testing.T) {
	t.Parallel()
	fake := newFakeSlack(t)
	fake.Groups["S2"] = []string{"U1"}
	r, svc := newTestRuntime(t)
	first := httpSettings(fake)
	r.Apply(first)
	old := r.conn.Load()
	if _, err := r.GroupMembers(context.Background(), "S2"); err != nil {
		t.Fatal(err)
	}

	second := first
	second.BotToken = "xoxb-rotated-9876543210"
	second.SigningSecret = "rotated-signing-secret"
	r.Apply(second)

	if n := len(svc.Notifiers()); n != 2 {
		t.Fatalf("the service was given %d notifiers, want 2", n)
	}
	if _, err := svc.lastNotifier(t).Post(context.Background(), fixtureTask(), slackChannel(fixtureTask()), "tok"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GroupMembers(context.Background(), "S2"); err != nil {
		t.Fatal(err)
	}
	if got := fake.CallsTo("chat.postMessage")[0].Token(); got != second.BotToken {
		t.Errorf("the new notifier posts with %q, want the new bot token", got)
	}
	lists := fake.CallsTo("usergroups.users.list")
	if len(lists) != 2 || lists[1].Token() != second.BotToken {
		t.Errorf("directory calls %+v, want a second one (a new cache) with the new token", lists)
	}

	if status := clickHTTP(t, r, first.SigningSecret, blockActionsPayload("approve", clickToken)); status != http.StatusUnauthorized {
		t.Errorf("click signed with the old secret answered %d, want 401", status)
	}
	if status := clickHTTP(t, r, second.SigningSecret, blockActionsPayload("approve", clickToken)); status != http.StatusOK {
		t.Errorf("click signed with the new secret answered %d, want 200", status)
	}
	waitUntil(t, "the replaced interactions to close", func() bool { return isClosed(old.interactions) })
}

// TestRuntimeCloseWaitsForReplies: Close returns only once the replies in
// flight have been sent, also those of interactions a change replaced.
func TestRuntimeCloseWaitsForReplies(t *testing.T) {
	t.Parallel()
	fake := newFakeSlack(t)
	started, release := make(chan struct{}, 1), make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) }) // before the fake closes
	fake.SetAnswer(func(c slacktest.Call) *slacktest.Answer {
		if c.Method == "chat.postEphemeral" {
			started <- struct{}{}
			<-release
		}
		return nil
	})
	svc := &fakeService{fakeDecider: fakeDecider{decide: func(context.Context, approvals.DecideRequest) (*approvals.Task, error) {
		return nil, approvals.ErrNotApprover
	}}}
	r := NewRuntime(RuntimeConfig{Tools: testTools})
	r.SetService(svc)
	r.Apply(httpSettings(fake))
	if status := clickHTTP(t, r, testSigningSecret, blockActionsPayload("approve", clickToken)); status != http.StatusOK {
		t.Fatalf("click answered %d", status)
	}
	select {
	case <-started:
	case <-time.After(15 * time.Second):
		t.Fatal("the refusal's reply was not sent")
	}
	// The reply in flight belongs to interactions that are now replaced.
	next := httpSettings(fake)
	next.Channel = "COTHER"
	r.Apply(next)
	current := r.conn.Load().interactions

	closed := make(chan struct{})
	go func() {
		r.Close()
		close(closed)
	}()
	waitUntil(t, "Close to close the interactions", func() bool { return isClosed(current) })
	select {
	case <-closed:
		t.Fatal("Close returned while a reply was still being sent")
	default:
	}
	releaseOnce.Do(func() { close(release) })
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Fatal("Close did not return once the reply was sent")
	}
	if replies := fake.CallsTo("chat.postEphemeral"); len(replies) != 1 || !strings.Contains(replies[0].Form.Get("text"), "not an approver") {
		t.Errorf("replies = %+v, want one refusal", replies)
	}
	r.Apply(Settings{})
	if r.conn.Load() == nil {
		t.Error("Apply after Close changed the settings")
	}
}

// TestRuntimeSocketMode: in Socket Mode without a signing secret clicks
// arrive over the WebSocket and are decided, while the HTTP endpoint,
// which nothing can verify, answers 503.
func TestRuntimeSocketMode(t *testing.T) {
	t.Parallel()
	fake := newSocketFake(t)
	r, svc := newTestRuntime(t)
	r.Apply(socketModeSettings(fake))
	stop := startRunSocket(t, r)

	ack := sendEnvelope(t, fake, "env-1", "interactive", socketBlockActions("U123", "approve", "tok-socket"), false, socketAckDeadline)
	checkJSONEqual(t, ack, "")
	if reqs := svc.Requests(); len(reqs) != 1 || reqs[0].Token != "tok-socket" || reqs[0].User.ID != "U123" {
		t.Errorf("decisions = %+v, want U123's click", reqs)
	}
	// The ack carries the dialog's errors, from the interactions handler.
	ack = sendEnvelope(t, fake, "env-2", "interactive", socketViewSubmission(" "), true, socketAckDeadline)
	checkJSONEqual(t, ack, `{"response_action":"errors","errors":{"reason":"Say why the deployment is rejected."}}`)

	if status := clickHTTP(t, r, "", blockActionsPayload("approve", clickToken)); status != http.StatusServiceUnavailable {
		t.Errorf("HTTP click in socket mode without a signing secret answered %d, want 503", status)
	}
	stop()
	if n := len(svc.Requests()); n != 1 {
		t.Errorf("%d decisions, want 1", n)
	}
}

// TestRuntimeSocketFollowsSettings: RunSocket connects once the settings
// ask for Socket Mode, disconnects when they stop asking, and keeps the
// connection through changes that do not concern it.
func TestRuntimeSocketFollowsSettings(t *testing.T) {
	t.Parallel()
	fake := newSocketFake(t)
	r, _ := newTestRuntime(t)
	r.Apply(httpSettings(fake))
	startRunSocket(t, r)

	r.Apply(socketModeSettings(fake))
	if err := fake.WaitSocket(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	_, changed := r.socketState()
	other := socketModeSettings(fake)
	other.Channel = "COTHER"
	r.Apply(other)
	if _, now := r.socketState(); now != changed {
		t.Error("a change of channel reconnects Socket Mode")
	}

	r.Apply(httpSettings(fake))
	waitUntil(t, "the Socket Mode connection to close", func() bool { return !fake.SocketConnected() })
	r.Apply(other)
	waitUntil(t, "a new Socket Mode connection", fake.SocketConnected)
	if n := fake.SocketOpens(); n != 2 {
		t.Errorf("apps.connections.open called %d times, want 2", n)
	}
}

// TestRuntimeSocketRetriesSlowly: a connection Slack refuses is tried again
// after ten seconds, not at once, and at once when the settings change.
func TestRuntimeSocketRetriesSlowly(t *testing.T) {
	t.Parallel()
	fake := newSocketFake(t)
	r, _ := newTestRuntime(t)
	waits := make(chan time.Duration, 4)
	fire := make(chan time.Time)
	r.after = func(d time.Duration) <-chan time.Time {
		waits <- d
		return fire
	}
	wrong := socketModeSettings(fake)
	wrong.AppToken = "xapp-1-A1-revoked"
	r.Apply(wrong)
	startRunSocket(t, r)

	for attempt := 1; attempt <= 2; attempt++ {
		select {
		case d := <-waits:
			if d != 10*time.Second {
				t.Errorf("attempt %d: RunSocket waits %v before reconnecting, want 10s", attempt, d)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("attempt %d: RunSocket did not wait after a refused connection", attempt)
		}
		// RunSocket is waiting: nothing was tried since the refusal.
		if bad := fake.RefusedAuth(); len(bad) != attempt {
			t.Fatalf("attempt %d: %d refused connections, want %d", attempt, len(bad), attempt)
		}
		if attempt == 1 {
			fire <- time.Now()
		}
	}

	r.Apply(socketModeSettings(fake)) // the mended app token
	if err := fake.WaitSocket(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	if bad := fake.RefusedAuth(); len(bad) != 2 {
		t.Errorf("%d refused connections, want 2", len(bad))
	}
}

// TestRuntimeWithoutService: a click that arrives before the service is
// wired is answered, decides nothing, and says something went wrong.
func TestRuntimeWithoutService(t *testing.T) {
	t.Parallel()
	fake := newFakeSlack(t)
	r := NewRuntime(RuntimeConfig{})
	r.Apply(httpSettings(fake))
	if status := clickHTTP(t, r, testSigningSecret, blockActionsPayload("approve", clickToken)); status != http.StatusOK {
		t.Errorf("click answered %d, want 200", status)
	}
	r.Close()
	if replies := fake.CallsTo("chat.postEphemeral"); len(replies) != 1 || !strings.HasPrefix(replies[0].Form.Get("text"), "Something went wrong") {
		t.Errorf("replies = %+v", replies)
	}

	// SetService installs the notifier in force.
	svc := &fakeService{}
	r.SetService(svc)
	if n := svc.lastNotifier(t); n != r.conn.Load().notifier {
		t.Error("SetService installed another notifier than the one in force")
	}
}
