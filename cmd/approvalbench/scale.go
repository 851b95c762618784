package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/approvalbot/approvalbot/internal/flexdeploytest"
	"github.com/approvalbot/approvalbot/internal/slacktest"
)

// scaleRun is one run of --mode scale: N tasks intaken and posted on a
// fresh bolt store, then the bot restarted with them pending.
type scaleRun struct {
	Pending int
	Intake  loadResult
	Posted  int
	// PostedIn is intake start → every message posted; Stopped says the
	// run gave up waiting (--phase-timeout).
	PostedIn   time.Duration
	Stopped    string
	Memory     memory // the bot that intook and posted them, a second after
	StoreBytes int64
	Ready      time.Duration // restart → first 200 from /readyz
	// Sweeps and SweepTime: sweeps of the restarted bot (every second,
	// nothing due) and the time of their store reads (Due).
	Sweeps    float64
	SweepTime time.Duration
	// Reconcile is the restarted bot's first reconcile round: the reads
	// of FlexDeploy it made (one per pending task) and first to last.
	ReconcileReads int
	Reconcile      time.Duration
	// ReconcileDue is the time of its store reads (the due index, paged).
	ReconcileDue time.Duration
	After        memory // the restarted bot after the round
}

// scaleReconcile is the restarted bot's reconcile interval: its first
// round starts that long after the start, leaving the sweeps alone before.
const scaleReconcile = 8 * time.Second

