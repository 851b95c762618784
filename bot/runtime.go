package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
)

// The transports Settings.Mode names.
const (
	// ModeHTTP: Slack posts interactions to the HTTP endpoint, which
	// verifies them with the signing secret.
	ModeHTTP = "http"
	// ModeSocket: the bot dials out to Slack (Socket Mode) with the app
	// token; no public endpoint is needed.
	ModeSocket = "socket"
)

// socketRetryDelay is how long a Socket Mode connection that ended on its
// own waits before it is tried again: slowly, because what ends it for good
// (a refused app token) is mended by a person, and a configuration change
// retries at once.
const socketRetryDelay = 10 * time.Second

// errNotConfigured is every Directory answer while there is no bot token.
var errNotConfigured = errors.New("slack: not configured: no bot token (slack.bot_token)")

// notConfiguredBody is the HTTP endpoint's answer while it cannot verify
// requests.
const notConfiguredBody = `{"error":"slack is not configured (slack.bot_token and slack.signing_secret)"}` + "\n"

// Settings are the Slack connection's settings; the wiring converts its
// configuration into them. They are compared as a whole: applying equal
// settings again changes nothing.
type Settings struct {
	// BotToken is the xoxb- token. Without it nothing is built: no
	// notifier, no directory, no interactions.
	BotToken string
	// SigningSecret verifies requests to the HTTP interactions endpoint;
	// without it the endpoint answers 503.
	SigningSecret string
	// AppToken is the xapp- token Socket Mode connects with.
	AppToken string
	// Mode is ModeHTTP ("" too) or ModeSocket.
	Mode string
	// APIURL is the Web API root; "" is Slack's. Tests pass a fake's URL.
	APIURL string
	// Channel receives tasks whose message names no channel.
	Channel string
	// GroupCacheTTL is how long directory answers are kept; default 5m.
	GroupCacheTTL time.Duration
	// PublicURL is where people reach the bot (server.public_url): a
	// require_sso task's review link goes to its web page there.
	PublicURL string
}

// socketWanted reports whether the settings ask for a Socket Mode
// connection.
func (s Settings) socketWanted() bool { return s.BotToken != "" && s.Mode == ModeSocket }

// Service is what the Runtime needs of the approvals service: deciding
// clicks, the lists of the App Home and /approvals (which ask about people
// as the core knows them: see runtimeService), and installing the notifier.
type Service interface {
	Decider
	Waiting(ctx context.Context, p approvals.Person) ([]*approvals.Task, error)
	RecentlyDecided(ctx context.Context, p approvals.Person, n int) ([]*approvals.Task, error)
	Token(t *approvals.Task) (string, error)
	Lookup(ctx context.Context, id string) (*approvals.Task, error)
	MayDecide(ctx context.Context, t *approvals.Task, p approvals.Person) (bool, error)
	// SetNotifier installs the chat's notifier; nil removes it (posts then
	// wait in the outbox).
	SetNotifier(chat string, n approvals.Notifier)
}

// RuntimeConfig configures a Runtime.
type RuntimeConfig struct {
	// Tools is the registry of deployment tools, for their display names.
	// nil shows a task's source as it is.
	Tools *approvals.Tools
	// Policies returns the policies in force (they may be reloaded); may
	// be nil.
	Policies func() []approvals.Policy
	// MaxBodyBytes bounds an interaction's body; default 64 KiB.
	MaxBodyBytes int64
	// Logger receives the runtime's own messages; the zero value drops
	// them. The interactions log through their request's context.
	Logger zerolog.Logger
	// Clock is the time messages are rendered at — whether a task's time
	// has run out, whether its policy's windows and freezes let approving
	// happen — and should be the service's; default time.Now. Slack's
	// signatures are checked against the wall clock whatever it is.
	Clock func() time.Time
	// HomeInterval is the least time between two publishes of one
	// person's App Home; default 3 s.
	HomeInterval time.Duration
	// Pacer keeps the Slack calls under Slack's rate limits; it outlives a
	// change of settings. nil: each notifier makes its own.
	Pacer *Pacer
	// ClickerEmails looks up every clicker's verified email in Slack
	// (users.info, cached), so that a person who acts in another chat too
	// is one person; a failed look-up refuses the click. The wiring sets it
	// when another chat is registered.
	ClickerEmails bool
}

