package flexdeploy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/flexdeploytest"
	"github.com/approvalbot/approvalbot/internal/httpfault"
)

const (
	testUser     = "fd-bot"
	testPassword = "s3cr3t-Pa55word!"
	restRoot     = flexdeploytest.Root
)

var wantAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(testUser+":"+testPassword))

// newFake starts the shared fake FlexDeploy, accepting the test's
// credentials only.
func newFake(t *testing.T) *flexdeploytest.Server {
	t.Helper()
	fd := flexdeploytest.New()
	fd.SetCredentials(testUser, testPassword)
	t.Cleanup(fd.Close)
	return fd
}

// script makes the fake answer requests with the answers in turn, the last
// one repeating; a nil answer is FlexDeploy's own.
func script(fd *flexdeploytest.Server, answers ...*flexdeploytest.Answer) {
	fd.SetReply(httpfault.Script[flexdeploytest.Call](answers...))
}

func newTestClient(t *testing.T, baseURL string, modify ...func(*Config)) (*Client, *httpfault.Sleeps) {
	t.Helper()
	rec := &httpfault.Sleeps{}
	cfg := Config{
		BaseURL:    baseURL + "/",
		Username:   testUser,
		Password:   testPassword,
		Timeout:    5 * time.Second,
		MinBackoff: time.Millisecond,
		MaxBackoff: 8 * time.Millisecond,
		Sleep:      rec.Sleep,
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

func task(id string) *approvals.Task { return &approvals.Task{TaskID: id} }

func TestDecideSendsTheDecision(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		taskID     string
		action     approvals.Action
		notes      string
		wantPath   string
		wantBody   string
		wantStatus string
	}{
		{
			name: "approve", taskID: "8900", action: approvals.ActionApprove,
			notes:      "Approved in Slack by Alice (U123) at 2026-11-22T14:02:00Z",
			wantPath:   restRoot + "/tasks/approval/approve/8900",
			wantBody:   `{"notes":"Approved in Slack by Alice (U123) at 2026-11-22T14:02:00Z"}`,
			wantStatus: flexdeploytest.Approved,
		},
		{
			name: "reject", taskID: "8901", action: approvals.ActionReject,
			notes:      `Rejected in Slack by Carol (U789) at 2026-11-22T14:02:00Z: "tests" <red> & flaky`,
			wantPath:   restRoot + "/tasks/approval/reject/8901",
			wantBody:   `{"notes":"Rejected in Slack by Carol (U789) at 2026-11-22T14:02:00Z: \"tests\" <red> & flaky"}`,
			wantStatus: flexdeploytest.Rejected,
		},
		{
			name: "path escaping", taskID: "a/b c?d#e%", action: approvals.ActionApprove,
			notes:      "",
			wantPath:   restRoot + "/tasks/approval/approve/a%2Fb%20c%3Fd%23e%25",
			wantBody:   `{"notes":""}`,
			wantStatus: flexdeploytest.Approved,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fd := newFake(t)
			c, rec := newTestClient(t, fd.BaseURL())

			if err := c.Decide(context.Background(), task(tc.taskID), tc.action, tc.notes, false); err != nil {
				t.Fatalf("Decide: %v", err)
			}
			got := fd.Calls()
			if len(got) != 1 {
				t.Fatalf("FlexDeploy got %d requests, want 1", len(got))
			}
			r := got[0]
			if r.Method != http.MethodPut || r.Path != tc.wantPath {
				t.Errorf("request = %s %s, want PUT %s", r.Method, r.Path, tc.wantPath)
			}
			if r.Auth != wantAuth {
				t.Errorf("Authorization = %q, want %q", r.Auth, wantAuth)
			}
			if r.ContentType != "application/json" || r.Accept != "application/json" {
				t.Errorf("Content-Type = %q, Accept = %q, want application/json for both", r.ContentType, r.Accept)
			}
			if r.Body != tc.wantBody {
				t.Errorf("body = %s, want %s", r.Body, tc.wantBody)
			}
			if r.Notes() != tc.notes {
				t.Errorf("body decodes to %q, want notes %q", r.Notes(), tc.notes)
			}
			if got := fd.Task(tc.taskID); got.Status != tc.wantStatus || got.Notes != tc.notes {
				t.Errorf("FlexDeploy has the task %s with notes %q, want %s", got.Status, got.Notes, tc.wantStatus)
			}
			if waits := rec.Waits(); len(waits) != 0 {
				t.Errorf("waited %v", waits)
			}
		})
	}
}

