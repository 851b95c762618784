package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/approvalbot/approvalbot/internal/flexdeploytest"
	"github.com/approvalbot/approvalbot/internal/slacktest"
)

// slackRun is one run of --mode slack: tasks intaken one after the other,
// spread round-robin over channels, posted by the bot as it ships (paced)
// into a fake Slack that enforces Slack's limits.
type slackRun struct {
	Tasks, Channels int
	Intake          time.Duration // the intake of all tasks
	Posted          int
	First, All      time.Duration // first intake → first post, → last post
	Limited         int           // posts the fake answered 429
	Deferred        float64       // post attempts the bot's pacer sent back to the outbox
	InOrder         bool          // every channel's posts in intake order
	Err             string
}

// floor is the limit's: N/channels seconds for N messages (one a second
// per channel).
func (r slackRun) floor() time.Duration {
	return time.Duration(float64(r.Tasks) / float64(r.Channels) * float64(time.Second))
}

// runSlack runs every combination of --counts and --channels --runs times.
func (b *bench) runSlack(ctx context.Context) error {
	if err := b.prepare(ctx, false); err != nil {
		return err
	}
	b.index = newSlackIndex()
	b.slack = slacktest.New()
	b.slack.Quiet = true
	b.slack.SetAnswer(b.index.hook)
	b.fd = flexdeploytest.New()
	b.fd.Quiet = true
	for _, channels := range b.opts.channels {
		for _, n := range b.opts.counts {
			for run := range b.opts.runs {
				r, err := b.slackRun(ctx, n, channels, run)
				if err != nil {
					r.Err = err.Error()
					b.problem("slack %d tasks over %d channels: %v", n, channels, err)
				}
				b.slackRuns = append(b.slackRuns, r)
				b.logf("slack: %d tasks over %d channel(s): all posted in %s (floor %s), %d 429s, %0.f sent back, in order %v",
					n, channels, ms(r.All), ms(r.floor()), r.Limited, r.Deferred, r.InOrder)
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
	}
	return nil
}

func (b *bench) slackRun(ctx context.Context, n, channels, run int) (slackRun, error) {
	r := slackRun{Tasks: n, Channels: channels}
	var policies strings.Builder
	for c := range channels {
		policies.WriteString(benchPolicy(fmt.Sprintf("c%02d", c), fmt.Sprintf("p%02d", c), fmt.Sprintf("C%02d", c)))
	}
	name := fmt.Sprintf("slack-%d-%d-%d", channels, n, run)
	bot, err := b.newBotWith(ctx, name, func(c *botConfig) bool {
		c.Policies = policies.String()
		return true
	})
	if err != nil {
		return r, err
	}
	b.slack.LimitRates(slacktest.SlackRateLimits()) // full buckets
	limitedBefore := b.slack.RateLimited()["chat.postMessage"]
	b.index.setLogging(true)
	defer b.index.setLogging(false)
	b.bot = bot
	if _, err := bot.start(ctx); err != nil {
		return r, err
	}
	defer func() {
		if err := bot.stop(); err != nil {
			b.problem("%v", err)
		}
	}()

	// One client, one task after the other: the intake order is the
	// order each channel's posts must keep.
	client := newClient(1)
	defer client.CloseIdleConnections()
	prefix := fmt.Sprintf("s%d-%d-%d-", channels, n, run)
	began := time.Now()
	res := runLoad(ctx, client, load{N: n, Concurrency: 1, Want: http.StatusAccepted}, func(ctx context.Context, i int) (*http.Request, error) {
		return intakeRequestIn(ctx, bot.url, b.secrets.APIKey, prefix+itoa(i), fmt.Sprintf("p%02d", i%channels))
	})
	r.Intake = time.Since(began)
	client.CloseIdleConnections()
	if res.Errors > 0 {
		return r, fmt.Errorf("intake: %d of %d failed, first: %s", res.Errors, res.N, res.FirstErr)
	}
	// Ample: three times the floor and a minute.
	wait := 3*r.floor() + time.Minute
	err = waitUntil(ctx, wait, func() bool { return len(b.index.takesLog()) >= n },
		func() string { return fmt.Sprintf("%d of %d posted", len(b.index.takesLog()), n) })
	takes := b.index.takesLog()
	r.Posted = len(takes)
	if len(takes) > 0 {
		r.First = takes[0].At.Sub(began)
		r.All = takes[len(takes)-1].At.Sub(began)
	}
	r.Limited = b.slack.RateLimited()["chat.postMessage"] - limitedBefore
	if m, merr := scrapeMetrics(ctx, bot.url); merr == nil {
		r.Deferred = metricSum(m, "approvalbot_outbox_attempts_total", `job="post"`, `result="wait"`)
	}
	r.InOrder = inIntakeOrder(takes, prefix, n, channels)
	return r, err
}

// inIntakeOrder reports whether each channel's posts came in the order of
// their tasks' intake (task i went to channel i mod channels).
func inIntakeOrder(takes []take, prefix string, n, channels int) bool {
	got := map[string][]string{}
	for _, t := range takes {
		got[t.Channel] = append(got[t.Channel], t.TaskID)
	}
	for c := range channels {
		var want []string
		for i := c; i < n; i += channels {
			want = append(want, recordID(prefix+itoa(i)))
		}
		if !slices.Equal(got[fmt.Sprintf("C%02d", c)], want) {
			return false
		}
	}
	return true
}

// slackReport is the table of --mode slack: the median of the runs of each
// count and channels.
func (b *bench) slackReport() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n## approvalbench --mode slack\n\n")
	fmt.Fprintf(&sb, "Machine: %d CPUs, %s, %s; bot built with %s, Slack pacing as it ships; fake Slack with Slack's limits "+
		"(chat.postMessage 1/s per channel, burst 4; chat.update 50/min).\n\n", b.res.CPUs, b.res.CPUModel, b.res.OS, goVersionOf(b.res.Binary))
	var rows [][]string
	type key struct{ n, ch int }
	groups := map[key][]slackRun{}
	var order []key
	for _, r := range b.slackRuns {
		k := key{r.Tasks, r.Channels}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	for _, k := range order {
		runs := groups[k]
		var all, first []time.Duration
		var limited, deferred []int
		inOrder, posted := true, 0
		for _, r := range runs {
			all, first = append(all, r.All), append(first, r.First)
			limited, deferred = append(limited, r.Limited), append(deferred, int(r.Deferred))
			inOrder = inOrder && r.InOrder && r.Err == ""
			posted = min(posted, r.Posted)
			if posted == 0 {
				posted = r.Posted
			}
		}
		floor := runs[0].floor()
		m := median(all)
		rows = append(rows, []string{
			itoa(k.n), itoa(k.ch),
			fmt.Sprintf("%.1f s", m.Seconds()),
			fmt.Sprintf("%.0f s", floor.Seconds()),
			fmt.Sprintf("%.2f×", m.Seconds()/floor.Seconds()),
			fmt.Sprintf("%.2f s", median(first).Seconds()),
			joinInts(limited),
			joinInts(deferred),
			fmt.Sprintf("%d of %d; %s", posted, k.n, map[bool]string{true: "in order", false: "NOT in order"}[inOrder]),
			itoa(len(runs)),
		})
	}
	sb.WriteString(markdownTable([]string{"tasks", "channels", "all posted after (median)", "floor (N/channels s)", "÷ floor",
		"first post after", "429s received (each run)", "sent back by the pacer (each run)", "posted", "runs"}, rows))
	writeProblems(&sb, b.res.Problems)
	return sb.String()
}

func joinInts(ns []int) string {
	var parts []string
	for _, n := range ns {
		parts = append(parts, itoa(n))
	}
	return strings.Join(parts, ", ")
}

func goVersionOf(f binaryFacts) string {
	if f.GoVersion == "" {
		return "unknown Go"
	}
	return f.GoVersion
}

func writeProblems(sb *strings.Builder, problems []string) {
	if len(problems) == 0 {
		return
	}
	sb.WriteString("\nErrors (broken run):\n")
	for _, p := range problems {
		sb.WriteString("- " + p + "\n")
	}
}
