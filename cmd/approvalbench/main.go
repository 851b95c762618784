// Command approvalbench measures approvalbot against the performance
// targets of DESIGN.md on this machine and prints one markdown table.
//
//	go run ./cmd/approvalbench [--store bolt|dynamodb] [--tasks 5000]
//	    [--concurrency 32] [--pending 10000] [--clicks 500] [--binary PATH]
//	go run ./cmd/approvalbench --mode slack [--counts 10,100,1000] [--channels 1,10] [--runs 1]
//	go run ./cmd/approvalbench --mode scale [--scale-pending 1000,10000,100000]
//	go run ./cmd/approvalbench --mode teams [--clicks 500]
//	go run ./cmd/approvalbench --mode replicas [--replicas 1,2,3] [--replica-pending 1000]
//	    [--interval 10s] [--rounds 3]
//
// The default mode (targets) is described below; the others make the
// scaling table of BENCHMARKS.md: slack posts tasks into one or more
// channels against a fake Slack that enforces Slack's rate limits (the
// bot as it ships, paced); scale measures 1k–100k pending tasks on bolt;
// replicas counts FlexDeploy reads per reconcile interval with one to
// three replicas on dynalite; teams posts tasks to Slack and to a fake Bot
// Framework (internal/teamstest) and times Teams clicks (the invoke's 200,
// FlexDeploy's PUT) beside Slack clicks on the same bot.
//
// It builds ./cmd/approvalbot (unless --binary), starts a fake Slack and a
// fake FlexDeploy on loopback (internal/slacktest, internal/flexdeploytest), and, for --store dynamodb,
// dynalite (internal/dynalite); it runs the bot as a child process with a
// generated configuration and measures: the start to the first 200 of
// /readyz; intake throughput and latency; click to 200 and click to
// FlexDeploy's PUT; 50 concurrent clicks on one message; a bare HTTP +
// bbolt floor for comparison; and the bot's peak RSS with --pending tasks
// pending. Everything is bounded by deadlines and stopped at the end.
//
// The exit status is 1 for a broken run (the bot did not start, requests
// failed), 2 for a usage mistake, and 0 otherwise: a missed target is a
// result, reported in the table, not a failure.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/approvalbot/approvalbot/internal/dynalite"
	"github.com/approvalbot/approvalbot/internal/flexdeploytest"
	"github.com/approvalbot/approvalbot/internal/slacktest"
)

type options struct {
	mode        string
	store       string
	tasks       int
	concurrency int
	pending     int
	clicks      int
	starts      int
	rate        float64
	binary      string
	timeout     time.Duration
	// intakeRounds alternate a round of the floor and one of intake.
	intakeRounds int
	// enrich is flexdeploy.enrich of the bot's configuration.
	enrich bool

	// --mode slack
	counts, channels []int
	runs             int
	// --mode scale
	scalePending []int
	phaseTimeout time.Duration
	// --mode replicas
	replicas       []int
	replicaPending int
	interval       time.Duration
	rounds         int
}

// intList is a flag of comma-separated positive integers.
type intList struct{ v *[]int }

func (l intList) String() string {
	if l.v == nil {
		return ""
	}
	var parts []string
	for _, n := range *l.v {
		parts = append(parts, strconv.Itoa(n))
	}
	return strings.Join(parts, ",")
}

