package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/slacktest"
	"github.com/slack-go/slack"
)

// openedHomes records who opened their App Home.
type openedHomes struct {
	mu    sync.Mutex
	users []string
}

func (o *openedHomes) opened(user string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.users = append(o.users, user)
}

func (o *openedHomes) all() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.users)
}

func newEventsRig(t *testing.T) (*httptest.Server, *openedHomes) {
	t.Helper()
	homes := &openedHomes{}
	e := NewEvents(EventsConfig{
		Verifier: NewVerifier(testSigningSecret, func() time.Time { return clickTime }),
		Seen:     NewSeenEvents(), HomeOpened: homes.opened, MaxBodyBytes: 16 << 10,
	})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv, homes
}

func sendEvent(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(out)
}

// TestEventsEndpoint: the URL check is answered with its challenge; an
// unsigned, stale or forged request is refused with 401 before anything
// of it is read; app_home_opened of the Home tab is acted on, once however
// often Slack retries it; other events and tabs are acknowledged only.
func TestEventsEndpoint(t *testing.T) {
	t.Parallel()
	srv, homes := newEventsRig(t)
	signed := func(body string, at time.Time, retry int) *http.Request {
		req, err := slacktest.EventRequest(srv.URL, testSigningSecret, at, body, retry)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}

	status, out := sendEvent(t, signed(slacktest.URLVerification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"), clickTime, 0))
	var answer map[string]string
	if status != http.StatusOK || json.Unmarshal([]byte(out), &answer) != nil || answer["challenge"] != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Errorf("url_verification answered %d %q", status, out)
	}

	opened := slacktest.AppHomeOpened("Ev01", "U1", "home")
	for _, tc := range []struct {
		name string
		req  *http.Request
	}{
		{"unsigned", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(opened))
			return r
		}()},
		{"stale", signed(opened, clickTime.Add(-6*time.Minute), 0)},
		{"signed with another secret", func() *http.Request {
			r, _ := slacktest.EventRequest(srv.URL, "another-secret", clickTime, opened, 0)
			return r
		}()},
		{"challenge unsigned", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(slacktest.URLVerification("x")))
			return r
		}()},
	} {
		if status, out := sendEvent(t, tc.req); status != http.StatusUnauthorized || strings.Contains(out, "challenge") {
			t.Errorf("%s: %d %q, want 401", tc.name, status, out)
		}
	}
	if got := homes.all(); len(got) != 0 {
		t.Fatalf("refused requests opened homes: %q", got)
	}

	for retry := range 3 {
		if status, _ := sendEvent(t, signed(opened, clickTime, retry)); status != http.StatusOK {
			t.Errorf("delivery %d answered %d", retry, status)
		}
	}
	for _, body := range []string{
		slacktest.AppHomeOpened("Ev02", "U2", "messages"),
		`{"type":"event_callback","event_id":"Ev03","event":{"type":"app_mention","user":"U3"}}`,
		slacktest.AppHomeOpened("Ev04", "U4", "home"),
	} {
		if status, _ := sendEvent(t, signed(body, clickTime, 0)); status != http.StatusOK {
			t.Errorf("%s answered %d", body, status)
		}
	}
	if got := homes.all(); !slices.Equal(got, []string{"U1", "U4"}) {
		t.Errorf("homes opened %q, want U1 once (retries dropped) and U4", got)
	}
	if status, _ := sendEvent(t, signed("{not json", clickTime, 0)); status != http.StatusBadRequest {
		t.Errorf("malformed event answered %d, want 400", status)
	}
	get, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	if status, _ := sendEvent(t, get); status != http.StatusMethodNotAllowed {
		t.Errorf("GET answered %d, want 405", status)
	}
}

// TestSeenEventsBounded: the memory of events keeps the latest ones only.
func TestSeenEventsBounded(t *testing.T) {
	t.Parallel()
	s := NewSeenEvents()
	if !s.First("Ev0") || s.First("Ev0") {
		t.Fatal("an event is new once")
	}
	for i := 1; i <= maxSeenEvents; i++ {
		s.First(fmt.Sprintf("Ev%d", i))
	}
	if len(s.ids) > maxSeenEvents {
		t.Errorf("%d ids kept, at most %d", len(s.ids), maxSeenEvents)
	}
	if !s.First("Ev0") {
		t.Error("the oldest event is still remembered past the bound")
	}
	if s.First(fmt.Sprintf("Ev%d", maxSeenEvents)) {
		t.Error("the latest event was forgotten")
	}
}

// eventFunc and commandFunc adapt functions to Socket Mode's handlers.
type eventFunc func(ctx context.Context, payload []byte)

func (f eventFunc) HandleEvent(ctx context.Context, payload []byte) { f(ctx, payload) }

type commandFunc func(ctx context.Context, cmd slack.SlashCommand) any

func (f commandFunc) HandleCommand(ctx context.Context, cmd slack.SlashCommand) any {
	return f(ctx, cmd)
}

