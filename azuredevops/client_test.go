package azuredevops

import (
	"context"
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

// The routing fields of testdata/check_headers.json.
const (
	projectID      = "6f1c0a4e-2b7d-4b8e-9d61-3f0c2a9e5b17"
	planID         = "0b9d5c3a-7e41-4f26-8a5b-1c2d3e4f5a6b"
	jobID          = "4a8e2f10-93c5-4d7b-b6e1-0f2a3b4c5d6e"
	timelineID     = "9c7b6a5d-4e3f-4a1b-8c2d-7e6f5a4b3c2d"
	taskInstanceID = "e2d1c0b9-a8f7-4e6d-9c5b-4a3f2e1d0c9b"
	// collection is the path of the fake organization's collection URI.
	collection = "/contoso/"
	// planPath is where the fake plan's resources are.
	planPath = collection + projectID + "/_apis/distributedtask/hubs/checks/plans/" + planID + "/"
)

// answer is one scripted answer of the fake Azure DevOps.
type answer struct {
	status int
	body   string
	header map[string]string
	// hang makes the fake wait until the client gives up.
	hang bool
}

// request is what the fake Azure DevOps received.
type request struct {
	method, uri, auth, contentType, accept, body string
}

// fakeAzureDevOps is Azure DevOps' distributedtask API as a real HTTP
// server answering from a script; the last answer repeats.
type fakeAzureDevOps struct {
	srv *httptest.Server

	mu       sync.Mutex
	answers  []answer
	requests []request
}

func newFakeAzureDevOps(t *testing.T, answers ...answer) *fakeAzureDevOps {
	t.Helper()
	f := &fakeAzureDevOps{answers: answers}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAzureDevOps) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, request{
		method:      r.Method,
		uri:         r.RequestURI,
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

func (f *fakeAzureDevOps) received() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

// planURL is the collection URI the check names: the fake's.
func (f *fakeAzureDevOps) planURL() string { return f.srv.URL + collection }

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

func newTestClient(t *testing.T, modify ...func(*Config)) (*Client, *sleepRecorder) {
	t.Helper()
	rec := &sleepRecorder{}
	cfg := Config{
		Sealer:       testSealer(t),
		Timeout:      5 * time.Second,
		MinBackoff:   time.Millisecond,
		MaxBackoff:   8 * time.Millisecond,
		AllowedHosts: []string{"127.0.0.1"},
		Sleep:        rec.sleep,
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

// newTask takes a check in through the intake, as the bot does, with
// PlanUrl pointing at planURL, and returns the task the store would hold.
func newTask(t *testing.T, planURL string, modify ...func(http.Header)) *approvals.Task {
	t.Helper()
	h := httpHeader(fixtureHeaders(t))
	h.Set("PlanUrl", planURL)
	for _, m := range modify {
		m(h)
	}
	sub, err := NewIntake(testSealer(t), []string{"127.0.0.1"}).Parse(h, fixture(t, "check_body.json"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return &approvals.Task{
		ID:                approvals.TaskRecordID(sub.Source, sub.TaskID),
		Source:            sub.Source,
		TaskID:            sub.TaskID,
		Context:           sub.Context,
		Status:            approvals.StatusPending,
		RequiredApprovals: 1,
		Policy:            "production",
		Message:           approvals.MessageRef{Channel: "C0PROD", TS: "1763820000.000100"},
		ExpiresAt:         time.Date(2026, 11, 22, 18, 0, 0, 0, time.UTC),
		Secret:            sub.Secret,
		Extra:             sub.Extra,
	}
}

// checkRequest compares a request with the one wanted, exactly.
func checkRequest(t *testing.T, i int, got, want request) {
	t.Helper()
	if got.method != want.method || got.uri != want.uri {
		t.Errorf("request %d = %s %s\nwant        %s %s", i, got.method, got.uri, want.method, want.uri)
	}
	if got.auth != want.auth {
		t.Errorf("request %d: Authorization = %q, want %q", i, got.auth, want.auth)
	}
	if got.contentType != want.contentType {
		t.Errorf("request %d: Content-Type = %q, want %q", i, got.contentType, want.contentType)
	}
	if got.accept != "application/json" {
		t.Errorf("request %d: Accept = %q, want application/json", i, got.accept)
	}
	if got.body != want.body {
		t.Errorf("request %d: body = %s\nwant           %s", i, got.body, want.body)
	}
}

func eventRequest(t *testing.T, result string) request {
	return request{
		method:      http.MethodPost,
		uri:         planPath + "events?api-version=2.0-preview.1",
		auth:        "Bearer " + fixtureToken(t),
		contentType: "application/json",
		body:        `{"name":"TaskCompleted","taskId":"` + taskInstanceID + `","jobId":"` + jobID + `","result":"` + result + `"}`,
	}
}

func TestDeliverCompletesTheCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		action     approvals.Action
		trimSlash  bool
		wantResult string
	}{
		{name: "approve", action: approvals.ActionApprove, wantResult: "succeeded"},
		{name: "reject", action: approvals.ActionReject, wantResult: "failed"},
		{name: "PlanUrl without its slash", action: approvals.ActionApprove, trimSlash: true, wantResult: "succeeded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ado := newFakeAzureDevOps(t, answer{status: http.StatusNoContent})
			c, rec := newTestClient(t)
			planURL := ado.planURL()
			if tc.trimSlash {
				planURL = strings.TrimSuffix(planURL, "/")
			}
			task := newTask(t, planURL)

			if err := c.Deliver(context.Background(), task, tc.action, "Approved in Slack by Alice (U1) at 2026-11-22T14:02:00Z"); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			got := ado.received()
			if len(got) != 1 {
				t.Fatalf("Azure DevOps got %d requests, want 1 (no status log without a logId)", len(got))
			}
			checkRequest(t, 0, got[0], eventRequest(t, tc.wantResult))
			if waits := rec.recorded(); len(waits) != 0 {
				t.Errorf("waited %v before a first success", waits)
			}
		})
	}
}

func TestDeliverExpiryRejects(t *testing.T) {
	t.Parallel()
	ado := newFakeAzureDevOps(t, answer{status: 200})
	c, _ := newTestClient(t)
	task := newTask(t, ado.planURL())
	task.Status = approvals.StatusExpired
	task.OnExpiry = approvals.ExpiryReject
	action, ok := task.Outcome()
	if !ok {
		t.Fatal("an expired task with on_expiry reject has no outcome")
	}
	if err := c.Deliver(context.Background(), task, action, "Expired without a decision in Slack at 2026-11-22T18:00:00Z; rejected automatically"); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if got := ado.received(); len(got) != 1 || got[0].body != eventRequest(t, "failed").body {
		t.Errorf("requests = %+v, want one failed event", got)
	}
}

func TestDeliverRetriesServerErrors(t *testing.T) {
	t.Parallel()
	ado := newFakeAzureDevOps(t,
		answer{status: 500, body: "boom"},
		answer{status: 500},
		answer{status: 200},
	)
	c, rec := newTestClient(t)
	if err := c.Deliver(context.Background(), newTask(t, ado.planURL()), approvals.ActionApprove, "ok"); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	got := ado.received()
	if len(got) != 3 {
		t.Fatalf("Azure DevOps got %d requests, want 3", len(got))
	}
	for i, r := range got {
		checkRequest(t, i, r, eventRequest(t, "succeeded")) // every retry resends the same request
	}
	waits := rec.recorded()
	if len(waits) != 2 {
		t.Fatalf("waits = %v, want 2", waits)
	}
	for i, w := range waits {
		if ceiling := time.Millisecond << i; w < 0 || w > ceiling {
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
		{name: "default", retries: 0, wantReqs: 4},
		{name: "one", retries: 1, wantReqs: 2},
		{name: "none", retries: -1, wantReqs: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ado := newFakeAzureDevOps(t, answer{status: 503, body: `{"$id":"1","message":"TF400898: maintenance","typeKey":"X"}`})
			c, _ := newTestClient(t, func(cfg *Config) { cfg.Retries = tc.retries })

			err := c.Deliver(context.Background(), newTask(t, ado.planURL()), approvals.ActionReject, "")
			if err == nil || approvals.IsPermanent(err) {
				t.Fatalf("error = %v, want a retryable error", err)
			}
			want := fmt.Sprintf("azure devops: complete check: Azure DevOps answered 503 Service Unavailable: TF400898: maintenance (after %d attempts)", tc.wantReqs)
			if err.Error() != want {
				t.Errorf("error = %q\nwant    %q", err, want)
			}
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != 503 {
				t.Errorf("error %v carries no StatusError 503", err)
			}
			if n := len(ado.received()); n != tc.wantReqs {
				t.Errorf("Azure DevOps got %d requests, want %d", n, tc.wantReqs)
			}
		})
	}
}

func TestDeliverClientErrorsArePermanent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		answer   answer
		want     string
		notFound bool
	}{
		{
			name:   "401",
			answer: answer{status: 401},
			want:   "azure devops: complete check: Azure DevOps answered 401 Unauthorized (the job token may have expired: it is valid 48 hours)",
		},
		{
			name:   "403 with Azure's JSON error",
			answer: answer{status: 403, body: `{"$id":"1","innerException":null,"message":"TF400813: The user is not authorized.","typeName":"x","typeKey":"y","errorCode":0,"eventId":3000}`},
			want:   "azure devops: complete check: Azure DevOps answered 403 Forbidden (the job token may not change this run): TF400813: The user is not authorized.",
		},
		{
			name:     "404",
			answer:   answer{status: 404, body: "Not\n  Found"},
			want:     "azure devops: complete check: Azure DevOps answered 404 Not Found (the run is gone, or the check timed out or was cancelled): Not Found",
			notFound: true,
		},
		{
			name:   "400",
			answer: answer{status: 400, body: `{"message":"Value cannot be null."}`},
			want:   "azure devops: complete check: Azure DevOps answered 400 Bad Request: Value cannot be null.",
		},
		{
			name:   "203 sign-in page",
			answer: answer{status: 203, body: "<html>Sign in to your account</html>"},
			want:   "azure devops: complete check: Azure DevOps answered 203 Non-Authoritative Information (a sign-in page: the job token was not accepted)",
		},
		{
			name:   "redirect is not followed",
			answer: answer{status: 302, header: map[string]string{"Location": "https://login.example.com/"}},
			want:   "azure devops: complete check: Azure DevOps answered 302 Found (a redirect to https://login.example.com/; PlanUrl must be the collection URI)",
		},
		{
			name:   "long answer is cut",
			answer: answer{status: 409, body: strings.Repeat("é", 500)},
			want:   "azure devops: complete check: Azure DevOps answered 409 Conflict: " + strings.Repeat("é", 199) + "…",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ado := newFakeAzureDevOps(t, tc.answer, answer{status: 200})
			c, rec := newTestClient(t)

			err := c.Deliver(context.Background(), newTask(t, ado.planURL()), approvals.ActionApprove, "n")
			if !approvals.IsPermanent(err) {
				t.Fatalf("error %v is not permanent", err)
			}
			if err.Error() != tc.want {
				t.Errorf("error = %q\nwant    %q", err, tc.want)
			}
			if got := errors.Is(err, approvals.ErrNotFound); got != tc.notFound {
				t.Errorf("errors.Is(err, ErrNotFound) = %v, want %v", got, tc.notFound)
			}
			if n := len(ado.received()); n != 1 {
				t.Errorf("Azure DevOps got %d requests, want 1: the answer is final", n)
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
			ado := newFakeAzureDevOps(t,
				answer{status: tc.status, header: map[string]string{"Retry-After": tc.retryAfter}},
				answer{status: 200},
			)
			c, rec := newTestClient(t, func(cfg *Config) {
				cfg.MaxBackoff = tc.maxBackoff
				cfg.Now = func() time.Time { return now }
			})
			if err := c.Deliver(context.Background(), newTask(t, ado.planURL()), approvals.ActionApprove, ""); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			if waits := rec.recorded(); len(waits) != 1 || waits[0] != tc.wantWait {
				t.Errorf("waits = %v, want [%v]", waits, tc.wantWait)
			}
			if n := len(ado.received()); n != 2 {
				t.Errorf("Azure DevOps got %d requests, want 2", n)
			}
		})
	}
}

func TestDeliverPersistentRateLimitTellsTheOutboxWhenToRetry(t *testing.T) {
	t.Parallel()
	ado := newFakeAzureDevOps(t, answer{status: 429, header: map[string]string{"Retry-After": "30"}})
	c, rec := newTestClient(t, func(cfg *Config) { cfg.Retries = 2 })

	err := c.Deliver(context.Background(), newTask(t, ado.planURL()), approvals.ActionApprove, "")
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
	ado := newFakeAzureDevOps(t, answer{hang: true})
	// No HTTPClient and no Sleep: the client's own transport and timer.
	c, err := New(Config{Sealer: testSealer(t), AllowedHosts: []string{"127.0.0.1"},
		Timeout: 50 * time.Millisecond, Retries: 1, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Deliver(context.Background(), newTask(t, ado.planURL()), approvals.ActionApprove, "")
	if err == nil || approvals.IsPermanent(err) {
		t.Fatalf("error = %v, want a retryable error", err)
	}
	if !strings.Contains(err.Error(), "Azure DevOps did not answer within 50ms") || !strings.HasSuffix(err.Error(), "(after 2 attempts)") {
		t.Errorf("error %q does not say that Azure DevOps timed out twice", err)
	}
	if n := len(ado.received()); n != 2 {
		t.Errorf("Azure DevOps got %d requests, want 2", n)
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

	c, rec := newTestClient(t)
	err = c.Deliver(context.Background(), newTask(t, "http://"+addr+collection), approvals.ActionApprove, "")
	if err == nil || approvals.IsPermanent(err) {
		t.Fatalf("error = %v, want a retryable error", err)
	}
	if !strings.HasPrefix(err.Error(), "azure devops: complete check: cannot reach Azure DevOps: ") ||
		!strings.HasSuffix(err.Error(), "(after 4 attempts)") {
		t.Errorf("error = %q", err)
	}
	if strings.Contains(err.Error(), fixtureToken(t)) {
		t.Errorf("error holds the token: %v", err)
	}
	if waits := rec.recorded(); len(waits) != 3 {
		t.Errorf("waits = %v, want 3 (default retries)", waits)
	}
}

func TestDeliverStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	ado := newFakeAzureDevOps(t, answer{status: 500})
	ctx, cancel := context.WithCancel(context.Background())
	c, _ := newTestClient(t, func(cfg *Config) {
		cfg.Sleep = func(ctx context.Context, _ time.Duration) error {
			cancel() // the process shuts down during the first wait
			return ctx.Err()
		}
	})
	err := c.Deliver(ctx, newTask(t, ado.planURL()), approvals.ActionApprove, "")
	if !errors.Is(err, context.Canceled) || approvals.IsPermanent(err) {
		t.Fatalf("error = %v, want a retryable error wrapping context.Canceled", err)
	}
	if n := len(ado.received()); n != 1 {
		t.Errorf("Azure DevOps got %d requests, want 1", n)
	}
}

func TestDeliverRefusesWhatCannotBeSent(t *testing.T) {
	t.Parallel()
	ado := newFakeAzureDevOps(t)
	c, _ := newTestClient(t)
	tests := []struct {
		name    string
		task    func() *approvals.Task
		action  approvals.Action
		wantErr string
	}{
		{name: "nil task", task: func() *approvals.Task { return nil }, wantErr: "no Azure DevOps task instance id"},
		{name: "unknown action", action: "defer", wantErr: `unknown action "defer"`},
		{name: "token dropped", wantErr: "azure devops: complete check: job token no longer available",
			task: func() *approvals.Task { k := newTask(t, ado.planURL()); k.Secret = nil; return k }},
		{name: "token of another task", wantErr: "job token cannot be opened",
			task: func() *approvals.Task {
				k := newTask(t, ado.planURL())
				k.Secret = newTask(t, ado.planURL(), func(h http.Header) { h.Set("TaskInstanceId", "other") }).Secret
				return k
			}},
		{name: "token tampered", wantErr: "job token cannot be opened",
			task: func() *approvals.Task { k := newTask(t, ado.planURL()); k.Secret[len(k.Secret)-1] ^= 1; return k }},
		{name: "host no longer allowed", wantErr: "names a host that is not allowed",
			task: func() *approvals.Task {
				k := newTask(t, ado.planURL())
				k.Extra["planUrl"] = "https://evil.example.com/"
				return k
			}},
		{name: "routing field missing", wantErr: "task has no jobId",
			task: func() *approvals.Task { k := newTask(t, ado.planURL()); delete(k.Extra, "jobId"); return k }},
		{name: "routing field altered", wantErr: "header PlanId may hold only",
			task: func() *approvals.Task { k := newTask(t, ado.planURL()); k.Extra["planId"] = "../x"; return k }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			task := newTask(t, ado.planURL())
			if tc.task != nil {
				task = tc.task()
			}
			action := tc.action
			if action == "" {
				action = approvals.ActionApprove
			}
			err := c.Deliver(context.Background(), task, action, "")
			if !approvals.IsPermanent(err) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %v, want a permanent error saying %q", err, tc.wantErr)
			}
		})
	}
	if n := len(ado.received()); n != 0 {
		t.Errorf("Azure DevOps got %d requests, want none", n)
	}
}

// TestDeliverNarrowedHostList checks that the host list is the client's,
// not the intake's: a task taken in before the list was narrowed is not sent.
func TestDeliverNarrowedHostList(t *testing.T) {
	t.Parallel()
	ado := newFakeAzureDevOps(t)
	c, _ := newTestClient(t, func(cfg *Config) { cfg.AllowedHosts = []string{"dev.azure.com"} })
	err := c.Deliver(context.Background(), newTask(t, ado.planURL()), approvals.ActionApprove, "")
	if !approvals.IsPermanent(err) || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf("error = %v, want a permanent host error", err)
	}
	if n := len(ado.received()); n != 0 {
		t.Errorf("Azure DevOps got %d requests, want none", n)
	}
}

