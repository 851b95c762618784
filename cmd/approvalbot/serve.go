package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/azuredevops"
	"github.com/approvalbot/approvalbot/bot"
	"github.com/approvalbot/approvalbot/config"
	"github.com/approvalbot/approvalbot/flexdeploy"
	"github.com/approvalbot/approvalbot/github"
	"github.com/approvalbot/approvalbot/gitlab"
	"github.com/approvalbot/approvalbot/internal/identity"
	"github.com/approvalbot/approvalbot/internal/telemetry"
	"github.com/approvalbot/approvalbot/pagerduty"
	"github.com/approvalbot/approvalbot/server"
	"github.com/approvalbot/approvalbot/store/bolt"
	ddb "github.com/approvalbot/approvalbot/store/dynamodb"
	"github.com/approvalbot/approvalbot/tokens"
	"github.com/approvalbot/approvalbot/web"
	"github.com/approvalbot/approvalbot/webhook"
)

// serveOptions are what tests may set: a hook told the server's address
// once it listens, and the domain's clock (windows and freezes, expiry).
type serveOptions struct {
	onReady func(addr net.Addr)
	clock   approvals.Clock
	// pace replaces Slack's rate limits (tests run them faster).
	pace *bot.PaceConfig
	// chats are registered after Slack's (tests add a chat of their own).
	chats []chatAdapter
}

// chatAdapter is a chat the wiring registers after Slack's, and the
// routes its clicks come in by (mounted among the webhooks people wait
// on), built once the service exists.
type chatAdapter struct {
	chat   approvals.Chat
	routes func(svc *approvals.Service) map[string]http.Handler
}

// slackPacing "off" builds a bot that calls Slack without pacing, for the
// load command's runs against a fake Slack without limits, where Slack is
// not what is measured: set at build time with -ldflags
// "-X main.slackPacing=off". Every other build paces as Slack limits.
var slackPacing = ""

