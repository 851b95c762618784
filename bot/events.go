package bot

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/rs/zerolog"
)

// maxSeenEvents bounds the event ids remembered to drop Slack's retries:
// Slack retries an event three times within about an hour, far fewer than
// this many events apart on any workspace this bot serves.
const maxSeenEvents = 4096

// EventsConfig configures the Events API endpoint.
type EventsConfig struct {
	// Verifier checks the requests' signatures (HTTP only).
	Verifier     *Verifier
	MaxBodyBytes int64 // default 64 KiB
	// Seen remembers the events handled so that Slack's retries are
	// dropped; it outlives a rebuild of the endpoint. nil remembers none.
	Seen *SeenEvents
	// HomeOpened is told of each person who opened the app's Home tab.
	HomeOpened func(user string)
}

// Events serves Slack's Events API: POST /slack/events, and the same
// events over Socket Mode (Handle). It answers Slack's url_verification
// challenge, drops the retries of an event it has handled (Slack retries
// when it did not see a 200 within 3 seconds, with X-Slack-Retry-Num, and
// the same event_id), and acts on app_home_opened; it acknowledges every
// other event and does nothing with it.
type Events struct {
	verifier   *Verifier
	maxBody    int64
	seen       *SeenEvents
	homeOpened func(user string)
}

// NewEvents returns the Events API endpoint.
func NewEvents(cfg EventsConfig) *Events {
	maxBody := cfg.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = defaultMaxBodyBytes
	}
	return &Events{verifier: cfg.Verifier, maxBody: maxBody, seen: cfg.Seen, homeOpened: cfg.HomeOpened}
}

// eventEnvelope is the part of an Events API request the bot reads.
type eventEnvelope struct {
	Type      string `json:"type"`
	Challenge string `json:"challenge"`
	EventID   string `json:"event_id"`
	Event     struct {
		Type string `json:"type"`
		User string `json:"user"`
		Tab  string `json:"tab"`
	} `json:"event"`
}

// ServeHTTP serves POST /slack/events. The signature is checked on the raw
// body before anything of it is parsed; a request that fails it is
// answered 401 and changes nothing. Handling an event only schedules work,
// so the answer is immediate.
func (e *Events) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := readSigned(w, r, e.verifier, e.maxBody, "event")
	if !ok {
		return
	}
	var env eventEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		writeJSONError(w, http.StatusBadRequest, "malformed event")
		return
	}
	if env.Type == "url_verification" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(map[string]string{"challenge": env.Challenge})
		return
	}
	if n := r.Header.Get("X-Slack-Retry-Num"); n != "" {
		zerolog.Ctx(r.Context()).Debug().Str("retry", n).Str("reason", r.Header.Get("X-Slack-Retry-Reason")).
			Str("event_id", env.EventID).Msg("slack: event retried")
	}
	e.handle(r.Context(), env)
	w.WriteHeader(http.StatusOK)
}

// Handle acts on one Events API payload as Socket Mode delivers it (the
// same JSON as the HTTP request's body).
func (e *Events) Handle(ctx context.Context, payload []byte) {
	var env eventEnvelope
	if err := json.Unmarshal(payload, &env); err != nil {
		zerolog.Ctx(ctx).Warn().Msg("slack: socket mode: unreadable event")
		return
	}
	e.handle(ctx, env)
}

func (e *Events) handle(ctx context.Context, env eventEnvelope) {
	if env.Type != "event_callback" {
		return
	}
	if env.EventID != "" && e.seen != nil && !e.seen.First(env.EventID) {
		zerolog.Ctx(ctx).Debug().Str("event_id", env.EventID).Msg("slack: event handled already; dropped")
		return
	}
	switch env.Event.Type {
	case "app_home_opened":
		// The Messages tab opens the same event; only the Home tab shows
		// the queue.
		if env.Event.Tab == "home" && e.homeOpened != nil {
			e.homeOpened(env.Event.User)
		}
	}
}

// readSigned reads a request's body within maxBody and checks its Slack
// signature; it answers the request itself and reports false when the
// request goes no further. what names the request in the log.
func readSigned(w http.ResponseWriter, r *http.Request, v *Verifier, maxBody int64, what string) ([]byte, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, "method not allowed")
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSONError(w, http.StatusRequestEntityTooLarge, "body too large")
			return nil, false
		}
		writeJSONError(w, http.StatusBadRequest, "cannot read body")
		return nil, false
	}
	if v == nil {
		writeJSONError(w, http.StatusUnauthorized, "invalid signature")
		return nil, false
	}
	if err := v.Verify(r.Header, body); err != nil {
		zerolog.Ctx(r.Context()).Warn().Err(err).Msg("slack: refused " + what)
		writeJSONError(w, http.StatusUnauthorized, "invalid signature")
		return nil, false
	}
	return body, true
}

// SeenEvents remembers the ids of the last events handled, at most
// maxSeenEvents of them: a retry of one of them is dropped.
type SeenEvents struct {
	mu   sync.Mutex
	ids  map[string]struct{}
	ring []string
	next int
}

// NewSeenEvents returns an empty memory.
func NewSeenEvents() *SeenEvents {
	return &SeenEvents{ids: make(map[string]struct{}, maxSeenEvents), ring: make([]string, maxSeenEvents)}
}

// First reports whether the event id is new, and remembers it.
func (s *SeenEvents) First(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ids[id]; ok {
		return false
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.ids, old)
	}
	s.ring[s.next] = id
	s.next = (s.next + 1) % len(s.ring)
	s.ids[id] = struct{}{}
	return true
}
