package flexdeploy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

const (
	testUser     = "fd-bot"
	testPassword = "s3cr3t-Pa55word!"
	restRoot     = "/flexdeploy/rest/v1"
)

var wantAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(testUser+":"+testPassword))

// answer is one scripted answer of the fake FlexDeploy.
type answer struct {
	status int
	body   string
	header map[string]string
	// hang makes the fake wait until the client gives up.
	hang bool
}

// request is what the fake FlexDeploy received.
type request struct {
	method, path, auth, contentType, accept string
	body                                    string
}

// fakeFlexDeploy is FlexDeploy's REST API as a real HTTP server answering
// from a script; the last answer repeats.
type fakeFlexDeploy struct {
	srv *httptest.Server

	mu       sync.Mutex
	answers  []answer
	requests []request
}

func newFakeFlexDeploy(t *testing.T, answers ...answer) *fakeFlexDeploy {
	t.Helper()
	f := &fakeFlexDeploy{answers: answers}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeFlexDeploy) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, request{
		method:      r.Method,
		path:        r.URL.EscapedPath(),
		auth:        r.Header.Get("Authorization"),
		contentType: r.Header.Get("Content-Type"),
		accept:      r.Header.Get("Accept"),
		body:        string(body),
	})
	a := answer{status: http.StatusOK}
	if n := len(f.answers); n > 0 {
		a = f.answers[min(len(f.requests)-1, n-1)]
	}
	f.mu.Unlock()

	if a.hang {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return
	}
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func (f *fakeFlexDeploy) received() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

func (f *fakeFlexDeploy) baseURL() string { return f.srv.URL + restRoot }

// sleepRecorder stands in for the wait between tries: it records the waits
// without waiting, so the tests are fast and can check them.
type sleepRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepRecorder) recorded() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