// serve runs the bot until ctx is done: configuration → store → tools →
// Slack → lifecycle and scheduler → HTTP server, each long-running part in
// one errgroup, so that the first to fail stops them all.
func serve(ctx context.Context, flagPath string, stdout, stderr io.Writer, opts serveOptions) error {
	cfg, path, err := loadConfig(flagPath, stderr)
	if err != nil {
		return err
	}
	log := telemetry.NewLogger(cfg.Log.Level, stdout)
	ctx = log.WithContext(ctx)
	for _, w := range cfg.Warnings() {
		log.Warn().Msg(w)
	}

	store, err := openStore(ctx, cfg, &log)
	if err != nil {
		return err
	}
	defer func() { _ = store.close() }()
	issuer, err := newIssuer(cfg)
	if err != nil {
		return err
	}
	tools, err := newTools(cfg)
	if err != nil {
		return err
	}
	receiptKey, err := cfg.Receipts.ReceiptKey()
	if err != nil {
		return fmt.Errorf("receipts.signing_key: %w", err)
	}
	changes, err := changeSystems(cfg)
	if err != nil {
		return err
	}
	var state live
	state.apply(cfg)
	metrics := telemetry.New()
	metrics.WatchOutbox(store.Store)

	policies := func() []approvals.Policy { return state.rules.Load().Policies }
	teamsChat, teamsEndpoint := teamsChat(cfg, tools, policies, opts.clock, slackPacing == "off")
	others := opts.chats
	if teamsChat != nil {
		others = append(append([]chatAdapter(nil), others...), chatAdapter{chat: *teamsChat,
			routes: func(svc *approvals.Service) map[string]http.Handler {
				return map[string]http.Handler{"POST /teams/messages": teamsEndpoint(svc)}
			}})
	}
	var pace bot.PaceConfig
	if opts.pace != nil {
		pace = *opts.pace
	}
	pace.OnRateLimited = metrics.SlackRateLimited
	pace.Off = slackPacing == "off"
	slack := bot.NewRuntime(bot.RuntimeConfig{
		Pacer:        bot.NewPacer(pace),
		Logger:       log,
		Clock:        opts.clock,
		Policies:     func() []approvals.Policy { return state.rules.Load().Policies },
		Tools:        tools,
		MaxBodyBytes: cfg.Server.MaxBodyBytes,
		// A person acting in several chats is one person by their email.
		ClickerEmails: len(others) > 0,
	})
	defer slack.Close()
	var extra []approvals.Chat
	for _, a := range others {
		extra = append(extra, a.chat)
	}
	chats, err := newChats(slack, extra...)
	if err != nil {
		return err
	}
	svc, err := approvals.NewService(approvals.Config{
		Store:  telemetry.Store{Store: store.Store, Metrics: metrics},
		Tokens: issuer,
		Chats:  chats,
		OnCall: onCall(cfg.PagerDuty),
		// Both backends keep delegations (store/storetest).
		Delegations: store.Store.(approvals.DelegationStore),
		Tools:       tools,
		Fold:        identity.Fold,
		ReceiptKey:  receiptKey,
		Changes:     changes,
		Rules:       func() approvals.Rules { return *state.rules.Load() },
		Lease:       cfg.Outbox.Lease,
		Observer:    telemetry.Observer{Log: log, Metrics: metrics},
		Clock:       opts.clock,
	})
	if err != nil {
		return err
	}
	slack.SetService(svc)
	slack.Apply(slackSettings(cfg.Slack, cfg.Server.PublicURL))
	webhooks := map[string]http.Handler{
		"POST /slack/interactions": slack,
		"POST /slack/events":       slack.EventsHandler(),
		"POST /slack/commands":     slack.CommandsHandler(),
	}
	for _, a := range others {
		if a.routes != nil {
			maps.Copy(webhooks, a.routes(svc))
		}
	}
	if err := mountWeb(cfg, svc, slack, &state, opts.clock, webhooks); err != nil {
		return err
	}

	srv, err := server.New(server.Config{
		Listen:                 cfg.Server.Listen,
		MaxBodyBytes:           cfg.Server.MaxBodyBytes,
		MaxConcurrentRequests:  cfg.Server.MaxConcurrentRequests,
		MaxOutstandingRequests: cfg.Server.MaxOutstandingRequests,
		ReadHeaderTimeout:      cfg.Server.ReadHeaderTimeout,
		ReadTimeout:            cfg.Server.ReadTimeout,
		WriteTimeout:           cfg.Server.WriteTimeout,
		IdleTimeout:            cfg.Server.IdleTimeout,
		ShutdownTimeout:        cfg.Server.ShutdownTimeout,
		Tasks:                  svc,
		Chats:                  chats,
		Ready:                  store.Ping,
		APIKeys:                func() []server.APIKey { return *state.apiKeys.Load() },
		Intakes:                intakes(tools),
		Routes:                 map[string]http.Handler{"GET /metrics": metrics.Handler()},
		Webhooks:               webhooks,
		Logger:                 log,
		Observe:                metrics.ObserveRequest,
		Attest:                 attester(receiptKey),
	})
	if err != nil {
		return err
	}
	// Before the server serves: the scheduler is who the service tells of
	// new work.
	sched := approvals.NewScheduler(svc, approvals.SchedulerConfig{
		SweepInterval:     cfg.Sweeper.Interval,
		ReconcileInterval: cfg.Reconcile.Interval,
		Leases:            store.loops,
		Busy:              srv.Busy,
	})

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return sched.Run(ctx) })
	if store.bolt != nil && cfg.Store.Bolt.Retention > 0 {
		g.Go(func() error {
			return store.bolt.RunPurge(ctx, cfg.Store.Bolt.Retention, purgeReport(log, cfg.Store.Bolt.Retention))
		})
	}
	g.Go(func() error { return slack.RunSocket(ctx) }) // idle unless the settings ask for Socket Mode
	if path != "" {
		g.Go(func() error {
			config.Watch(ctx, path, func(next *config.Config) {
				state.apply(next)
				slack.Apply(slackSettings(next.Slack, next.Server.PublicURL))
				log.Info().Str("config", path).Int("policies", len(next.Policies)).Msg("configuration reloaded")
			}, func(err error) {
				log.Error().Str("config", path).Err(err).Msg("configuration change refused; the previous configuration stays in force")
			})
			return nil
		})
	}
	g.Go(func() error {
		return srv.ListenAndServe(ctx, func(addr net.Addr) {
			readyLine(log, cfg, addr).Msg("approvalbot ready")
			if opts.onReady != nil {
				opts.onReady(addr)
			}
		})
	})
	if err := g.Wait(); err != nil {
		return err
	}
	log.Info().Msg("approvalbot stopped")
	return nil
}

