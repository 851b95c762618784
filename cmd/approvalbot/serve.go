package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/smithy-go/logging"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/azuredevops"
	"github.com/approvalbot/approvalbot/config"
	"github.com/approvalbot/approvalbot/flexdeploy"
	"github.com/approvalbot/approvalbot/server"
	"github.com/approvalbot/approvalbot/store/bolt"
	ddb "github.com/approvalbot/approvalbot/store/dynamodb"
	"github.com/approvalbot/approvalbot/tokens"
)

// loadConfig loads and validates the configuration; problems are printed
// to stderr, every one of them.
func loadConfig(flagPath string, stderr io.Writer) (*config.Config, string, error) {
	path := config.ResolvePath(flagPath)
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, "approvalbot: configuration:", err)
		return nil, path, errReported
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "approvalbot: the configuration%s is invalid:\n%s\n", describePath(path), err)
		return nil, path, errReported
	}
	return cfg, path, nil
}

func describePath(path string) string {
	if path == "" {
		return " (defaults and environment)"
	}
	return " " + path
}

func configCheck(flagPath string, stdout, stderr io.Writer) error {
	cfg, path, err := loadConfig(flagPath, stderr)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(stdout, "warning:", w)
	}
	fmt.Fprintf(stdout, "configuration%s is valid\n", describePath(path))
	return nil
}

func createTable(ctx context.Context, flagPath string, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfig(flagPath, stderr)
	if err != nil {
		return err
	}
	d := cfg.Store.DynamoDB
	client, err := ddb.NewClient(ctx, ddb.Options{Region: d.Region, Endpoint: d.Endpoint})
	if err != nil {
		return err
	}
	res, err := ddb.CreateTable(ctx, client, d.Table)
	if err != nil {
		return err
	}
	if res.Created {
		fmt.Fprintf(stdout, "created table %s with its index %s\n", d.Table, ddb.DueIndex)
	} else {
		fmt.Fprintf(stdout, "table %s exists already, with its index %s\n", d.Table, ddb.DueIndex)
	}
	if res.TTLEnabled {
		fmt.Fprintln(stdout, "TTL is enabled on the attribute ttl: final tasks are deleted 30 days after they expire")
	} else {
		fmt.Fprintln(stdout, "TTL is not supported by this endpoint: final tasks stay until deleted by hand (harmless)")
	}
	return nil
}