// TestSocketEventsAndCommands: over Socket Mode an event is acknowledged
// and handed on with its payload as sent; a slash command's answer goes
// back with the acknowledgement.
func TestSocketEventsAndCommands(t *testing.T) {
	t.Parallel()
	fake := newSocketFake(t)
	events := make(chan string, 1)
	s := NewSocket(SocketConfig{
		AppToken: socketAppToken, APIURL: fake.APIURL(),
		Handler: handlerFunc(func(context.Context, slack.InteractionCallback) any { return nil }),
		Events:  eventFunc(func(_ context.Context, payload []byte) { events <- string(payload) }),
		Commands: commandFunc(func(_ context.Context, cmd slack.SlashCommand) any {
			return textReply("you are " + cmd.UserID + ", asking " + cmd.Text)
		}),
	})
	runSocket(t, s)
	opened := slacktest.AppHomeOpened("Ev1", "U1", "home")
	sendEnvelope(t, fake, "env-event", "events_api", opened, false, socketAckDeadline)
	select {
	case got := <-events:
		var a, b any
		_ = json.Unmarshal([]byte(got), &a)
		_ = json.Unmarshal([]byte(opened), &b)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("event payload %s, want %s", got, opened)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event was not handed on")
	}
	cmd := slacktest.SlashCommand{Command: "/approvals", Text: "help", UserID: "U1", UserName: "alice", ChannelID: "D1"}
	ack := sendEnvelope(t, fake, "env-command", "slash_commands", cmd.Payload(), true, socketAckDeadline)
	checkJSONEqual(t, ack, `{"response_type":"ephemeral","text":"you are U1, asking help"}`)
}

// TestRuntimeSurfaceEndpoints: the Runtime serves /slack/events and
// /slack/commands with the settings in force: 503 without a signing
// secret, 401 unsigned, and the App Home published on app_home_opened.
func TestRuntimeSurfaceEndpoints(t *testing.T) {
	t.Parallel()
	fake := newFakeSlack(t)
	r, _ := newTestRuntime(t)
	opened := slacktest.AppHomeOpened("Ev1", "U1", "home")
	post := func(h http.Handler, req *http.Request) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	evReq := func(secret string) *http.Request {
		req, _ := slacktest.EventRequest("/slack/events", secret, time.Now(), opened, 0)
		return req
	}
	cmdReq := func(secret string) *http.Request {
		req, _ := slacktest.CommandRequest("/slack/commands", secret, time.Now(), slacktest.SlashCommand{Command: "/approvals", Text: "help", UserID: "U1"})
		return req
	}
	if got := post(r.EventsHandler(), evReq(testSigningSecret)); got != http.StatusServiceUnavailable {
		t.Errorf("events before any settings: %d, want 503", got)
	}
	r.Apply(httpSettings(fake))
	if got := post(r.EventsHandler(), evReq("forged")); got != http.StatusUnauthorized {
		t.Errorf("forged event: %d, want 401", got)
	}
	if got := post(r.CommandsHandler(), cmdReq("forged")); got != http.StatusUnauthorized {
		t.Errorf("forged command: %d, want 401", got)
	}
	if got := post(r.CommandsHandler(), cmdReq(testSigningSecret)); got != http.StatusOK {
		t.Errorf("signed command: %d, want 200", got)
	}
	if got := post(r.EventsHandler(), evReq(testSigningSecret)); got != http.StatusOK {
		t.Errorf("signed event: %d, want 200", got)
	}
	waitUntil(t, "the App Home published", func() bool { return len(fake.HomesOf("U1")) == 1 })
	if strings.Contains(fake.HomesOf("U1")[0].ViewText(), `"actions"`) {
		t.Error("the fake service lists nothing, yet the home has buttons")
	}
	// The same event id again (Slack's retry) is dropped: the memory
	// outlives a change of settings. (Opening is recorded before the
	// answer, so a retry acted on would have left U2 among the viewers.)
	s := httpSettings(fake)
	s.PublicURL = "https://approvalbot.example.com"
	r.Apply(s)
	retried, _ := slacktest.EventRequest("/slack/events", testSigningSecret, time.Now(), slacktest.AppHomeOpened("Ev1", "U2", "home"), 1)
	if got := post(r.EventsHandler(), retried); got != http.StatusOK {
		t.Errorf("retried event: %d, want 200", got)
	}
	r.home.mu.Lock()
	_, acted := r.home.viewers["U2"]
	r.home.mu.Unlock()
	if acted {
		t.Error("a retried event was acted on")
	}
	noSecret := httpSettings(fake)
	noSecret.SigningSecret = ""
	r2, _ := newTestRuntime(t)
	r2.Apply(noSecret)
	if got := post(r2.CommandsHandler(), cmdReq(testSigningSecret)); got != http.StatusServiceUnavailable {
		t.Errorf("commands without a signing secret: %d, want 503", got)
	}
}