func (l intList) Set(s string) error {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive integer", part)
		}
		out = append(out, n)
	}
	*l.v = out
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("approvalbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.mode, "mode", "targets", "what to measure: targets (DESIGN.md's), slack (pacing under Slack's limits), scale (1k-100k pending), replicas (reconcile reads with 1-3 replicas on dynalite), teams (Teams clicks beside Slack clicks)")
	fs.StringVar(&o.store, "store", "bolt", "task store: bolt or dynamodb (on a dynalite the bench starts)")
	o.counts, o.channels, o.scalePending, o.replicas = []int{10, 100, 1000}, []int{1, 10}, []int{1000, 10000, 100000}, []int{1, 2, 3}
	fs.Var(intList{&o.counts}, "counts", "slack mode: tasks per run")
	fs.Var(intList{&o.channels}, "channels", "slack mode: channels the tasks are spread over")
	fs.IntVar(&o.runs, "runs", 1, "slack mode: runs of each count and channels (the table gives the median)")
	fs.Var(intList{&o.scalePending}, "scale-pending", "scale mode: pending tasks per run")
	fs.DurationVar(&o.phaseTimeout, "phase-timeout", 4*time.Minute, "scale mode: give up on a run's posting or reconcile round after this (and say so)")
	fs.Var(intList{&o.replicas}, "replicas", "replicas mode: replica counts, in order (each adds replicas to the last)")
	fs.IntVar(&o.replicaPending, "replica-pending", 1000, "replicas mode: pending tasks")
	fs.DurationVar(&o.interval, "interval", 10*time.Second, "replicas mode: reconcile interval")
	fs.IntVar(&o.rounds, "rounds", 3, "replicas mode: reconcile intervals counted per replica count")
	fs.IntVar(&o.tasks, "tasks", 5000, "tasks to intake for the throughput and latency measurement")
	fs.IntVar(&o.concurrency, "concurrency", 32, "concurrent intake clients")
	fs.IntVar(&o.pending, "pending", 10000, "pending tasks for the memory measurement")
	fs.IntVar(&o.clicks, "clicks", 500, "tasks clicked, one at a time, for the click latencies")
	fs.Float64Var(&o.rate, "rate", 1000, "also intake for 5s at this fixed rate (tasks/s) and report its latency; 0 skips it")
	fs.IntVar(&o.starts, "starts", 5, "process starts timed to the first 200 from /readyz")
	fs.BoolVar(&o.enrich, "enrich", true, "flexdeploy.enrich of the bot (false: the outbox posts in its first round, without a round of enrichment)")
	fs.IntVar(&o.intakeRounds, "intake-rounds", 3, "rounds of the floor then the intake, --tasks each; the tables give the median round")
	fs.StringVar(&o.binary, "binary", "", "approvalbot binary to measure (default: build ./cmd/approvalbot)")
	fs.DurationVar(&o.timeout, "timeout", 4*time.Minute, "give up on the whole run after this")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var problems []string
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	switch o.mode {
	case "targets", "slack", "scale", "replicas", "teams":
	default:
		problems = append(problems, fmt.Sprintf("--mode must be targets, slack, scale, replicas or teams, not %q", o.mode))
	}
	if o.runs < 1 || o.rounds < 1 || o.replicaPending < 1 {
		problems = append(problems, "--runs, --rounds and --replica-pending must be at least 1")
	}
	if o.interval <= 0 || o.phaseTimeout <= 0 {
		problems = append(problems, "--interval and --phase-timeout must be positive")
	}
	if o.store != "bolt" && o.store != "dynamodb" {
		problems = append(problems, fmt.Sprintf("--store must be bolt or dynamodb, not %q", o.store))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"tasks", o.tasks}, {"concurrency", o.concurrency}, {"pending", o.pending}, {"clicks", o.clicks}, {"starts", o.starts}, {"intake-rounds", o.intakeRounds}} {
		if f.v < 1 {
			problems = append(problems, fmt.Sprintf("--%s must be at least 1", f.name))
		}
	}
	if o.rate < 0 {
		problems = append(problems, "--rate must not be negative")
	}
	if o.timeout <= 0 {
		problems = append(problems, "--timeout must be positive")
	}
	if len(problems) > 0 {
		fmt.Fprintln(stderr, "approvalbench: "+strings.Join(problems, "; "))
		return o, errors.New("usage")
	}
	o.clicks = min(o.clicks, o.tasks)
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	b := &bench{opts: o, log: stderr}
	switch o.mode {
	case "slack":
		err = b.runSlack(ctx)
	case "scale":
		err = b.runScale(ctx)
	case "replicas":
		err = b.runReplicas(ctx)
	case "teams":
		err = b.runTeams(ctx)
	default:
		err = b.run(ctx)
	}
	if cerr := b.cleanup(); err == nil {
		err = cerr
	}
	switch o.mode {
	case "slack":
		fmt.Fprint(stdout, b.slackReport())
	case "scale":
		fmt.Fprint(stdout, b.scaleReport())
	case "replicas":
		fmt.Fprint(stdout, b.replicasReport())
	case "teams":
		fmt.Fprint(stdout, b.teamsReport())
	default:
		fmt.Fprint(stdout, b.res.report(o))
	}
	if err != nil || len(b.res.Problems) > 0 {
		for _, p := range b.res.Problems {
			fmt.Fprintln(stderr, "approvalbench: error:", p)
		}
		if err != nil {
			fmt.Fprintln(stderr, "approvalbench:", err)
		}
		fmt.Fprintln(stderr, "approvalbench: broken run: the numbers above are incomplete or unreliable")
		return 1
	}
	return 0
}