// newChats registers the chats: Slack first, the primary chat whose ids
// the policies name, posting every task (its posts wait in the outbox
// until it has a bot token); then the others.
func newChats(slack *bot.Runtime, others ...approvals.Chat) (*approvals.Chats, error) {
	return approvals.NewChats(append([]approvals.Chat{slack.Chat(true)}, others...)...)
}

// mountWeb adds the web page's routes when web.oidc is configured. They
// join the routes of the surfaces people wait on (the Slack clicks): a
// person waits on the page as on a click, it checks its callers itself
// (cookies, state, CSRF tokens), and no flood of /v1 requests sheds it.
func mountWeb(cfg *config.Config, svc *approvals.Service, dir web.Directory, state *live, clock approvals.Clock, routes map[string]http.Handler) error {
	if !cfg.Web.Enabled() {
		return nil
	}
	o := cfg.Web.OIDC
	h, err := web.New(web.Config{
		PublicURL: cfg.Server.PublicURL,
		Issuer:    o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret, Scopes: o.ScopesOrDefault(),
		SessionKey:   []byte(cfg.Web.SessionKey),
		Service:      svc,
		Directory:    dir,
		Chat:         svc.Chats().DisplayName(""),
		Policies:     func() []approvals.Policy { return state.rules.Load().Policies },
		Tools:        svc.Tools(),
		MaxBodyBytes: cfg.Server.MaxBodyBytes,
		Clock:        clock,
	})
	if err != nil {
		return err
	}
	maps.Copy(routes, h.Routes())
	return nil
}

// readyLine is the start-up log line: where the bot listens and, when the
// public URL is known, what to paste into the Slack app's Interactivity
// settings.
func readyLine(log zerolog.Logger, cfg *config.Config, addr net.Addr) *zerolog.Event {
	ev := log.Info().Str("addr", addr.String()).Str("store", cfg.Store.Driver).Str("version", versionString())
	if u, err := url.Parse(cfg.Server.PublicURL); err == nil && u.Host != "" && cfg.Slack.Mode == "http" {
		u.User, u.RawQuery, u.Fragment = nil, "", ""
		ev = ev.Str("slack_request_url", strings.TrimSuffix(u.String(), "/")+"/slack/interactions")
	}
	return ev
}

func purgeReport(log zerolog.Logger, retention time.Duration) func(int, error) {
	return func(n int, err error) {
		switch {
		case err != nil:
			log.Error().Err(err).Msg("purging old tasks from the store failed; retrying later")
		case n > 0:
			log.Info().Int("deleted", n).Dur("retention", retention).Msg("old tasks purged from the store")
		}
	}
}

// openedStore is the configured store; bolt is set for the embedded one.
type openedStore struct {
	approvals.Store
	loops approvals.LoopLeases
	bolt  *bolt.Store
	close func() error
}

func openStore(ctx context.Context, cfg *config.Config, log *zerolog.Logger) (openedStore, error) {
	if cfg.Store.Driver == "dynamodb" {
		d := cfg.Store.DynamoDB
		client, err := ddb.NewClient(ctx, ddb.Options{Region: d.Region, Endpoint: d.Endpoint, Logger: telemetry.AWSLogger(log)})
		if err != nil {
			return openedStore{}, err
		}
		st := ddb.New(client, d.Table)
		return openedStore{Store: st, loops: st, close: func() error { return nil }}, nil
	}
	b, err := bolt.Open(cfg.Store.Bolt.Path)
	if err != nil {
		return openedStore{}, err
	}
	return openedStore{Store: b, loops: b, bolt: b, close: b.Close}, nil
}

func newIssuer(cfg *config.Config) (*tokens.Issuer, error) {
	keys := make([]tokens.Key, 0, len(cfg.Tokens.SigningKeys))
	for _, k := range cfg.Tokens.SigningKeys {
		keys = append(keys, tokens.Key{ID: k.ID, Secret: []byte(k.Secret)})
	}
	return tokens.NewIssuer(keys)
}

