// Package jiratest is a fake Jira Cloud site for the change gate's tests:
// GET /rest/api/3/issue/{key}?fields=status,summary, strict about the
// method, path, query and Basic credentials (email and API token). A
// request that is off is answered 400 (or 401) and counted in Mistakes.
package jiratest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/approvalbot/approvalbot/internal/httpfault"
)

// Credentials the fake accepts.
const (
	Email    = "bot@example.com"
	APIToken = "jira-token-not-for-logs"
)

// Server is the fake site.
type Server struct {
	*httptest.Server
	httpfault.Ledger
	mu       sync.Mutex
	statuses map[string]string // issue key → status name
}

// New starts a fake site; Close it when done.
func New() *Server {
	s := &Server{statuses: map[string]string{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Set gives an issue a status.
func (s *Server) Set(key, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statuses[key] = status
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Arrived()
	fail := func(code int, format string, args ...any) {
		msg := s.Mistake(format, args...)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"errorMessages": []string{msg}})
	}
	key, ok := strings.CutPrefix(r.URL.Path, "/rest/api/3/issue/")
	if r.Method != http.MethodGet || !ok || key == "" || strings.Contains(key, "/") {
		fail(http.StatusBadRequest, "unexpected %s %s", r.Method, r.URL.Path)
		return
	}
	if email, token, ok := r.BasicAuth(); !ok || email != Email || token != APIToken {
		fail(http.StatusUnauthorized, "Client must be authenticated to access this resource.")
		return
	}
	if r.URL.RawQuery != "fields=status,summary" {
		fail(http.StatusBadRequest, "query %q, want fields=status,summary", r.URL.RawQuery)
		return
	}
	if r.Header.Get("Accept") != "application/json" {
		fail(http.StatusBadRequest, "Accept must be application/json")
		return
	}
	if s.Down() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	status, ok := s.statuses[key]
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]any{"errorMessages": []string{"Issue does not exist or you do not have permission to see it."}})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"key": key, "fields": map[string]any{
		"summary": "Deploy " + key, "status": map[string]any{"name": status, "statusCategory": map[string]string{"key": "done"}}}})
}
