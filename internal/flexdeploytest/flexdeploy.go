// Package flexdeploytest is a stand-in for FlexDeploy's REST API (v1
// approval tasks) that the tests and the load command run on loopback.
//
// It is a real HTTP server that checks requests as FlexDeploy does (method,
// exact path, Basic authentication, a JSON body of {"notes": …} with its
// content type) and keeps the state of the tasks it is asked about: every
// task id names a PENDING task until it is decided, a GET answers the
// status a decision left, and a decision on a task that is no longer
// PENDING is answered 400 "Task is not in PENDING status", as FlexDeploy
// answers. Its faults model what the bot must survive: a slow FlexDeploy
// (SetDelay), one that takes a decision and answers too late
// (SetLateAnswers) or never (SetDroppedAnswers), and scripted answers
// (SetAnswer, SetReply).
package flexdeploytest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/approvalbot/approvalbot/internal/httpfault"
)

// Root is the REST root path the fake serves under.
const Root = "/flexdeploy/rest/v1"

// Statuses of a task, as FlexDeploy spells them.
const (
	Pending  = "PENDING"
	Approved = "APPROVED"
	Rejected = "REJECTED"
)

// NotPending is FlexDeploy's answer (with 400) to a decision on a task
// that is no longer pending.
const NotPending = "Task is not in PENDING status"

// Call is one request the fake FlexDeploy received.
type Call struct {
	Method, Path, Auth, ContentType, Accept string
	Body                                    string
	At                                      time.Time
	// Code is the status the fake answered with; 0 when it gave no answer
	// (the connection was dropped, or the client gave up first).
	Code int
	// Applied reports whether the call decided its task.
	Applied bool
}

// Notes decodes the {"notes": …} body of an approve or reject.
func (c Call) Notes() string {
	var v struct {
		Notes string `json:"notes"`
	}
	_ = json.Unmarshal([]byte(c.Body), &v)
	return v.Notes
}

// User is the user name of the call's Basic authentication.
func (c Call) User() string {
	user, _, _ := basicAuth(c.Auth)
	return user
}

// Task is an approval task as FlexDeploy's GET answers it.
type Task struct {
	TaskID          string
	Status          string // PENDING, APPROVED, REJECTED or anything FlexDeploy may add
	EnvironmentName string
	ReleaseName     string
	PipelineName    string
	ProjectName     string
	GateName        string
	RequestType     string
	Notes           string // those of the decision
}

// Answer is a scripted answer to a request: a Status of 0 is 200.
type Answer = httpfault.Answer

// Server is FlexDeploy's REST API (v1 approval tasks) on a real HTTP
// server.
type Server struct {
	Server *httptest.Server

	// Quiet stops recording calls (for load runs). Set it before the
	// first request.
	Quiet bool

	mu          sync.Mutex
	calls       []Call
	puts        int
	tasks       map[string]*Task
	answer      func(call Call, n int) (status int, body string)
	reply       func(call Call) *Answer
	user, pass  string
	defaultTask Task

	faults    httpfault.Faults // SetDelay, SetLateAnswers, SetDroppedAnswers
	hangReads bool
}