// Runtime is the Slack side of the bot as the settings in force make it: the
// notifier the service posts with, the directory, the interactions endpoint
// and the Socket Mode connection. Apply rebuilds them when the settings
// change (a configuration reload), so a bot started without credentials,
// its posts waiting in the outbox, starts posting as soon as they arrive.
//
// The Runtime is the approvals.Directory, the HTTP handler of
// /slack/interactions (and, through EventsHandler and CommandsHandler, of
// /slack/events and /slack/commands) and Socket Mode's handler at once;
// each call goes to the parts built from the settings in force at that
// moment. The App Home's keeper and the memory of events seen outlive a
// change of settings.
type Runtime struct {
	tools    *approvals.Tools
	policies func() []approvals.Policy
	maxBody  int64
	log      zerolog.Logger
	now      func() time.Time
	// clock is what messages are rendered at (RuntimeConfig.Clock).
	clock func() time.Time
	pacer *Pacer
	// clickerEmails: RuntimeConfig.ClickerEmails.
	clickerEmails bool
	// after is the clock RunSocket waits on; tests replace it.
	after func(time.Duration) <-chan time.Time

	svc  atomic.Pointer[serviceRef]
	conn atomic.Pointer[connection] // nil while there is no bot token

	home *Home
	seen *SeenEvents

	mu      sync.Mutex
	applied *Settings // nil before the first Apply
	closed  bool
	// socketChanged is closed, and replaced, whenever what Socket Mode
	// connects with changes; RunSocket then reconnects.
	socketChanged chan struct{}
	// retiring counts replaced interactions still sending their replies.
	retiring sync.WaitGroup
}

// serviceRef boxes the Service for an atomic pointer.
type serviceRef struct{ Service }

// connection is what one set of settings built; it never changes.
type connection struct {
	settings  Settings
	notifier  *Notifier
	directory *Directory
	// interactions, events and commands are nil when no transport can
	// deliver them: HTTP mode without a signing secret.
	interactions *Interactions
	events       *Events
	commands     *Commands
}

var (
	_ approvals.Directory = (*Runtime)(nil)
	_ http.Handler        = (*Runtime)(nil)
	_ InteractionHandler  = (*Runtime)(nil)
	_ EventHandler        = (*Runtime)(nil)
	_ CommandHandler      = (*Runtime)(nil)
	_ Decider             = runtimeDecider{}
	_ SurfaceService      = runtimeService{}
)

// NewRuntime returns a Runtime with nothing configured: Apply gives it its
// settings, SetService the service it decides with.
func NewRuntime(cfg RuntimeConfig) *Runtime {
	clock := cfg.Clock
	if clock == nil {
		clock = time.Now
	}
	r := &Runtime{
		clock:         clock,
		tools:         cfg.Tools,
		policies:      cfg.Policies,
		maxBody:       cfg.MaxBodyBytes,
		log:           cfg.Logger,
		pacer:         cfg.Pacer,
		clickerEmails: cfg.ClickerEmails,
		now:           time.Now,
		after:         time.After,
		socketChanged: make(chan struct{}),
		seen:          NewSeenEvents(),
	}
	r.home = NewHome(HomeConfig{
		Service:   runtimeService{r},
		Publisher: r.homePublisher,
		Interval:  cfg.HomeInterval,
		Logger:    cfg.Logger,
	})
	return r
}

// homePublisher is the notifier in force, nil while there is none.
func (r *Runtime) homePublisher() HomePublisher {
	if c := r.conn.Load(); c != nil {
		return c.notifier
	}
	return nil
}

