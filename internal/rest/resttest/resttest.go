// Package resttest is the contract every deployment-tool client sending
// through rest.Exchange keeps, run against each of them (as
// store/storetest is for the stores): a decision is sent once whatever
// the answer, what may mend is handed to the outbox (with the wait the
// server named), a refusal is final, a lost answer says so, reads are
// retried and writes never, redirects are not followed, and no error
// quotes a secret. Each adapter's own tests keep what is its own: paths,
// bodies, headers, and how it reads its tool's answers.
package resttest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/httpfault"
	"github.com/approvalbot/approvalbot/internal/rest"
)

// Retries is how many retries a subject's client is built with for reads.
const Retries = 2

// Options are what a subject builds its client with.
type Options struct {
	// URL is the suite's server: the tool's API root.
	URL string
	// Timeout bounds each request.
	Timeout time.Duration
	// Retries of a read; MinBackoff and MaxBackoff of its waits.
	Retries    int
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// Sleep waits between a read's tries.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock of Retry-After dates.
	Now func() time.Time
}

// Client is an adapter's client as the suite drives it: one decision (a
// write), and its status read, each about a task the subject made.
type Client struct {
	Decide func(ctx context.Context) error
	// Status reads the task's status; nil: the tool has no read.
	Status func(ctx context.Context) error
}

// Subject is one adapter under the contract.
type Subject struct {
	// Service is how the adapter's errors name its tool ("FlexDeploy").
	Service string
	// DecideOp and StatusOp begin the errors of Decide and Status
	// ("flexdeploy: approve task 8900").
	DecideOp, StatusOp string
	// Secrets must never show in an error, whatever the tool answers.
	Secrets []string
	// New builds the client.
	New func(t *testing.T, o Options) Client
	// Setup answers the adapter's own preliminary requests (a token), and
	// reports whether it did; nil: there are none.
	Setup func(w http.ResponseWriter, r *http.Request) bool
	// ReadOK is a usable answer to the status read.
	ReadOK string
}

// answer is one scripted answer.
type answer struct {
	status int
	header map[string]string
	body   string
	late   bool // held until the client gives up
	drop   bool // the connection is closed without an answer
}

// server is the suite's tool: it answers the subject's requests (Setup's
// aside) with the script, the last answer repeating.
type server struct {
	*httptest.Server
	mu     sync.Mutex
	script []answer
	calls  []*http.Request
}

func newServer(t *testing.T, s Subject, script ...answer) *server {
	srv := &server{script: script}
	srv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Setup != nil && s.Setup(w, r) {
			return
		}
		srv.mu.Lock()
		srv.calls = append(srv.calls, r.Clone(context.Background()))
		a := srv.script[min(len(srv.calls), len(srv.script))-1]
		srv.mu.Unlock()
		switch {
		case a.late:
			// Read to the end, so that the server notices the client leave.
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
			return
		case a.drop:
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (s *server) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.calls...)
}

// env is one run's client and what it did.
type env struct {
	srv    *server
	c      Client
	sleeps *httpfault.Sleeps
}

var now = time.Date(2026, 11, 22, 14, 2, 0, 0, time.UTC)

func start(t *testing.T, s Subject, script ...answer) *env {
	t.Helper()
	e := &env{srv: newServer(t, s, script...), sleeps: &httpfault.Sleeps{}}
	e.c = s.New(t, e.options(e.srv.URL, 2*time.Second))
	return e
}

func (e *env) options(url string, timeout time.Duration) Options {
	return Options{URL: url, Timeout: timeout, Retries: Retries, MinBackoff: time.Millisecond, MaxBackoff: 8 * time.Millisecond,
		Sleep: e.sleeps.Sleep, Now: func() time.Time { return now }}
}

