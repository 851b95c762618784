// Package server is approvalbot's HTTP front: the task API for deployment
// tools, the chat tool's interaction endpoint, health and metrics. Handlers
// are methods on Server; the domain work is approvals.Service's.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"

	"github.com/approvalbot/approvalbot/approvals"
)

// Tasks is what the server needs of the domain.
type Tasks interface {
	Submit(ctx context.Context, sub approvals.Submission) (*approvals.Task, bool, error)
	// Lookup reads a task by its id (or a tool's own task id).
	Lookup(ctx context.Context, id string) (*approvals.Task, error)
	// Receipt returns the signed receipt of a task's final decision, or
	// approvals.ErrNoReceipt while it has none.
	Receipt(ctx context.Context, id string) (approvals.Receipt, error)
}

// APIKey is one key allowed on /v1; Name is what logs show instead of the key.
type APIKey struct {
	Name string
	Key  string
}

// Config wires a Server.
type Config struct {
	Listen                 string
	MaxBodyBytes           int64
	MaxConcurrentRequests  int
	MaxOutstandingRequests int
	ReadHeaderTimeout      time.Duration
	ReadTimeout            time.Duration
	WriteTimeout           time.Duration
	IdleTimeout            time.Duration
	ShutdownTimeout        time.Duration

	Tasks Tasks
	// Chats names the chats of the tasks' messages in the API's answers;
	// may be nil.
	Chats *approvals.Chats
	// Ready reports whether the server can do its work (the store takes
	// writes).
	Ready func(ctx context.Context) error
	// APIKeys returns the keys in force (they may be rotated by a reload).
	APIKeys func() []APIKey
	// Intakes are the deployment tools' intake endpoints, each under /v1/;
	// the source of the submission is the parser's.
	Intakes []approvals.Intake
	// Extra routes (e.g. "GET /metrics"), without the API key check; they
	// share the API's capacity (metrics aside, which is never shed).
	Routes map[string]http.Handler
	// Webhooks are the routes of the surfaces people wait on (e.g. "POST
	// /slack/interactions"), which verify their callers themselves. They
	// have a pool of their own, as large as the API's, so that no flood of
	// API requests sheds a click.
	Webhooks map[string]http.Handler
	Logger   zerolog.Logger
	// Attest builds a decided task's attestation (attestation.Build with
	// the receipts key); nil: there are none.
	Attest func(ctx context.Context, t *approvals.Task) ([]byte, error)
	// Observe, if set, is told of every request (for metrics).
	Observe func(route string, status int, d time.Duration)
}

// Server is approvalbot's HTTP server.
type Server struct {
	cfg      Config
	handler  http.Handler
	api      *capacity
	webhooks *capacity
}

// New builds the server and its routes.
func New(cfg Config) (*Server, error) {
	if cfg.Tasks == nil || cfg.APIKeys == nil {
		return nil, errors.New("server: tasks and api keys are required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.MaxConcurrentRequests <= 0 {
		cfg.MaxConcurrentRequests = 100
	}
	if cfg.MaxOutstandingRequests < cfg.MaxConcurrentRequests {
		cfg.MaxOutstandingRequests = cfg.MaxConcurrentRequests
	}
	if cfg.Ready == nil {
		cfg.Ready = func(context.Context) error { return nil }
	}
	// The API and the webhooks people are waiting on (a click) each have a
	// pool of their own: a flood of intakes never sheds a click.
	api := newCapacity(cfg.MaxConcurrentRequests, cfg.MaxOutstandingRequests)
	webhooks := newCapacity(cfg.MaxConcurrentRequests, cfg.MaxOutstandingRequests)
	s := &Server{cfg: cfg, api: api, webhooks: webhooks}

	mux := http.NewServeMux()
	allowed := map[string][]string{} // path → methods, for JSON 405s
	route := func(pattern string, h http.Handler, pool *capacity) {
		if pool != nil {
			h = pool.shed(h)
		}
		mux.Handle(pattern, s.observe(pattern, h))
		if method, path, ok := strings.Cut(pattern, " "); ok {
			allowed[path] = append(allowed[path], method)
		}
	}
	route("GET /healthz", http.HandlerFunc(s.healthz), nil)
	route("GET /readyz", http.HandlerFunc(s.readyz), nil)
	route("GET /v1/tasks/{id}", s.authenticate(http.HandlerFunc(s.getTask)), api)
	route("GET /v1/tasks/{id}/receipt", s.authenticate(http.HandlerFunc(s.getReceipt)), api)
	route("GET /v1/tasks/{id}/attestation", s.authenticate(http.HandlerFunc(s.getAttestation)), api)
	for _, in := range cfg.Intakes {
		if in.Signed {
			route("POST "+in.Path, s.intake(in), webhooks) // the parser checks the signature
			continue
		}
		route("POST /v1/"+in.Path, s.authenticate(s.intake(in)), api)
	}
	for pattern, h := range cfg.Routes {
		pool := api
		if strings.HasSuffix(pattern, "/metrics") {
			pool = nil
		}
		route(pattern, h, pool)
	}
	for pattern, h := range cfg.Webhooks {
		route(pattern, h, webhooks)
	}
	for path, methods := range allowed {
		allow := strings.Join(methods, ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, r, http.StatusMethodNotAllowed, "method not allowed; use "+allow)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusNotFound, "not found")
	})

	var h http.Handler = mux
	h = s.recoverer(h)
	h = hlog.AccessHandler(func(r *http.Request, status, size int, d time.Duration) {
		ev := hlog.FromRequest(r).Info()
		if status >= 500 {
			ev = hlog.FromRequest(r).Warn()
		}
		ev.Str("method", r.Method).Str("path", r.URL.Path).Int("status", status).
			Int("size", size).Dur("duration", d).Msg("request")
	})(h)
	h = hlog.RequestIDHandler("request_id", "X-Request-Id")(h)
	h = hlog.NewHandler(cfg.Logger)(h)
	s.handler = h
	return s, nil
}

