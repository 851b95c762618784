// Package azuredevopstest is a stand-in for Azure DevOps' distributed-task
// REST API, the part an "Invoke REST API" check in callback mode is
// completed through: plan events (TaskCompleted), logs (create, append) and
// timeline records (attach a log, read the records). The tests and the
// load command run it on loopback.
//
// It is a real HTTP server that knows its checks (NewCheck, AddCheck) and
// checks requests as Azure DevOps does: the exact path under the
// collection, api-version 2.0-preview.1, the check's job token as a Bearer
// token, the content type and the shape of each body. It keeps their
// state: a TaskCompleted event completes the check's timeline record, and
// the records read answers it. Its faults model what the bot must survive:
// events refused for a while (SetFailFirst), taken but answered too late
// (SetLateAnswers) or never (SetDroppedAnswers), and scripted answers
// (SetAnswer).
package azuredevopstest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/approvalbot/approvalbot/internal/httpfault"
)

// Collection is the path of the fake organization's collection URI: a
// check's PlanUrl is the server's URL followed by it.
const Collection = "/contoso/"

// APIVersion is the only api-version the fake serves, Microsoft's
// ServerTaskHelper's.
const APIVersion = "2.0-preview.1"

// Timeline record states and results, as Azure DevOps spells them.
const (
	StatePending    = "pending"
	StateInProgress = "inProgress"
	StateCompleted  = "completed"

	ResultSucceeded = "succeeded"
	ResultFailed    = "failed"
	ResultCanceled  = "canceled"
	ResultSkipped   = "skipped"
	ResultAbandoned = "abandoned"
)

// taskResults are the results a TaskCompleted event may carry.
var taskResults = []string{ResultSucceeded, "succeededWithIssues", ResultFailed, ResultCanceled, ResultSkipped, ResultAbandoned}

// Check is one check run as Azure Pipelines hands it to the bot: where its
// plan lives, and its job token.
type Check struct {
	PlanURL, ProjectID, HubName, PlanID, JobID, TimelineID, TaskInstanceID string
	AuthToken                                                              string
}

// Headers are the headers of the check's request to the bot, as Azure
// Pipelines sends them with the variables expanded (the API key aside).
func (c Check) Headers() map[string]string {
	return map[string]string{
		"Content-Type": "application/json",
		"PlanUrl":      c.PlanURL, "ProjectId": c.ProjectID, "HubName": c.HubName, "PlanId": c.PlanID,
		"JobId": c.JobID, "TimelineId": c.TimelineID, "TaskInstanceId": c.TaskInstanceID, "AuthToken": c.AuthToken,
	}
}

// PlanPath is the path of the check's plan, under which its events, logs
// and timelines are (without a trailing slash).
func (c Check) PlanPath() string {
	return Collection + c.ProjectID + "/_apis/distributedtask/hubs/" + c.HubName + "/plans/" + c.PlanID
}

// Call is one request the fake Azure DevOps received.
type Call struct {
	Method, Path, Query, Auth, ContentType, Accept, Body string
	At                                                   time.Time
	// Code is the status the fake answered with; 0 when it gave no answer
	// (the connection was dropped, or the client gave up first).
	Code int
	// Applied reports whether the call changed the fake's state (completed
	// a check, created or wrote a log, attached one).
	Applied bool
}

// Event is the body of a plan event.
type Event struct {
	Name   string `json:"name"`
	TaskID string `json:"taskId"`
	JobID  string `json:"jobId"`
	Result string `json:"result"`
}

// Event decodes the call's body as a plan event.
func (c Call) Event() Event {
	var e Event
	_ = json.Unmarshal([]byte(c.Body), &e)
	return e
}

// Token is the Bearer token the call carried.
func (c Call) Token() string { return strings.TrimPrefix(c.Auth, "Bearer ") }

// Record is a check's timeline record as the fake keeps it.
type Record struct {
	State  string // pending, inProgress, completed; "" when there is none
	Result string // once completed: succeeded, failed, canceled, …
	LogID  int    // the log attached to it; 0 for none
}