// Run runs the contract against s.
func Run(t *testing.T, s Subject) {
	t.Run("a decision that may mend is sent once", func(t *testing.T) {
		t.Parallel()
		for _, code := range []int{500, 502, 503, 429, 408} {
			e := start(t, s, answer{status: code, body: "busy"})
			err := e.c.Decide(context.Background())
			if err == nil || approvals.IsPermanent(err) {
				t.Fatalf("%d: error %v, want one that may mend", code, err)
			}
			if want := s.DecideOp + ": " + s.Service + " answered " + rest.StatusText(code); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("%d: error %q\ndoes not begin %q", code, err, want)
			}
			var se *rest.StatusError
			if !errors.As(err, &se) || se.StatusCode != code {
				t.Errorf("%d: error %v carries no StatusError", code, err)
			}
			if _, ok := approvals.RetryAfter(err); ok {
				t.Errorf("%d: error %v names a wait the tool did not ask for", code, err)
			}
			e.sentOnce(t)
		}
	})
	t.Run("the wait the tool names goes to the outbox", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			status     int
			retryAfter string
			want       time.Duration
		}{
			{429, "30", 30 * time.Second},
			{503, now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
			{429, "999999", rest.MaxRetryAfter},
		} {
			e := start(t, s, answer{status: tc.status, header: map[string]string{"Retry-After": tc.retryAfter}})
			err := e.c.Decide(context.Background())
			if after, ok := approvals.RetryAfter(err); !ok || after != tc.want || approvals.IsPermanent(err) {
				t.Errorf("%d Retry-After %s: error %v, RetryAfter %v %v; want %v", tc.status, tc.retryAfter, err, after, ok, tc.want)
			}
			e.sentOnce(t)
		}
	})
	t.Run("a refusal is final", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			answer   answer
			notFound bool
		}{
			{answer: answer{status: 422, body: "no"}},
			{answer: answer{status: 404, body: "gone"}, notFound: true},
			{answer: answer{status: 302, header: map[string]string{"Location": "https://sso.example.com/login"}}},
		} {
			e := start(t, s, tc.answer, answer{status: 200, body: s.ReadOK})
			err := e.c.Decide(context.Background())
			if !approvals.IsPermanent(err) {
				t.Fatalf("%d: error %v is not final", tc.answer.status, err)
			}
			if want := s.DecideOp + ": " + s.Service + " answered " + rest.StatusText(tc.answer.status); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("%d: error %q\ndoes not begin %q", tc.answer.status, err, want)
			}
			if got := errors.Is(err, approvals.ErrNotFound); got != tc.notFound {
				t.Errorf("%d: errors.Is(err, ErrNotFound) = %v", tc.answer.status, got)
			}
			e.sentOnce(t) // a redirect is not followed either
		}
	})
	t.Run("a lost answer says so and may mend", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			answer answer
			want   string
		}{
			{answer{late: true}, s.Service + " did not answer within 100ms"},
			{answer{drop: true}, s.Service + " closed the connection without answering"},
		} {
			e := &env{sleeps: &httpfault.Sleeps{}}
			e.srv = newServer(t, s, tc.answer)
			e.c = s.New(t, e.options(e.srv.URL, 100*time.Millisecond))
			err := e.c.Decide(context.Background())
			if err == nil || approvals.IsPermanent(err) || !strings.HasPrefix(err.Error(), s.DecideOp+": "+tc.want) {
				t.Errorf("error %v, want one that may mend beginning %q", err, s.DecideOp+": "+tc.want)
			}
			e.sentOnce(t)
		}
	})
	t.Run("a tool out of reach may mend", func(t *testing.T) {
		t.Parallel()
		url, err := httpfault.RefusingURL()
		if err != nil {
			t.Fatal(err)
		}
		e := &env{sleeps: &httpfault.Sleeps{}}
		e.c = s.New(t, e.options(url, 2*time.Second))
		err = e.c.Decide(context.Background())
		if err == nil || approvals.IsPermanent(err) || !strings.Contains(err.Error(), "cannot reach "+s.Service) {
			t.Errorf("error %v, want one that may mend saying it cannot reach %s", err, s.Service)
		}
	})
	t.Run("no error quotes a secret", func(t *testing.T) {
		t.Parallel()
		echo := strings.Join(s.Secrets, " | ")
		for _, a := range []answer{
			{status: 400, body: echo},
			{status: 500, body: `{"message":"` + echo + `","error":"` + echo + `"}`},
			{status: 302, header: map[string]string{"Location": "https://sso.example.com/?" + echo}},
		} {
			e := start(t, s, a)
			err := e.c.Decide(context.Background())
			if err == nil {
				t.Fatalf("%d: no error", a.status)
			}
			for _, secret := range s.Secrets {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("%d: error quotes a secret: %v", a.status, err)
				}
			}
		}
	})
	t.Run("every request says who sends it", func(t *testing.T) {
		t.Parallel()
		e := start(t, s, answer{status: 200, body: s.ReadOK})
		_ = e.c.Decide(context.Background())
		for _, r := range e.srv.requests() {
			if ua := r.Header.Get("User-Agent"); ua != "approvalbot" {
				t.Errorf("%s %s: User-Agent %q", r.Method, r.URL.Path, ua)
			}
		}
	})
	if s.StatusOp == "" {
		return
	}
	t.Run("a read is tried again while it may mend", func(t *testing.T) {
		t.Parallel()
		e := start(t, s, answer{status: 500}, answer{status: 503}, answer{status: 200, body: s.ReadOK})
		if err := e.c.Status(context.Background()); err != nil {
			t.Fatalf("Status: %v", err)
		}
		if n, waits := len(e.srv.requests()), e.sleeps.Waits(); n != 3 || len(waits) != 2 {
			t.Errorf("%d reads and waits %v, want 3 reads and 2 waits", n, waits)
		}
	})
	t.Run("a read gives up after its retries", func(t *testing.T) {
		t.Parallel()
		e := start(t, s, answer{status: 502})
		err := e.c.Status(context.Background())
		if err == nil || approvals.IsPermanent(err) || !strings.HasPrefix(err.Error(), s.StatusOp+": "+s.Service+" answered 502") ||
			!strings.HasSuffix(err.Error(), "(after 3 attempts)") {
			t.Errorf("error %v, want one that may mend, after 3 attempts", err)
		}
		if n := len(e.srv.requests()); n != Retries+1 {
			t.Errorf("%d reads, want %d", n, Retries+1)
		}
	})
	t.Run("a read refused is final at once", func(t *testing.T) {
		t.Parallel()
		e := start(t, s, answer{status: 404})
		err := e.c.Status(context.Background())
		if !approvals.IsPermanent(err) || !errors.Is(err, approvals.ErrNotFound) {
			t.Errorf("error %v, want a final one matching ErrNotFound", err)
		}
		if n := len(e.srv.requests()); n != 1 || len(e.sleeps.Waits()) != 0 {
			t.Errorf("%d reads, waits %v; want one read", n, e.sleeps.Waits())
		}
	})
}

// sentOnce checks that exactly one request reached the tool, and that the
// client waited for nothing.
func (e *env) sentOnce(t *testing.T) {
	t.Helper()
	if n := len(e.srv.requests()); n != 1 {
		t.Errorf("%d requests reached the tool, want exactly 1", n)
	}
	if waits := e.sleeps.Waits(); len(waits) != 0 {
		t.Errorf("waited %v: a decision is never retried by the client", waits)
	}
}