func TestDecideClientErrorsArePermanent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		answer      flexdeploytest.Answer
		want        string
		notFound    bool
		toolDecided bool
	}{
		{
			name:   "400 plain text",
			answer: flexdeploytest.Answer{Status: 400, Body: "Notes are too long\n"},
			want:   "flexdeploy: approve task 8900: FlexDeploy answered 400 Bad Request: Notes are too long",
		},
		{
			name:   "403 JSON message",
			answer: flexdeploytest.Answer{Status: 403, Body: `{"message":"User fd-bot is not in approval group Prod Approvers","code":"FD-403"}`},
			want:   "flexdeploy: approve task 8900: FlexDeploy answered 403 Forbidden: User fd-bot is not in approval group Prod Approvers",
		},
		{
			name:   "401 empty body",
			answer: flexdeploytest.Answer{Status: 401},
			want:   "flexdeploy: approve task 8900: FlexDeploy answered 401 Unauthorized",
		},
		{
			name:     "404",
			answer:   flexdeploytest.Answer{Status: 404, Body: "<html>\n<body>Not   Found</body></html>"},
			want:     "flexdeploy: approve task 8900: FlexDeploy answered 404 Not Found: <html> <body>Not Found</body></html>",
			notFound: true,
		},
		{
			name:        "decided already",
			answer:      flexdeploytest.Answer{Status: 400, Body: `{"message":"Task is not in PENDING status"}`},
			want:        "flexdeploy: approve task 8900: FlexDeploy answered 400 Bad Request: Task is not in PENDING status",
			toolDecided: true,
		},
		{
			name:   "long answer is cut",
			answer: flexdeploytest.Answer{Status: 409, Body: strings.Repeat("é", 500)},
			want:   "flexdeploy: approve task 8900: FlexDeploy answered 409 Conflict: " + strings.Repeat("é", 199) + "…",
		},
		{
			name:   "redirect is not followed",
			answer: flexdeploytest.Answer{Status: 302, Header: map[string]string{"Location": "https://sso.example.com/login"}},
			want:   "flexdeploy: approve task 8900: FlexDeploy answered 302 Found (a redirect to https://sso.example.com/login; check the base URL)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fd := newFake(t)
			script(fd, &tc.answer, nil)
			c, rec := newTestClient(t, fd.BaseURL())

			err := c.Decide(context.Background(), task("8900"), approvals.ActionApprove, "n", false)
			if !approvals.IsPermanent(err) {
				t.Fatalf("error %v is not permanent", err)
			}
			if err.Error() != tc.want {
				t.Errorf("error = %q\nwant    %q", err, tc.want)
			}
			if got := errors.Is(err, approvals.ErrNotFound); got != tc.notFound {
				t.Errorf("errors.Is(err, ErrNotFound) = %v, want %v", got, tc.notFound)
			}
			if got := errors.Is(err, approvals.ErrToolDecided); got != tc.toolDecided {
				t.Errorf("errors.Is(err, ErrToolDecided) = %v, want %v", got, tc.toolDecided)
			}
			if n := len(fd.Calls()); n != 1 {
				t.Errorf("FlexDeploy got %d requests, want 1: a 4xx is final", n)
			}
			if waits := rec.Waits(); len(waits) != 0 {
				t.Errorf("waited %v after a final answer", waits)
			}
		})
	}
}

// TestDecideOnATaskDecidedInFlexDeploy: FlexDeploy's own refusal of a
// decision on a task no longer pending says so.
func TestDecideOnATaskDecidedInFlexDeploy(t *testing.T) {
	t.Parallel()
	fd := newFake(t)
	fd.SetStatus("8900", flexdeploytest.Rejected)
	c, _ := newTestClient(t, fd.BaseURL())
	err := c.Decide(context.Background(), task("8900"), approvals.ActionApprove, "", false)
	if !approvals.IsPermanent(err) || !errors.Is(err, approvals.ErrToolDecided) {
		t.Fatalf("error = %v, want a permanent error matching ErrToolDecided", err)
	}
	if fd.StatusOf("8900") != flexdeploytest.Rejected {
		t.Errorf("the task is %s in FlexDeploy", fd.StatusOf("8900"))
	}
}

