package azuredevops

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/azuredevopstest"
	"github.com/approvalbot/approvalbot/internal/httpfault"
)

// The routing fields of testdata/check_headers.json.
const (
	projectID      = "6f1c0a4e-2b7d-4b8e-9d61-3f0c2a9e5b17"
	planID         = "0b9d5c3a-7e41-4f26-8a5b-1c2d3e4f5a6b"
	jobID          = "4a8e2f10-93c5-4d7b-b6e1-0f2a3b4c5d6e"
	timelineID     = "9c7b6a5d-4e3f-4a1b-8c2d-7e6f5a4b3c2d"
	taskInstanceID = "e2d1c0b9-a8f7-4e6d-9c5b-4a3f2e1d0c9b"
	// planPath is where the fixture plan's resources are on the fake.
	planPath = azuredevopstest.Collection + projectID + "/_apis/distributedtask/hubs/checks/plans/" + planID + "/"
)

// newFake starts the shared fake Azure DevOps, knowing the fixture's check.
func newFake(t *testing.T) *azuredevopstest.Server {
	t.Helper()
	ado := azuredevopstest.New()
	t.Cleanup(ado.Close)
	h := fixtureHeaders(t)
	ado.AddCheck(azuredevopstest.Check{
		PlanURL: ado.PlanURL(), ProjectID: h["ProjectId"], HubName: h["HubName"], PlanID: h["PlanId"],
		JobID: h["JobId"], TimelineID: h["TimelineId"], TaskInstanceID: h["TaskInstanceId"], AuthToken: h["AuthToken"],
	})
	return ado
}

// script makes the fake answer requests with the answers in turn, the last
// one repeating; a nil answer is Azure DevOps' own.
func script(ado *azuredevopstest.Server, answers ...*azuredevopstest.Answer) {
	ado.SetAnswer(httpfault.Script[azuredevopstest.Call](answers...))
}

// scriptOnly answers the calls that match with answer, the others as Azure
// DevOps would.
func scriptOnly(ado *azuredevopstest.Server, match func(azuredevopstest.Call) bool, answer *azuredevopstest.Answer) {
	ado.SetAnswer(func(c azuredevopstest.Call) *azuredevopstest.Answer {
		if match(c) {
			return answer
		}
		return nil
	})
}

// isAppend matches a write to a log.
func isAppend(c azuredevopstest.Call) bool {
	return c.Method == http.MethodPost && strings.Contains(c.Path, "/logs/")
}

// isEvent matches a plan event.
func isEvent(c azuredevopstest.Call) bool {
	return c.Method == http.MethodPost && strings.HasSuffix(c.Path, "/events")
}

func newTestClient(t *testing.T, modify ...func(*Config)) (*Client, *httpfault.Sleeps) {
	t.Helper()
	rec := &httpfault.Sleeps{}
	cfg := Config{
		Sealer:       testSealer(t),
		Timeout:      5 * time.Second,
		MinBackoff:   time.Millisecond,
		MaxBackoff:   8 * time.Millisecond,
		AllowedHosts: []string{"127.0.0.1"},
		Sleep:        rec.Sleep,
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
	sub, err := NewIntake(testSealer(t), []string{"127.0.0.1"}).Parse(h.Get, fixture(t, "check_body.json"))
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
		Messages:          []approvals.MessageRef{{Chat: "slack", Channel: "C0PROD", TS: "1763820000.000100"}},
		ExpiresAt:         time.Date(2026, 11, 22, 18, 0, 0, 0, time.UTC),
		Secret:            sub.Secret,
		Extra:             sub.Extra,
	}
}

// keep merges what Announce returned into the task's Extra, as the outbox
// does.
func keep(task *approvals.Task, extra map[string]string) {
	maps.Copy(task.Extra, extra)
}

// request is a request as the tests want it.
type request struct {
	method, uri, auth, contentType, body string
}

// checkRequest compares a request with the one wanted, exactly.
func checkRequest(t *testing.T, i int, got azuredevopstest.Call, want request) {
	t.Helper()
	if uri := got.Path + "?" + got.Query; got.Method != want.method || uri != want.uri {
		t.Errorf("request %d = %s %s\nwant        %s %s", i, got.Method, uri, want.method, want.uri)
	}
	if got.Auth != want.auth {
		t.Errorf("request %d: Authorization = %q, want %q", i, got.Auth, want.auth)
	}
	if got.ContentType != want.contentType {
		t.Errorf("request %d: Content-Type = %q, want %q", i, got.ContentType, want.contentType)
	}
	if got.Accept != "application/json" {
		t.Errorf("request %d: Accept = %q, want application/json", i, got.Accept)
	}
	if got.Body != want.body {
		t.Errorf("request %d: body = %s\nwant           %s", i, got.Body, want.body)
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

func recordsRequest(t *testing.T) request {
	return request{
		method: http.MethodGet,
		uri:    planPath + "timelines/" + timelineID + "/records?api-version=2.0-preview.1",
		auth:   "Bearer " + fixtureToken(t),
	}
}

func TestDecideCompletesTheCheck(t *testing.T) {
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
			ado := newFake(t)
			c, rec := newTestClient(t)
			planURL := ado.PlanURL()
			if tc.trimSlash {
				planURL = strings.TrimSuffix(planURL, "/")
			}
			task := newTask(t, planURL)

			if err := c.Decide(context.Background(), task, tc.action, "Approved in Slack by Alice (U1) at 2026-11-22T14:02:00Z", false); err != nil {
				t.Fatalf("Decide: %v", err)
			}
			got := ado.Calls()
			if len(got) != 1 {
				t.Fatalf("Azure DevOps got %d requests, want 1 (no status log without a logId)", len(got))
			}
			checkRequest(t, 0, got[0], eventRequest(t, tc.wantResult))
			if r := ado.Record(taskInstanceID); r.State != azuredevopstest.StateCompleted || r.Result != tc.wantResult {
				t.Errorf("record = %+v, want completed %s", r, tc.wantResult)
			}
			if waits := rec.Waits(); len(waits) != 0 {
				t.Errorf("waited %v", waits)
			}
		})
	}
}