// Answer is a scripted answer to a request: a Status of 0 is 200.
type Answer = httpfault.Answer

// Server is Azure DevOps' distributed-task API on a real HTTP server.
type Server struct {
	Server *httptest.Server

	mu     sync.Mutex
	calls  []Call
	plans  map[string]*plan // by plan id
	checks int
	logs   int
	answer func(call Call) *Answer

	faults httpfault.Faults // SetFailFirst, SetLateAnswers, SetDroppedAnswers
}

// plan is a plan the fake knows: its routing, job token, records and logs.
type plan struct {
	projectID, hubName, jobID, timelineID, token string
	records                                      map[string]*Record // by task instance id
	order                                        []string
	logs                                         map[int]*strings.Builder
}

// New starts a fake Azure DevOps that knows no check yet; Close it when
// done.
func New() *Server {
	f := &Server{plans: map[string]*plan{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// URL is the server's root URL.
func (f *Server) URL() string { return f.Server.URL }

// PlanURL is the collection URI its checks name in PlanUrl (ending in /).
func (f *Server) PlanURL() string { return f.Server.URL + Collection }

// Close stops the server. Answers held back (SetLateAnswers) are let go,
// so that it does not wait for them.
func (f *Server) Close() {
	f.faults.Close()
	f.Server.Close()
}

// NewCheck starts a check run in a plan of its own, with fresh ids and a
// job token of its own, and returns it; its record is in progress. An
// empty taskInstanceID is made up.
func (f *Server) NewCheck(taskInstanceID string) Check {
	f.mu.Lock()
	f.checks++
	n := f.checks
	f.mu.Unlock()
	id := func(kind int) string { return fmt.Sprintf("%08x-%04x-4000-8000-%012x", n, kind, n) }
	if taskInstanceID == "" {
		taskInstanceID = id(5)
	}
	secret := make([]byte, 24)
	_, _ = rand.Read(secret)
	c := Check{
		PlanURL:   f.PlanURL(),
		ProjectID: "6c3ac5e2-4b7a-4d1b-9f0e-1a2b3c4d5e6f", HubName: "checks",
		PlanID: id(1), JobID: id(2), TimelineID: id(3), TaskInstanceID: taskInstanceID,
		AuthToken: "azure-job-token-" + strconv.Itoa(n) + "-" + hex.EncodeToString(secret),
	}
	f.AddCheck(c)
	return c
}

// AddCheck makes the fake know a check with the ids given; its record is
// in progress. Checks of one plan share its project, hub, job, timeline
// and job token: those of the first one added.
func (f *Server) AddCheck(c Check) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.plans[c.PlanID]
	if !ok {
		p = &plan{projectID: c.ProjectID, hubName: c.HubName, jobID: c.JobID, timelineID: c.TimelineID,
			token: c.AuthToken, records: map[string]*Record{}, logs: map[int]*strings.Builder{}}
		f.plans[c.PlanID] = p
	}
	if _, ok := p.records[c.TaskInstanceID]; !ok {
		p.order = append(p.order, c.TaskInstanceID)
	}
	p.records[c.TaskInstanceID] = &Record{State: StateInProgress}
}

// SetRecord sets the state and result of a check's timeline record (as if
// the check timed out, or the run was cancelled, in Azure DevOps); an
// empty state drops the record, so that the records read lacks it.
func (f *Server) SetRecord(taskInstanceID, state, result string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.plans {
		if r, ok := p.records[taskInstanceID]; ok {
			if state == "" {
				delete(p.records, taskInstanceID)
				p.order = slices.DeleteFunc(p.order, func(id string) bool { return id == taskInstanceID })
				return
			}
			r.State, r.Result = state, result
			return
		}
	}
}

// Record returns a check's timeline record now (a zero Record when there
// is none).
func (f *Server) Record(taskInstanceID string) Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.plans {
		if r, ok := p.records[taskInstanceID]; ok {
			return *r
		}
	}
	return Record{}
}

// Log returns what was written to a log, and whether it exists.
func (f *Server) Log(logID int) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.plans {
		if l, ok := p.logs[logID]; ok {
			return l.String(), true
		}
	}
	return "", false
}

