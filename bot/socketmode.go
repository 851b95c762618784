package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

const (
	// ackWithin is how long an envelope waits for the Handler before
	// it is acknowledged anyway: Slack wants the ack within 3 seconds, and
	// the rest of the budget is for writing it to the socket.
	ackWithin = 2500 * time.Millisecond
	// socketAckTimeout bounds queueing one ack for the connection's writer.
	socketAckTimeout = 2 * time.Second
	// socketHandshakeTimeout bounds the WebSocket handshake (slack-go's own
	// default is 45 s, long enough to look like a hang).
	socketHandshakeTimeout = 10 * time.Second
	// socketReadLimit bounds one incoming frame. An interaction carries the
	// whole message it came from, a few KiB; a frame past this is garbage
	// and drops the connection, which then reconnects.
	socketReadLimit = 1 << 20
	// socketWriteBuffer is above Slack's 20 KB response limit so that an
	// ack goes out as one frame (Slack does not reassemble continuations;
	// slack-go's own dialer uses the same size).
	socketWriteBuffer = 32 << 10
)

// InteractionHandler acts on one interaction and returns what Slack should
// get with the acknowledgement: nil, or a view_submission response.
// *Interactions is one.
type InteractionHandler interface {
	Handle(ctx context.Context, cb slack.InteractionCallback) any
}

var _ InteractionHandler = (*Interactions)(nil)

// EventHandler acts on one Events API payload (an event_callback, the
// same JSON as the HTTP request's body). It must return quickly: the
// envelope is acknowledged first.
type EventHandler interface {
	HandleEvent(ctx context.Context, payload []byte)
}

// CommandHandler answers one slash command; the answer (a message only the
// caller sees) goes back with the acknowledgement.
type CommandHandler interface {
	HandleCommand(ctx context.Context, cmd slack.SlashCommand) any
}

// SocketConfig configures Socket Mode.
type SocketConfig struct {
	// BotToken is the xoxb- token; Socket Mode itself needs only AppToken.
	BotToken string
	// AppToken is the app-level xapp- token with connections:write; it
	// opens the WebSocket (apps.connections.open).
	AppToken string
	// APIURL is the Web API root; "" is Slack's. Tests pass a fake's URL.
	APIURL string
	// Handler acts on each interaction (the interactions endpoint's
	// *Interactions, so both transports decide alike).
	Handler InteractionHandler
	// Events acts on Events API envelopes and Commands answers slash
	// commands; without them such envelopes are acknowledged and ignored.
	Events   EventHandler
	Commands CommandHandler
	// Debug logs every envelope's type and id and the connection's life
	// cycle at debug level. It never logs payloads: a button's value is a
	// task's one-time token. (slack-go's own debug output would print
	// payloads, so it stays off.)
	Debug bool
	// Timeout bounds the HTTP call that opens a connection; default 10 s.
	Timeout time.Duration
}

// Socket serves Slack interactions over Socket Mode: the bot dials out to
// Slack, so it needs no public HTTP endpoint.
//
// Several replicas may be connected at once (Slack allows up to 10
// connections per app): Slack delivers each envelope to one connection only,
// and a decision is one conditional store write, so nothing needs
// coordinating between replicas. An envelope that is not acknowledged in
// time is redelivered, possibly to another connection; the one-time token
// makes the repeat a harmless "already decided".
type Socket struct {
	api       *slack.Client
	appToken  string
	handler   InteractionHandler
	events    EventHandler
	commands  CommandHandler
	debug     bool
	ackWithin time.Duration // tests shorten it
}

// NewSocket returns a Socket Mode client for cfg; Run connects it.
func NewSocket(cfg SocketConfig) *Socket {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	opts := []slack.Option{
		slack.OptionHTTPClient(&http.Client{Timeout: timeout}),
		slack.OptionAppLevelToken(cfg.AppToken),
	}
	if cfg.APIURL != "" {
		apiURL := cfg.APIURL
		// slack-go joins the root and the method name as strings.
		if !strings.HasSuffix(apiURL, "/") {
			apiURL += "/"
		}
		opts = append(opts, slack.OptionAPIURL(apiURL))
	}
	return &Socket{
		api:       slack.New(cfg.BotToken, opts...),
		appToken:  cfg.AppToken,
		handler:   cfg.Handler,
		events:    cfg.Events,
		commands:  cfg.Commands,
		debug:     cfg.Debug,
		ackWithin: ackWithin,
	}
}