func TestDecideExpiryRejects(t *testing.T) {
	t.Parallel()
	ado := newFake(t)
	c, _ := newTestClient(t)
	task := newTask(t, ado.PlanURL())
	task.Status = approvals.StatusExpired
	task.OnExpiry = approvals.ExpiryReject
	action, ok := task.Outcome()
	if !ok {
		t.Fatal("an expired task with on_expiry reject has no outcome")
	}
	if err := c.Decide(context.Background(), task, action, "Expired without a decision in Slack at 2026-11-22T18:00:00Z; rejected automatically", false); err != nil {
		t.Fatalf("Decide: %v", err)
	}
	if got := ado.Completed(); len(got) != 1 || got[0].Event().Result != "failed" {
		t.Errorf("completions = %+v, want one failed event", got)
	}
}

func TestDecideClientErrorsArePermanent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		answer   azuredevopstest.Answer
		want     string
		notFound bool
	}{
		{
			name:   "401",
			answer: azuredevopstest.Answer{Status: 401},
			want:   "azure devops: complete check: Azure DevOps answered 401 Unauthorized (the job token may have expired: it is valid 48 hours)",
		},
		{
			name:   "403 with Azure's JSON error",
			answer: azuredevopstest.Answer{Status: 403, Body: `{"$id":"1","innerException":null,"message":"TF400813: The user is not authorized.","typeName":"x","typeKey":"y","errorCode":0,"eventId":3000}`},
			want:   "azure devops: complete check: Azure DevOps answered 403 Forbidden (the job token may not change this run): TF400813: The user is not authorized.",
		},
		{
			name:     "404",
			answer:   azuredevopstest.Answer{Status: 404, Body: "Not\n  Found"},
			want:     "azure devops: complete check: Azure DevOps answered 404 Not Found (the run is gone, or the check timed out or was cancelled): Not Found",
			notFound: true,
		},
		{
			name:   "400",
			answer: azuredevopstest.Answer{Status: 400, Body: `{"message":"Value cannot be null."}`},
			want:   "azure devops: complete check: Azure DevOps answered 400 Bad Request: Value cannot be null.",
		},
		{
			name:   "203 sign-in page",
			answer: azuredevopstest.Answer{Status: 203, Body: "<html>Sign in to your account</html>"},
			want:   "azure devops: complete check: Azure DevOps answered 203 Non-Authoritative Information (a sign-in page: the job token was not accepted)",
		},
		{
			name:   "redirect is not followed",
			answer: azuredevopstest.Answer{Status: 302, Header: map[string]string{"Location": "https://login.example.com/"}},
			want:   "azure devops: complete check: Azure DevOps answered 302 Found (a redirect to https://login.example.com/; PlanUrl must be the collection URI)",
		},
		{
			name:   "long answer is cut",
			answer: azuredevopstest.Answer{Status: 409, Body: strings.Repeat("é", 500)},
			want:   "azure devops: complete check: Azure DevOps answered 409 Conflict: " + strings.Repeat("é", 199) + "…",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ado := newFake(t)
			script(ado, &tc.answer, nil)
			c, rec := newTestClient(t)

			err := c.Decide(context.Background(), newTask(t, ado.PlanURL()), approvals.ActionApprove, "n", false)
			if !approvals.IsPermanent(err) {
				t.Fatalf("error %v is not permanent", err)
			}
			if err.Error() != tc.want {
				t.Errorf("error = %q\nwant    %q", err, tc.want)
			}
			if got := errors.Is(err, approvals.ErrNotFound); got != tc.notFound {
				t.Errorf("errors.Is(err, ErrNotFound) = %v, want %v", got, tc.notFound)
			}
			if n := len(ado.Calls()); n != 1 {
				t.Errorf("Azure DevOps got %d requests, want 1: the answer is final", n)
			}
			if waits := rec.Waits(); len(waits) != 0 {
				t.Errorf("waited %v after a final answer", waits)
			}
		})
	}
}