// newTools registers the deployment tools. FlexDeploy's intake is always
// there (its decisions wait in the outbox until a connection is
// configured); Azure DevOps' only with its encryption key, GitHub's (and
// its /github/webhook) only with its App, the webhook tool's only with its
// signing secret, GitLab's only with its token (its /gitlab/webhook with
// its webhook token, its polling with its projects).
func newTools(cfg *config.Config) (*approvals.Tools, error) {
	var fd *flexdeploy.Client
	if cfg.FlexDeploy.BaseURL != "" {
		var err error
		fd, err = flexdeploy.New(flexdeploy.Config{
			BaseURL:  cfg.FlexDeploy.BaseURL,
			Username: cfg.FlexDeploy.Username,
			Password: cfg.FlexDeploy.Password,
			Timeout:  cfg.FlexDeploy.Timeout,
		})
		if err != nil {
			return nil, err
		}
	}
	list := []approvals.Tool{flexdeploy.Tool(fd, cfg.FlexDeploy.Enrich)}
	if cfg.AzureDevOps.EncryptionKey != "" {
		key, err := azuredevops.ParseKey(cfg.AzureDevOps.EncryptionKey)
		if err != nil {
			return nil, fmt.Errorf("azure_devops.encryption_key: %w", err)
		}
		sealer, err := azuredevops.NewSealer(key)
		if err != nil {
			return nil, err
		}
		ado, err := azuredevops.New(azuredevops.Config{Sealer: sealer, Timeout: cfg.AzureDevOps.Timeout, AllowedHosts: cfg.AzureDevOps.AllowedHosts})
		if err != nil {
			return nil, err
		}
		list = append(list, azuredevops.Tool(ado))
	}
	if g := cfg.GitHub; g.Enabled() {
		key, err := g.PrivateKeyPEM()
		if err != nil {
			return nil, err
		}
		gh, err := github.New(github.Config{AppID: g.AppID, PrivateKey: key, WebhookSecret: g.WebhookSecret, APIURL: g.APIURL, Users: g.Users, Timeout: g.Timeout})
		if err != nil {
			return nil, err
		}
		list = append(list, github.Tool(gh))
	}
	if w := cfg.Webhook; w.Enabled() {
		wh, err := webhook.New(webhook.Config{SigningSecret: w.SigningSecret, AllowedHosts: w.AllowedHosts, Timeout: w.Timeout})
		if err != nil {
			return nil, err
		}
		list = append(list, webhook.Tool(wh))
	}
	if g := cfg.GitLab; g.Token != "" {
		gl, err := gitlab.New(gitlab.Config{APIURL: g.APIURL, Token: g.Token, WebhookToken: g.WebhookToken, Projects: g.Projects,
			PollInterval: g.PollInterval, Users: g.Users, RepresentedAs: g.RepresentedAs, Timeout: g.Timeout})
		if err != nil {
			return nil, err
		}
		list = append(list, gitlab.Tool(gl))
	}
	return approvals.NewTools(list...)
}

// onCall is PagerDuty, when a token is configured.
func onCall(c config.PagerDutyConfig) approvals.OnCall {
	if c.Token == "" {
		return nil
	}
	return pagerduty.New(pagerduty.Config{APIURL: c.APIURL, Token: c.Token})
}

// intakes are every registered tool's intake endpoints.
func intakes(tools *approvals.Tools) []approvals.Intake {
	var out []approvals.Intake
	for _, t := range tools.All() {
		out = append(out, t.Intakes...)
	}
	return out
}

func slackSettings(c config.SlackConfig, publicURL string) bot.Settings {
	return bot.Settings{
		PublicURL:     publicURL,
		BotToken:      c.BotToken,
		SigningSecret: c.SigningSecret,
		AppToken:      c.AppToken,
		Mode:          c.Mode,
		APIURL:        c.APIURL,
		Channel:       c.Channel,
		GroupCacheTTL: c.GroupCacheTTL,
	}
}

// live holds the parts of the configuration a reload may change.
type live struct {
	rules   atomic.Pointer[approvals.Rules]
	apiKeys atomic.Pointer[[]server.APIKey]
}

func (l *live) apply(cfg *config.Config) {
	rules := approvals.Rules{Policies: cfg.ApprovalPolicies(), DefaultTTL: cfg.Tokens.TTL}
	l.rules.Store(&rules)
	keys := make([]server.APIKey, 0, len(cfg.Intake.APIKeys))
	for _, k := range cfg.Intake.APIKeys {
		keys = append(keys, server.APIKey{Name: k.Name, Key: k.Key})
	}
	l.apiKeys.Store(&keys)
}
