// Package servicenowtest is a fake ServiceNow instance for the change
// gate's tests: the table API's change_request look-up, strict about the
// method, path, query parameters and Basic credentials the real one needs.
// A request that is off is answered 400 (or 401) and counted in Mistakes.
package servicenowtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"

	"github.com/approvalbot/approvalbot/internal/httpfault"
	"time"
)

// Credentials the fake accepts.
const (
	Username = "approvalbot"
	Password = "snow-password-not-for-logs"
)

// Change is one change request as the table API gives it
// (sysparm_display_value=false).
type Change struct {
	Number   string
	State    string // "-2" Scheduled, "-1" Implement, "-4" Assess, …
	Approval string // approved, requested, rejected, not requested
	Start    time.Time
	End      time.Time
}

// Server is the fake instance.
type Server struct {
	*httptest.Server
	httpfault.Ledger
	mu      sync.Mutex
	changes map[string]Change
}

// New starts a fake instance; Close it when done.
func New() *Server {
	s := &Server{changes: map[string]Change{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Set adds or replaces a change request.
func (s *Server) Set(c Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changes[c.Number] = c
}

// wantQuery is every parameter a look-up sends, and nothing else.
var wantQuery = []string{"sysparm_display_value", "sysparm_fields", "sysparm_limit", "sysparm_query"}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Arrived()
	fail := func(code int, format string, args ...any) {
		msg := s.Mistake(format, args...)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"message": msg}, "status": "failure"})
	}
	if r.Method != http.MethodGet || r.URL.Path != "/api/now/table/change_request" {
		fail(http.StatusBadRequest, "unexpected %s %s", r.Method, r.URL.Path)
		return
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != Username || pass != Password {
		fail(http.StatusUnauthorized, "User Not Authenticated")
		return
	}
	if r.Header.Get("Accept") != "application/json" {
		fail(http.StatusBadRequest, "Accept must be application/json")
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		fail(http.StatusBadRequest, "query: %v", err)
		return
	}
	var keys []string
	for k, v := range q {
		if len(v) != 1 {
			fail(http.StatusBadRequest, "parameter %s given %d times", k, len(v))
			return
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, wantQuery) {
		fail(http.StatusBadRequest, "parameters %v, want %v", keys, wantQuery)
		return
	}
	if q.Get("sysparm_fields") != "number,state,approval,start_date,end_date,short_description" ||
		q.Get("sysparm_display_value") != "false" || q.Get("sysparm_limit") != "1" {
		fail(http.StatusBadRequest, "sysparm_fields, sysparm_display_value or sysparm_limit is off")
		return
	}
	query := q.Get("sysparm_query")
	if len(query) < len("number=") || query[:len("number=")] != "number=" {
		fail(http.StatusBadRequest, "sysparm_query %q is not number=…", query)
		return
	}
	if s.Down() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":{"message":"instance hibernating"},"status":"failure"}`))
		return
	}
	result := []map[string]string{}
	if c, ok := s.changes[query[len("number="):]]; ok {
		const layout = "2006-01-02 15:04:05"
		rec := map[string]string{"number": c.Number, "state": c.State, "approval": c.Approval,
			"short_description": "Deploy " + c.Number, "start_date": "", "end_date": ""}
		if !c.Start.IsZero() {
			rec["start_date"] = c.Start.UTC().Format(layout)
		}
		if !c.End.IsZero() {
			rec["end_date"] = c.End.UTC().Format(layout)
		}
		result = append(result, rec)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"result": result})
}