// Run connects and serves interactive events until ctx is done, then
// returns nil once the handlers in flight have finished. slack-go's client
// reconnects when the connection drops or Slack asks it to (a connection
// lives a few hours); Run returns an error only when it cannot connect for
// good, for example because Slack refuses the app token.
//
// Every envelope is acknowledged within 3 seconds: each is handled in its
// own goroutine, and the ack carries the Handler's response (a
// view_submission's errors) or, if the Handler has not answered within
// 2.5 s, no payload.
func (s *Socket) Run(ctx context.Context) error {
	if !strings.HasPrefix(s.appToken, "xapp-") {
		return errors.New("slack: socket mode: slack.app_token must be an app-level token (xapp-…)")
	}
	if s.handler == nil {
		return errors.New("slack: socket mode: no interaction handler")
	}
	client := socketmode.New(s.api,
		socketmode.OptionDialer(&websocket.Dialer{
			Proxy:            http.ProxyFromEnvironment,
			HandshakeTimeout: socketHandshakeTimeout,
			WriteBufferSize:  socketWriteBuffer,
		}),
		socketmode.OptionReadLimit(socketReadLimit),
	)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- client.RunContext(ctx) }()

	var handlers sync.WaitGroup
	defer handlers.Wait()
	for {
		select {
		case <-ctx.Done():
			<-runErr
			return nil
		case err := <-runErr:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("slack: socket mode: %w", err)
		case evt := <-client.Events:
			// The event loop only dispatches: slack-go blocks its reader
			// when Events is full, and a slow decision must not delay
			// other envelopes' acks.
			s.dispatch(ctx, client, evt, &handlers)
		}
	}
}

func (s *Socket) dispatch(ctx context.Context, client *socketmode.Client, evt socketmode.Event, handlers *sync.WaitGroup) {
	log := zerolog.Ctx(ctx)
	switch evt.Type {
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok || evt.Request == nil {
			return
		}
		req := *evt.Request
		s.debugf(ctx, "slack: socket mode: %s envelope %s", cb.Type, req.EnvelopeID)
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			s.handleInteraction(ctx, client, req, cb)
		}()
	case socketmode.EventTypeEventsAPI:
		if evt.Request == nil {
			return
		}
		req := *evt.Request
		if s.events == nil {
			s.ignore(ctx, client, req, handlers)
			return
		}
		s.debugf(ctx, "slack: socket mode: events_api envelope %s", req.EnvelopeID)
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			// Acknowledged first: handling an event only schedules work,
			// and Slack retries an event not acknowledged in time.
			s.ack(ctx, client, req.EnvelopeID, nil)
			s.events.HandleEvent(ctx, req.Payload)
		}()
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slack.SlashCommand)
		if evt.Request == nil {
			return
		}
		req := *evt.Request
		if s.commands == nil || !ok {
			s.ignore(ctx, client, req, handlers)
			return
		}
		s.debugf(ctx, "slack: socket mode: slash_commands envelope %s", req.EnvelopeID)
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			response := s.commands.HandleCommand(ctx, cmd)
			if !req.AcceptsResponsePayload {
				response = nil
			}
			s.ack(ctx, client, req.EnvelopeID, response)
		}()
	case socketmode.EventTypeErrorBadMessage:
		// The message is not quoted: it may hold a button's token.
		log.Warn().Msg("slack: socket mode: unreadable envelope")
		if bad, ok := evt.Data.(*socketmode.ErrorBadMessage); ok {
			var env struct {
				EnvelopeID string `json:"envelope_id"`
			}
			// Ack what cannot be read, or Slack redelivers it in vain.
			if json.Unmarshal(bad.Message, &env) == nil && env.EnvelopeID != "" {
				s.goAck(ctx, client, env.EnvelopeID, handlers)
			}
		}
	case socketmode.EventTypeConnecting:
		s.debugf(ctx, "slack: socket mode: connecting")
	case socketmode.EventTypeConnected:
		log.Info().Msg("slack: socket mode connected")
	case socketmode.EventTypeHello:
		if evt.Request != nil {
			s.debugf(ctx, "slack: socket mode: hello, %d connections", evt.Request.NumConnections)
		}
	case socketmode.EventTypeConnectionError:
		if e, ok := evt.Data.(*slack.ConnectionErrorEvent); ok {
			log.Warn().Err(e.ErrorObj).Dur("retry_in", e.Backoff).Msg("slack: socket mode: cannot connect")
		}
	case socketmode.EventTypeInvalidAuth:
		log.Error().Msg("slack: socket mode: Slack refused the app token")
	case socketmode.EventTypeIncomingError:
		if e, ok := evt.Data.(*slack.IncomingEventError); ok {
			log.Warn().Err(e.ErrorObj).Msg("slack: socket mode: read failed")
		}
	case socketmode.EventTypeErrorWriteFailed:
		if e, ok := evt.Data.(*socketmode.ErrorWriteFailed); ok && e.Response != nil {
			log.Warn().Err(e.Cause).Str("envelope", e.Response.EnvelopeID).Msg("slack: socket mode: ack not sent")
		}
	}
}