func TestDeliverWritesTheDecisionToTheStatusLogFirst(t *testing.T) {
	t.Parallel()
	ado := newFakeAzureDevOps(t, answer{status: 200}, answer{status: 200})
	c, _ := newTestClient(t)
	task := newTask(t, ado.planURL())
	task.Extra["logId"] = "7"
	notes := "Rejected in Slack by Carol (U789) at 2026-11-22T14:02:00Z: tests\nare red"

	if err := c.Deliver(context.Background(), task, approvals.ActionReject, notes); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	got := ado.received()
	if len(got) != 2 {
		t.Fatalf("Azure DevOps got %d requests, want 2", len(got))
	}
	checkRequest(t, 0, got[0], request{
		method:      http.MethodPost,
		uri:         planPath + "logs/7?api-version=2.0-preview.1",
		auth:        "Bearer " + fixtureToken(t),
		contentType: "application/octet-stream",
		body:        "Rejected in Slack by Carol (U789) at 2026-11-22T14:02:00Z: tests are red\n",
	})
	checkRequest(t, 1, got[1], eventRequest(t, "failed"))
}

func TestDeliverStatusLineIsBestEffort(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		answers       []answer
		wantReqs      int
		wantErr       string
		wantPermanent bool
	}{
		{
			name:     "line fails, decision goes through",
			answers:  []answer{{status: 500}, {status: 200}},
			wantReqs: 2, // the line is tried once, not retried
		},
		{
			name:          "both fail",
			answers:       []answer{{status: 404}, {status: 401}},
			wantReqs:      2,
			wantPermanent: true,
			wantErr: "azure devops: complete check: Azure DevOps answered 401 Unauthorized (the job token may have expired: it is valid 48 hours)" +
				"; the status line was not written either: Azure DevOps answered 404 Not Found (the run is gone, or the check timed out or was cancelled)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ado := newFakeAzureDevOps(t, tc.answers...)
			c, _ := newTestClient(t)
			task := newTask(t, ado.planURL())
			task.Extra["logId"] = "7"
			err := c.Deliver(context.Background(), task, approvals.ActionApprove, "Approved in Slack by Alice (U1) at 2026-11-22T14:02:00Z")
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Deliver: %v", err)
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Fatalf("error = %v\nwant    %s", err, tc.wantErr)
			}
			if approvals.IsPermanent(err) != tc.wantPermanent {
				t.Errorf("IsPermanent = %v, want %v", !tc.wantPermanent, tc.wantPermanent)
			}
			got := ado.received()
			if len(got) != tc.wantReqs {
				t.Fatalf("Azure DevOps got %d requests, want %d", len(got), tc.wantReqs)
			}
			checkRequest(t, len(got)-1, got[len(got)-1], eventRequest(t, "succeeded"))
		})
	}
}

