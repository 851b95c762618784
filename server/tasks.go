package server

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog/hlog"

	"github.com/approvalbot/approvalbot/approvals"
)

// pendingRetryAfter is the Retry-After the status endpoint gives while a
// task waits for its decision.
const pendingRetryAfter = 30 * time.Second

// intake answers a deployment tool's task: 202 (or the endpoint's own
// status) with the task and its Location when recorded; a repeat answers
// the recorded task as the status endpoint would.
func (s *Server) intake(in approvals.Intake) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		if !isJSON(r.Header.Get("Content-Type")) && !(in.BodyOptional && len(body) == 0) {
			writeError(w, r, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
			return
		}
		// A header given twice is read as both values joined, so that a
		// parser can refuse the ambiguity instead of taking the first.
		header := func(name string) string { return strings.Join(r.Header.Values(name), ", ") }
		sub, err := in.Parse(header, body)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		t, isNew, err := s.cfg.Tasks.Submit(r.Context(), sub)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Location", taskLocation(t))
		status := http.StatusAccepted
		switch {
		case in.AnswerOK:
			status = http.StatusOK
		case !isNew:
			status = s.statusOf(w, t)
		}
		writeJSON(w, status, approvals.ViewOf(t, s.cfg.Chats))
	})
}

func (s *Server) getTask(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, err := s.cfg.Tasks.Lookup(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", taskLocation(t))
	writeJSON(w, s.statusOf(w, t), approvals.ViewOf(t, s.cfg.Chats))
}

// getReceipt answers a task's signed receipt: 404 while it has none (not
// final yet, or decided before receipts were configured).
func (s *Server) getReceipt(w http.ResponseWriter, r *http.Request) {
	rc, err := s.cfg.Tasks.Receipt(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rc)
}

// statusOf is the status endpoint's answer for a task: 202 with Retry-After
// while pending, 200 once final.
func (s *Server) statusOf(w http.ResponseWriter, t *approvals.Task) int {
	if t.Status.Final() {
		return http.StatusOK
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(pendingRetryAfter/time.Second)))
	return http.StatusAccepted
}

func taskLocation(t *approvals.Task) string { return "/v1/tasks/" + url.PathEscape(t.ID) }

func isJSON(contentType string) bool {
	// What deployment tools send, without parsing (and allocating) the
	// media type's parameters.
	if strings.EqualFold(contentType, "application/json") || strings.EqualFold(contentType, "application/json; charset=utf-8") {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || (len(mt) > 5 && mt[len(mt)-5:] == "+json"))
}

// readBody reads the whole body within the configured limit; on failure it
// has answered already.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, r, http.StatusRequestEntityTooLarge, "request body is larger than "+strconv.FormatInt(s.cfg.MaxBodyBytes, 10)+" bytes")
		return nil, false
	case err != nil:
		writeError(w, r, http.StatusBadRequest, "could not read request body")
		return nil, false
	}
	return body, true
}

// fail answers an error with the status and text the domain's one table
// gives it. Only failures of the bot's own (internal, a record it cannot
// read) are logged as errors; a store out of reach is a warning and asks
// the caller to come back.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	kind := approvals.KindOf(err)
	msg := kind.Answer
	if kind.HTTPStatus < http.StatusBadRequest {
		// Not a failure: a ping, an event with nothing to record.
		writeJSON(w, kind.HTTPStatus, map[string]string{"status": msg})
		return
	}
	switch {
	case errors.Is(err, approvals.ErrInvalid):
		msg = err.Error() // says what to mend
	case kind.HTTPStatus == http.StatusServiceUnavailable:
		hlog.FromRequest(r).Warn().Err(err).Msg("store unavailable")
		w.Header().Set("Retry-After", "5")
	case kind.HTTPStatus >= 500:
		hlog.FromRequest(r).Error().Err(err).Str("code", string(kind.Code)).Msg("request failed")
	}
	writeError(w, r, kind.HTTPStatus, msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