// Handler is the server's root handler (tests serve it with httptest).
func (s *Server) Handler() http.Handler { return s.handler }

// Busy reports that requests people and tools wait on are queueing up:
// more of them running or waiting (intakes, reads, Slack's and GitHub's
// webhooks) than the process has cores. Background work yields to them
// meanwhile (approvals.SchedulerConfig.Busy).
func (s *Server) Busy() bool {
	return s.api.outstanding.Load()+s.webhooks.outstanding.Load() > int64(runtime.GOMAXPROCS(0))
}

// ListenAndServe serves on cfg.Listen until ctx is done, then stops taking
// requests and lets the ones in flight finish (up to ShutdownTimeout).
// ready, if not nil, is called with the bound address once listening.
func (s *Server) ListenAndServe(ctx context.Context, ready func(addr net.Addr)) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("server: listen on %s: %w", s.cfg.Listen, err)
	}
	if ready != nil {
		ready(ln.Addr())
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: orDefault(s.cfg.ReadHeaderTimeout, 5*time.Second),
		ReadTimeout:       orDefault(s.cfg.ReadTimeout, 10*time.Second),
		WriteTimeout:      orDefault(s.cfg.WriteTimeout, 15*time.Second),
		IdleTimeout:       orDefault(s.cfg.IdleTimeout, 60*time.Second),
		MaxHeaderBytes:    32 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), orDefault(s.cfg.ShutdownTimeout, 20*time.Second))
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// authenticate lets a request through only with a configured API key, as
// "Authorization: Bearer KEY" or "X-API-Key: KEY". Every key is compared,
// in constant time, whichever matches.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		presented := r.Header.Get("X-API-Key")
		if auth := r.Header.Get("Authorization"); presented == "" && auth != "" {
			if scheme, key, ok := strings.Cut(auth, " "); ok && strings.EqualFold(scheme, "Bearer") {
				presented = strings.TrimSpace(key)
			}
		}
		name := ""
		if presented != "" {
			got := sha256.Sum256([]byte(presented))
			for _, k := range s.cfg.APIKeys() {
				want := sha256.Sum256([]byte(k.Key))
				if subtle.ConstantTimeCompare(got[:], want[:]) == 1 && k.Key != "" {
					name = k.Name
				}
			}
		}
		if name == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="approvalbot"`)
			writeError(w, r, http.StatusUnauthorized, "missing or invalid API key")
			return
		}
		zerolog.Ctx(r.Context()).UpdateContext(func(c zerolog.Context) zerolog.Context {
			return c.Str("api_key", name)
		})
		next.ServeHTTP(w, r)
	})
}

// capacity bounds a pool of requests: at most running at once, at most
// outstanding waiting or running; past that, 429 instead of an unbounded
// queue.
type capacity struct {
	slots       chan struct{}
	outstanding atomic.Int64
	max         int64
}

func newCapacity(running, outstanding int) *capacity {
	return &capacity{slots: make(chan struct{}, running), max: int64(outstanding)}
}

func (c *capacity) shed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.outstanding.Add(1) > c.max {
			c.outstanding.Add(-1)
			w.Header().Set("Retry-After", "1")
			writeError(w, r, http.StatusTooManyRequests, "server is over capacity, retry later")
			return
		}
		defer c.outstanding.Add(-1)
		select {
		case c.slots <- struct{}{}:
			defer func() { <-c.slots }()
		case <-r.Context().Done():
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) observe(route string, next http.Handler) http.Handler {
	if s.cfg.Observe == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.cfg.Observe(route, rec.status, time.Since(start))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				hlog.FromRequest(r).Error().Str("panic", fmt.Sprint(v)).Msg("handler panicked")
				writeError(w, r, http.StatusInternalServerError, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Ready(ctx); err != nil {
		hlog.FromRequest(r).Warn().Err(err).Msg("not ready")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "store unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