func TestAnnounceWritesTheStatusLog(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		modify   func(*approvals.Task)
		wantLine string
	}{
		{
			name:     "policy and channel",
			wantLine: "Waiting for approval in Slack channel C0PROD (policy production, expires 2026-11-22T18:00:00Z)\n",
		},
		{
			name:     "quorum, no channel",
			modify:   func(k *approvals.Task) { k.Message.Channel = ""; k.RequiredApprovals = 2 },
			wantLine: "Waiting for approval in Slack (policy production, 2 approvals needed, expires 2026-11-22T18:00:00Z)\n",
		},
		{
			name:     "no policy",
			modify:   func(k *approvals.Task) { k.Policy = ""; k.Message.Channel = "C0GENERAL" },
			wantLine: "Waiting for approval in Slack channel C0GENERAL (no policy names approvers, so nobody can approve it from Slack, expires 2026-11-22T18:00:00Z)\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ado := newFakeAzureDevOps(t,
				answer{status: 200, body: string(fixture(t, "log_created.json")), header: map[string]string{"Content-Type": "application/json"}},
				answer{status: 200},
				answer{status: 200, body: `{"count":1,"value":[]}`},
			)
			c, _ := newTestClient(t)
			task := newTask(t, ado.planURL())
			if tc.modify != nil {
				tc.modify(task)
			}

			extra, err := c.Announce(context.Background(), task)
			if err != nil {
				t.Fatalf("Announce: %v", err)
			}
			if len(extra) != 1 || extra["logId"] != "7" {
				t.Errorf("Announce = %v, want logId 7", extra)
			}
			got := ado.received()
			if len(got) != 3 {
				t.Fatalf("Azure DevOps got %d requests, want 3", len(got))
			}
			auth := "Bearer " + fixtureToken(t)
			checkRequest(t, 0, got[0], request{
				method: http.MethodPost, uri: planPath + "logs?api-version=2.0-preview.1",
				auth: auth, contentType: "application/json",
				body: `{"path":"logs\\` + taskInstanceID + `"}`,
			})
			checkRequest(t, 1, got[1], request{
				method: http.MethodPost, uri: planPath + "logs/7?api-version=2.0-preview.1",
				auth: auth, contentType: "application/octet-stream",
				body: tc.wantLine,
			})
			checkRequest(t, 2, got[2], request{
				method: http.MethodPatch, uri: planPath + "timelines/" + timelineID + "/records?api-version=2.0-preview.1",
				auth: auth, contentType: "application/json",
				body: `{"value":[{"id":"` + taskInstanceID + `","log":{"id":7}}],"count":1}`,
			})
		})
	}
}