// LogCount is how many logs were created.
func (f *Server) LogCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logs
}

// SetAnswer scripts the answer to any well-formed request; nil, or a nil
// *Answer, answers as Azure DevOps would. A scripted answer changes
// nothing.
func (f *Server) SetAnswer(fn func(call Call) *Answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = fn
}

// SetFailFirst makes the next n TaskCompleted events answered 500 and not
// taken.
func (f *Server) SetFailFirst(n int) { f.faults.SetFailFirst(n) }

// SetLateAnswers makes the next n TaskCompleted events late: each is
// taken, and then its answer is held until the client gives up (or the
// server closes). n < 0: every event from now on; 0: none.
func (f *Server) SetLateAnswers(n int) { f.faults.SetLate(n) }

// SetDroppedAnswers makes the next n TaskCompleted events unanswered:
// each is taken, and then the connection is closed without an answer.
// n < 0: every event from now on; 0: none.
func (f *Server) SetDroppedAnswers(n int) { f.faults.SetDropped(n) }

// Calls returns every request so far.
func (f *Server) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// Events returns the TaskCompleted events received, whatever their answer.
func (f *Server) Events() []Call {
	var out []Call
	for _, c := range f.Calls() {
		if c.Method == http.MethodPost && strings.HasSuffix(c.Path, "/events") {
			out = append(out, c)
		}
	}
	return out
}

// Completed returns the TaskCompleted events that completed their check.
func (f *Server) Completed() []Call {
	var out []Call
	for _, c := range f.Events() {
		if c.Applied {
			out = append(out, c)
		}
	}
	return out
}

// Resource kinds of a plan.
const (
	kindEvents = iota + 1
	kindLogs
	kindLog
	kindRecords
)

// request is a well-formed request to one of a plan's resources.
type request struct {
	plan  *plan
	kind  int
	logID int // kindLog
	event Event
	// attach is the PATCH of records: task instance id → log id.
	attach map[string]int
	path   string // the path of a log to create
	text   string // the lines to append to a log
}

// apiError is Azure DevOps' error: status and message.
type apiError struct {
	status  int
	message string
}

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	call := Call{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Auth: r.Header.Get("Authorization"),
		ContentType: r.Header.Get("Content-Type"), Accept: r.Header.Get("Accept"), Body: string(body), At: time.Now()}

	f.mu.Lock()
	index := len(f.calls)
	f.calls = append(f.calls, call)
	req, refusal := f.check(r, body)
	answer := f.answer
	f.mu.Unlock()

	record := func(code int, applied bool) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls[index].Code, f.calls[index].Applied = code, applied
	}
	if refusal != nil {
		writeJSON(w, refusal.status, errorBody(refusal.message))
		record(refusal.status, false)
		return
	}
	if answer != nil {
		if a := answer(call); a != nil {
			record(a.Write(w), false)
			return
		}
	}

	f.mu.Lock()
	status, reply, applied, fault := f.apply(req)
	f.mu.Unlock()
	if fault != httpfault.Answered {
		record(0, applied)
		f.faults.Lose(w, r, fault)
	}
	if reply == nil {
		w.WriteHeader(status)
	} else {
		writeJSON(w, status, reply)
	}
	record(status, applied)
}