// bench is one run.
type bench struct {
	opts options
	log  io.Writer

	dir      string
	bin      string
	secrets  secrets
	env      []string
	slack    *slacktest.Server
	fd       *flexdeploytest.Server
	index    *slackIndex
	endpoint string // dynalite
	stopDyn  func()
	bot      *bot
	floor    *floor

	res results
	// The scaling modes' results.
	slackRuns   []slackRun
	scaleRuns   []scaleRun
	replicaRuns []replicaRun
	teams       teamsRun
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "approvalbench: "+format+"\n", args...)
}

// problem records an error that makes the run broken, and goes on.
func (b *bench) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.res.Problems = append(b.res.Problems, msg)
	b.logf("error: %s", msg)
}

// prepare makes the run's directory, builds the bot (unpaced: with Slack
// pacing off) unless --binary names one, and makes the secrets.
func (b *bench) prepare(ctx context.Context, unpaced bool) error {
	b.res.Store = b.opts.store
	b.res.CPUs = runtime.NumCPU()
	b.res.CPUModel = cpuModel()
	b.res.OS = runtime.GOOS + "/" + runtime.GOARCH
	var err error
	if b.dir, err = os.MkdirTemp("", "approvalbench-"); err != nil {
		return err
	}
	b.bin = b.opts.binary
	if b.bin == "" {
		b.logf("building ./cmd/approvalbot (Slack pacing %s)", map[bool]string{true: "off", false: "on"}[unpaced])
		if b.bin, err = buildBot(ctx, b.dir, unpaced); err != nil {
			return err
		}
	}
	if b.res.Binary, err = inspectBinary(b.bin); err != nil {
		b.logf("%v", err)
	}
	b.secrets = newSecrets()
	b.env = childEnv()
	return nil
}

// run measures DESIGN.md's targets. The fake Slack has no limits, and the
// bot is built with Slack pacing off: otherwise each of its thousands of
// messages would wait for its turn under Slack's limits, which is not what
// these targets measure (--mode slack does).
func (b *bench) run(ctx context.Context) error {
	// Each load first fills the client's connection pool, unmeasured.
	b.res.Warmup = 2 * b.opts.concurrency
	if err := b.prepare(ctx, true); err != nil {
		return err
	}

	// The floor runs first, while nothing else of the bench's runs.
	if err := b.floorPhase(ctx); err != nil {
		return err
	}

	b.index = newSlackIndex()
	b.slack = slacktest.New()
	// Recording every call would grow the bench without bound; the index
	// sees each call through the answer hook instead.
	b.slack.Quiet = true
	b.slack.SetAnswer(b.index.hook)
	b.fd = flexdeploytest.New()

	if b.opts.store == "dynamodb" {
		b.logf("starting dynalite")
		var err error
		if b.endpoint, b.stopDyn, err = dynalite.Start(ctx); err != nil {
			return err
		}
	}

	if err := b.startsPhase(ctx); err != nil {
		return err
	}
	if err := b.intakePhase(ctx); err != nil {
		return err
	}
	if err := b.clickPhase(ctx); err != nil {
		return err
	}
	if err := b.racePhase(ctx); err != nil {
		return err
	}
	if err := b.bot.stop(); err != nil {
		b.problem("%v", err)
	}
	return b.pendingPhase(ctx)
}

// cpuUse is the CPU time used so far by the bot and by the bench itself
// (load generator and fakes).
type cpuUse struct{ bot, bench time.Duration }

