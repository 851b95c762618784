package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/approvalbot/approvalbot/internal/dynalite"
	"github.com/approvalbot/approvalbot/internal/flexdeploytest"
	"github.com/approvalbot/approvalbot/internal/slacktest"
)

// replicaRun is one replica count of --mode replicas: the FlexDeploy reads
// of --rounds reconcile intervals, with every replica on one table.
type replicaRun struct {
	Replicas int
	Note     string // what happened before the count
	Rounds   []reconcileRound
	Window   time.Duration
	Reads    int // in the window
}

// reconcileRound is a burst of reads: a reconcile round.
type reconcileRound struct {
	Reads, Tasks int            // reads, distinct tasks read
	By           map[string]int // reads by replica (its FlexDeploy user)
	Took         time.Duration
}

// runReplicas seeds --replica-pending tasks through one replica, then
// counts FlexDeploy's reads per reconcile interval as replicas join. Slack
// pacing is off (the seeding's posts are not what is measured).
func (b *bench) runReplicas(ctx context.Context) error {
	if err := b.prepare(ctx, true); err != nil {
		return err
	}
	b.res.Store = "dynamodb"
	b.index = newSlackIndex()
	b.slack = slacktest.New()
	b.slack.Quiet = true
	b.slack.SetAnswer(b.index.hook)
	b.fd = flexdeploytest.New()
	b.logf("starting dynalite")
	var err error
	if b.endpoint, b.stopDyn, err = dynalite.Start(ctx); err != nil {
		return err
	}
	const table = "approvalbench-replicas"
	var bots []*bot
	defer func() {
		for _, r := range bots {
			if err := r.stop(); err != nil {
				b.problem("%v", err)
			}
		}
	}()
	add := func() error {
		i := len(bots)
		r, err := b.newBotWith(ctx, fmt.Sprintf("replica%d", i), func(c *botConfig) bool {
			c.Store, c.Table = "dynamodb", table
			c.Reconcile = b.opts.interval.String()
			c.FDUser = fmt.Sprintf("replica%d", i)
			return i == 0
		})
		if err != nil {
			return err
		}
		if _, err := r.start(ctx); err != nil {
			return err
		}
		bots = append(bots, r)
		return nil
	}
	if err := add(); err != nil {
		return err
	}
	n := b.opts.replicaPending
	b.logf("replicas: %d pending tasks through replica0", n)
	client := newClient(8)
	res := runLoad(ctx, client, load{N: n, Concurrency: 8, Want: http.StatusAccepted}, func(ctx context.Context, i int) (*http.Request, error) {
		return intakeRequest(ctx, bots[0].url, b.secrets.APIKey, "rp"+itoa(i))
	})
	client.CloseIdleConnections()
	if res.Errors > 0 {
		return fmt.Errorf("seeding: %d of %d failed, first: %s", res.Errors, res.N, res.FirstErr)
	}
	if err := b.index.waitPosts(ctx, n, 3*time.Minute); err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	count := func(note string) {
		// A whole interval first, so that every replica has had its tick.
		time.Sleep(b.opts.interval)
		from := len(b.fd.Reads())
		window := time.Duration(b.opts.rounds) * b.opts.interval
		b.logf("replicas: %d, counting reads for %s", len(bots), window)
		time.Sleep(window)
		reads := b.fd.Reads()[from:]
		run := replicaRun{Replicas: len(bots), Note: note, Window: window, Reads: len(reads), Rounds: splitRounds(reads, b.opts.interval/2)}
		b.replicaRuns = append(b.replicaRuns, run)
		b.logf("replicas: %d: %d reads in %s", run.Replicas, run.Reads, window)
	}
	for _, want := range b.opts.replicas {
		for len(bots) < want {
			if err := add(); err != nil {
				return err
			}
		}
		count("")
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if len(bots) > 1 {
		// The replica that reconciles stops (SIGTERM): another takes over.
		if err := bots[0].stop(); err != nil {
			b.problem("%v", err)
		}
		bots = bots[1:]
		count("replica0 (reconciling) stopped")
	}
	return nil
}

// splitRounds cuts reads (in time order) into rounds wherever two are
// further apart than gap.
func splitRounds(reads []flexdeploytest.Call, gap time.Duration) []reconcileRound {
	var rounds []reconcileRound
	var cur []flexdeploytest.Call
	flush := func() {
		if len(cur) == 0 {
			return
		}
		r := reconcileRound{Reads: len(cur), By: map[string]int{}, Took: cur[len(cur)-1].At.Sub(cur[0].At)}
		tasks := map[string]bool{}
		for _, c := range cur {
			tasks[c.Path] = true
			r.By[c.User()]++
		}
		r.Tasks = len(tasks)
		rounds = append(rounds, r)
		cur = nil
	}
	for i, c := range reads {
		if i > 0 && c.At.Sub(reads[i-1].At) > gap {
			flush()
		}
		cur = append(cur, c)
	}
	flush()
	return rounds
}

// replicasReport is the table of --mode replicas.
func (b *bench) replicasReport() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n## approvalbench --mode replicas (store dynamodb on dynalite)\n\n")
	fmt.Fprintf(&sb, "Machine: %d CPUs, %s, %s; bot built with %s; %d pending tasks; reconcile every %s.\n\n",
		b.res.CPUs, b.res.CPUModel, b.res.OS, goVersionOf(b.res.Binary), b.opts.replicaPending, b.opts.interval)
	var rows [][]string
	for _, r := range b.replicaRuns {
		var each, by, took []string
		twice := false
		for _, round := range r.Rounds {
			each = append(each, itoa(round.Reads))
			twice = twice || round.Tasks != round.Reads
			var users []string
			for u, k := range round.By {
				users = append(users, fmt.Sprintf("%s %d", u, k))
			}
			slices.Sort(users)
			by = append(by, strings.Join(users, ", "))
			took = append(took, fmt.Sprintf("%.2f s", round.Took.Seconds()))
		}
		perInterval := float64(r.Reads) / (float64(r.Window) / float64(b.opts.interval))
		who := itoa(r.Replicas)
		if r.Note != "" {
			who += ", after " + r.Note
		}
		rows = append(rows, []string{
			who,
			fmt.Sprintf("%.0f", perInterval),
			strings.Join(each, ", "),
			map[bool]string{true: "yes", false: "no"}[twice],
			strings.Join(slices.Compact(by), " | "),
			strings.Join(took, ", "),
		})
	}
	sb.WriteString(markdownTable([]string{"replicas", "FlexDeploy GETs per interval", "reads per round", "a task read twice in a round",
		"reads by replica", "round took"}, rows))
	writeProblems(&sb, b.res.Problems)
	return sb.String()
}