// SetService gives the Runtime the service that decides clicks and posts
// with the Runtime's notifier; the notifier in force is installed at once.
// It is separate from NewRuntime because the service takes the Runtime as
// its Directory.
func (r *Runtime) SetService(svc Service) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.svc.Store(&serviceRef{svc})
	if c := r.conn.Load(); c != nil && svc != nil {
		svc.SetNotifier(ChatName, c.notifier)
	}
}

func (r *Runtime) service() Service {
	if ref := r.svc.Load(); ref != nil {
		return ref.Service
	}
	return nil
}

// Apply puts the settings in force unless they are those in force already.
// A change rebuilds the notifier (installed in the service), the directory
// (its cache starts empty) and the interactions; the replaced interactions
// finish the replies they are sending. Settings without a bot token take
// it all down: the service has no notifier, the endpoint answers 503, the
// directory fails. After Close, Apply does nothing.
func (r *Runtime) Apply(s Settings) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || (r.applied != nil && *r.applied == s) {
		return
	}
	var before Settings
	if r.applied != nil {
		before = *r.applied
	}
	r.applied = &s

	next := r.build(s)
	old := r.conn.Swap(next)
	if old != nil && old.interactions != nil {
		r.retiring.Add(1)
		go func() {
			defer r.retiring.Done()
			old.interactions.Close()
		}()
	}
	if svc := r.service(); svc != nil && (old != nil || next != nil) {
		if next != nil {
			svc.SetNotifier(ChatName, next.notifier)
		} else {
			svc.SetNotifier(ChatName, nil) // an untyped nil: no notifier at all
		}
	}
	if socketKey(before) != socketKey(s) {
		close(r.socketChanged)
		r.socketChanged = make(chan struct{})
	}
	switch {
	case next != nil:
		r.log.Info().Str("mode", modeOf(s)).Bool("http_verified", s.SigningSecret != "").Msg("Slack connection configured")
	case old != nil:
		r.log.Warn().Msg("Slack connection removed: no bot token; posts wait in the outbox")
	}
}

// build makes the parts for s; nil without a bot token.
func (r *Runtime) build(s Settings) *connection {
	if s.BotToken == "" {
		return nil
	}
	n := New(Config{
		BotToken:       s.BotToken,
		APIURL:         s.APIURL,
		DefaultChannel: s.Channel,
		Policies:       r.policies,
		Tools:          r.tools,
		Logger:         r.log,
		Now:            r.clock,
		Pacer:          r.pacer,
	})
	n.surfaces = surfaceState{publicURL: s.PublicURL, changed: r.home.TaskChanged, workspace: &workspaceCache{}}
	c := &connection{settings: s, notifier: n, directory: NewDirectory(n, s.GroupCacheTTL)}
	// In Socket Mode clicks arrive over the WebSocket and there may be no
	// signing secret: the handler is built anyway, and the HTTP endpoint
	// refuses everything while no secret can verify it.
	if s.SigningSecret != "" || s.Mode == ModeSocket {
		verifier := NewVerifier(s.SigningSecret, r.now)
		c.interactions = NewInteractions(InteractionsConfig{
			Verifier:     verifier,
			Decider:      runtimeDecider{r},
			Replier:      n,
			Tools:        r.tools,
			MaxBodyBytes: r.maxBody,
			Policies:     r.policies,
			Home:         r.home,
		})
		c.events = NewEvents(EventsConfig{Verifier: verifier, MaxBodyBytes: r.maxBody, Seen: r.seen, HomeOpened: r.home.Opened})
		c.commands = NewCommands(CommandsConfig{Verifier: verifier, Service: runtimeService{r}, View: n, MaxBodyBytes: r.maxBody, Clock: r.clock})
	}
	return c
}

func modeOf(s Settings) string {
	if s.Mode == "" {
		return ModeHTTP
	}
	return s.Mode
}