// TestDecideAnswerLost: Azure DevOps takes the TaskCompleted event but its
// answer never comes (too late, or the connection is dropped). Decide sends
// exactly one event and returns an error that may mend; the status read the
// outbox makes before its next attempt finds the check completed.
func TestDecideAnswerLost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		fault      func(*azuredevopstest.Server)
		action     approvals.Action
		wantErr    string
		wantStatus approvals.Status
	}{
		{name: "late answer", fault: func(a *azuredevopstest.Server) { a.SetLateAnswers(1) }, action: approvals.ActionApprove,
			wantErr: "azure devops: complete check: Azure DevOps did not answer within 100ms: ", wantStatus: approvals.StatusApproved},
		{name: "late answer, reject", fault: func(a *azuredevopstest.Server) { a.SetLateAnswers(1) }, action: approvals.ActionReject,
			wantErr: "azure devops: complete check: Azure DevOps did not answer within 100ms: ", wantStatus: approvals.StatusRejected},
		{name: "dropped connection", fault: func(a *azuredevopstest.Server) { a.SetDroppedAnswers(1) }, action: approvals.ActionApprove,
			wantErr: "azure devops: complete check: Azure DevOps closed the connection without answering: ", wantStatus: approvals.StatusApproved},
		{name: "dropped connection, reject", fault: func(a *azuredevopstest.Server) { a.SetDroppedAnswers(1) }, action: approvals.ActionReject,
			wantErr: "azure devops: complete check: Azure DevOps closed the connection without answering: ", wantStatus: approvals.StatusRejected},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ado := newFake(t)
			tc.fault(ado)
			// No HTTPClient: the client's own transport.
			c, rec := newTestClient(t, func(cfg *Config) {
				cfg.Timeout = 100 * time.Millisecond
				cfg.Retries = 10 // for reads; a decision is sent once whatever this says
			})
			tool := Tool(c)
			task := newTask(t, ado.PlanURL())

			err := tool.Decide(context.Background(), task, tc.action, "n", false)
			if err == nil || approvals.IsPermanent(err) {
				t.Fatalf("error = %v, want one that may mend", err)
			}
			if !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("error = %q\nwant it to begin %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), fixtureToken(t)) {
				t.Errorf("error holds the token: %v", err)
			}
			if ev := ado.Events(); len(ev) != 1 || len(ado.Completed()) != 1 {
				t.Fatalf("events = %+v, want exactly one, taken", ev)
			}
			if waits := rec.Waits(); len(waits) != 0 {
				t.Errorf("waited %v: the decision was about to be sent again", waits)
			}

			status, err := tool.Status(context.Background(), task)
			if err != nil || status != tc.wantStatus {
				t.Fatalf("Status = %q, %v; want %q", status, err, tc.wantStatus)
			}
			if n := len(ado.Events()); n != 1 {
				t.Errorf("%d events in all, want 1", n)
			}
		})
	}
}

// TestDecideAfterRefusals: events refused for a while are taken once Azure
// DevOps is back, the status read in between saying pending.
func TestDecideAfterRefusals(t *testing.T) {
	t.Parallel()
	ado := newFake(t)
	ado.SetFailFirst(2)
	c, _ := newTestClient(t)
	task := newTask(t, ado.PlanURL())
	for attempt := 1; attempt <= 3; attempt++ {
		if attempt > 1 {
			if status, err := c.Status(context.Background(), task); err != nil || status != approvals.StatusPending {
				t.Fatalf("attempt %d: Status = %q, %v; want pending", attempt, status, err)
			}
		}
		err := c.Decide(context.Background(), task, approvals.ActionApprove, "", false)
		if attempt < 3 && (err == nil || approvals.IsPermanent(err)) {
			t.Fatalf("attempt %d: error = %v, want a retryable error", attempt, err)
		}
		if attempt == 3 && err != nil {
			t.Fatalf("attempt 3: %v", err)
		}
	}
	if n, done := len(ado.Events()), len(ado.Completed()); n != 3 || done != 1 {
		t.Errorf("%d events, %d taken; want 3 and 1", n, done)
	}
}

func TestDecideStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	ado := newFake(t)
	ado.SetLateAnswers(-1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	c, _ := newTestClient(t)
	err := c.Decide(ctx, newTask(t, ado.PlanURL()), approvals.ActionApprove, "", false)
	if !errors.Is(err, context.DeadlineExceeded) || approvals.IsPermanent(err) {
		t.Fatalf("error = %v, want a retryable error wrapping the context's", err)
	}
	if n := len(ado.Events()); n != 1 {
		t.Errorf("Azure DevOps got %d events, want 1", n)
	}
}

func TestDecideRefusesWhatCannotBeSent(t *testing.T) {
	t.Parallel()
	ado := newFake(t)
	c, _ := newTestClient(t)
	tests := []struct {
		name    string
		task    func() *approvals.Task
		action  approvals.Action
		wantErr string
	}{
		{name: "nil task", task: func() *approvals.Task { return nil }, wantErr: "no Azure DevOps task instance id"},
		{name: "unknown action", action: "defer", wantErr: `unknown action "defer"`},
		{name: "token dropped", wantErr: "job token no longer available",
			task: func() *approvals.Task { k := newTask(t, ado.PlanURL()); k.Secret = nil; return k }},
		{name: "token of another task", wantErr: "job token cannot be opened",
			task: func() *approvals.Task {
				k := newTask(t, ado.PlanURL())
				k.Secret = newTask(t, ado.PlanURL(), func(h http.Header) { h.Set("TaskInstanceId", "other") }).Secret
				return k
			}},
		{name: "token tampered", wantErr: "job token cannot be opened",
			task: func() *approvals.Task { k := newTask(t, ado.PlanURL()); k.Secret[len(k.Secret)-1] ^= 1; return k }},
		{name: "host no longer allowed", wantErr: "names a host that is not allowed",
			task: func() *approvals.Task {
				k := newTask(t, ado.PlanURL())
				k.Extra["planUrl"] = "https://evil.example.com/"
				return k
			}},
		{name: "routing field missing", wantErr: "task has no jobId",
			task: func() *approvals.Task { k := newTask(t, ado.PlanURL()); delete(k.Extra, "jobId"); return k }},
		{name: "routing field altered", wantErr: "header PlanId may hold only",
			task: func() *approvals.Task { k := newTask(t, ado.PlanURL()); k.Extra["planId"] = "../x"; return k }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			task := newTask(t, ado.PlanURL())
			if tc.task != nil {
				task = tc.task()
			}
			action := tc.action
			if action == "" {
				action = approvals.ActionApprove
			}
			err := c.Decide(context.Background(), task, action, "", false)
			if !approvals.IsPermanent(err) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Decide: error = %v, want a permanent error saying %q", err, tc.wantErr)
			}
			if action == approvals.ActionApprove {
				if _, err := c.Status(context.Background(), task); !approvals.IsPermanent(err) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Status: error = %v, want a permanent error saying %q", err, tc.wantErr)
				}
			}
		})
	}
	if n := len(ado.Calls()); n != 0 {
		t.Errorf("Azure DevOps got %d requests, want none", n)
	}
}