func newTestClient(t *testing.T, baseURL string, modify ...func(*Config)) (*Client, *sleepRecorder) {
	t.Helper()
	rec := &sleepRecorder{}
	cfg := Config{
		BaseURL:    baseURL + "/",
		Username:   testUser,
		Password:   testPassword,
		Timeout:    5 * time.Second,
		MinBackoff: time.Millisecond,
		MaxBackoff: 8 * time.Millisecond,
		Sleep:      rec.sleep,
	}
	for _, m := range modify {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, rec
}

func TestDeliverSendsTheDecision(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		taskID   string
		action   approvals.Action
		notes    string
		wantPath string
		wantBody string
	}{
		{
			name: "approve", taskID: "8900", action: approvals.ActionApprove,
			notes:    "Approved in Slack by Alice (U123) at 2026-11-22T14:02:00Z",
			wantPath: restRoot + "/tasks/approval/approve/8900",
			wantBody: `{"notes":"Approved in Slack by Alice (U123) at 2026-11-22T14:02:00Z"}`,
		},
		{
			name: "reject", taskID: "8901", action: approvals.ActionReject,
			notes:    `Rejected in Slack by Carol (U789) at 2026-11-22T14:02:00Z: "tests" <red> & flaky`,
			wantPath: restRoot + "/tasks/approval/reject/8901",
			wantBody: `{"notes":"Rejected in Slack by Carol (U789) at 2026-11-22T14:02:00Z: \"tests\" <red> & flaky"}`,
		},
		{
			name: "path escaping", taskID: "a/b c?d#e%", action: approvals.ActionApprove,
			notes:    "",
			wantPath: restRoot + "/tasks/approval/approve/a%2Fb%20c%3Fd%23e%25",
			wantBody: `{"notes":""}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fd := newFakeFlexDeploy(t, answer{status: http.StatusNoContent})
			c, rec := newTestClient(t, fd.baseURL())

			err := c.Deliver(context.Background(), &approvals.Task{TaskID: tc.taskID}, tc.action, tc.notes)
			if err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			got := fd.received()
			if len(got) != 1 {
				t.Fatalf("FlexDeploy got %d requests, want 1", len(got))
			}
			r := got[0]
			if r.method != http.MethodPut || r.path != tc.wantPath {
				t.Errorf("request = %s %s, want PUT %s", r.method, r.path, tc.wantPath)
			}
			if r.auth != wantAuth {
				t.Errorf("Authorization = %q, want %q", r.auth, wantAuth)
			}
			if r.contentType != "application/json" || r.accept != "application/json" {
				t.Errorf("Content-Type = %q, Accept = %q, want application/json for both", r.contentType, r.accept)
			}
			if r.body != tc.wantBody {
				t.Errorf("body = %s, want %s", r.body, tc.wantBody)
			}
			var decoded struct{ Notes string }
			if err := json.Unmarshal([]byte(r.body), &decoded); err != nil || decoded.Notes != tc.notes {
				t.Errorf("body decodes to %q (%v), want notes %q", decoded.Notes, err, tc.notes)
			}
			if waits := rec.recorded(); len(waits) != 0 {
				t.Errorf("waited %v before a first success", waits)
			}
		})
	}
}

func TestDeliverRetriesServerErrors(t *testing.T) {
	t.Parallel()
	fd := newFakeFlexDeploy(t,
		answer{status: 500, body: "boom"},
		answer{status: 502},
		answer{status: 500},
		answer{status: 200, body: `{}`},
	)
	c, rec := newTestClient(t, fd.baseURL())

	if err := c.Deliver(context.Background(), &approvals.Task{TaskID: "8900"}, approvals.ActionApprove, "ok"); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	got := fd.received()
	if len(got) != 4 {
		t.Fatalf("FlexDeploy got %d requests, want 4", len(got))
	}
	for i, r := range got {
		if r.body != `{"notes":"ok"}` || r.auth != wantAuth {
			t.Errorf("request %d: body %s auth %q; every retry must resend the same request", i, r.body, r.auth)
		}
	}
	waits := rec.recorded()
	if len(waits) != 3 {
		t.Fatalf("waits = %v, want 3", waits)
	}
	for i, w := range waits {
		ceiling := min(time.Millisecond<<i, 8*time.Millisecond)
		if w < 0 || w > ceiling {
			t.Errorf("wait %d = %v, want within [0, %v]", i, w, ceiling)
		}
	}
}

func TestDeliverGivesUpAfterRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		retries  int
		wantReqs int
	}{
		{name: "default", retries: 0, wantReqs: 5},
		{name: "two", retries: 2, wantReqs: 3},
		{name: "none", retries: -1, wantReqs: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fd := newFakeFlexDeploy(t, answer{status: 503, body: "maintenance"})
			c, _ := newTestClient(t, fd.baseURL(), func(cfg *Config) { cfg.Retries = tc.retries })

			err := c.Deliver(context.Background(), &approvals.Task{TaskID: "8900"}, approvals.ActionReject, "")
			if err == nil {
				t.Fatal("Deliver succeeded against a failing FlexDeploy")
			}
			if approvals.IsPermanent(err) {
				t.Errorf("error %v is permanent; a 503 must stay retryable", err)
			}
			want := fmt.Sprintf("flexdeploy: reject task 8900: FlexDeploy answered 503 Service Unavailable: maintenance (after %d attempts)", tc.wantReqs)
			if err.Error() != want {
				t.Errorf("error = %q\nwant    %q", err, want)
			}
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != 503 {
				t.Errorf("error %v carries no StatusError 503", err)
			}
			if n := len(fd.received()); n != tc.wantReqs {
				t.Errorf("FlexDeploy got %d requests, want %d", n, tc.wantReqs)
			}
		})
	}
}

func TestDeliverClientErrorsArePermanent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		answer  answer
		want    string
		isFound bool
	}{
		{
			name:   "400 plain text",
			answer: answer{status: 400, body: "Task is not pending\n"},
			want:   "flexdeploy: approve task 8900: FlexDeploy answered 400 Bad Request: Task is not pending",
		},
		{
			name:   "403 JSON message",
			answer: answer{status: 403, body: `{"message":"User fd-bot is not in approval group Prod Approvers","code":"FD-403"}`},
			want:   "flexdeploy: approve task 8900: FlexDeploy answered 403 Forbidden: User fd-bot is not in approval group Prod Approvers",
		},
		{
			name:   "401 empty body",
			answer: answer{status: 401},
			want:   "flexdeploy: approve task 8900: FlexDeploy answered 401 Unauthorized",
		},
		{
			name:    "404",
			answer:  answer{status: 404, body: "<html>\n<body>Not   Found</body></html>"},
			want:    "flexdeploy: approve task 8900: FlexDeploy answered 404 Not Found: <html> <body>Not Found</body></html>",
			isFound: true,
		},
		{
			name:   "long answer is cut",
			answer: answer{status: 409, body: strings.Repeat("é", 500)},
			want:   "flexdeploy: approve task 8900: FlexDeploy answered 409 Conflict: " + strings.Repeat("é", 199) + "…",
		},
		{
			name:   "redirect is not followed",
			answer: answer{status: 302, header: map[string]string{"Location": "https://sso.example.com/login"}},
			want:   "flexdeploy: approve task 8900: FlexDeploy answered 302 Found (a redirect to https://sso.example.com/login; check the base URL)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fd := newFakeFlexDeploy(t, tc.answer, answer{status: 200})
			c, rec := newTestClient(t, fd.baseURL())

			err := c.Deliver(context.Background(), &approvals.Task{TaskID: "8900"}, approvals.ActionApprove, "n")
			if !approvals.IsPermanent(err) {
				t.Fatalf("error %v is not permanent", err)
			}
			if err.Error() != tc.want {
				t.Errorf("error = %q\nwant    %q", err, tc.want)
			}
			if got := errors.Is(err, approvals.ErrNotFound); got != tc.isFound {
				t.Errorf("errors.Is(err, ErrNotFound) = %v, want %v", got, tc.isFound)
			}
			if n := len(fd.received()); n != 1 {
				t.Errorf("FlexDeploy got %d requests, want 1: a 4xx is final", n)
			}
			if waits := rec.recorded(); len(waits) != 0 {
				t.Errorf("waited %v after a final answer", waits)
			}
		})
	}
}

func TestDeliverHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 14, 2, 0, 0, time.UTC)
	tests := []struct {
		name       string
		status     int
		retryAfter string
		maxBackoff time.Duration
		wantWait   time.Duration
	}{
		{name: "429 seconds", status: 429, retryAfter: "2", maxBackoff: 5 * time.Second, wantWait: 2 * time.Second},
		{name: "503 seconds", status: 503, retryAfter: "1", maxBackoff: 5 * time.Second, wantWait: time.Second},
		{name: "429 date", status: 429, retryAfter: now.Add(3 * time.Second).Format(http.TimeFormat), maxBackoff: 5 * time.Second, wantWait: 3 * time.Second},
		{name: "429 past date", status: 429, retryAfter: now.Add(-time.Minute).Format(http.TimeFormat), maxBackoff: 5 * time.Second, wantWait: 0},
		{name: "capped at max backoff", status: 429, retryAfter: "120", maxBackoff: 50 * time.Millisecond, wantWait: 50 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fd := newFakeFlexDeploy(t,
				answer{status: tc.status, header: map[string]string{"Retry-After": tc.retryAfter}},
				answer{status: 200},
			)
			c, rec := newTestClient(t, fd.baseURL(), func(cfg *Config) {
				cfg.MaxBackoff = tc.maxBackoff
				cfg.Now = func() time.Time { return now }
			})
			if err := c.Deliver(context.Background(), &approvals.Task{TaskID: "1"}, approvals.ActionApprove, ""); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			if waits := rec.recorded(); len(waits) != 1 || waits[0] != tc.wantWait {
				t.Errorf("waits = %v, want [%v]", waits, tc.wantWait)
			}
			if n := len(fd.received()); n != 2 {
				t.Errorf("FlexDeploy got %d requests, want 2", n)
			}
		})
	}
}

// TestDeliverRetryAfterRealWait runs the real timer once with a small wait.
func TestDeliverRetryAfterRealWait(t *testing.T) {
	t.Parallel()
	fd := newFakeFlexDeploy(t,
		answer{status: 429, header: map[string]string{"Retry-After": "1"}},
		answer{status: 200},
	)
	c, err := New(Config{BaseURL: fd.baseURL(), Username: testUser, Password: testPassword,
		MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Deliver(context.Background(), &approvals.Task{TaskID: "1"}, approvals.ActionApprove, ""); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if n := len(fd.received()); n != 2 {
		t.Errorf("FlexDeploy got %d requests, want 2", n)
	}
}

func TestDeliverPersistentRateLimitTellsTheOutboxWhenToRetry(t *testing.T) {
	t.Parallel()
	fd := newFakeFlexDeploy(t, answer{status: 429, body: "slow down", header: map[string]string{"Retry-After": "30"}})
	c, rec := newTestClient(t, fd.baseURL(), func(cfg *Config) { cfg.Retries = 2 })

	err := c.Deliver(context.Background(), &approvals.Task{TaskID: "1"}, approvals.ActionApprove, "")
	if err == nil || approvals.IsPermanent(err) {
		t.Fatalf("error = %v, want a retryable error", err)
	}
	if after, ok := approvals.RetryAfter(err); !ok || after != 30*time.Second {
		t.Errorf("RetryAfter(err) = %v, %v; want 30s, true", after, ok)
	}
	if waits := rec.recorded(); len(waits) != 2 || waits[0] != 8*time.Millisecond {
		t.Errorf("waits = %v, want two waits capped at 8ms", waits)
	}
}

func TestDeliverTimeoutIsRetryable(t *testing.T) {
	t.Parallel()
	fd := newFakeFlexDeploy(t, answer{hang: true})
	// No HTTPClient and no Sleep: the client's own transport and timer.
	c, err := New(Config{BaseURL: fd.baseURL(), Username: testUser, Password: testPassword,
		Timeout: 50 * time.Millisecond, Retries: 1, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Deliver(context.Background(), &approvals.Task{TaskID: "8900"}, approvals.ActionApprove, "")
	if err == nil || approvals.IsPermanent(err) {
		t.Fatalf("error = %v, want a retryable error", err)
	}
	if !strings.Contains(err.Error(), "FlexDeploy did not answer within 50ms") || !strings.Contains(err.Error(), "(after 2 attempts)") {
		t.Errorf("error %q does not say that FlexDeploy timed out twice", err)
	}
	if n := len(fd.received()); n != 2 {
		t.Errorf("FlexDeploy got %d requests, want 2", n)
	}
}

// TestDeliverTimeoutWithGivenHTTPClient checks that Timeout bounds requests
// also through an HTTP client that has none.
func TestDeliverTimeoutWithGivenHTTPClient(t *testing.T) {
	t.Parallel()
	fd := newFakeFlexDeploy(t, answer{hang: true})
	c, _ := newTestClient(t, fd.baseURL(), func(cfg *Config) {
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{}}
		cfg.Timeout = 30 * time.Millisecond
		cfg.Retries = -1
	})
	err := c.Deliver(context.Background(), &approvals.Task{TaskID: "8900"}, approvals.ActionApprove, "")
	if err == nil || approvals.IsPermanent(err) || !strings.Contains(err.Error(), "did not answer within 30ms") {
		t.Fatalf("error = %v, want a retryable timeout", err)
	}
}

func TestDeliverConnectionRefusedIsRetryable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there any more

	c, rec := newTestClient(t, "http://"+addr+restRoot)
	err = c.Deliver(context.Background(), &approvals.Task{TaskID: "8900"}, approvals.ActionApprove, "")
	if err == nil || approvals.IsPermanent(err) {
		t.Fatalf("error = %v, want a retryable error", err)
	}
	if !strings.HasPrefix(err.Error(), "flexdeploy: approve task 8900: cannot reach FlexDeploy: ") ||
		!strings.HasSuffix(err.Error(), "(after 5 attempts)") {
		t.Errorf("error = %q", err)
	}
	if waits := rec.recorded(); len(waits) != 4 {
		t.Errorf("waits = %v, want 4 (default retries)", waits)
	}
}

func TestDeliverStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	fd := newFakeFlexDeploy(t, answer{status: 500})
	ctx, cancel := context.WithCancel(context.Background())
	c, _ := newTestClient(t, fd.baseURL(), func(cfg *Config) {
		cfg.Sleep = func(ctx context.Context, _ time.Duration) error {
			cancel() // the process shuts down during the first wait
			return ctx.Err()
		}
	})
	err := c.Deliver(ctx, &approvals.Task{TaskID: "8900"}, approvals.ActionApprove, "")
	if !errors.Is(err, context.Canceled) || approvals.IsPermanent(err) {
		t.Fatalf("error = %v, want a retryable error wrapping context.Canceled", err)
	}
	if n := len(fd.received()); n != 1 {
		t.Errorf("FlexDeploy got %d requests, want 1", n)
	}
}

func TestDeliverRefusesBadInput(t *testing.T) {
	t.Parallel()
	fd := newFakeFlexDeploy(t)
	c, _ := newTestClient(t, fd.baseURL())
	tests := []struct {
		name   string
		task   *approvals.Task
		action approvals.Action
	}{
		{name: "nil task", task: nil, action: approvals.ActionApprove},
		{name: "no task id", task: &approvals.Task{}, action: approvals.ActionApprove},
		{name: "unknown action", task: &approvals.Task{TaskID: "1"}, action: "defer"},
	}
	for _, tc := range tests {
		if err := c.Deliver(context.Background(), tc.task, tc.action, ""); !approvals.IsPermanent(err) {
			t.Errorf("%s: error = %v, want a permanent error", tc.name, err)
		}
	}
	if n := len(fd.received()); n != 0 {
		t.Errorf("FlexDeploy got %d requests, want none", n)
	}
}

// TestErrorsNeverHoldCredentials lets a misbehaving FlexDeploy (or proxy)
// echo the request's credentials and checks that no error repeats them.
func TestErrorsNeverHoldCredentials(t *testing.T) {
	t.Parallel()
	echo := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			user, pass, _ := r.BasicAuth()
			w.WriteHeader(status)
			fmt.Fprintf(w, "denied %s:%s with %s", user, pass, r.Header.Get("Authorization"))
		}
	}
	auth := strings.TrimPrefix(wantAuth, "Basic ")
	for _, status := range []int{400, 401, 404, 500, 503} {
		srv := httptest.NewServer(echo(status))
		t.Cleanup(srv.Close)
		c, _ := newTestClient(t, srv.URL, func(cfg *Config) { cfg.Retries = 1 })

		errs := []error{c.Deliver(context.Background(), &approvals.Task{TaskID: "1"}, approvals.ActionApprove, "")}
		_, err := c.Details(context.Background(), "1")
		errs = append(errs, err)
		_, err = c.RemoteStatus(context.Background(), &approvals.Task{TaskID: "1"})
		errs = append(errs, err)
		for _, err := range errs {
			if err == nil {
				t.Fatalf("status %d: no error", status)
			}
			msg := err.Error() + fmt.Sprintf(" %v %+v %#v", err, err, err)
			if strings.Contains(msg, testPassword) || strings.Contains(msg, auth) {
				t.Errorf("status %d: error holds credentials: %s", status, err)
			}
			if !strings.Contains(err.Error(), "denied fd-bot:[redacted]") {
				t.Errorf("status %d: error %q lost the rest of the answer", status, err)
			}
		}
	}

	// No answer at all: the transport's error names the URL, never the password.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, _ := newTestClient(t, "http://"+addr, func(cfg *Config) { cfg.Retries = -1 })
	if err := c.Deliver(context.Background(), &approvals.Task{TaskID: "1"}, approvals.ActionApprove, ""); err == nil ||
		strings.Contains(err.Error(), testPassword) || strings.Contains(err.Error(), auth) {
		t.Errorf("connection error = %v", err)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	ok := Config{BaseURL: "https://fd.example.com/flexdeploy/rest/v1", Username: "u", Password: "p"}
	tests := []struct {
		name    string
		modify  func(*Config)
		wantErr string
	}{
		{name: "valid", modify: func(*Config) {}},
		{name: "no base URL", modify: func(c *Config) { c.BaseURL = " " }, wantErr: "base URL is required"},
		{name: "ftp base URL", modify: func(c *Config) { c.BaseURL = "ftp://fd/rest" }, wantErr: "must start with http:// or https://"},
		{name: "relative base URL", modify: func(c *Config) { c.BaseURL = "fd/rest" }, wantErr: "must start with http:// or https://"},
		{name: "no host", modify: func(c *Config) { c.BaseURL = "http:///rest" }, wantErr: "has no host"},
		{name: "credentials in URL", modify: func(c *Config) { c.BaseURL = "https://u:hunter2@fd/rest" }, wantErr: "must not contain credentials"},
		{name: "query", modify: func(c *Config) { c.BaseURL = "https://fd/rest?x=1" }, wantErr: "must not have a query"},
		{name: "unparsable", modify: func(c *Config) { c.BaseURL = "http://fd:port/" }, wantErr: "not a valid URL"},
		{name: "no username", modify: func(c *Config) { c.Username = "" }, wantErr: "username and password are required"},
		{name: "no password", modify: func(c *Config) { c.Password = "" }, wantErr: "username and password are required"},
		{name: "negative timeout", modify: func(c *Config) { c.Timeout = -time.Second }, wantErr: "must not be negative"},
		{name: "max below min", modify: func(c *Config) { c.MinBackoff = time.Second; c.MaxBackoff = time.Millisecond }, wantErr: "max backoff"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := ok
			tc.modify(&cfg)
			c, err := New(cfg)
			if tc.wantErr == "" {
				if err != nil || c == nil {
					t.Fatalf("New = %v, %v", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New error = %v, want one containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q quotes the password", err)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	t.Parallel()
	c, err := New(Config{BaseURL: "http://fd:8000/flexdeploy/rest/v1//", Username: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if c.base != "http://fd:8000/flexdeploy/rest/v1" {
		t.Errorf("base = %q, want the trailing slashes gone", c.base)
	}
	if c.timeout != DefaultTimeout || c.retries != DefaultRetries ||
		c.minBackoff != DefaultMinBackoff || c.maxBackoff != DefaultMaxBackoff {
		t.Errorf("defaults = %v %d %v %v", c.timeout, c.retries, c.minBackoff, c.maxBackoff)
	}
	if c.http == nil || c.http == http.DefaultClient || c.http.Timeout != DefaultTimeout || c.http.Transport == nil {
		t.Errorf("client = %+v, want an own client with a timeout and transport", c.http)
	}
	tr, ok := c.http.Transport.(*http.Transport)
	if !ok || tr.ResponseHeaderTimeout == 0 || tr.TLSHandshakeTimeout == 0 {
		t.Errorf("transport lacks timeouts: %+v", c.http.Transport)
	}
}

func TestConfigAndClientPrintWithoutPassword(t *testing.T) {
	t.Parallel()
	cfg := Config{BaseURL: "http://fd/rest", Username: "u", Password: testPassword}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprint(&cfg),
		fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprint(c),
	} {
		if strings.Contains(s, testPassword) || strings.Contains(s, strings.TrimPrefix(wantAuth, "Basic ")) {
			t.Errorf("printed form holds the password: %s", s)
		}
	}
}

func TestRemoteStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status string
		want   approvals.Status
	}{
		{"PENDING", approvals.StatusPending},
		{"pending", approvals.StatusPending},
		{"SUBMITTED", approvals.StatusPending},
		{"APPROVED", approvals.StatusApproved},
		{" Approved ", approvals.StatusApproved},
		{"REJECTED", approvals.StatusRejected},
		{"rejected", approvals.StatusRejected},
		{"SOMETHING_NEW", approvals.StatusPending},
		{"", approvals.StatusPending},
	}
	for _, tc := range tests {
		t.Run(tc.status, func(t *testing.T) {
			t.Parallel()
			fd := newFakeFlexDeploy(t, answer{status: 200, body: `{"taskId":8900,"status":"` + tc.status + `"}`})
			c, _ := newTestClient(t, fd.baseURL())
			got, err := c.RemoteStatus(context.Background(), &approvals.Task{TaskID: "8900"})
			if err != nil {
				t.Fatalf("RemoteStatus: %v", err)
			}
			if got != tc.want {
				t.Errorf("RemoteStatus(%q) = %q, want %q", tc.status, got, tc.want)
			}
			reqs := fd.received()
			if len(reqs) != 1 || reqs[0].method != http.MethodGet || reqs[0].path != restRoot+"/tasks/approval/8900" ||
				reqs[0].auth != wantAuth || reqs[0].accept != "application/json" || reqs[0].body != "" {
				t.Errorf("requests = %+v, want one authenticated GET of the task", reqs)
			}
		})
	}
}

func TestRemoteStatusFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		answer        answer
		wantPermanent bool
		wantNotFound  bool
		wantErr       string
	}{
		{name: "404", answer: answer{status: 404, body: "no such task"}, wantPermanent: true, wantNotFound: true,
			wantErr: "flexdeploy: get task 8900: FlexDeploy answered 404 Not Found: no such task"},
		{name: "not JSON", answer: answer{status: 200, body: "<html>login</html>"},
			wantErr: "flexdeploy: get task 8900: FlexDeploy's answer is not a JSON task: <html>login</html>"},
		{name: "500", answer: answer{status: 500},
			wantErr: "flexdeploy: get task 8900: FlexDeploy answered 500 Internal Server Error (after 2 attempts)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fd := newFakeFlexDeploy(t, tc.answer)
			c, _ := newTestClient(t, fd.baseURL(), func(cfg *Config) { cfg.Retries = 1 })
			_, err := c.RemoteStatus(context.Background(), &approvals.Task{TaskID: "8900"})
			if err == nil {
				t.Fatal("RemoteStatus succeeded")
			}
			if approvals.IsPermanent(err) != tc.wantPermanent || errors.Is(err, approvals.ErrNotFound) != tc.wantNotFound {
				t.Errorf("error %v: permanent %v, not found %v", err, approvals.IsPermanent(err), errors.Is(err, approvals.ErrNotFound))
			}
			if err.Error() != tc.wantErr {
				t.Errorf("error = %q\nwant    %q", err, tc.wantErr)
			}
		})
	}
}

func TestDetailsAndEnrich(t *testing.T) {
	t.Parallel()
	const body = `{
		"taskId": 10453, "status": "PENDING", "environmentId": 16504,
		"environmentName": "Production", "releaseName": "2026.11",
		"pipelineName": "Standard Release Pipeline", "projectName": "payments-api",
		"notes": null, "gateName": "Prod Approval", "requestType": "Release",
		"links": [{"rel": "self"}]
	}`
	fd := newFakeFlexDeploy(t, answer{status: 200, body: body})
	c, _ := newTestClient(t, fd.baseURL())

	d, err := c.Details(context.Background(), "10453")
	if err != nil {
		t.Fatalf("Details: %v", err)
	}
	want := Details{
		TaskID: "10453", Status: "PENDING", EnvironmentName: "Production", ReleaseName: "2026.11",
		PipelineName: "Standard Release Pipeline", ProjectName: "payments-api",
		GateName: "Prod Approval", RequestType: "Release",
	}
	if d != want {
		t.Errorf("Details =\n  %+v\nwant\n  %+v", d, want)
	}

	sub := approvals.Submission{Source: "flexdeploy", TaskID: "10453", Context: approvals.Context{
		Environment: "PROD", Description: "from the intake",
	}}
	ApplyDetails(&sub, d)
	wantCtx := approvals.Context{
		Description: "from the intake",
		Environment: "PROD", // what the intake sent wins
		Release:     "2026.11",
		Pipeline:    "Standard Release Pipeline",
		Project:     "payments-api",
	}
	if sub.Context != wantCtx {
		t.Errorf("Enrich =\n  %+v\nwant\n  %+v", sub.Context, wantCtx)
	}
	ApplyDetails(nil, d) // must not panic
}

func TestDetailsTaskIDForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body    string
		want    string
		wantErr bool
	}{
		{body: `{"taskId":"8900"}`, want: "8900"},
		{body: `{"taskId":8900}`, want: "8900"},
		{body: `{"TASKID":8900,"STATUS":"APPROVED"}`, want: "8900"},
		{body: `{"taskId":null}`, want: ""},
		{body: `{}`, want: ""},
		{body: `{"taskId":true}`, wantErr: true},
		{body: `[]`, wantErr: true},
	}
	for _, tc := range tests {
		var d Details
		err := json.Unmarshal([]byte(tc.body), &d)
		if (err != nil) != tc.wantErr || d.TaskID != tc.want {
			t.Errorf("Unmarshal(%s) = %+v, %v; want taskId %q, error %v", tc.body, d, err, tc.want, tc.wantErr)
		}
	}
}

func TestClientEnrich(t *testing.T) {
	t.Parallel()
	fd := newFakeFlexDeploy(t, answer{status: 200, body: `{"taskId": 7, "environmentName": "PROD-EU", "releaseName": "R1", "pipelineName": "P", "projectName": "api"}`})
	c, _ := newTestClient(t, fd.baseURL())

	complete := approvals.Submission{TaskID: "7", Context: approvals.Context{Environment: "e", Release: "r", Pipeline: "p", Project: "q"}}
	if err := c.Enrich(context.Background(), &complete); err != nil || len(fd.received()) != 0 {
		t.Fatalf("complete submission: err %v, %d calls; want none", err, len(fd.received()))
	}
	sparse := approvals.Submission{TaskID: "7"}
	if err := c.Enrich(context.Background(), &sparse); err != nil {
		t.Fatal(err)
	}
	if got := fd.received(); len(got) != 1 || got[0].method != "GET" || got[0].path != restRoot+"/tasks/approval/7" {
		t.Fatalf("requests %+v", got)
	}
	if sparse.Environment != "PROD-EU" || sparse.Release != "R1" || sparse.Project != "api" {
		t.Fatalf("enriched %+v", sparse.Context)
	}
}

// TestRedirectNeverLeaksThePassword: a Location long enough to be cut right
// inside the password must not show its first characters.
func TestRedirectNeverLeaksThePassword(t *testing.T) {
	t.Parallel()
	loc := "https://sso.example.com/" + strings.Repeat("a", 170) + "?p=" + testPassword
	fd := newFakeFlexDeploy(t, answer{status: 302, header: map[string]string{"Location": loc}})
	c, _ := newTestClient(t, fd.baseURL())
	err := c.Deliver(context.Background(), &approvals.Task{TaskID: "8900"}, approvals.ActionApprove, "n")
	if err == nil || strings.Contains(err.Error(), testPassword[:3]+"…") || strings.Contains(err.Error(), "p=s3c") {
		t.Fatalf("error shows part of the password: %v", err)
	}
}