func TestAnnounceThenDeliver(t *testing.T) {
	t.Parallel()
	ado := newFakeAzureDevOps(t,
		answer{status: 200, body: `{"id":"42","path":"logs\\x"}`},
		answer{status: 200}, answer{status: 200}, answer{status: 200}, answer{status: 200},
	)
	c, _ := newTestClient(t)
	task := newTask(t, ado.planURL())
	extra, err := c.Announce(context.Background(), task)
	if err != nil {
		t.Fatalf("Announce: %v", err)
	}
	for k, v := range extra {
		task.Extra[k] = v // as the outbox keeps it
	}
	if err := c.Deliver(context.Background(), task, approvals.ActionApprove, "Approved in Slack by Alice (U1) at 2026-11-22T14:02:00Z"); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	var calls []string
	for _, r := range ado.received() {
		calls = append(calls, r.method+" "+strings.TrimPrefix(strings.TrimSuffix(r.uri, "?api-version=2.0-preview.1"), planPath))
	}
	want := []string{"POST logs", "POST logs/42", "PATCH timelines/" + timelineID + "/records", "POST logs/42", "POST events"}
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls = %q\nwant    %q", calls, want)
	}
}

func TestAnnounceHasNothingToDo(t *testing.T) {
	t.Parallel()
	ado := newFakeAzureDevOps(t)
	c, _ := newTestClient(t)
	tests := []struct {
		name string
		task func() *approvals.Task
	}{
		{name: "nil task", task: func() *approvals.Task { return nil }},
		{name: "no timeline id", task: func() *approvals.Task {
			return newTask(t, ado.planURL(), func(h http.Header) { h.Del("TimelineId") })
		}},
		{name: "decided already", task: func() *approvals.Task { k := newTask(t, ado.planURL()); k.Status = approvals.StatusApproved; return k }},
		{name: "token dropped", task: func() *approvals.Task { k := newTask(t, ado.planURL()); k.Secret = nil; return k }},
		{name: "announced already", task: func() *approvals.Task { k := newTask(t, ado.planURL()); k.Extra["logId"] = "7"; return k }},
	}
	for _, tc := range tests {
		extra, err := c.Announce(context.Background(), tc.task())
		if err != nil || extra != nil {
			t.Errorf("%s: Announce = %v, %v; want nothing", tc.name, extra, err)
		}
	}
	if n := len(ado.received()); n != 0 {
		t.Errorf("Azure DevOps got %d requests, want none", n)
	}
}

func TestAnnounceFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		answers       []answer
		wantReqs      int
		wantErr       string
		wantPermanent bool
	}{
		{
			name:     "log answer is not a log",
			answers:  []answer{{status: 200, body: "<html>proxy</html>"}},
			wantReqs: 1, wantErr: "azure devops: create status log: Azure DevOps' answer is not a log with a numeric id",
		},
		{
			name:     "log id is not a number",
			answers:  []answer{{status: 200, body: `{"id":"7/../x"}`}},
			wantReqs: 1, wantErr: "not a log with a numeric id",
		},
		{
			name:     "token expired",
			answers:  []answer{{status: 401}},
			wantReqs: 1, wantPermanent: true,
			wantErr: "azure devops: create status log: Azure DevOps answered 401 Unauthorized (the job token may have expired: it is valid 48 hours)",
		},
		{
			name:     "append keeps failing",
			answers:  []answer{{status: 200, body: `{"id":7}`}, {status: 502}},
			wantReqs: 5, wantErr: "azure devops: write status log: Azure DevOps answered 502 Bad Gateway (after 4 attempts)",
		},
		{
			name:     "record is gone",
			answers:  []answer{{status: 200, body: `{"id":7}`}, {status: 200}, {status: 404}},
			wantReqs: 3, wantPermanent: true,
			wantErr: "azure devops: attach status log: Azure DevOps answered 404 Not Found",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ado := newFakeAzureDevOps(t, tc.answers...)
			c, _ := newTestClient(t)
			extra, err := c.Announce(context.Background(), newTask(t, ado.planURL()))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Announce = %v, %v; want an error saying %q", extra, err, tc.wantErr)
			}
			if extra != nil {
				t.Errorf("Announce returned %v with its error", extra)
			}
			if approvals.IsPermanent(err) != tc.wantPermanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, !tc.wantPermanent, tc.wantPermanent)
			}
			if n := len(ado.received()); n != tc.wantReqs {
				t.Errorf("Azure DevOps got %d requests, want %d", n, tc.wantReqs)
			}
		})
	}
}