// runScale runs each --scale-pending count. The fake Slack has no limits
// and the bot is built with Slack pacing off, as for the targets: what is
// measured is the store and the loops, not Slack.
func (b *bench) runScale(ctx context.Context) error {
	if err := b.prepare(ctx, true); err != nil {
		return err
	}
	b.index = newSlackIndex()
	b.slack = slacktest.New()
	b.slack.Quiet = true
	b.slack.SetAnswer(b.index.hook)
	b.fd = flexdeploytest.New()
	b.res.Store = "bolt"
	for _, n := range b.opts.scalePending {
		r, err := b.scaleRun(ctx, n)
		b.scaleRuns = append(b.scaleRuns, r)
		if err != nil {
			b.problem("scale %d: %v", n, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

func (b *bench) scaleRun(ctx context.Context, n int) (scaleRun, error) {
	r := scaleRun{Pending: n}
	name := fmt.Sprintf("scale-%d", n)
	bot, err := b.newBotWith(ctx, name, func(c *botConfig) bool {
		c.Store = "bolt"
		return true
	})
	if err != nil {
		return r, err
	}
	b.bot = bot
	if _, err := bot.start(ctx); err != nil {
		return r, err
	}
	posted := b.index.postCount()
	client := newClient(b.opts.concurrency)
	b.logf("scale %d: intake", n)
	began := time.Now()
	r.Intake = runLoad(ctx, client, load{N: n, Concurrency: b.opts.concurrency, Want: http.StatusAccepted}, func(ctx context.Context, i int) (*http.Request, error) {
		return intakeRequest(ctx, bot.url, b.secrets.APIKey, fmt.Sprintf("n%d-%d", n, i))
	})
	client.CloseIdleConnections()
	if r.Intake.Errors > 0 {
		b.problem("scale %d intake: %d of %d failed, first: %s", n, r.Intake.Errors, r.Intake.N, r.Intake.FirstErr)
	}
	if err := b.index.waitPosts(ctx, posted+n, b.opts.phaseTimeout); err != nil {
		r.Stopped = fmt.Sprintf("posting stopped after %s: %v", b.opts.phaseTimeout, err)
		b.logf("scale %d: %s", n, r.Stopped)
	}
	r.Posted = b.index.postCount() - posted
	r.PostedIn = time.Since(began)
	b.logf("scale %d: %d posted in %s", n, r.Posted, ms(r.PostedIn))
	time.Sleep(time.Second)
	if r.Memory, err = procMemory(bot.pid()); err != nil {
		b.logf("memory: %v", err)
	}
	if err := bot.stop(); err != nil {
		return r, err
	}
	if st, err := os.Stat(bot.boltPath); err == nil {
		r.StoreBytes = st.Size()
	}

	// The restart: sweeps every second, reconcile after scaleReconcile.
	restarted, err := b.newBotWith(ctx, name, func(c *botConfig) bool {
		c.Store, c.Sweep, c.Reconcile = "bolt", "1s", scaleReconcile.String()
		return true
	})
	if err != nil {
		return r, err
	}
	b.bot = restarted
	reads := len(b.fd.Reads())
	if r.Ready, err = restarted.start(ctx); err != nil {
		return r, err
	}
	started := time.Now()
	defer func() {
		if err := restarted.stop(); err != nil {
			b.problem("%v", err)
		}
	}()
	// Sweeps alone: from 1 s to 6 s after the start.
	time.Sleep(time.Second)
	m0, err := scrapeMetrics(ctx, restarted.url)
	if err != nil {
		return r, err
	}
	time.Sleep(5 * time.Second)
	m1, err := scrapeMetrics(ctx, restarted.url)
	if err != nil {
		return r, err
	}
	due := func(m map[string]float64, suffix string) float64 {
		return metricSum(m, "approvalbot_store_operation_seconds_"+suffix, `op="due"`)
	}
	if r.Sweeps = due(m1, "count") - due(m0, "count"); r.Sweeps > 0 {
		r.SweepTime = time.Duration((due(m1, "sum") - due(m0, "sum")) / r.Sweeps * float64(time.Second))
	}
	// The first reconcile round: one read per pending task.
	b.logf("scale %d: waiting for a reconcile round", n)
	// Polled slowly: Reads copies every call the fake recorded, which with
	// 100,000 tasks would take the bot's CPU if done every few milliseconds.
	err = waitSlowly(ctx, scaleReconcile+b.opts.phaseTimeout, func() bool { return len(b.fd.Reads())-reads >= n },
		func() string { return fmt.Sprintf("%d of %d reads of the reconcile round", len(b.fd.Reads())-reads, n) })
	round := b.fd.Reads()[reads:]
	round = round[:min(len(round), n)] // the next round may have begun
	r.ReconcileReads = len(round)
	if len(round) > 0 {
		r.Reconcile = round[len(round)-1].At.Sub(round[0].At)
	}
	if err != nil {
		r.Stopped = strings.TrimPrefix(r.Stopped+"; ", "; ") + fmt.Sprintf("reconcile round stopped: %v", err)
	}
	if m2, merr := scrapeMetrics(ctx, restarted.url); merr == nil {
		// Every due read after the quiet window: the round's pages (and
		// the sweeps meanwhile, a millisecond or less each).
		r.ReconcileDue = time.Duration((due(m2, "sum") - due(m1, "sum")) * float64(time.Second))
	}
	if r.After, err = procMemory(restarted.pid()); err != nil {
		b.logf("memory: %v", err)
	}
	b.logf("scale %d: ready %s, reconcile round %s (%d reads), %s after the start", n, ms(r.Ready), ms(r.Reconcile), r.ReconcileReads, ms(time.Since(started)))
	return r, nil
}

// waitSlowly is waitUntil polling every quarter of a second.
func waitSlowly(ctx context.Context, timeout time.Duration, cond func() bool, state func() string) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s: %s", timeout, state())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", state(), ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}

// scaleReport is the table of --mode scale.
func (b *bench) scaleReport() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n## approvalbench --mode scale (store bolt)\n\n")
	fmt.Fprintf(&sb, "Machine: %d CPUs, %s, %s; bot built with %s, Slack pacing off; fake Slack without limits.\n\n",
		b.res.CPUs, b.res.CPUModel, b.res.OS, goVersionOf(b.res.Binary))
	var rows [][]string
	for _, r := range b.scaleRuns {
		mem := func(m memory) string {
			if m.HWM == 0 {
				return "–"
			}
			return fmt.Sprintf("%s peak; %s = %s anon + %s mapped", mib(m.HWM), mib(m.RSS), mib(m.Anon), mib(m.File))
		}
		note := r.Stopped
		if note == "" {
			note = "complete"
		}
		rows = append(rows, []string{
			itoa(r.Pending),
			fmt.Sprintf("%.0f/s, p99 %s; %d posted in %.1f s", r.Intake.Throughput(), ms(r.Intake.Latency.P99), r.Posted, r.PostedIn.Seconds()),
			mem(r.Memory),
			mib(r.StoreBytes / 1024),
			ms(r.Ready),
			fmt.Sprintf("%s (mean of %.0f)", ms(r.SweepTime), r.Sweeps),
			fmt.Sprintf("%.2f s, %d reads; due pages %s", r.Reconcile.Seconds(), r.ReconcileReads, ms(r.ReconcileDue)),
			mem(r.After),
			note,
		})
	}
	sb.WriteString(markdownTable([]string{"pending", "intake, posting", "RSS after intake and posting", "bolt file", "ready (restart)",
		"sweep round (nothing due)", "reconcile round", "RSS after restart and a round", "run"}, rows))
	writeProblems(&sb, b.res.Problems)
	return sb.String()
}