// New starts a fake FlexDeploy in which every task is pending and every
// decision is taken; Close it when done.
func New() *Server {
	f := &Server{
		tasks: map[string]*Task{},
		defaultTask: Task{Status: Pending, EnvironmentName: "PROD", ReleaseName: "R1",
			PipelineName: "Standard", ProjectName: "payments"},
	}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// BaseURL is the URL to configure as flexdeploy.base_url.
func (f *Server) BaseURL() string { return f.Server.URL + Root }

// Close stops the server. Answers held back (SetDelay, SetLateAnswers) are
// let go, so that it does not wait for them.
func (f *Server) Close() {
	f.faults.Close()
	f.Server.Close()
}

// SetCredentials makes the fake accept only this user and password. Without
// it, any Basic authentication with a user and a password passes.
func (f *Server) SetCredentials(user, password string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.user, f.pass = user, password
}

// SetAnswer decides the answer to the n-th PUT (from 1); a status of 0
// answers as FlexDeploy would, and nil does so for all. A scripted answer
// changes nothing: the decision is not taken.
func (f *Server) SetAnswer(fn func(call Call, n int) (status int, body string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = fn
}

// SetReply scripts the answer to any well-formed request, GET or PUT; nil,
// or a nil *Answer, answers as FlexDeploy would. A scripted answer changes
// nothing. SetAnswer, if set too, is asked first.
func (f *Server) SetReply(fn func(call Call) *Answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reply = fn
}

// SetDelay makes every answer wait d before anything is done: a client that
// gives up first leaves its task as it was (the request never got through).
func (f *Server) SetDelay(d time.Duration) { f.faults.SetDelay(d) }

// SetLateAnswers makes the next n decisions late: each is taken, and then
// its answer is held until the client gives up (or the server closes), as
// a FlexDeploy slower than the client's timeout does. n < 0: every
// decision from now on; 0: none.
func (f *Server) SetLateAnswers(n int) { f.faults.SetLate(n) }

// SetDroppedAnswers makes the next n decisions unanswered: each is taken,
// and then the connection is closed without an answer, as a crashing
// FlexDeploy or proxy does. n < 0: every decision from now on; 0: none.
func (f *Server) SetDroppedAnswers(n int) { f.faults.SetDropped(n) }

// SetHangingReads makes every GET of a task hang, unanswered, until the
// client gives up or the server closes (a FlexDeploy whose reads are stuck
// while it still takes connections); false answers them again.
func (f *Server) SetHangingReads(hang bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hangReads = hang
}

// SetStatus sets the status GET answers for a task (as if decided in
// FlexDeploy's own UI); a decision on it is then refused unless the status
// is PENDING.
func (f *Server) SetStatus(taskID, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.task(taskID).Status = status
}

// SetTask replaces what the fake knows of a task; an empty Status is
// PENDING.
func (f *Server) SetTask(t Task) {
	if t.Status == "" {
		t.Status = Pending
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tasks[t.TaskID] = &t
}

// Task returns what the fake knows of a task now.
func (f *Server) Task(taskID string) Task {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *f.task(taskID)
}

// StatusOf is the task's status now (PENDING until decided).
func (f *Server) StatusOf(taskID string) string { return f.Task(taskID).Status }

// Calls returns every request so far.
func (f *Server) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// Decisions returns the approve and reject calls, whatever their answer.
func (f *Server) Decisions() []Call { return f.callsOf(http.MethodPut) }

// Reads returns the GET calls.
func (f *Server) Reads() []Call { return f.callsOf(http.MethodGet) }

// callsOf returns the calls of one method.
func (f *Server) callsOf(method string) []Call {
	var out []Call
	for _, c := range f.Calls() {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// task returns the task of id, creating it pending; f.mu is held.
func (f *Server) task(id string) *Task {
	t, ok := f.tasks[id]
	if !ok {
		c := f.defaultTask
		c.TaskID = id
		t = &c
		f.tasks[id] = t
	}
	return t
}

// request is a well-formed request: a read of a task, or a decision.
type request struct {
	taskID string
	action string // "approve" or "reject"; "" for a read
}

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	call := Call{Method: r.Method, Path: r.URL.EscapedPath(), Auth: r.Header.Get("Authorization"),
		ContentType: r.Header.Get("Content-Type"), Accept: r.Header.Get("Accept"), Body: string(body), At: time.Now()}

	f.mu.Lock()
	index := -1
	if !f.Quiet {
		index = len(f.calls)
		f.calls = append(f.calls, call)
	}
	req, status, refusal := f.check(r, body)
	n := 0
	if req.action != "" {
		f.puts++
		n = f.puts
	}
	answer, reply := f.answer, f.reply
	f.mu.Unlock()

	record := func(code int, applied bool) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if index >= 0 {
			f.calls[index].Code, f.calls[index].Applied = code, applied
		}
	}
	if status != 0 {
		writeJSONError(w, status, refusal)
		record(status, false)
		return
	}
	if !f.faults.Delay(r) {
		record(0, false)
		httpfault.Abort() // the request never got through
	}

	// A scripted answer, if there is one.
	var scripted *Answer
	if req.action != "" && answer != nil {
		if code, text := answer(call, n); code != 0 {
			scripted = &Answer{Status: code, Body: text}
		}
	}
	if scripted == nil && reply != nil {
		scripted = reply(call)
	}
	if scripted != nil {
		record(scripted.Write(w), false)
		return
	}

	if req.action == "" {
		f.mu.Lock()
		t, hang := *f.task(req.taskID), f.hangReads
		f.mu.Unlock()
		if hang {
			record(0, false)
			f.faults.Hold(r)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(taskJSON(t))
		record(http.StatusOK, false)
		return
	}

	f.mu.Lock()
	applied := f.decide(req, call.Notes())
	fault := httpfault.Answered
	if applied {
		fault = f.faults.Take()
	}
	f.mu.Unlock()
	switch {
	case !applied:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, NotPending)
		record(http.StatusBadRequest, false)
	case fault != httpfault.Answered:
		// Taken, and never answered: held until the client gives up, or
		// the connection dropped.
		record(0, true)
		f.faults.Lose(w, r, fault)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "{}")
		record(http.StatusOK, true)
	}
}

// decide applies a decision to its task, if it is pending. f.mu is held.
func (f *Server) decide(req request, notes string) bool {
	t := f.task(req.taskID)
	if !strings.EqualFold(t.Status, Pending) {
		return false
	}
	t.Status = Approved
	if req.action == "reject" {
		t.Status = Rejected
	}
	t.Notes = notes
	return true
}

// check refuses what FlexDeploy would refuse, with its status and message.
// f.mu is held.
func (f *Server) check(r *http.Request, body []byte) (request, int, string) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), Root+"/tasks/approval/")
	if !ok || r.URL.RawQuery != "" {
		return request{}, http.StatusNotFound, "no such resource"
	}
	var segments []string
	for _, s := range strings.Split(rest, "/") {
		u, err := url.PathUnescape(s)
		if err != nil || u == "" {
			return request{}, http.StatusNotFound, "no such resource"
		}
		segments = append(segments, u)
	}
	var req request
	switch {
	case len(segments) == 1 && r.Method == http.MethodGet:
		req.taskID = segments[0]
	case len(segments) == 2 && (segments[0] == "approve" || segments[0] == "reject") && r.Method == http.MethodPut:
		req.action, req.taskID = segments[0], segments[1]
	case len(segments) == 1 || (len(segments) == 2 && (segments[0] == "approve" || segments[0] == "reject")):
		return request{}, http.StatusMethodNotAllowed, "method not allowed"
	default:
		return request{}, http.StatusNotFound, "no such resource"
	}

	user, pass, ok := basicAuth(r.Header.Get("Authorization"))
	if !ok || user == "" || pass == "" || (f.user != "" && (user != f.user || pass != f.pass)) {
		return request{}, http.StatusUnauthorized, "authentication failed"
	}

	if req.action == "" {
		if len(body) != 0 {
			return request{}, http.StatusBadRequest, "a GET has no body"
		}
		return req, 0, ""
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return request{}, http.StatusUnsupportedMediaType, "Content-Type must be application/json"
	}
	var v struct {
		Notes *string `json:"notes"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil || v.Notes == nil || dec.More() {
		return request{}, http.StatusBadRequest, `the body must be {"notes": "…"}`
	}
	return req, 0, ""
}

// basicAuth decodes an Authorization header of the Basic scheme.
func basicAuth(header string) (user, pass string, ok bool) {
	encoded, ok := strings.CutPrefix(header, "Basic ")
	if !ok {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(raw), ":")
	return user, pass, ok
}

// taskJSON is a task as FlexDeploy's GET answers it; a task id of digits
// is a JSON number, as FlexDeploy's are.
func taskJSON(t Task) map[string]any {
	var id any = t.TaskID
	if canonicalNumber(t.TaskID) {
		id = json.Number(t.TaskID)
	}
	var notes any
	if t.Notes != "" {
		notes = t.Notes
	}
	return map[string]any{
		"taskId": id, "status": t.Status, "environmentName": t.EnvironmentName,
		"releaseName": t.ReleaseName, "pipelineName": t.PipelineName, "projectName": t.ProjectName,
		"gateName": t.GateName, "requestType": t.RequestType, "notes": notes,
	}
}

// canonicalNumber reports whether s is a whole number written as JSON
// writes one: digits, without a leading zero, short enough for a long.
func canonicalNumber(s string) bool {
	if s == "" || len(s) > 18 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	return strings.Trim(s, "0123456789") == ""
}

func writeJSONError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": message})
}