// handleInteraction hands the interaction to the Handler and acks with its
// response, or without one if the Handler is late.
func (s *Socket) handleInteraction(ctx context.Context, client *socketmode.Client, req socketmode.Request, cb slack.InteractionCallback) {
	response := handleWithin(ctx, s.handler, cb, s.ackWithin)
	if !req.AcceptsResponsePayload {
		response = nil
	}
	s.ack(ctx, client, req.EnvelopeID, response)
}

// handleWithin hands the interaction to handler and returns its response,
// or gives up waiting after within: Slack wants its answer within 3
// seconds, and past that it has given up on this delivery anyway. The
// handler's context survives the caller's cancellation (a decision half
// made at shutdown finishes) but not the deadline.
func handleWithin(ctx context.Context, handler InteractionHandler, cb slack.InteractionCallback, within time.Duration) any {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), within)
	defer cancel()
	done := make(chan any, 1)
	go func() { done <- handler.Handle(hctx, cb) }()
	select {
	case response := <-done:
		return response
	case <-hctx.Done():
		zerolog.Ctx(ctx).Warn().Str("type", string(cb.Type)).
			Msg("slack: interaction not handled in time; answered without waiting further")
		if cb.Type == slack.InteractionTypeViewSubmission && cb.View.CallbackID == callbackRejectReason {
			// An empty answer would close the dialog as if the reason had
			// been taken; keep it open and say so.
			return slack.NewErrorsViewSubmissionResponse(map[string]string{
				blockIDReason: "approvalbot did not answer in time; submit again.",
			})
		}
		return nil
	}
}

// ignore acknowledges an envelope the bot does not act on: one not acked
// is redelivered.
func (s *Socket) ignore(ctx context.Context, client *socketmode.Client, req socketmode.Request, handlers *sync.WaitGroup) {
	s.debugf(ctx, "slack: socket mode: ignored %s envelope %s", req.Type, req.EnvelopeID)
	s.goAck(ctx, client, req.EnvelopeID, handlers)
}

// goAck acks an envelope without a payload, off the event loop: queueing
// an ack waits while the connection's writer is busy.
func (s *Socket) goAck(ctx context.Context, client *socketmode.Client, envelopeID string, handlers *sync.WaitGroup) {
	handlers.Add(1)
	go func() {
		defer handlers.Done()
		s.ack(ctx, client, envelopeID, nil)
	}()
}

func (s *Socket) ack(ctx context.Context, client *socketmode.Client, envelopeID string, payload any) {
	actx, cancel := context.WithTimeout(ctx, socketAckTimeout)
	defer cancel()
	err := client.AckCtx(actx, envelopeID, payload)
	if err != nil && payload != nil && actx.Err() == nil {
		// The payload itself was refused (Slack drops responses of 20 KB
		// or more): an ack without it still stops the redelivery.
		zerolog.Ctx(ctx).Warn().Err(err).Str("envelope", envelopeID).Msg("slack: socket mode: ack payload refused; acknowledging without it")
		err = client.AckCtx(actx, envelopeID, nil)
	}
	if err != nil && ctx.Err() == nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("envelope", envelopeID).Msg("slack: socket mode: ack not sent")
	}
}

func (s *Socket) debugf(ctx context.Context, format string, args ...any) {
	if s.debug {
		zerolog.Ctx(ctx).Debug().Msgf(format, args...)
	}
}