// apply carries a well-formed request out and returns the answer; f.mu is
// held.
func (f *Server) apply(req request) (status int, reply any, applied bool, fault httpfault.Fault) {
	p := req.plan
	switch req.kind {
	case kindEvents:
		if f.faults.Refuse() {
			return http.StatusInternalServerError, errorBody("TF400898: An internal error occurred. Try again later."), false, httpfault.Answered
		}
		rec := p.records[req.event.TaskID]
		if rec.State == StateCompleted {
			// Azure DevOps queues plan events; one for a completed task
			// changes nothing.
			return http.StatusNoContent, nil, false, httpfault.Answered
		}
		rec.State, rec.Result = StateCompleted, req.event.Result
		return http.StatusNoContent, nil, true, f.faults.Take()
	case kindLogs:
		f.logs++
		p.logs[f.logs] = &strings.Builder{}
		return http.StatusOK, logJSON(f.logs, req.path, 0), true, httpfault.Answered
	case kindLog:
		l := p.logs[req.logID]
		l.WriteString(req.text)
		return http.StatusOK, logJSON(req.logID, "", strings.Count(l.String(), "\n")), true, httpfault.Answered
	case kindRecords:
		if req.attach == nil {
			return http.StatusOK, p.recordsJSON(nil), false, httpfault.Answered
		}
		ids := make([]string, 0, len(req.attach))
		for id, logID := range req.attach {
			p.records[id].LogID = logID
			ids = append(ids, id)
		}
		return http.StatusOK, p.recordsJSON(ids), true, httpfault.Answered
	}
	return http.StatusInternalServerError, errorBody("unknown request"), false, httpfault.Answered
}