// TestErrorsNeverHoldTheToken lets a misbehaving Azure DevOps (or proxy)
// echo the request's token and checks that no error repeats it.
func TestErrorsNeverHoldTheToken(t *testing.T) {
	t.Parallel()
	token := fixtureToken(t)
	for _, status := range []int{302, 400, 401, 404, 500, 503} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			auth := r.Header.Get("Authorization")
			w.Header().Set("Location", "https://login.example.com/?t="+strings.TrimPrefix(auth, "Bearer "))
			w.WriteHeader(status)
			fmt.Fprintf(w, "denied\n%s\nfor %s", auth, strings.TrimPrefix(auth, "Bearer "))
		}))
		t.Cleanup(srv.Close)
		c, _ := newTestClient(t, func(cfg *Config) { cfg.Retries = 1 })
		task := newTask(t, srv.URL+collection)

		_, announceErr := c.Announce(context.Background(), task)
		task.Extra["logId"] = "7"
		for _, err := range []error{c.Deliver(context.Background(), task, approvals.ActionApprove, ""), announceErr} {
			if err == nil {
				t.Fatalf("status %d: no error", status)
			}
			msg := err.Error() + fmt.Sprintf(" %v %+v %#v", err, err, err)
			if strings.Contains(msg, token) || strings.Contains(msg, token[:32]) {
				t.Errorf("status %d: error holds the token: %s", status, err)
			}
			if !strings.Contains(err.Error(), "[redacted]") {
				t.Errorf("status %d: error %q lost the rest of the answer", status, err)
			}
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	sealer := testSealer(t)
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "valid", cfg: Config{Sealer: sealer}},
		{name: "no sealer", cfg: Config{}, wantErr: "encryption key is required"},
		{name: "negative timeout", cfg: Config{Sealer: sealer, Timeout: -time.Second}, wantErr: "must not be negative"},
		{name: "max below min", cfg: Config{Sealer: sealer, MinBackoff: time.Second, MaxBackoff: time.Millisecond}, wantErr: "max backoff"},
		{name: "bad host pattern", cfg: Config{Sealer: sealer, AllowedHosts: []string{"[x"}}, wantErr: "not a valid glob pattern"},
		{name: "empty host list", cfg: Config{Sealer: sealer, AllowedHosts: []string{}}, wantErr: "empty list"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tc.cfg)
			if tc.wantErr == "" {
				if err != nil || c == nil {
					t.Fatalf("New = %v, %v", c, err)
				}
				if c.timeout != DefaultTimeout || c.retries != DefaultRetries || strings.Join(c.hosts, ",") != "dev.azure.com,*.visualstudio.com" {
					t.Errorf("defaults: timeout %v, retries %d, hosts %v", c.timeout, c.retries, c.hosts)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New error = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestLogLine(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{in: "Approved in Slack by Alice (U1)", want: "Approved in Slack by Alice (U1)\n"},
		{in: "two\r\nlines\tand a tab", want: "two  lines and a tab\n"},
		{in: "bad \xff byte", want: "bad \uFFFD byte\n"},
		{in: strings.Repeat("a", 5000), want: strings.Repeat("a", 3999) + "…\n"},
	}
	for _, tc := range tests {
		if got := string(logLine(tc.in)); got != tc.want {
			t.Errorf("logLine(%.20q) = %.40q, want %.40q", tc.in, got, tc.want)
		}
	}
}