// TestDecideAnswerLost: FlexDeploy takes the decision but its answer never
// comes (too late, or the connection is dropped). Decide makes exactly one
// PUT and returns an error that may mend; the status read that the outbox
// makes before its next attempt finds the decision taken.
func TestDecideAnswerLost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		fault      func(*flexdeploytest.Server)
		ownClient  bool
		action     approvals.Action
		wantErr    string
		wantStatus approvals.Status
	}{
		{name: "late answer", fault: func(fd *flexdeploytest.Server) { fd.SetLateAnswers(1) },
			action: approvals.ActionApprove, wantErr: "flexdeploy: approve task 8900: FlexDeploy did not answer within 100ms: ",
			wantStatus: approvals.StatusApproved},
		{name: "late answer, client from the config", fault: func(fd *flexdeploytest.Server) { fd.SetLateAnswers(1) }, ownClient: true,
			action: approvals.ActionReject, wantErr: "flexdeploy: reject task 8900: FlexDeploy did not answer within 100ms: ",
			wantStatus: approvals.StatusRejected},
		{name: "dropped connection", fault: func(fd *flexdeploytest.Server) { fd.SetDroppedAnswers(1) },
			action: approvals.ActionApprove, wantErr: "flexdeploy: approve task 8900: FlexDeploy closed the connection without answering: ",
			wantStatus: approvals.StatusApproved},
		{name: "dropped connection, reject", fault: func(fd *flexdeploytest.Server) { fd.SetDroppedAnswers(1) },
			action: approvals.ActionReject, wantErr: "flexdeploy: reject task 8900: FlexDeploy closed the connection without answering: ",
			wantStatus: approvals.StatusRejected},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fd := newFake(t)
			tc.fault(fd)
			c, rec := newTestClient(t, fd.BaseURL(), func(cfg *Config) {
				cfg.Timeout = 100 * time.Millisecond
				cfg.Retries = 10 // for reads; a decision is sent once whatever this says
				if tc.ownClient {
					cfg.HTTPClient = &http.Client{Transport: &http.Transport{}}
				}
			})
			tool := Tool(c, false)

			err := tool.Decide(context.Background(), task("8900"), tc.action, "n", false)
			if err == nil || approvals.IsPermanent(err) {
				t.Fatalf("error = %v, want one that may mend", err)
			}
			if !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("error = %q\nwant it to begin %q", err, tc.wantErr)
			}
			if d := fd.Decisions(); len(d) != 1 || !d[0].Applied {
				t.Fatalf("decisions = %+v, want exactly one, taken", d)
			}
			if waits := rec.Waits(); len(waits) != 0 {
				t.Errorf("waited %v: the decision was about to be sent again", waits)
			}

			status, err := tool.Status(context.Background(), task("8900"))
			if err != nil || status != tc.wantStatus {
				t.Fatalf("Status = %q, %v; want %q", status, err, tc.wantStatus)
			}
			if n := len(fd.Decisions()); n != 1 {
				t.Errorf("%d PUTs in all, want 1", n)
			}
		})
	}
}

func TestDecideStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	fd := newFake(t)
	fd.SetDelay(time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	c, _ := newTestClient(t, fd.BaseURL())
	err := c.Decide(ctx, task("8900"), approvals.ActionApprove, "", false)
	if err == nil || approvals.IsPermanent(err) {
		t.Fatalf("error = %v, want a retryable error", err)
	}
	if n := len(fd.Decisions()); n != 1 {
		t.Errorf("FlexDeploy got %d PUTs, want 1", n)
	}
}

func TestDecideRefusesBadInput(t *testing.T) {
	t.Parallel()
	fd := newFake(t)
	c, _ := newTestClient(t, fd.BaseURL())
	tests := []struct {
		name   string
		task   *approvals.Task
		action approvals.Action
	}{
		{name: "nil task", task: nil, action: approvals.ActionApprove},
		{name: "no task id", task: &approvals.Task{}, action: approvals.ActionApprove},
		{name: "unknown action", task: task("1"), action: "defer"},
	}
	for _, tc := range tests {
		if err := c.Decide(context.Background(), tc.task, tc.action, "", false); !approvals.IsPermanent(err) {
			t.Errorf("%s: error = %v, want a permanent error", tc.name, err)
		}
	}
	if n := len(fd.Calls()); n != 0 {
		t.Errorf("FlexDeploy got %d requests, want none", n)
	}
}