// openStore opens the configured store; close releases it.
func openStore(ctx context.Context, cfg *config.Config) (store approvals.Store, close func() error, err error) {
	switch cfg.Store.Driver {
	case "dynamodb":
		d := cfg.Store.DynamoDB
		client, err := ddb.NewClient(ctx, ddb.Options{Region: d.Region, Endpoint: d.Endpoint, Logger: sdkLogger{zerolog.Ctx(ctx)}})
		if err != nil {
			return nil, nil, err
		}
		return ddb.New(client, d.Table), func() error { return nil }, nil
	default:
		s, err := bolt.Open(cfg.Store.Bolt.Path)
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
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

// started is told the server's address once it listens (tests use it).
type started func(addr net.Addr)

// serve runs the bot until ctx is done.
func serve(ctx context.Context, flagPath string, stdout, stderr io.Writer, onReady started) error {
	cfg, path, err := loadConfig(flagPath, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log.Level, stdout)
	ctx = log.WithContext(ctx)
	for _, w := range cfg.Warnings() {
		log.Warn().Msg(w)
	}

	store, closeStore, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeStore()
	rawStore := store

	keys := make([]tokens.Key, 0, len(cfg.Tokens.SigningKeys))
	for _, k := range cfg.Tokens.SigningKeys {
		keys = append(keys, tokens.Key{ID: k.ID, Secret: []byte(k.Secret)})
	}
	issuer, err := tokens.NewIssuer(keys)
	if err != nil {
		return err
	}

	var state live
	state.apply(cfg)
	policies := func() []approvals.Policy { return state.rules.Load().Policies }

	registry := prometheus.NewRegistry()
	metrics := newMetrics(registry)
	registry.MustRegister(newOutboxCollector(store))
	store = instrumentedStore{Store: store, m: metrics}

	svcCfg := approvals.Config{
		Store:             store,
		Tokens:            issuer,
		Rules:             func() approvals.Rules { return *state.rules.Load() },
		Deployers:         map[string]approvals.Deployer{},
		Checkers:          map[string]approvals.StatusChecker{},
		Enrichers:         map[string]approvals.Enricher{},
		Lease:             cfg.Outbox.Lease,
		SweepInterval:     cfg.Sweeper.Interval,
		ReconcileInterval: cfg.Reconcile.Interval,
		Observer:          observer{log: log, metrics: metrics},
	}

	slackRT := &slackRuntime{log: log, mint: issuer.Mint, policies: policies, maxBody: cfg.Server.MaxBodyBytes}
	svcCfg.Directory = slackRT

	if cfg.FlexDeploy.BaseURL != "" {
		fd, err := flexdeploy.New(flexdeploy.Config{
			BaseURL:  cfg.FlexDeploy.BaseURL,
			Username: cfg.FlexDeploy.Username,
			Password: cfg.FlexDeploy.Password,
			Timeout:  cfg.FlexDeploy.Timeout,
		})
		if err != nil {
			return err
		}
		svcCfg.Deployers["flexdeploy"] = fd
		svcCfg.Checkers["flexdeploy"] = fd
		if cfg.FlexDeploy.Enrich {
			svcCfg.Enrichers["flexdeploy"] = fd
		}
	}

	intake := map[string]server.Intake{"tasks": server.BodyParser(flexdeploy.ParseTask)}
	if cfg.AzureDevOps.EncryptionKey != "" {
		key, err := azuredevops.ParseKey(cfg.AzureDevOps.EncryptionKey)
		if err != nil {
			return fmt.Errorf("azure_devops.encryption_key: %w", err)
		}
		sealer, err := azuredevops.NewSealer(key)
		if err != nil {
			return err
		}
		ado, err := azuredevops.New(azuredevops.Config{Sealer: sealer, Timeout: cfg.AzureDevOps.Timeout, AllowedHosts: cfg.AzureDevOps.AllowedHosts})
		if err != nil {
			return err
		}
		svcCfg.Deployers[azuredevops.Source] = ado
		intake["azure-devops/checks"] = server.Intake{
			Parse:        azuredevops.NewIntake(sealer, cfg.AzureDevOps.AllowedHosts).Parse,
			Status:       http.StatusOK, // Azure Pipelines wants 200 within 3 s, and decides later
			BodyOptional: true,
		}
	}

	svc, err := approvals.NewService(svcCfg)
	if err != nil {
		return err
	}

	slackRT.svc = svc
	slackRT.apply(cfg.Slack)
	defer slackRT.close()
	routes := map[string]http.Handler{
		"GET /metrics":             metrics.handler(registry),
		"POST /slack/interactions": slackRT,
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
		Ready:                  store.Ping,
		APIKeys:                func() []server.APIKey { return *state.apiKeys.Load() },
		Intake:                 intake,
		Routes:                 routes,
		Logger:                 log,
		Observe:                metrics.observeRequest,
	})
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := svc.Run(ctx); err != nil {
			errc <- err
		}
	}()
	if b, ok := rawStore.(*bolt.Store); ok && cfg.Store.Bolt.Retention > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			purgeLoop(ctx, b, cfg.Store.Bolt.Retention, log)
		}()
	}
	if cfg.Slack.Mode == "socket" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slackRT.runSocket(ctx, cfg.Slack)
		}()
	}
	if path != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			config.Watch(ctx, path, func(next *config.Config) {
				state.apply(next)
				slackRT.apply(next.Slack)
				log.Info().Str("config", path).Int("policies", len(next.Policies)).Msg("configuration reloaded")
			}, func(err error) {
				log.Error().Str("config", path).Err(err).Msg("configuration change refused; the previous configuration stays in force")
			})
		}()
	}
	err = srv.ListenAndServe(ctx, func(addr net.Addr) {
		ready := log.Info().Str("addr", addr.String()).Str("store", cfg.Store.Driver).Str("version", versionString())
		if u, err := url.Parse(cfg.Server.PublicURL); err == nil && u.Host != "" && cfg.Slack.Mode == "http" {
			// What to paste into the Slack app's Interactivity settings.
			u.User, u.RawQuery, u.Fragment = nil, "", ""
			ready = ready.Str("slack_request_url", strings.TrimSuffix(u.String(), "/")+"/slack/interactions")
		}
		ready.Msg("approvalbot ready")
		if onReady != nil {
			onReady(addr)
		}
	})
	cancel()
	wg.Wait()
	close(errc)
	if err != nil {
		return err
	}
	for e := range errc {
		return e
	}
	log.Info().Msg("approvalbot stopped")
	return nil
}

// purgeInterval is how often the embedded store is cleaned of old tasks.
const purgeInterval = 6 * time.Hour

// purgeLoop deletes, a minute after start and then every purgeInterval, the
// embedded store's tasks that are done and older than retention.
func purgeLoop(ctx context.Context, b *bolt.Store, retention time.Duration, log zerolog.Logger) {
	wait := time.Minute
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = purgeInterval
		n, err := b.Purge(ctx, time.Now().Add(-retention))
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error().Err(err).Msg("purging old tasks from the store failed; retrying later")
		case n > 0:
			log.Info().Int("deleted", n).Dur("retention", retention).Msg("old tasks purged from the store")
		}
	}
}

// sdkLogger puts the AWS SDK's warnings into the bot's JSON log.
type sdkLogger struct{ log *zerolog.Logger }

func (l sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	ev := l.log.Warn()
	if c == logging.Debug {
		ev = l.log.Debug()
	}
	ev.Str("component", "aws-sdk").Msgf(format, v...)
}

func newLogger(level string, out io.Writer) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(out).Level(lvl).With().Timestamp().Logger()
}

// observer turns the service's events into log lines and metrics.
type observer struct {
	log     zerolog.Logger
	metrics *metrics
}

func (o observer) Observe(ctx context.Context, e approvals.Event) {
	o.metrics.observeEvent(e)
	var ev *zerolog.Event
	switch e.Type {
	case approvals.EventError:
		ev = o.log.Error()
	case approvals.EventJobRetry, approvals.EventJobFailed:
		ev = o.log.Warn()
	case approvals.EventJobDone, approvals.EventDuplicate:
		ev = o.log.Debug()
	default:
		ev = o.log.Info()
	}
	ev = ev.Str("event", string(e.Type))
	if e.TaskID != "" {
		ev = ev.Str("task", e.TaskID)
	}
	if e.Source != "" {
		ev = ev.Str("source", e.Source)
	}
	if e.Job != "" {
		ev = ev.Str("job", string(e.Job)).Int("attempt", e.Attempt).Dur("duration", e.Duration)
	}
	if e.Detail != "" {
		ev = ev.Str("detail", e.Detail)
	}
	if e.Err != nil {
		ev = ev.AnErr("error", e.Err)
	}
	ev.Msg("task " + string(e.Type))
}
