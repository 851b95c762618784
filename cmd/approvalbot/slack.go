package main

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/bot"
	"github.com/approvalbot/approvalbot/config"
)

// slackRuntime holds the Slack side of the bot and rebuilds it when a
// configuration reload changes the Slack credentials, so a bot started
// without them (its messages waiting in the outbox) starts posting as soon
// as they arrive.
type slackRuntime struct {
	log      zerolog.Logger
	mint     func(*approvals.Task) (string, error)
	policies func() []approvals.Policy
	svc      *approvals.Service
	maxBody  int64

	mu           sync.Mutex
	applied      config.SlackConfig
	notifier     atomic.Pointer[bot.Notifier]
	directory    atomic.Pointer[bot.Directory]
	interactions atomic.Pointer[bot.Interactions]
	httpVerified atomic.Bool // a signing secret guards the HTTP endpoint
}

var _ approvals.Directory = (*slackRuntime)(nil)

// apply installs the Slack configuration if it differs from the one in force.
func (r *slackRuntime) apply(c config.SlackConfig) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.notifier.Load() != nil && c == r.applied {
		return
	}
	r.applied = c
	if c.BotToken == "" {
		return // config.Warnings says so at start-up
	}
	n := bot.New(bot.Config{
		BotToken:       c.BotToken,
		APIURL:         c.APIURL,
		DefaultChannel: c.Channel,
		Policies:       r.policies,
	})
	// A pending task's message keeps working buttons when it is updated.
	n.Mint = r.mint
	r.directory.Store(bot.NewDirectory(n, c.GroupCacheTTL))
	r.notifier.Store(n)
	// In socket mode clicks arrive over the WebSocket and there may be no
	// signing secret: the handler is built anyway, and the HTTP endpoint
	// refuses everything while no secret can verify it.
	if c.SigningSecret != "" || c.Mode == "socket" {
		old := r.interactions.Swap(bot.NewInteractions(bot.InteractionsConfig{
			Verifier:     bot.NewVerifier(c.SigningSecret, time.Now),
			Decider:      r.svc,
			Replier:      n,
			MaxBodyBytes: r.maxBody,
		}))
		if old != nil {
			go old.Close()
		}
	}
	r.httpVerified.Store(c.SigningSecret != "")
	r.svc.SetNotifier(n)
	r.log.Info().Str("mode", c.Mode).Msg("Slack connection configured")
}

// close waits for the replies the interactions endpoint still sends.
func (r *slackRuntime) close() {
	if h := r.interactions.Load(); h != nil {
		h.Close()
	}
}

func (r *slackRuntime) GroupMembers(ctx context.Context, id string) ([]string, error) {
	d := r.directory.Load()
	if d == nil {
		return nil, errSlackNotConfigured
	}
	return d.GroupMembers(ctx, id)
}

func (r *slackRuntime) UserIDByEmail(ctx context.Context, email string) (string, error) {
	d := r.directory.Load()
	if d == nil {
		return "", errSlackNotConfigured
	}
	return d.UserIDByEmail(ctx, email)
}

// Handle takes an interaction that arrived over Socket Mode.
func (r *slackRuntime) Handle(ctx context.Context, cb slack.InteractionCallback) any {
	h := r.interactions.Load()
	if h == nil {
		return nil
	}
	return h.Handle(ctx, cb)
}

// runSocket keeps a Socket Mode connection until ctx is done; slack-go
// reconnects on drops, and a refused token is retried slowly so that a
// fixed configuration heals without a restart.
func (r *slackRuntime) runSocket(ctx context.Context, c config.SlackConfig) {
	for ctx.Err() == nil {
		s := bot.NewSocket(bot.SocketConfig{BotToken: c.BotToken, AppToken: c.AppToken, APIURL: c.APIURL, Handler: r})
		err := s.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		r.log.Error().Err(err).Msg("Slack Socket Mode connection ended; reconnecting in 10s")
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
		}
	}
}

// ServeHTTP is Slack's interactions endpoint.
func (r *slackRuntime) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	h := r.interactions.Load()
	if h == nil || !r.httpVerified.Load() {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"slack is not configured (slack.bot_token and slack.signing_secret)"}` + "\n"))
		return
	}
	h.ServeHTTP(w, req)
}

type slackError string

func (e slackError) Error() string { return string(e) }

const errSlackNotConfigured = slackError("slack is not configured")