// TestDecideNarrowedHostList checks that the host list is the client's,
// not the intake's: a task taken in before the list was narrowed is not sent.
func TestDecideNarrowedHostList(t *testing.T) {
	t.Parallel()
	ado := newFake(t)
	c, _ := newTestClient(t, func(cfg *Config) { cfg.AllowedHosts = []string{"dev.azure.com"} })
	task := newTask(t, ado.PlanURL())
	if err := c.Decide(context.Background(), task, approvals.ActionApprove, "", false); !approvals.IsPermanent(err) || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf("Decide: error = %v, want a permanent host error", err)
	}
	if _, err := c.Status(context.Background(), task); !approvals.IsPermanent(err) || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf("Status: error = %v, want a permanent host error", err)
	}
	if n := len(ado.Calls()); n != 0 {
		t.Errorf("Azure DevOps got %d requests, want none", n)
	}
}

// announced is a task whose status log Announce made, as the outbox keeps it.
func announced(t *testing.T, ado *azuredevopstest.Server, c *Client) *approvals.Task {
	t.Helper()
	task := newTask(t, ado.PlanURL())
	extra, err := c.Announce(context.Background(), task, waiting(task))
	if err != nil {
		t.Fatalf("Announce: %v", err)
	}
	keep(task, extra)
	return task
}

func TestDecideWritesTheDecisionToTheStatusLogFirst(t *testing.T) {
	t.Parallel()
	ado := newFake(t)
	c, _ := newTestClient(t)
	task := announced(t, ado, c)
	mark := len(ado.Calls())
	notes := "Rejected in Slack by Carol (U789) at 2026-11-22T14:02:00Z: tests\nare red"

	if err := c.Decide(context.Background(), task, approvals.ActionReject, notes, false); err != nil {
		t.Fatalf("Decide: %v", err)
	}
	got := ado.Calls()[mark:]
	if len(got) != 2 {
		t.Fatalf("Azure DevOps got %d requests, want 2", len(got))
	}
	checkRequest(t, 0, got[0], request{
		method:      http.MethodPost,
		uri:         planPath + "logs/1?api-version=2.0-preview.1",
		auth:        "Bearer " + fixtureToken(t),
		contentType: "application/octet-stream",
		body:        "Rejected in Slack by Carol (U789) at 2026-11-22T14:02:00Z: tests are red\n",
	})
	checkRequest(t, 1, got[1], eventRequest(t, "failed"))
	log, _ := ado.Log(1)
	if want := "Waiting for approval in Slack channel C0PROD (policy production, expires 2026-11-22T18:00:00Z)\n" +
		"Rejected in Slack by Carol (U789) at 2026-11-22T14:02:00Z: tests are red\n"; log != want {
		t.Errorf("log = %q\nwant  %q", log, want)
	}
}

func TestDecideStatusLineIsBestEffort(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		line, event   *azuredevopstest.Answer
		wantErr       string
		wantPermanent bool
	}{
		{
			name: "line fails, decision goes through",
			line: &azuredevopstest.Answer{Status: 500},
		},
		{
			name:          "both fail",
			line:          &azuredevopstest.Answer{Status: 404},
			event:         &azuredevopstest.Answer{Status: 401},
			wantPermanent: true,
			wantErr: "azure devops: complete check: Azure DevOps answered 401 Unauthorized (the job token may have expired: it is valid 48 hours)" +
				"; the status line was not written either: Azure DevOps answered 404 Not Found (the run is gone, or the check timed out or was cancelled)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ado := newFake(t)
			c, _ := newTestClient(t)
			task := announced(t, ado, c)
			mark := len(ado.Calls())
			ado.SetAnswer(func(call azuredevopstest.Call) *azuredevopstest.Answer {
				switch {
				case isAppend(call):
					return tc.line
				case isEvent(call):
					return tc.event
				}
				return nil
			})
			err := c.Decide(context.Background(), task, approvals.ActionApprove, "Approved in Slack by Alice (U1) at 2026-11-22T14:02:00Z", false)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Decide: %v", err)
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Fatalf("error = %v\nwant    %s", err, tc.wantErr)
			}
			if approvals.IsPermanent(err) != tc.wantPermanent {
				t.Errorf("IsPermanent = %v, want %v", !tc.wantPermanent, tc.wantPermanent)
			}
			got := ado.Calls()[mark:]
			if len(got) != 2 {
				t.Fatalf("Azure DevOps got %d requests, want 2: the line is tried once", len(got))
			}
			checkRequest(t, 1, got[1], eventRequest(t, "succeeded"))
		})
	}
}