func TestStatus(t *testing.T) {
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
			fd := newFake(t)
			fd.SetTask(flexdeploytest.Task{TaskID: "8900"})
			fd.SetStatus("8900", tc.status)
			c, _ := newTestClient(t, fd.BaseURL())
			got, err := c.Status(context.Background(), task("8900"))
			if err != nil {
				t.Fatalf("Status: %v", err)
			}
			if got != tc.want {
				t.Errorf("Status(%q) = %q, want %q", tc.status, got, tc.want)
			}
			reqs := fd.Calls()
			if len(reqs) != 1 || reqs[0].Method != http.MethodGet || reqs[0].Path != restRoot+"/tasks/approval/8900" ||
				reqs[0].Auth != wantAuth || reqs[0].Accept != "application/json" || reqs[0].Body != "" {
				t.Errorf("requests = %+v, want one authenticated GET of the task", reqs)
			}
		})
	}
}

func TestStatusHonoursRetryAfter(t *testing.T) {
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
			fd := newFake(t)
			script(fd, &flexdeploytest.Answer{Status: tc.status, Header: map[string]string{"Retry-After": tc.retryAfter}}, nil)
			c, rec := newTestClient(t, fd.BaseURL(), func(cfg *Config) {
				cfg.MaxBackoff = tc.maxBackoff
				cfg.Now = func() time.Time { return now }
			})
			if _, err := c.Status(context.Background(), task("8900")); err != nil {
				t.Fatalf("Status: %v", err)
			}
			if waits := rec.Waits(); len(waits) != 1 || waits[0] != tc.wantWait {
				t.Errorf("waits = %v, want [%v]", waits, tc.wantWait)
			}
			if n := len(fd.Reads()); n != 2 {
				t.Errorf("FlexDeploy got %d GETs, want 2", n)
			}
		})
	}
}

func TestStatusPersistentRateLimitTellsTheOutboxWhenToRetry(t *testing.T) {
	t.Parallel()
	fd := newFake(t)
	script(fd, &flexdeploytest.Answer{Status: 429, Header: map[string]string{"Retry-After": "30"}})
	c, rec := newTestClient(t, fd.BaseURL(), func(cfg *Config) { cfg.Retries = 2 })

	_, err := c.Status(context.Background(), task("8900"))
	if err == nil || approvals.IsPermanent(err) {
		t.Fatalf("error = %v, want a retryable error", err)
	}
	if after, ok := approvals.RetryAfter(err); !ok || after != 30*time.Second {
		t.Errorf("RetryAfter(err) = %v, %v; want 30s, true", after, ok)
	}
	if waits := rec.Waits(); len(waits) != 2 || waits[0] != 8*time.Millisecond {
		t.Errorf("waits = %v, want two waits capped at 8ms", waits)
	}
}

func TestStatusStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	fd := newFake(t)
	script(fd, &flexdeploytest.Answer{Status: 500})
	ctx, cancel := context.WithCancel(context.Background())
	c, _ := newTestClient(t, fd.BaseURL(), func(cfg *Config) {
		cfg.Sleep = func(ctx context.Context, _ time.Duration) error {
			cancel() // the process shuts down during the first wait
			return ctx.Err()
		}
	})
	_, err := c.Status(ctx, task("8900"))
	if !errors.Is(err, context.Canceled) || approvals.IsPermanent(err) {
		t.Fatalf("error = %v, want a retryable error wrapping context.Canceled", err)
	}
	if n := len(fd.Calls()); n != 1 {
		t.Errorf("FlexDeploy got %d requests, want 1", n)
	}
}

func TestStatusFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		answer        flexdeploytest.Answer
		wantPermanent bool
		wantNotFound  bool
		wantErr       string
	}{
		{name: "404", answer: flexdeploytest.Answer{Status: 404, Body: "no such task"}, wantPermanent: true, wantNotFound: true,
			wantErr: "flexdeploy: get task 8900: FlexDeploy answered 404 Not Found: no such task"},
		{name: "not JSON", answer: flexdeploytest.Answer{Status: 200, Body: "<html>login</html>"},
			wantErr: "flexdeploy: get task 8900: FlexDeploy's answer is not a JSON task: <html>login</html>"},
		{name: "500", answer: flexdeploytest.Answer{Status: 500},
			wantErr: "flexdeploy: get task 8900: FlexDeploy answered 500 Internal Server Error (after 2 attempts)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fd := newFake(t)
			script(fd, &tc.answer)
			c, _ := newTestClient(t, fd.BaseURL(), func(cfg *Config) { cfg.Retries = 1 })
			_, err := c.Status(context.Background(), task("8900"))
			if err == nil {
				t.Fatal("Status succeeded")
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

// TestErrorsNeverHoldCredentials lets a misbehaving FlexDeploy (or proxy)
// echo the request's credentials and checks that no error repeats them.
func TestErrorsNeverHoldCredentials(t *testing.T) {
	t.Parallel()
	auth := strings.TrimPrefix(wantAuth, "Basic ")
	for _, status := range []int{302, 400, 401, 404, 500, 503} {
		fd := newFake(t)
		fd.SetReply(func(c flexdeploytest.Call) *flexdeploytest.Answer {
			raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(c.Auth, "Basic "))
			return &flexdeploytest.Answer{Status: status,
				Header: map[string]string{"Location": "https://sso.example.com/?p=" + testPassword},
				Body:   fmt.Sprintf("denied %s with %s", raw, c.Auth)}
		})
		c, _ := newTestClient(t, fd.BaseURL(), func(cfg *Config) { cfg.Retries = 1 })

		errs := []error{c.Decide(context.Background(), task("1"), approvals.ActionApprove, "", false)}
		_, err := c.Details(context.Background(), "1")
		errs = append(errs, err)
		_, err = c.Status(context.Background(), task("1"))
		errs = append(errs, err)
		for _, err := range errs {
			if err == nil {
				t.Fatalf("status %d: no error", status)
			}
			msg := err.Error() + fmt.Sprintf(" %v %+v %#v", err, err, err)
			if strings.Contains(msg, testPassword) || strings.Contains(msg, auth) {
				t.Errorf("status %d: error holds credentials: %s", status, err)
			}
			if !strings.Contains(err.Error(), "[redacted]") {
				t.Errorf("status %d: error %q lost the rest of the answer", status, err)
			}
		}
	}

	// No answer at all: the transport's error names the URL, never the password.
	refusing, err := httpfault.RefusingURL()
	if err != nil {
		t.Fatal(err)
	}
	c, _ := newTestClient(t, refusing, func(cfg *Config) { cfg.Retries = -1 })
	if err := c.Decide(context.Background(), task("1"), approvals.ActionApprove, "", false); err == nil ||
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
	r := c.api.Retrier
	if c.api.Timeout != DefaultTimeout || r.Retries != DefaultRetries ||
		r.MinBackoff != DefaultMinBackoff || r.MaxBackoff != DefaultMaxBackoff {
		t.Errorf("defaults = %v %d %v %v", c.api.Timeout, r.Retries, r.MinBackoff, r.MaxBackoff)
	}
	if c.api.HTTP == nil || c.api.HTTP == http.DefaultClient || c.api.HTTP.Timeout != DefaultTimeout || c.api.HTTP.Transport == nil {
		t.Errorf("client = %+v, want an own client with a timeout and transport", c.api.HTTP)
	}
	tr, ok := c.api.HTTP.Transport.(*http.Transport)
	if !ok || tr.ResponseHeaderTimeout == 0 || tr.TLSHandshakeTimeout == 0 {
		t.Errorf("transport lacks timeouts: %+v", c.api.HTTP.Transport)
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

func TestDetailsAndEnrich(t *testing.T) {
	t.Parallel()
	const body = `{
		"taskId": 10453, "status": "PENDING", "environmentId": 16504,
		"environmentName": "Production", "releaseName": "2026.11",
		"pipelineName": "Standard Release Pipeline", "projectName": "payments-api",
		"notes": null, "gateName": "Prod Approval", "requestType": "Release",
		"links": [{"rel": "self"}]
	}`
	fd := newFake(t)
	script(fd, &flexdeploytest.Answer{Status: 200, Body: body})
	c, _ := newTestClient(t, fd.BaseURL())

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
	fd := newFake(t)
	fd.SetTask(flexdeploytest.Task{TaskID: "7", EnvironmentName: "PROD-EU", ReleaseName: "R1", PipelineName: "P", ProjectName: "api"})
	c, _ := newTestClient(t, fd.BaseURL())

	complete := approvals.Submission{TaskID: "7", Context: approvals.Context{Environment: "e", Release: "r", Pipeline: "p", Project: "q"}}
	if err := c.Enrich(context.Background(), &complete); err != nil || len(fd.Calls()) != 0 {
		t.Fatalf("complete submission: err %v, %d calls; want none", err, len(fd.Calls()))
	}
	sparse := approvals.Submission{TaskID: "7"}
	if err := c.Enrich(context.Background(), &sparse); err != nil {
		t.Fatal(err)
	}
	if got := fd.Calls(); len(got) != 1 || got[0].Method != "GET" || got[0].Path != restRoot+"/tasks/approval/7" {
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
	fd := newFake(t)
	script(fd, &flexdeploytest.Answer{Status: 302, Header: map[string]string{"Location": loc}})
	c, _ := newTestClient(t, fd.BaseURL())
	err := c.Decide(context.Background(), task("8900"), approvals.ActionApprove, "n", false)
	if err == nil || strings.Contains(err.Error(), testPassword[:3]+"…") || strings.Contains(err.Error(), "p=s3c") {
		t.Fatalf("error shows part of the password: %v", err)
	}
}

// NeedsDetails asks for FlexDeploy's details exactly when ApplyDetails
// would fill a field in.
func TestNeedsDetailsMatchesApplyDetails(t *testing.T) {
	t.Parallel()
	full := approvals.Context{Environment: "PROD", Release: "r1", Pipeline: "p1", Project: "payments"}
	if NeedsDetails(full) {
		t.Error("a complete context needs details")
	}
	for _, field := range []func(*approvals.Context){
		func(c *approvals.Context) { c.Environment = "" },
		func(c *approvals.Context) { c.Release = "" },
		func(c *approvals.Context) { c.Pipeline = "" },
		func(c *approvals.Context) { c.Project = "" },
	} {
		c := full
		field(&c)
		sub := approvals.Submission{Context: c}
		ApplyDetails(&sub, Details{EnvironmentName: "E", ReleaseName: "R", PipelineName: "P", ProjectName: "J"})
		if filled := sub.Context != c; filled != NeedsDetails(c) {
			t.Errorf("context %+v: ApplyDetails fills a field %v, NeedsDetails %v", c, filled, NeedsDetails(c))
		}
	}
	if tool := Tool(&Client{}, true); tool.NeedsEnrichment == nil || tool.NeedsEnrichment(full) || !tool.NeedsEnrichment(approvals.Context{}) {
		t.Error("the tool does not ask NeedsDetails before enriching")
	}
}

func TestTool(t *testing.T) {
	t.Parallel()
	fd := newFake(t)
	c, _ := newTestClient(t, fd.BaseURL())
	tests := []struct {
		name                     string
		client                   *Client
		enrich                   bool
		decides, reads, enriches bool
	}{
		{name: "no connection", client: nil, enrich: true},
		{name: "connection", client: c, decides: true, reads: true},
		{name: "connection and enrichment", client: c, enrich: true, decides: true, reads: true, enriches: true},
	}
	for _, tc := range tests {
		tool := Tool(tc.client, tc.enrich)
		if tool.Name != "flexdeploy" || tool.DisplayName != "FlexDeploy" || !tool.ReadByTaskID {
			t.Errorf("%s: tool %q %q, read by task id %v", tc.name, tool.Name, tool.DisplayName, tool.ReadByTaskID)
		}
		if (tool.Decide != nil) != tc.decides || (tool.Status != nil) != tc.reads || (tool.Enrich != nil) != tc.enriches || tool.Announce != nil {
			t.Errorf("%s: decide %v, status %v, enrich %v, announce %v", tc.name,
				tool.Decide != nil, tool.Status != nil, tool.Enrich != nil, tool.Announce != nil)
		}
		if len(tool.Intakes) != 1 || tool.Intakes[0].Path != "tasks" || tool.Intakes[0].AnswerOK || tool.Intakes[0].BodyOptional {
			t.Fatalf("%s: intakes %+v", tc.name, tool.Intakes)
		}
		sub, err := tool.Intakes[0].Parse(func(string) string { return "" }, []byte(`{"taskid":"8900","description":"v2.3 to PROD"}`))
		if err != nil || sub.Source != Source || sub.TaskID != "8900" || sub.Description != "v2.3 to PROD" {
			t.Errorf("%s: intake = %+v, %v", tc.name, sub, err)
		}
		if _, err := approvals.NewTools(tool); err != nil {
			t.Errorf("%s: NewTools: %v", tc.name, err)
		}
	}
	if n := len(fd.Calls()); n != 0 {
		t.Errorf("building the tool made %d calls", n)
	}
}
