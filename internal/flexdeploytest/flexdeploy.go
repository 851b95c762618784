// Package flexdeploytest is a stand-in for FlexDeploy's REST API (v1
// approval tasks) that the tests and the load command run on loopback.
package flexdeploytest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Root is the REST root path the fake serves under.
const Root = "/flexdeploy/rest/v1"

// Call is one request the fake FlexDeploy received.
type Call struct {
	Method, Path, Auth, ContentType string
	Body                            string
	At                              time.Time
}

// Notes decodes the {"notes": …} body of an approve or reject.
func (c Call) Notes() string {
	var v struct {
		Notes string `json:"notes"`
	}
	_ = json.Unmarshal([]byte(c.Body), &v)
	return v.Notes
}

// Server is FlexDeploy's REST API (v1 approval tasks) on a real HTTP
// server.
type Server struct {
	Server *httptest.Server

	mu     sync.Mutex
	calls  []Call
	answer func(call Call, n int) (status int, body string)
	status map[string]string // task id → status answered by GET
	delay  time.Duration
	Quiet  bool
}

// New starts a fake FlexDeploy that accepts every decision.
func New() *Server {
	f := &Server{status: map[string]string{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// BaseURL is the URL to configure as flexdeploy.base_url.
func (f *Server) BaseURL() string { return f.Server.URL + Root }

// Close stops the server.
func (f *Server) Close() { f.Server.Close() }

// SetAnswer decides the answer to the n-th PUT (from 1); nil accepts all.
func (f *Server) SetAnswer(fn func(call Call, n int) (status int, body string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = fn
}

// SetDelay makes every answer wait d.
func (f *Server) SetDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = d
}

// SetStatus sets the status GET answers for a task (as if decided in
// FlexDeploy's own UI).
func (f *Server) SetStatus(taskID, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status[taskID] = status
}

// Calls returns every request so far.
func (f *Server) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// Decisions returns the approve and reject calls.
func (f *Server) Decisions() []Call {
	var out []Call
	for _, c := range f.Calls() {
		if c.Method == http.MethodPut {
			out = append(out, c)
		}
	}
	return out
}

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	call := Call{Method: r.Method, Path: r.URL.EscapedPath(), Auth: r.Header.Get("Authorization"),
		ContentType: r.Header.Get("Content-Type"), Body: string(body), At: time.Now()}
	f.mu.Lock()
	if !f.Quiet {
		f.calls = append(f.calls, call)
	}
	n := 0
	for _, c := range f.calls {
		if c.Method == http.MethodPut {
			n++
		}
	}
	answer, delay := f.answer, f.delay
	id := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	status, known := f.status[id]
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodGet {
		if !known {
			status = "PENDING"
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"taskId": id, "status": status, "environmentName": "PROD", "releaseName": "R1", "pipelineName": "Standard", "projectName": "payments"})
		return
	}
	if answer != nil {
		code, text := answer(call, n)
		if code != 0 {
			w.WriteHeader(code)
			_, _ = io.WriteString(w, text)
			return
		}
	}
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "{}")
}