// socketSettings are what a Socket Mode connection depends on; the zero
// value means none is wanted.
type socketSettings struct{ botToken, appToken, apiURL string }

func socketKey(s Settings) socketSettings {
	if !s.socketWanted() {
		return socketSettings{}
	}
	return socketSettings{s.BotToken, s.AppToken, s.APIURL}
}

// socketState returns the Socket Mode settings in force and the channel
// closed when they change.
func (r *Runtime) socketState() (socketSettings, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s Settings
	if r.applied != nil {
		s = *r.applied
	}
	return socketKey(s), r.socketChanged
}

// RunSocket keeps a Socket Mode connection while the settings in force ask
// for one (mode socket and a bot token), and returns nil when ctx ends.
// While they do not, it waits for settings that do. slack-go reconnects
// on drops; a connection that ends on its own (Slack refuses the app
// token) is tried again after ten seconds, or at once when the settings
// change, so that a mended configuration heals without a restart. It never
// returns an error: a Slack outage must not stop the bot.
func (r *Runtime) RunSocket(ctx context.Context) error {
	if zerolog.Ctx(ctx).GetLevel() == zerolog.Disabled {
		ctx = r.log.WithContext(ctx)
	}
	for {
		key, changed := r.socketState()
		if key == (socketSettings{}) {
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
				continue
			}
		}
		sctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-changed:
				cancel()
			case <-sctx.Done():
			}
		}()
		err := NewSocket(SocketConfig{BotToken: key.botToken, AppToken: key.appToken, APIURL: key.apiURL,
			Handler: r, Events: r, Commands: r}).Run(sctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-changed:
			continue // reconnect with the new settings at once
		default:
		}
		r.log.Error().Err(err).Dur("retry_in", socketRetryDelay).Msg("Slack Socket Mode connection ended; reconnecting")
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-r.after(socketRetryDelay):
		}
	}
}

// Handle takes an interaction that arrived over Socket Mode.
func (r *Runtime) Handle(ctx context.Context, cb slack.InteractionCallback) any {
	c := r.conn.Load()
	if c == nil || c.interactions == nil {
		return nil
	}
	return c.interactions.Handle(ctx, cb)
}

// HandleEvent takes an Events API payload that arrived over Socket Mode.
func (r *Runtime) HandleEvent(ctx context.Context, payload []byte) {
	if c := r.conn.Load(); c != nil && c.events != nil {
		c.events.Handle(ctx, payload)
	}
}

// HandleCommand answers a slash command that arrived over Socket Mode.
func (r *Runtime) HandleCommand(ctx context.Context, cmd slack.SlashCommand) any {
	c := r.conn.Load()
	if c == nil || c.commands == nil {
		return nil
	}
	return c.commands.Handle(ctx, cmd)
}

// ServeHTTP is Slack's interactions endpoint; it answers 503 while there is
// no bot token or no signing secret to verify requests with.
func (r *Runtime) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.serveSigned(w, req, func(c *connection) http.Handler {
		if c.interactions == nil {
			return nil
		}
		return c.interactions
	})
}

// EventsHandler is Slack's Events API endpoint (POST /slack/events); it
// answers 503 while there is no bot token or no signing secret.
func (r *Runtime) EventsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.serveSigned(w, req, func(c *connection) http.Handler {
			if c.events == nil {
				return nil
			}
			return c.events
		})
	})
}

// CommandsHandler is the slash command endpoint (POST /slack/commands); it
// answers 503 while there is no bot token or no signing secret.
func (r *Runtime) CommandsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.serveSigned(w, req, func(c *connection) http.Handler {
			if c.commands == nil {
				return nil
			}
			return c.commands
		})
	})
}