func (c cpuUse) since(before cpuUse) cpuUse {
	return cpuUse{bot: c.bot - before.bot, bench: c.bench - before.bench}
}

func (c cpuUse) add(d cpuUse) cpuUse { return cpuUse{bot: c.bot + d.bot, bench: c.bench + d.bench} }

func (b *bench) cpuNow() cpuUse {
	c := cpuUse{bench: selfCPU()}
	if b.bot != nil && b.bot.cmd != nil && b.bot.cmd.Process != nil {
		c.bot, _ = procCPU(b.bot.pid())
	}
	return c
}

// cleanup stops whatever is still running and removes the temp dir.
func (b *bench) cleanup() error {
	var errs []error
	if b.bot != nil && b.bot.cmd != nil && b.bot.running() {
		// Only after a phase failed: its error is the one to report.
		_ = b.bot.stop()
	}
	if b.floor != nil {
		_ = b.floor.close() // only after a phase failed
	}
	if b.slack != nil {
		b.slack.Close()
	}
	if b.fd != nil {
		b.fd.Close()
	}
	if b.stopDyn != nil {
		b.stopDyn()
	}
	if b.dir != "" {
		if err := os.RemoveAll(b.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// newBot writes a configuration for a fresh store named name and returns
// the bot to start with it (the dynamodb table is created here).
func (b *bench) newBot(ctx context.Context, name string) (*bot, error) {
	return b.newBotWith(ctx, name, nil)
}

// newBotWith is newBot with the configuration changed by edit (may be
// nil); the dynamodb table is created unless edit names an existing one
// in cfg.Table (the replicas share one: see createTableOnce).
func (b *bench) newBotWith(ctx context.Context, name string, edit func(*botConfig) (createTable bool)) (*bot, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfg := botConfig{
		Listen:        addr,
		Store:         b.opts.store,
		BoltPath:      filepath.Join(b.dir, name+".db"),
		Table:         "approvalbench-" + name,
		Endpoint:      b.endpoint,
		SlackAPIURL:   b.slack.APIURL(),
		FlexDeployURL: b.fd.BaseURL(),
		Secrets:       b.secrets,
		NoEnrich:      !b.opts.enrich,
	}
	create := true
	if edit != nil {
		create = edit(&cfg)
	}
	path := filepath.Join(b.dir, name+".yaml")
	if err := writeConfig(path, cfg); err != nil {
		return nil, err
	}
	if cfg.Store == "dynamodb" && create {
		if err := createTable(ctx, b.bin, path, b.env); err != nil {
			return nil, err
		}
	}
	return &bot{bin: b.bin, config: path, url: "http://" + addr, env: b.env, boltPath: cfg.BoltPath}, nil
}

// startsPhase starts the bot --starts times on the same (empty) store and
// keeps the last one running.
func (b *bench) startsPhase(ctx context.Context) error {
	var err error
	if b.bot, err = b.newBot(ctx, "main"); err != nil {
		return err
	}
	for i := range b.opts.starts {
		d, err := b.bot.start(ctx)
		if err != nil {
			return err
		}
		b.res.Starts = append(b.res.Starts, d)
		b.logf("start %d: ready in %s", i+1, ms(d))
		if i < b.opts.starts-1 {
			if err := b.bot.stop(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *bench) intakePhase(ctx context.Context) error {
	b.index.setIndexing(true)
	client := newClient(b.opts.concurrency)
	defer client.CloseIdleConnections()
	warm := b.res.Warmup
	b.logf("intake: %d warm-up tasks, then %d rounds of %d tasks from %d clients, each after one of the floor",
		warm, b.opts.intakeRounds, b.opts.tasks, b.opts.concurrency)
	w := runLoad(ctx, client, load{N: warm, Concurrency: b.opts.concurrency, Want: 202}, func(ctx context.Context, i int) (*http.Request, error) {
		return intakeRequest(ctx, b.bot.url, b.secrets.APIKey, "w"+itoa(i))
	})
	if w.Errors > 0 {
		b.problem("warm-up intake: %d of %d failed, first: %s", w.Errors, w.N, w.FirstErr)
	}
	if err := b.index.waitPosts(ctx, warm, 3*time.Minute); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	// Rounds of floor, then intake: each ratio compares loads a few
	// seconds apart, which the neighbours' load moves less than it moves
	// a whole run. The first round's floor ran before the bot started.
	for round := range b.opts.intakeRounds {
		if round > 0 {
			if err := b.floorRound(ctx, fmt.Sprintf("f%d-", round)); err != nil {
				return err
			}
		}
		prefix := "t"
		if round > 0 {
			prefix = fmt.Sprintf("t%d-", round)
		}
		posted := b.index.postCount()
		began := time.Now()
		cpu0 := b.cpuNow()
		r := runLoad(ctx, client, load{N: b.opts.tasks, Concurrency: b.opts.concurrency, Want: 202}, func(ctx context.Context, i int) (*http.Request, error) {
			return intakeRequest(ctx, b.bot.url, b.secrets.APIKey, prefix+itoa(i))
		})
		cpu1 := b.cpuNow()
		b.res.IntakeRounds = append(b.res.IntakeRounds, r)
		b.res.IntakeCPU = b.res.IntakeCPU.add(cpu1.since(cpu0))
		if r.Errors > 0 {
			b.problem("intake: %d of %d failed, first: %s", r.Errors, r.N, r.FirstErr)
		}
		b.logf("intake round %d: %.0f tasks/s, p99 %s (floor %.0f req/s); waiting for the outbox to post them",
			round+1, r.Throughput(), ms(r.Latency.P99), b.res.FloorRounds[round].Throughput())
		if err := b.index.waitPosts(ctx, posted+b.opts.tasks, 3*time.Minute); err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		b.res.PostedCPU = b.res.PostedCPU.add(b.cpuNow().since(cpu0))
		if round == 0 {
			b.res.PostedAll = time.Since(began)
		}
	}
	b.res.Intake, b.res.Floor = medianRound(b.res.IntakeRounds), medianRound(b.res.FloorRounds)
	f := b.floor
	b.floor = nil
	if err := f.close(); err != nil {
		return err
	}
	if m, err := scrapeMetrics(ctx, b.bot.url); err == nil {
		b.res.StoreOps = map[string]float64{}
		for _, op := range []string{"create", "get", "update", "due"} {
			b.res.StoreOps[op] = metricSum(m, "approvalbot_store_operation_seconds_count", `op="`+op+`"`)
		}
		b.res.Rounds = metricSum(m, "approvalbot_outbox_attempts_total")
	}

	if b.opts.rate <= 0 {
		return nil
	}
	n := int(b.opts.rate * pacedFor.Seconds())
	b.logf("intake: %d tasks paced at %.0f/s", n, b.opts.rate)
	posted := b.index.postCount()
	b.res.Paced = runLoad(ctx, client, load{N: n, Concurrency: b.opts.concurrency, Rate: b.opts.rate, Want: 202}, func(ctx context.Context, i int) (*http.Request, error) {
		return intakeRequest(ctx, b.bot.url, b.secrets.APIKey, "r"+itoa(i))
	})
	if r := b.res.Paced; r.Errors > 0 {
		b.problem("paced intake: %d of %d failed, first: %s", r.Errors, r.N, r.FirstErr)
	}
	b.logf("intake: p99 %s at %.0f/s", ms(b.res.Paced.Latency.P99), b.opts.rate)
	if err := b.index.waitPosts(ctx, posted+n, 3*time.Minute); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// pacedFor is how long the paced intake lasts.
const pacedFor = 5 * time.Second

// clickPhase clicks approve on a sample of the posted tasks, one click at a
// time and at most 100 a second (a latency measurement, not a flood), then
// waits for FlexDeploy to hear of each.
func (b *bench) clickPhase(ctx context.Context) error {
	client := newClient(1)
	defer client.CloseIdleConnections()
	n := b.opts.clicks
	sent := make(map[string]time.Time, n) // FlexDeploy task id → click sent
	var lat []time.Duration
	b.logf("clicks: %d tasks", n)
	const pace = 10 * time.Millisecond
	for i := range n {
		taskID := "t" + itoa(i*b.opts.tasks/n)
		m, err := b.index.waitMessage(ctx, recordID(taskID), 10*time.Second)
		if err != nil {
			return err
		}
		req, err := clickRequest(ctx, b.bot.url, b.secrets.SigningSecret, m, "approve", approvers[i%len(approvers)])
		if err != nil {
			return err
		}
		status, at, d, err := do(client, req)
		switch {
		case err != nil:
			b.problem("click on %s: %v", taskID, err)
			continue
		case status != 200:
			b.problem("click on %s answered %d", taskID, status)
			continue
		}
		lat = append(lat, d)
		sent[taskID] = at
		if wait := pace - time.Since(at); wait > 0 {
			time.Sleep(wait)
		}
	}
	b.res.Click = summarize(lat)

	// Each click must reach FlexDeploy as one PUT.
	arrived := map[string]time.Time{}
	err := waitUntil(ctx, 30*time.Second, func() bool {
		for _, c := range b.fd.Decisions() {
			id := c.Path[strings.LastIndex(c.Path, "/")+1:]
			if _, ok := sent[id]; ok {
				if _, seen := arrived[id]; !seen {
					arrived[id] = c.At
				}
			}
		}
		return len(arrived) >= len(sent)
	}, func() string { return fmt.Sprintf("%d of %d clicks reached FlexDeploy", len(arrived), len(sent)) })
	if err != nil {
		b.problem("click to FlexDeploy: %v", err)
	}
	var toPut []time.Duration
	for id, at := range arrived {
		toPut = append(toPut, at.Sub(sent[id]))
	}
	b.res.ClickToPut = summarize(toPut)
	b.logf("clicks: 200 p99 %s; FlexDeploy p50 %s", ms(b.res.Click.P99), ms(b.res.ClickToPut.P50))
	return nil
}

// racePhase sends 50 clicks at once on one message (approve and reject
// from three approvers) and counts FlexDeploy's PUTs for its task.
func (b *bench) racePhase(ctx context.Context) error {
	const clicks = 50
	const taskID = "race"
	client := newClient(clicks)
	defer client.CloseIdleConnections()
	req, err := intakeRequest(ctx, b.bot.url, b.secrets.APIKey, taskID)
	if err != nil {
		return err
	}
	if status, _, _, err := do(client, req); err != nil || status != 202 {
		return fmt.Errorf("race: intake answered %d, %v", status, err)
	}
	m, err := b.index.waitMessage(ctx, recordID(taskID), 10*time.Second)
	if err != nil {
		return err
	}
	reqs := make([]*http.Request, clicks)
	for i := range reqs {
		action := "approve"
		if i%3 == 1 {
			action = "reject"
		}
		if reqs[i], err = clickRequest(ctx, b.bot.url, b.secrets.SigningSecret, m, action, approvers[i%len(approvers)]); err != nil {
			return err
		}
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		ok    int
		start = make(chan struct{})
		errs  []string
	)
	for _, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			status, _, _, err := do(client, r)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err.Error())
			case status != 200:
				errs = append(errs, fmt.Sprintf("answered %d", status))
			default:
				ok++
			}
		}()
	}
	close(start)
	wg.Wait()
	for _, e := range errs {
		b.problem("race click: %s", e)
	}
	puts := func() int {
		n := 0
		for _, c := range b.fd.Decisions() {
			if strings.HasSuffix(c.Path, "/"+taskID) {
				n++
			}
		}
		return n
	}
	if err := waitUntil(ctx, 10*time.Second, func() bool { return puts() > 0 }, func() string { return "no PUT for the raced task" }); err != nil {
		b.problem("race: %v", err)
	}
	// A second decision would be delivered as quickly as the first: give
	// it ample time to show.
	time.Sleep(time.Second)
	b.res.Race = raceResult{Clicks: clicks, OK: ok, PUTs: puts()}
	b.logf("race: %d clicks answered 200, %d FlexDeploy call(s)", ok, b.res.Race.PUTs)
	return nil
}

// floorPhase starts the bare HTTP + bbolt floor and drives its first round
// with the intake's load; it stays up (idle) for the later rounds.
func (b *bench) floorPhase(ctx context.Context) error {
	f, err := startFloor(b.dir)
	if err != nil {
		return err
	}
	b.floor = f
	client := newClient(b.opts.concurrency)
	defer client.CloseIdleConnections()
	b.logf("floor: %d tasks from %d clients", b.opts.tasks, b.opts.concurrency)
	_ = runLoad(ctx, client, load{N: b.res.Warmup, Concurrency: b.opts.concurrency, Want: 202}, func(ctx context.Context, i int) (*http.Request, error) {
		return intakeRequest(ctx, f.URL, b.secrets.APIKey, "w"+itoa(i))
	})
	return b.floorRound(ctx, "t")
}

// floorRound is one round of the floor with the intake's load.
func (b *bench) floorRound(ctx context.Context, prefix string) error {
	client := newClient(b.opts.concurrency)
	defer client.CloseIdleConnections()
	cpu0 := selfCPU()
	r := runLoad(ctx, client, load{N: b.opts.tasks, Concurrency: b.opts.concurrency, Want: 202}, func(ctx context.Context, i int) (*http.Request, error) {
		return intakeRequest(ctx, b.floor.URL, b.secrets.APIKey, prefix+itoa(i))
	})
	b.res.FloorCPU += selfCPU() - cpu0
	b.res.FloorRounds = append(b.res.FloorRounds, r)
	if r.Errors > 0 {
		b.problem("floor: %d of %d failed, first: %s", r.Errors, r.N, r.FirstErr)
	}
	return nil
}

// medianRound is the round of median throughput.
func medianRound(rounds []loadResult) loadResult {
	if len(rounds) == 0 {
		return loadResult{}
	}
	sorted := slices.Clone(rounds)
	slices.SortFunc(sorted, func(a, b loadResult) int { return cmp.Compare(a.Throughput(), b.Throughput()) })
	return sorted[(len(sorted)-1)/2]
}

// pendingPhase starts a bot on a fresh store, intakes --pending tasks,
// lets the outbox post them all, and reads the bot's memory.
func (b *bench) pendingPhase(ctx context.Context) error {
	b.index.setIndexing(false)
	var err error
	if b.bot, err = b.newBot(ctx, "pending"); err != nil {
		return err
	}
	if _, err := b.bot.start(ctx); err != nil {
		return err
	}
	posted := b.index.postCount()
	client := newClient(b.opts.concurrency)
	defer client.CloseIdleConnections()
	b.logf("pending: %d tasks", b.opts.pending)
	began := time.Now()
	r := runLoad(ctx, client, load{N: b.opts.pending, Concurrency: b.opts.concurrency, Want: 202}, func(ctx context.Context, i int) (*http.Request, error) {
		return intakeRequest(ctx, b.bot.url, b.secrets.APIKey, "p"+itoa(i))
	})
	// Before any stop: a connection the client dialed but never used
	// would hold the bot's graceful shutdown for seconds.
	client.CloseIdleConnections()
	b.res.PendingIntake = r
	if r.Errors > 0 {
		b.problem("pending intake: %d of %d failed, first: %s", r.Errors, r.N, r.FirstErr)
	}
	if err := b.index.waitPosts(ctx, posted+b.opts.pending, 3*time.Minute); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	b.res.PendingPosted = time.Since(began)
	// Let the last outbox writes and a collection settle: the peak is
	// kept anyway, the current size is read after the quiet second.
	time.Sleep(time.Second)
	mem, err := procMemory(b.bot.pid())
	if err != nil {
		b.logf("memory: %v", err)
	} else {
		b.res.Memory = mem
	}
	b.logf("pending: peak RSS %s", mib(mem.HWM))
	if b.opts.store == "bolt" {
		if st, err := os.Stat(filepath.Join(b.dir, "pending.db")); err == nil {
			b.res.StoreFileBytes = st.Size()
		}
	}
	if err := b.bot.stop(); err != nil {
		b.problem("%v", err)
	}
	// A start with a store full of pending tasks: what a restart costs.
	d, err := b.bot.start(ctx)
	if err != nil {
		return err
	}
	b.res.RestartReady = d
	b.logf("restart with %d pending: ready in %s", b.opts.pending, ms(d))
	if err := b.bot.stop(); err != nil {
		b.problem("%v", err)
	}
	return nil
}
