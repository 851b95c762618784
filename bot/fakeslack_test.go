package bot

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const testBotToken = "xoxb-test-0123456789-secret"

// slackCall is one request the fake Slack Web API received.
type slackCall struct {
	Method string     // "chat.postMessage"
	Form   url.Values // form-encoded methods
	JSON   map[string]any
	Auth   string // the Authorization header
}

// token is the credential the call carried: slack-go sends chat.* and
// users.* with a form field and JSON methods with a Bearer header.
func (c slackCall) token() string {
	if bearer, ok := strings.CutPrefix(c.Auth, "Bearer "); ok {
		return bearer
	}
	return c.Form.Get("token")
}

// fakeAnswer overrides the fake's answer to a call.
type fakeAnswer struct {
	Status int
	Header map[string]string
	Body   string
}

// fakeSlack is a Slack Web API on a real HTTP server: it records every call
// and answers like Slack, unless answer says otherwise.
type fakeSlack struct {
	srv *httptest.Server

	mu     sync.Mutex
	calls  []slackCall
	answer func(call slackCall) *fakeAnswer
}

func newFakeSlack(t *testing.T) *fakeSlack {
	t.Helper()
	f := &fakeSlack{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSlack) setAnswer(fn func(call slackCall) *fakeAnswer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = fn
}

func (f *fakeSlack) Calls() []slackCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]slackCall(nil), f.calls...)
}

func (f *fakeSlack) CallsTo(method string) []slackCall {
	var out []slackCall
	for _, c := range f.Calls() {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// notifier returns a Notifier talking to the fake.
func (f *fakeSlack) notifier(mutate func(*Config)) *Notifier {
	cfg := Config{BotToken: testBotToken, APIURL: f.srv.URL + "/", DefaultChannel: "CDEFAULT", Timeout: 5 * time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	return New(cfg)
}

func (f *fakeSlack) serve(w http.ResponseWriter, r *http.Request) {
	call := slackCall{Method: strings.TrimPrefix(r.URL.Path, "/"), Auth: r.Header.Get("Authorization")}
	body, _ := io.ReadAll(r.Body)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(body, &call.JSON)
	} else {
		call.Form, _ = url.ParseQuery(string(body))
		for k, v := range r.URL.Query() {
			call.Form[k] = v
		}
	}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	answer := f.answer
	f.mu.Unlock()

	if answer != nil {
		if a := answer(call); a != nil {
			for k, v := range a.Header {
				w.Header().Set(k, v)
			}
			w.Header().Set("Content-Type", "application/json")
			status := a.Status
			if status == 0 {
				status = http.StatusOK
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, a.Body)
			return
		}
	}

	w.Header().Set("Content-Type", "application/json")
	var reply any
	switch call.Method {
	case "chat.postMessage":
		// Slack answers with the channel's id, even when given a name.
		channel := call.Form.Get("channel")
		if strings.HasPrefix(channel, "#") {
			channel = "CRESOLVED"
		}
		reply = map[string]any{"ok": true, "channel": channel, "ts": "1700000000.000200"}
	case "chat.update":
		reply = map[string]any{"ok": true, "channel": call.Form.Get("channel"), "ts": call.Form.Get("ts")}
	case "chat.postEphemeral":
		reply = map[string]any{"ok": true, "message_ts": "1700000000.000300"}
	case "views.open":
		reply = map[string]any{"ok": true, "view": map[string]any{"id": "V1"}}
	case "usergroups.users.list":
		reply = map[string]any{"ok": true, "users": []string{"U1", "U2"}}
	case "users.lookupByEmail":
		if call.Form.Get("email") == "lead@example.com" {
			reply = map[string]any{"ok": true, "user": map[string]any{"id": "U9"}}
		} else {
			reply = map[string]any{"ok": false, "error": "users_not_found"}
		}
	default:
		w.WriteHeader(http.StatusNotFound)
		reply = map[string]any{"ok": false, "error": "unknown_method"}
	}
	_ = json.NewEncoder(w).Encode(reply)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