// TestDecideLeavesAnUnattachedLogAlone: a log Announce has not attached yet
// is not written to; nobody would see the line.
func TestDecideLeavesAnUnattachedLogAlone(t *testing.T) {
	t.Parallel()
	ado := newFake(t)
	c, _ := newTestClient(t)
	task := newTask(t, ado.PlanURL())
	task.Extra[ExtraLogID], task.Extra[ExtraLogPending] = "1", logPendingAttach
	if err := c.Decide(context.Background(), task, approvals.ActionApprove, "Approved", false); err != nil {
		t.Fatalf("Decide: %v", err)
	}
	if got := ado.Calls(); len(got) != 1 || !isEvent(got[0]) {
		t.Errorf("requests %+v, want only the event", got)
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
			modify:   func(k *approvals.Task) { k.Messages[0].Channel = ""; k.RequiredApprovals = 2 },
			wantLine: "Waiting for approval in Slack (policy production, 2 approvals needed, expires 2026-11-22T18:00:00Z)\n",
		},
		{
			name:     "no policy",
			modify:   func(k *approvals.Task) { k.Policy = ""; k.Messages[0].Channel = "C0GENERAL" },
			wantLine: "Waiting for approval in Slack channel C0GENERAL (no policy names approvers, so nobody can approve it from Slack, expires 2026-11-22T18:00:00Z)\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ado := newFake(t)
			c, _ := newTestClient(t)
			task := newTask(t, ado.PlanURL())
			if tc.modify != nil {
				tc.modify(task)
			}

			extra, err := c.Announce(context.Background(), task, waiting(task))
			if err != nil {
				t.Fatalf("Announce: %v", err)
			}
			if want := map[string]string{"logId": "1", "logPending": ""}; !maps.Equal(extra, want) {
				t.Errorf("Announce = %v, want %v", extra, want)
			}
			got := ado.Calls()
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
				method: http.MethodPost, uri: planPath + "logs/1?api-version=2.0-preview.1",
				auth: auth, contentType: "application/octet-stream",
				body: tc.wantLine,
			})
			checkRequest(t, 2, got[2], request{
				method: http.MethodPatch, uri: planPath + "timelines/" + timelineID + "/records?api-version=2.0-preview.1",
				auth: auth, contentType: "application/json",
				body: `{"value":[{"id":"` + taskInstanceID + `","log":{"id":1}}],"count":1}`,
			})
			if log, _ := ado.Log(1); log != tc.wantLine {
				t.Errorf("log = %q, want %q", log, tc.wantLine)
			}
			if r := ado.Record(taskInstanceID); r.LogID != 1 {
				t.Errorf("record %+v, want log 1 attached", r)
			}
		})
	}
}

func TestAnnounceThenDecide(t *testing.T) {
	t.Parallel()
	ado := newFake(t)
	c, _ := newTestClient(t)
	task := announced(t, ado, c)
	if extra, err := c.Announce(context.Background(), task, waiting(task)); err != nil || extra != nil {
		t.Errorf("a second Announce = %v, %v; want nothing to do", extra, err)
	}
	if err := c.Decide(context.Background(), task, approvals.ActionApprove, "Approved in Slack by Alice (U1) at 2026-11-22T14:02:00Z", false); err != nil {
		t.Fatalf("Decide: %v", err)
	}
	var calls []string
	for _, r := range ado.Calls() {
		calls = append(calls, r.Method+" "+strings.TrimPrefix(r.Path, planPath))
	}
	want := []string{"POST logs", "POST logs/1", "PATCH timelines/" + timelineID + "/records", "POST logs/1", "POST events"}
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls = %q\nwant    %q", calls, want)
	}
}

func TestAnnounceHasNothingToDo(t *testing.T) {
	t.Parallel()
	ado := newFake(t)
	c, _ := newTestClient(t)
	tests := []struct {
		name string
		task func() *approvals.Task
	}{
		{name: "nil task", task: func() *approvals.Task { return nil }},
		{name: "no timeline id", task: func() *approvals.Task {
			return newTask(t, ado.PlanURL(), func(h http.Header) { h.Del("TimelineId") })
		}},
		{name: "decided already", task: func() *approvals.Task { k := newTask(t, ado.PlanURL()); k.Status = approvals.StatusApproved; return k }},
		{name: "token dropped", task: func() *approvals.Task { k := newTask(t, ado.PlanURL()); k.Secret = nil; return k }},
		{name: "announced already", task: func() *approvals.Task { k := newTask(t, ado.PlanURL()); k.Extra["logId"] = "7"; return k }},
		{name: "announced, nothing left", task: func() *approvals.Task {
			k := newTask(t, ado.PlanURL())
			k.Extra["logId"], k.Extra["logPending"] = "7", ""
			return k
		}},
	}
	for _, tc := range tests {
		extra, err := c.Announce(context.Background(), tc.task(), waiting(tc.task()))
		if err != nil || extra != nil {
			t.Errorf("%s: Announce = %v, %v; want nothing", tc.name, extra, err)
		}
	}
	if n := len(ado.Calls()); n != 0 {
		t.Errorf("Azure DevOps got %d requests, want none", n)
	}
}

func TestAnnounceFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		match         func(azuredevopstest.Call) bool
		answer        azuredevopstest.Answer
		wantReqs      int
		wantErr       string
		wantPermanent bool
		wantExtra     map[string]string
	}{
		{
			name:   "log answer is not a log",
			match:  func(c azuredevopstest.Call) bool { return strings.HasSuffix(c.Path, "/logs") },
			answer: azuredevopstest.Answer{Status: 200, Body: "<html>proxy</html>"}, wantReqs: 1,
			wantErr: "azure devops: create status log: the answer of Azure DevOps is not a log with a numeric id",
		},
		{
			name:   "log id is not a number",
			match:  func(c azuredevopstest.Call) bool { return strings.HasSuffix(c.Path, "/logs") },
			answer: azuredevopstest.Answer{Status: 200, Body: `{"id":"7/../x"}`}, wantReqs: 1,
			wantErr: "not a log with a numeric id",
		},
		{
			name:   "token expired",
			match:  func(azuredevopstest.Call) bool { return true },
			answer: azuredevopstest.Answer{Status: 401}, wantReqs: 1, wantPermanent: true,
			wantErr: "azure devops: create status log: Azure DevOps answered 401 Unauthorized (the job token may have expired: it is valid 48 hours)",
		},
		{
			name:   "append fails",
			match:  isAppend,
			answer: azuredevopstest.Answer{Status: 502}, wantReqs: 2,
			wantErr:   "azure devops: write status log: Azure DevOps answered 502 Bad Gateway",
			wantExtra: map[string]string{"logId": "1", "logPending": "write"},
		},
		{
			name:   "record is gone",
			match:  func(c azuredevopstest.Call) bool { return c.Method == http.MethodPatch },
			answer: azuredevopstest.Answer{Status: 404}, wantReqs: 3, wantPermanent: true,
			wantErr:   "azure devops: attach status log: Azure DevOps answered 404 Not Found",
			wantExtra: map[string]string{"logId": "1", "logPending": "attach"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ado := newFake(t)
			scriptOnly(ado, tc.match, &tc.answer)
			c, rec := newTestClient(t)
			extra, err := c.Announce(context.Background(), newTask(t, ado.PlanURL()), waiting(newTask(t, ado.PlanURL())))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Announce = %v, %v; want an error saying %q", extra, err, tc.wantErr)
			}
			if !maps.Equal(extra, tc.wantExtra) {
				t.Errorf("Announce returned %v with its error, want %v", extra, tc.wantExtra)
			}
			if approvals.IsPermanent(err) != tc.wantPermanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, !tc.wantPermanent, tc.wantPermanent)
			}
			if n := len(ado.Calls()); n != tc.wantReqs {
				t.Errorf("Azure DevOps got %d requests, want %d: each write is tried once", n, tc.wantReqs)
			}
			if waits := rec.Waits(); len(waits) != 0 {
				t.Errorf("waited %v", waits)
			}
		})
	}
}

// TestAnnounceGoesOnWhereItStopped: after a partial success, the next try
// takes the steps left, and never creates a second log.
func TestAnnounceGoesOnWhereItStopped(t *testing.T) {
	t.Parallel()
	for _, stop := range []struct {
		name  string
		match func(azuredevopstest.Call) bool
		again []string // the calls of the second try
	}{
		{name: "append refused", match: isAppend, again: []string{"POST logs/1", "PATCH timelines/" + timelineID + "/records"}},
		{name: "attach refused", match: func(c azuredevopstest.Call) bool { return c.Method == http.MethodPatch },
			again: []string{"PATCH timelines/" + timelineID + "/records"}},
	} {
		t.Run(stop.name, func(t *testing.T) {
			t.Parallel()
			ado := newFake(t)
			c, _ := newTestClient(t)
			task := newTask(t, ado.PlanURL())
			scriptOnly(ado, stop.match, &azuredevopstest.Answer{Status: 503})
			extra, err := c.Announce(context.Background(), task, waiting(task))
			if err == nil {
				t.Fatal("Announce succeeded")
			}
			keep(task, extra)
			ado.SetAnswer(nil)
			mark := len(ado.Calls())

			extra, err = c.Announce(context.Background(), task, waiting(task))
			if err != nil {
				t.Fatalf("second Announce: %v", err)
			}
			keep(task, extra)
			var calls []string
			for _, r := range ado.Calls()[mark:] {
				calls = append(calls, r.Method+" "+strings.TrimPrefix(r.Path, planPath))
			}
			if strings.Join(calls, "\n") != strings.Join(stop.again, "\n") {
				t.Errorf("second try's calls = %q\nwant %q", calls, stop.again)
			}
			if n := ado.LogCount(); n != 1 {
				t.Errorf("%d logs created, want 1", n)
			}
			if log, _ := ado.Log(1); strings.Count(log, "Waiting for approval") != 1 {
				t.Errorf("log = %q, want the waiting line once", log)
			}
			if r := ado.Record(taskInstanceID); r.LogID != 1 {
				t.Errorf("record %+v, want log 1 attached", r)
			}
			if task.Extra[ExtraLogID] != "1" || task.Extra[ExtraLogPending] != "" {
				t.Errorf("Extra = %v", task.Extra)
			}
			if extra, err := c.Announce(context.Background(), task, waiting(task)); extra != nil || err != nil {
				t.Errorf("a third Announce = %v, %v; want nothing to do", extra, err)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		state, result string // "" state: no record
		want          approvals.Status
	}{
		{name: "in progress", state: "inProgress", want: approvals.StatusPending},
		{name: "pending", state: "pending", want: approvals.StatusPending},
		{name: "succeeded", state: "completed", result: "succeeded", want: approvals.StatusApproved},
		{name: "failed", state: "completed", result: "failed", want: approvals.StatusRejected},
		{name: "canceled", state: "completed", result: "canceled", want: approvals.StatusExpired},
		{name: "skipped", state: "completed", result: "skipped", want: approvals.StatusExpired},
		{name: "abandoned", state: "completed", result: "abandoned", want: approvals.StatusExpired},
		{name: "succeeded with issues", state: "completed", result: "succeededWithIssues", want: approvals.StatusExpired},
		{name: "a state to come", state: "paused", result: "succeeded", want: approvals.StatusPending},
		{name: "no record", state: "", want: approvals.StatusPending},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ado := newFake(t)
			ado.SetRecord(taskInstanceID, tc.state, tc.result)
			c, rec := newTestClient(t)
			got, err := c.Status(context.Background(), newTask(t, ado.PlanURL()))
			if err != nil || got != tc.want {
				t.Fatalf("Status = %q, %v; want %q", got, err, tc.want)
			}
			calls := ado.Calls()
			if len(calls) != 1 {
				t.Fatalf("Azure DevOps got %d requests, want 1", len(calls))
			}
			want := recordsRequest(t)
			if uri := calls[0].Path + "?" + calls[0].Query; calls[0].Method != want.method || uri != want.uri ||
				calls[0].Auth != want.auth || calls[0].Body != "" || calls[0].ContentType != "" {
				t.Errorf("request %+v, want %+v", calls[0], want)
			}
			if waits := rec.Waits(); len(waits) != 0 {
				t.Errorf("waited %v", waits)
			}
		})
	}
}

func TestRecordStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		state, result string
		want          approvals.Status
	}{
		{"completed", "succeeded", approvals.StatusApproved},
		{"Completed", "Succeeded", approvals.StatusApproved},
		{"completed", "failed", approvals.StatusRejected},
		{"COMPLETED", "FAILED", approvals.StatusRejected},
		{"completed", "canceled", approvals.StatusExpired},
		{"completed", "skipped", approvals.StatusExpired},
		{"completed", "abandoned", approvals.StatusExpired},
		{"completed", "succeededWithIssues", approvals.StatusExpired},
		{"completed", "", approvals.StatusExpired},
		{"inProgress", "succeeded", approvals.StatusPending},
		{"pending", "", approvals.StatusPending},
		{"", "", approvals.StatusPending},
	}
	for _, tc := range tests {
		if got := recordStatus(tc.state, tc.result); got != tc.want {
			t.Errorf("recordStatus(%q, %q) = %q, want %q", tc.state, tc.result, got, tc.want)
		}
	}
}