// check refuses what Azure DevOps would refuse; f.mu is held.
func (f *Server) check(r *http.Request, body []byte) (request, *apiError) {
	notFound := &apiError{http.StatusNotFound, "TF400898: the resource cannot be found."}
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), Collection)
	if !ok {
		return request{}, notFound
	}
	parts := strings.Split(rest, "/")
	// {project}/_apis/distributedtask/hubs/{hub}/plans/{plan}/…
	if len(parts) < 8 || parts[1] != "_apis" || parts[2] != "distributedtask" || parts[3] != "hubs" || parts[5] != "plans" {
		return request{}, notFound
	}
	p, ok := f.plans[parts[6]]
	if !ok || p.projectID != parts[0] || p.hubName != parts[4] {
		return request{}, &apiError{http.StatusNotFound, "The orchestration plan " + parts[6] + " was not found."}
	}
	req := request{plan: p}
	method := ""
	switch res := parts[7:]; {
	case len(res) == 1 && res[0] == "events":
		req.kind, method = kindEvents, http.MethodPost
	case len(res) == 1 && res[0] == "logs":
		req.kind, method = kindLogs, http.MethodPost
	case len(res) == 2 && res[0] == "logs":
		id, err := strconv.Atoi(res[1])
		if err != nil || id <= 0 || res[1] != strconv.Itoa(id) {
			return request{}, notFound
		}
		if _, ok := p.logs[id]; !ok {
			return request{}, &apiError{http.StatusNotFound, "Log " + res[1] + " was not found."}
		}
		req.kind, req.logID, method = kindLog, id, http.MethodPost
	case len(res) == 3 && res[0] == "timelines" && res[2] == "records":
		if res[1] != p.timelineID {
			return request{}, &apiError{http.StatusNotFound, "Timeline " + res[1] + " was not found."}
		}
		req.kind, method = kindRecords, http.MethodPatch
		if r.Method == http.MethodGet {
			method = http.MethodGet
		}
	default:
		return request{}, notFound
	}
	if r.Method != method {
		return request{}, &apiError{http.StatusMethodNotAllowed, "The requested resource does not support http method '" + r.Method + "'."}
	}
	if q, err := url.ParseQuery(r.URL.RawQuery); err != nil || len(q) != 1 || len(q["api-version"]) != 1 || q.Get("api-version") != APIVersion {
		return request{}, &apiError{http.StatusBadRequest, "VssVersionOutOfRangeException: api-version " + APIVersion + " is required."}
	}
	if r.Header.Get("Authorization") != "Bearer "+p.token || p.token == "" {
		return request{}, &apiError{http.StatusUnauthorized, "TF400813: The user is not authorized to access this resource."}
	}

	wantType := "application/json"
	switch {
	case method == http.MethodGet:
		if len(body) != 0 {
			return request{}, &apiError{http.StatusBadRequest, "a GET has no body"}
		}
		return req, nil
	case req.kind == kindLog:
		wantType = "application/octet-stream"
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != wantType {
		return request{}, &apiError{http.StatusUnsupportedMediaType, "Content-Type must be " + wantType}
	}
	bad := func(what string) (request, *apiError) {
		return request{}, &apiError{http.StatusBadRequest, "Value cannot be null or is not valid: " + what}
	}
	switch req.kind {
	case kindEvents:
		if err := decodeStrict(body, &req.event); err != nil {
			return bad("event")
		}
		e := req.event
		if e.Name != "TaskCompleted" || e.JobID != p.jobID || !slices.Contains(taskResults, e.Result) {
			return bad("name, jobId or result")
		}
		if _, ok := p.records[e.TaskID]; !ok {
			return request{}, &apiError{http.StatusNotFound, "Task " + e.TaskID + " was not found in the plan."}
		}
	case kindLogs:
		var v struct {
			Path *string `json:"path"`
		}
		if err := decodeStrict(body, &v); err != nil || v.Path == nil {
			return bad("log")
		}
		id, ok := strings.CutPrefix(*v.Path, `logs\`)
		if _, known := p.records[id]; !ok || !known {
			return bad(`path (logs\{TaskInstanceId})`)
		}
		req.path = *v.Path
	case kindLog:
		req.text = string(body)
	case kindRecords:
		var v struct {
			Value []struct {
				ID  string `json:"id"`
				Log *struct {
					ID int `json:"id"`
				} `json:"log"`
			} `json:"value"`
			Count *int `json:"count"`
		}
		if err := decodeStrict(body, &v); err != nil || v.Count == nil || *v.Count != len(v.Value) || len(v.Value) == 0 {
			return bad("records")
		}
		req.attach = map[string]int{}
		for _, rec := range v.Value {
			if _, ok := p.records[rec.ID]; !ok || rec.Log == nil {
				return bad("record id or log")
			}
			if _, ok := p.logs[rec.Log.ID]; !ok {
				return request{}, &apiError{http.StatusNotFound, "Log " + strconv.Itoa(rec.Log.ID) + " was not found."}
			}
			req.attach[rec.ID] = rec.Log.ID
		}
	}
	return req, nil
}

// decodeStrict decodes exactly one JSON object without unknown fields.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("data after the object")
	}
	return nil
}

// recordsJSON is the answer of the records read (ids nil: every record)
// or of an update (the records updated): the job's record, then the
// checks'.
func (p *plan) recordsJSON(ids []string) map[string]any {
	var value []map[string]any
	if ids == nil {
		value = append(value, map[string]any{"id": p.jobID, "type": "Job", "name": "Agentless job",
			"state": StateInProgress, "result": nil, "log": nil})
		ids = p.order
	}
	for _, id := range ids {
		r, ok := p.records[id]
		if !ok {
			continue
		}
		var result, log any
		if r.State == StateCompleted {
			result = r.Result
		}
		if r.LogID != 0 {
			log = map[string]any{"id": r.LogID}
		}
		value = append(value, map[string]any{"id": id, "parentId": p.jobID, "type": "Checkpoint",
			"name": "Invoke REST API", "state": r.State, "result": result, "log": log})
	}
	return map[string]any{"count": len(value), "value": value}
}

func logJSON(id int, path string, lines int) map[string]any {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	return map[string]any{"id": id, "path": path, "lineCount": lines, "createdOn": now, "lastChangedOn": now}
}

func errorBody(message string) map[string]any {
	return map[string]any{"$id": "1", "innerException": nil, "message": message,
		"typeName": "Microsoft.TeamFoundation.DistributedTask.WebApi.TaskOrchestrationPlanException", "typeKey": "TaskOrchestrationPlanException", "errorCode": 0}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