// serveSigned hands the request to the part of the connection in force
// that pick names, which checks its signature; 503 while there is none or
// no signing secret to check with.
func (r *Runtime) serveSigned(w http.ResponseWriter, req *http.Request, pick func(*connection) http.Handler) {
	c := r.conn.Load()
	var h http.Handler
	if c != nil && c.settings.SigningSecret != "" {
		h = pick(c)
	}
	if h == nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(notConfiguredBody))
		return
	}
	h.ServeHTTP(w, req)
}

// GroupMembers returns the user ids of a user group.
func (r *Runtime) GroupMembers(ctx context.Context, groupID string) ([]string, error) {
	c := r.conn.Load()
	if c == nil {
		return nil, errNotConfigured
	}
	return c.directory.GroupMembers(ctx, groupID)
}

// UserIDByEmail returns the id of the user with that email.
func (r *Runtime) UserIDByEmail(ctx context.Context, email string) (string, error) {
	c := r.conn.Load()
	if c == nil {
		return "", errNotConfigured
	}
	return c.directory.UserIDByEmail(ctx, email)
}

// EmailOf returns the verified email of the Slack user ("" when Slack shows
// none).
func (r *Runtime) EmailOf(ctx context.Context, userID string) (string, error) {
	c := r.conn.Load()
	if c == nil {
		return "", errNotConfigured
	}
	return c.directory.EmailOf(ctx, userID)
}

// Close waits for the replies to clickers still being sent, also by
// interactions a change of settings replaced. Call it once, when no more
// interactions arrive (the HTTP server and RunSocket have stopped).
func (r *Runtime) Close() {
	r.mu.Lock()
	r.closed = true
	c := r.conn.Load()
	r.mu.Unlock()
	if c != nil && c.interactions != nil {
		c.interactions.Close()
	}
	r.retiring.Wait()
	r.home.Close()
}

// runtimeDecider decides with the Runtime's service, whichever is set when
// the click arrives.
type runtimeDecider struct{ r *Runtime }

func (d runtimeDecider) Decide(ctx context.Context, req approvals.DecideRequest) (*approvals.Task, error) {
	svc := d.r.service()
	if svc == nil {
		return nil, errNoService
	}
	if d.r.clickerEmails && req.User.Email == "" {
		email, err := d.r.EmailOf(ctx, req.User.ID)
		if err != nil {
			// Who the clicker is across chats is unknown: refuse rather
			// than count them twice.
			return nil, fmt.Errorf("%w: look up the clicker's email: %w", approvals.ErrClickerUnknown, err)
		}
		req.User.Email = email
	}
	return svc.Decide(ctx, req)
}

// person is a Slack user as the core knows them, for what the App Home
// and /approvals list: their id in Slack.
func person(userID string) approvals.Person {
	return approvals.Person{ID: userID, Chat: ChatName}
}

// runtimeService reads tasks with the Runtime's service, whichever is set
// at the time.
type runtimeService struct{ r *Runtime }

func (s runtimeService) Waiting(ctx context.Context, userID string) ([]*approvals.Task, error) {
	svc := s.r.service()
	if svc == nil {
		return nil, errNoService
	}
	return svc.Waiting(ctx, person(userID))
}

func (s runtimeService) RecentlyDecided(ctx context.Context, userID string, n int) ([]*approvals.Task, error) {
	svc := s.r.service()
	if svc == nil {
		return nil, errNoService
	}
	return svc.RecentlyDecided(ctx, person(userID), n)
}

func (s runtimeService) Token(t *approvals.Task) (string, error) {
	svc := s.r.service()
	if svc == nil {
		return "", errNoService
	}
	return svc.Token(t)
}

func (s runtimeService) Lookup(ctx context.Context, id string) (*approvals.Task, error) {
	svc := s.r.service()
	if svc == nil {
		return nil, errNoService
	}
	return svc.Lookup(ctx, id)
}

func (s runtimeService) MayDecide(ctx context.Context, t *approvals.Task, userID string) (bool, error) {
	svc := s.r.service()
	if svc == nil {
		return false, errNoService
	}
	return svc.MayDecide(ctx, t, person(userID))
}