// TestStatusReadsTheRightRecord: the check's record is found by its id
// among the others, whatever the case of its GUID and the shape of theirs.
func TestStatusReadsTheRightRecord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		want       approvals.Status
	}{
		{name: "upper-case id", want: approvals.StatusApproved,
			body: `{"count":2,"value":[{"id":"` + jobID + `","state":"completed","result":"failed"},{"id":"` + strings.ToUpper(taskInstanceID) + `","state":"completed","result":"succeeded"}]}`},
		{name: "other records in odd shapes", want: approvals.StatusRejected,
			body: `{"count":3,"value":[{"id":"x","state":2,"result":null},{"id":"y","state":{"a":1}},{"id":"` + taskInstanceID + `","state":"completed","result":"failed"}]}`},
		{name: "a numeric state is unknown", want: approvals.StatusPending,
			body: `{"count":1,"value":[{"id":"` + taskInstanceID + `","state":2,"result":0}]}`},
		{name: "none", want: approvals.StatusPending, body: `{"count":0,"value":[]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ado := newFake(t)
			script(ado, &azuredevopstest.Answer{Status: 200, Body: tc.body})
			c, _ := newTestClient(t)
			if got, err := c.Status(context.Background(), newTask(t, ado.PlanURL())); err != nil || got != tc.want {
				t.Errorf("Status = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestStatusFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		retries       int
		answer        azuredevopstest.Answer
		wantReqs      int
		wantPermanent bool
		wantNotFound  bool
		wantErr       string
		wantAfter     time.Duration
	}{
		{name: "404", answer: azuredevopstest.Answer{Status: 404}, wantReqs: 1, wantPermanent: true, wantNotFound: true,
			wantErr: "azure devops: read check status: Azure DevOps answered 404 Not Found (the run is gone, or the check timed out or was cancelled)"},
		{name: "401", answer: azuredevopstest.Answer{Status: 401}, wantReqs: 1, wantPermanent: true,
			wantErr: "azure devops: read check status: Azure DevOps answered 401 Unauthorized (the job token may have expired: it is valid 48 hours)"},
		{name: "not JSON", answer: azuredevopstest.Answer{Status: 200, Body: "<html>proxy</html>"}, wantReqs: 1,
			wantErr: "azure devops: read check status: Azure DevOps' answer is not a list of timeline records"},
		{name: "500 persists", retries: 2, answer: azuredevopstest.Answer{Status: 500}, wantReqs: 3,
			wantErr: "azure devops: read check status: Azure DevOps answered 500 Internal Server Error (after 3 attempts)"},
		{name: "rate limited", retries: 1, answer: azuredevopstest.Answer{Status: 429, Header: map[string]string{"Retry-After": "30"}}, wantReqs: 2,
			wantErr: "azure devops: read check status: Azure DevOps answered 429 Too Many Requests (after 2 attempts)", wantAfter: 30 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ado := newFake(t)
			script(ado, &tc.answer)
			c, _ := newTestClient(t, func(cfg *Config) {
				if tc.retries != 0 {
					cfg.Retries = tc.retries
				}
			})
			_, err := c.Status(context.Background(), newTask(t, ado.PlanURL()))
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("error = %v\nwant    %s", err, tc.wantErr)
			}
			if approvals.IsPermanent(err) != tc.wantPermanent || errors.Is(err, approvals.ErrNotFound) != tc.wantNotFound {
				t.Errorf("error %v: permanent %v, not found %v", err, approvals.IsPermanent(err), errors.Is(err, approvals.ErrNotFound))
			}
			if after, _ := approvals.RetryAfter(err); after != tc.wantAfter {
				t.Errorf("RetryAfter = %v, want %v", after, tc.wantAfter)
			}
			if n := len(ado.Calls()); n != tc.wantReqs {
				t.Errorf("Azure DevOps got %d requests, want %d", n, tc.wantReqs)
			}
		})
	}
}

// TestStatusWithoutTimeline: a check whose request named no timeline has
// no record to read, and counts as pending.
func TestStatusWithoutTimeline(t *testing.T) {
	t.Parallel()
	ado := newFake(t)
	c, _ := newTestClient(t)
	task := newTask(t, ado.PlanURL(), func(h http.Header) { h.Del("TimelineId") })
	if got, err := c.Status(context.Background(), task); err != nil || got != approvals.StatusPending {
		t.Errorf("Status = %q, %v; want pending", got, err)
	}
	if n := len(ado.Calls()); n != 0 {
		t.Errorf("Azure DevOps got %d requests, want none", n)
	}
}

// TestErrorsNeverHoldTheToken lets a misbehaving Azure DevOps (or proxy)
// echo the request's token and checks that no error repeats it.
func TestErrorsNeverHoldTheToken(t *testing.T) {
	t.Parallel()
	token := fixtureToken(t)
	for _, status := range []int{302, 400, 401, 404, 500, 503} {
		ado := newFake(t)
		ado.SetAnswer(func(c azuredevopstest.Call) *azuredevopstest.Answer {
			return &azuredevopstest.Answer{Status: status,
				Header: map[string]string{"Location": "https://login.example.com/?t=" + c.Token()},
				Body:   fmt.Sprintf("denied\n%s\nfor %s", c.Auth, c.Token())}
		})
		c, _ := newTestClient(t, func(cfg *Config) { cfg.Retries = 1 })
		task := newTask(t, ado.PlanURL())

		_, announceErr := c.Announce(context.Background(), task, waiting(task))
		_, statusErr := c.Status(context.Background(), task)
		task.Extra["logId"] = "7"
		for _, err := range []error{c.Decide(context.Background(), task, approvals.ActionApprove, "", false), announceErr, statusErr} {
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

func TestTool(t *testing.T) {
	t.Parallel()
	ado := newFake(t)
	c, _ := newTestClient(t)
	tool := Tool(c)
	if tool.Name != "azure-devops" || tool.DisplayName != "Azure DevOps" || tool.ReadByTaskID {
		t.Errorf("tool %q %q, read by task id %v", tool.Name, tool.DisplayName, tool.ReadByTaskID)
	}
	if tool.Decide == nil || tool.Status == nil || tool.Announce == nil || tool.Enrich != nil {
		t.Errorf("decide %v, status %v, announce %v, enrich %v",
			tool.Decide != nil, tool.Status != nil, tool.Announce != nil, tool.Enrich != nil)
	}
	if len(tool.Intakes) != 1 {
		t.Fatalf("intakes %+v", tool.Intakes)
	}
	in := tool.Intakes[0]
	if in.Path != "azure-devops/checks" || !in.AnswerOK || !in.BodyOptional {
		t.Errorf("intake %+v", in)
	}
	if _, err := approvals.NewTools(tool); err != nil {
		t.Errorf("NewTools: %v", err)
	}

	// The intake seals with the client's key and takes its hosts: a check it
	// accepts is one the client can complete.
	h := httpHeader(fixtureHeaders(t))
	h.Set("PlanUrl", ado.PlanURL())
	sub, err := in.Parse(h.Get, nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	task := &approvals.Task{Source: sub.Source, TaskID: sub.TaskID, Status: approvals.StatusPending, Secret: sub.Secret, Extra: sub.Extra}
	if err := tool.Decide(context.Background(), task, approvals.ActionApprove, "", false); err != nil {
		t.Errorf("Decide of the intake's task: %v", err)
	}
	h.Set("PlanUrl", "https://dev.azure.com/contoso/") // allowed by default, not by this client
	if _, err := in.Parse(h.Get, nil); !errors.Is(err, approvals.ErrInvalid) || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf("Parse of a host the client refuses: %v", err)
	}

	// Without a client there is no key: the intake refuses, and nothing is sent.
	none := Tool(nil)
	if none.Decide != nil || none.Status != nil || none.Announce != nil || len(none.Intakes) != 1 {
		t.Fatalf("tool without a client: %+v", none)
	}
	if _, err := none.Intakes[0].Parse(httpHeader(fixtureHeaders(t)).Get, nil); err == nil || errors.Is(err, approvals.ErrInvalid) {
		t.Errorf("Parse without a key: %v, want an internal error", err)
	}
}

func TestIsLogID(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"7": true, "0": true, "42": true, "9223372036854775807": true,
		"": false, "-1": false, "+1": false, "1e3": false, "7.0": false, " 7": false, "0x1f": false, "1_000": false,
		"9223372036854775808": false, "7/../x": false, "١": false,
	} {
		if got := isLogID(s); got != want {
			t.Errorf("isLogID(%q) = %v, want %v", s, got, want)
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
				if c.api.Timeout != DefaultTimeout || c.api.Retrier.Retries != DefaultRetries || strings.Join(c.hosts, ",") != "dev.azure.com,*.visualstudio.com" {
					t.Errorf("defaults: timeout %v, retries %d, hosts %v", c.api.Timeout, c.api.Retrier.Retries, c.hosts)
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

// waiting is the line the core hands Announce, with Slack registered.
func waiting(t *approvals.Task) string {
	if t == nil {
		return ""
	}
	chats, err := approvals.NewChats(approvals.Chat{Name: "slack", DisplayName: "Slack", Primary: true, PostsByDefault: true})
	if err != nil {
		panic(err)
	}
	return approvals.WaitingLine(t, chats)
}
