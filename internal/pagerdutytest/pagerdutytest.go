// Package pagerdutytest is a fake of PagerDuty's REST API, as strict as the
// real one about what approvalbot sends: GET /oncalls with the token in
// Authorization, the version 2 Accept header, the schedules, users
// included and the earliest level only. Anything else is answered with
// PagerDuty's error shape and recorded as a mistake.
package pagerdutytest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"

	"github.com/approvalbot/approvalbot/internal/httpfault"
)

// Accept is the header PagerDuty's REST API v2 asks for.
const Accept = "application/vnd.pagerduty+json;version=2"

// Server is a fake PagerDuty.
type Server struct {
	*httptest.Server
	token string

	ledger httpfault.Ledger
	mu     sync.Mutex
	onCall map[string][]string // schedule id → emails on call
	fail   int                 // answer every request with this status, 0 none
}

// New starts a fake that accepts token.
func New(token string) *Server {
	s := &Server{token: token, onCall: map[string][]string{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the API root to configure as pagerduty.api_url.
func (s *Server) URL() string { return s.Server.URL }

// SetOnCall says who is on call on the schedule now.
func (s *Server) SetOnCall(schedule string, emails ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCall[schedule] = emails
}

// SetFailure makes every answer the status (429, 500 …); 0 answers again.
func (s *Server) SetFailure(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = status
}

// Calls counts the requests.
func (s *Server) Calls() int { return s.ledger.Requests() }

// Mistakes are the requests the real API would not have taken as sent.
func (s *Server) Mistakes() []string { return s.ledger.Mistakes() }

func (s *Server) refuse(w http.ResponseWriter, status int, msg string) {
	writeError(w, status, s.ledger.Mistake("%s", msg))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "code": status}})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ledger.Arrived()
	q := r.URL.Query()
	switch {
	case r.Method != http.MethodGet || r.URL.Path != "/oncalls":
		s.refuse(w, http.StatusNotFound, fmt.Sprintf("%s %s: not an endpoint used", r.Method, r.URL.Path))
		return
	case r.Header.Get("Authorization") != "Token token="+s.token:
		s.refuse(w, http.StatusUnauthorized, "Authorization is not Token token=<the API key>")
		return
	case r.Header.Get("Accept") != Accept:
		s.refuse(w, http.StatusBadRequest, "Accept is not "+Accept)
		return
	case len(q["schedule_ids[]"]) == 0:
		s.refuse(w, http.StatusBadRequest, "no schedule_ids[]")
		return
	case !slices.Equal(q["include[]"], []string{"users"}):
		s.refuse(w, http.StatusBadRequest, "include[] is not users")
		return
	case q.Get("earliest") != "true":
		s.refuse(w, http.StatusBadRequest, "earliest is not true")
		return
	}
	for k := range q {
		if !slices.Contains([]string{"schedule_ids[]", "include[]", "earliest", "limit", "offset"}, k) {
			s.refuse(w, http.StatusBadRequest, "unexpected parameter "+k)
			return
		}
	}
	if s.fail != 0 {
		writeError(w, s.fail, "failing as told")
		return
	}
	type user struct {
		ID    string `json:"id"`
		Type  string `json:"type"`
		Email string `json:"email"`
	}
	type onCall struct {
		User            user           `json:"user"`
		Schedule        map[string]any `json:"schedule"`
		EscalationLevel int            `json:"escalation_level"`
	}
	var all []onCall
	for _, id := range q["schedule_ids[]"] {
		for i, e := range s.onCall[id] {
			all = append(all, onCall{User: user{ID: fmt.Sprintf("P%s%d", id, i), Type: "user", Email: e}, Schedule: map[string]any{"id": id, "type": "schedule_reference"}, EscalationLevel: 1})
		}
	}
	limit, offset := 25, 0
	if v, err := strconv.Atoi(q.Get("limit")); err == nil && v > 0 {
		limit = min(v, 100)
	}
	if v, err := strconv.Atoi(q.Get("offset")); err == nil && v >= 0 {
		offset = v
	}
	page := all[min(offset, len(all)):min(offset+limit, len(all))]
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"oncalls": page, "limit": limit, "offset": offset, "more": offset+limit < len(all)})
}
