package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// results of one run; a phase that did not run leaves its zero values.
type results struct {
	Store    string
	CPUs     int
	CPUModel string
	OS       string
	Binary   binaryFacts

	Starts     []time.Duration
	Warmup     int
	Intake     loadResult
	Paced      loadResult    // intake at --rate
	PostedAll  time.Duration // intake start → every message posted
	Click      summary
	ClickToPut summary
	Race       raceResult
	Floor      loadResult
	// The rounds, in order: Intake and Floor are the median ones.
	IntakeRounds, FloorRounds []loadResult
	// CPU used during the intake load, and from its start until every
	// message was posted; the bench's own during the floor's load.
	IntakeCPU, PostedCPU cpuUse
	FloorCPU             time.Duration
	// StoreOps counts the bot's store operations by kind, and Rounds its
	// outbox job attempts, from intake's start to every message posted.
	StoreOps      map[string]float64
	Rounds        float64
	PendingIntake loadResult
	PendingPosted time.Duration
	Memory        memory        // the bot's, with the pending tasks
	RestartReady  time.Duration // a start with --pending tasks in the store
	// StoreFileBytes is the size of the bolt file holding them.
	StoreFileBytes int64

	Problems []string
}

type raceResult struct {
	Clicks, OK, PUTs int
}

// Targets of DESIGN.md "Performance targets".
const (
	targetIntakeP99   = 10 * time.Millisecond
	targetIntakeRate  = 1000.0
	targetClickP99    = 10 * time.Millisecond
	targetClickToCall = 50 * time.Millisecond
	targetReady       = 200 * time.Millisecond
	targetRSSBytes    = 50_000_000
	targetImageBytes  = 30_000_000
)

// targetRows is the table of every target: target, measured, met.
func (r results) targetRows(o options) [][]string {
	notRun := []string{"not measured (the run stopped early)", "no"}
	row := func(target string, ran bool, measured string, met bool) []string {
		if !ran {
			return append([]string{target}, notRun...)
		}
		return []string{target, measured, yesNo(met)}
	}
	embedded := func(met string) string { return met }
	if r.Store != "bolt" {
		// The intake targets are the embedded store's.
		embedded = func(met string) string { return "n/a: embedded-store target (" + met + ")" }
	}
	intakeRan := r.Intake.N > 0
	p99 := ms(r.Intake.Latency.P99) + fmt.Sprintf(" at saturation (%.0f tasks/s, %d clients)", r.Intake.Throughput(), o.concurrency)
	p99Met := yesNo(r.Intake.Latency.P99 < targetIntakeP99)
	if r.Paced.N > 0 {
		pacedMet := r.Paced.Latency.P99 < targetIntakeP99
		p99 = fmt.Sprintf("%s at %.0f tasks/s; %s", ms(r.Paced.Latency.P99), o.rate, p99)
		if pacedMet != (r.Intake.Latency.P99 < targetIntakeP99) {
			p99Met = fmt.Sprintf("%s at %.0f/s, %s at saturation", yesNo(pacedMet), o.rate, p99Met)
		}
	}
	rows := [][]string{
		{"intake p99 < 10 ms (embedded store)", ifRan(intakeRan, p99), ifRan(intakeRan, embedded(p99Met))},
		{"intake > 1,000 tasks/s (embedded store)", ifRan(intakeRan, fmt.Sprintf("%.0f tasks/s", r.Intake.Throughput())), ifRan(intakeRan, embedded(yesNo(r.Intake.Throughput() > targetIntakeRate)))},
		row("click to 200 p99 < 10 ms", r.Click.N > 0, ms(r.Click.P99), r.Click.P99 < targetClickP99),
		row("click to deployment-tool call p50 < 50 ms", r.ClickToPut.N > 0, ms(r.ClickToPut.P50), r.ClickToPut.P50 < targetClickToCall),
		row("50 concurrent clicks on one message: one decision, one REST call", r.Race.Clicks > 0,
			fmt.Sprintf("%d REST call(s); %d of %d clicks answered 200", r.Race.PUTs, r.Race.OK, r.Race.Clicks), r.Race.PUTs == 1 && r.Race.OK == r.Race.Clicks),
	}
	if len(r.Starts) > 0 {
		maxStart := slices.Max(r.Starts)
		measured := fmt.Sprintf("median %s, max %s (%d starts, empty store)", ms(median(r.Starts)), ms(maxStart), len(r.Starts))
		if r.RestartReady > 0 {
			measured += fmt.Sprintf("; %s with %d pending", ms(r.RestartReady), o.pending)
			maxStart = max(maxStart, r.RestartReady)
		}
		rows = append(rows, []string{"ready < 200 ms from process start", measured, yesNo(maxStart < targetReady)})
	} else {
		rows = append(rows, append([]string{"ready < 200 ms from process start"}, notRun...))
	}
	m := r.Memory
	rss := row("< 50 MB RSS with 10,000 pending tasks", m.HWM > 0,
		fmt.Sprintf("peak %s (%.1f MB), now %s, with %d pending", mib(m.HWM), float64(m.HWM)*1024/1e6, mib(m.RSS), o.pending),
		m.HWM*1024 < targetRSSBytes)
	if m.HWM > 0 && o.pending < 10000 {
		rss[2] = "n/a: fewer than 10,000 pending"
	}
	rows = append(rows, rss)
	static := "dynamically linked"
	if r.Binary.Static {
		static = "static"
	}
	rows = append(rows,
		row("static binary", r.Binary.Size > 0, fmt.Sprintf("%s, %.1f MB", static, float64(r.Binary.Size)/1e6), r.Binary.Static),
		[]string{"container image < 30 MB", fmt.Sprintf("not built by the bench; the binary alone is %.1f MB", float64(r.Binary.Size)/1e6), "n/a"},
	)
	return rows
}

func ifRan(ran bool, s string) string {
	if !ran {
		return "not measured"
	}
	return s
}

// detailRows is every measurement behind the targets.
func (r results) detailRows(o options) [][]string {
	lat := func(s summary) string {
		return fmt.Sprintf("p50 %s, p90 %s, p99 %s, max %s", ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max))
	}
	var rows [][]string
	add := func(what, value string) { rows = append(rows, []string{what, value}) }
	if len(r.Starts) > 0 {
		var each []string
		for _, d := range r.Starts {
			each = append(each, ms(d))
		}
		add("start → first 200 from /readyz", strings.Join(each, ", "))
	}
	if r.Intake.N > 0 {
		add(fmt.Sprintf("intake, %d tasks from %d clients (after %d warm-up; median of %d rounds)", r.Intake.N, o.concurrency, r.Warmup, max(1, len(r.IntakeRounds))),
			fmt.Sprintf("%.0f tasks/s; %s; %d errors", r.Intake.Throughput(), lat(r.Intake.Latency), r.Intake.Errors))
	}
	if r.Paced.N > 0 {
		add(fmt.Sprintf("intake, %d tasks paced at %.0f/s (latency from when due)", r.Paced.N, o.rate),
			fmt.Sprintf("%.0f tasks/s; %s; %d errors", r.Paced.Throughput(), lat(r.Paced.Latency), r.Paced.Errors))
	}
	if r.Floor.N > 0 {
		add(fmt.Sprintf("floor: bare HTTP + one bbolt write, same load (median of %d rounds)", max(1, len(r.FloorRounds))), fmt.Sprintf("%.0f req/s; %s; %d errors", r.Floor.Throughput(), lat(r.Floor.Latency), r.Floor.Errors))
		if r.Intake.N > 0 && r.Floor.Latency.P99 > 0 && r.Floor.Throughput() > 0 {
			add("intake / floor (median rounds)", fmt.Sprintf("throughput %.2f×, p50 %.2f×, p99 %.2f×",
				r.Intake.Throughput()/r.Floor.Throughput(),
				float64(r.Intake.Latency.P50)/float64(r.Floor.Latency.P50),
				float64(r.Intake.Latency.P99)/float64(r.Floor.Latency.P99)))
		}
		if len(r.IntakeRounds) > 1 {
			var each []string
			for i := range min(len(r.IntakeRounds), len(r.FloorRounds)) {
				each = append(each, fmt.Sprintf("%.0f / %.0f = %.2f×", r.IntakeRounds[i].Throughput(), r.FloorRounds[i].Throughput(),
					r.IntakeRounds[i].Throughput()/r.FloorRounds[i].Throughput()))
			}
			add("intake / floor, each round (tasks/s / req/s)", strings.Join(each, "; "))
		}
	}
	perTask := func(d time.Duration, n int) string {
		return fmt.Sprintf("%.0f µs", float64(d.Microseconds())/float64(max(n, 1)))
	}
	intakeN, floorN := 0, 0
	for _, x := range r.IntakeRounds {
		intakeN += x.N
	}
	for _, x := range r.FloorRounds {
		floorN += x.N
	}
	if r.IntakeCPU.bot > 0 {
		add("CPU per task during the intake load (the bot; the bench's load generator and fakes)",
			fmt.Sprintf("bot %s, bench %s; until every message was posted: bot %s, bench %s",
				perTask(r.IntakeCPU.bot, intakeN), perTask(r.IntakeCPU.bench, intakeN),
				perTask(r.PostedCPU.bot, intakeN), perTask(r.PostedCPU.bench, intakeN)))
	}
	if len(r.StoreOps) > 0 {
		n := float64(intakeN + r.Warmup)
		add("store operations per task, intake to posted (and outbox job attempts)",
			fmt.Sprintf("create %.2f, get %.2f, update %.2f, due %.2f; jobs %.2f",
				r.StoreOps["create"]/n, r.StoreOps["get"]/n, r.StoreOps["update"]/n, r.StoreOps["due"]/n, r.Rounds/n))
	}
	if r.FloorCPU > 0 {
		add("CPU per request of the floor (load generator and server, one process)", perTask(r.FloorCPU, floorN))
	}
	if r.PostedAll > 0 {
		n := r.Intake.N
		if len(r.IntakeRounds) > 0 {
			n = r.IntakeRounds[0].N
		}
		add("outbox: the first round's messages posted", fmt.Sprintf("%d messages %s after its intake began (%.0f/s)", n, ms(r.PostedAll), perSecond(n, r.PostedAll)))
	}
	if r.Click.N > 0 {
		add(fmt.Sprintf("click → 200, %d clicks one at a time", r.Click.N), lat(r.Click))
	}
	if r.ClickToPut.N > 0 {
		add("click → FlexDeploy PUT arrives", lat(r.ClickToPut))
	}
	if r.PendingIntake.N > 0 {
		add(fmt.Sprintf("pending: intake of %d tasks on a fresh store", r.PendingIntake.N),
			fmt.Sprintf("%.0f tasks/s; %s; %d errors", r.PendingIntake.Throughput(), lat(r.PendingIntake.Latency), r.PendingIntake.Errors))
	}
	if r.PendingPosted > 0 {
		add("pending: all messages posted", fmt.Sprintf("%s after intake began", ms(r.PendingPosted)))
	}
	if r.RestartReady > 0 {
		add(fmt.Sprintf("restart → first 200 from /readyz, %d pending in the store", o.pending), ms(r.RestartReady))
	}
	if m := r.Memory; m.HWM > 0 {
		add("bot memory with the pending tasks", fmt.Sprintf("VmHWM %s; VmRSS %s = anonymous %s + mapped files %s (the binary; on bolt also the store file)",
			mib(m.HWM), mib(m.RSS), mib(m.Anon), mib(m.File)))
	}
	if r.StoreFileBytes > 0 {
		add("bolt file with the pending tasks", mib(r.StoreFileBytes/1024))
	}
	return rows
}

// report is the run's markdown: the machine, the targets, the details.
func (r results) report(o options) string {
	var b strings.Builder
	goVersion := r.Binary.GoVersion
	if goVersion == "" {
		goVersion = "unknown"
	}
	fmt.Fprintf(&b, "\n## approvalbench: store %s\n\n", r.Store)
	fmt.Fprintf(&b, "Machine: %d CPUs, %s, %s; bot built with %s, Slack pacing off (the fake Slack has no limits); store %s.\n\n", r.CPUs, r.CPUModel, r.OS, goVersion, r.Store)
	if !o.enrich {
		b.WriteString("The bot's flexdeploy.enrich is off: the outbox posts each task in its first round.\n\n")
	}
	b.WriteString(markdownTable([]string{"target", "measured", "met"}, r.targetRows(o)))
	b.WriteString("\n")
	b.WriteString(markdownTable([]string{"measurement", "result"}, r.detailRows(o)))
	if len(r.Problems) > 0 {
		b.WriteString("\nErrors (broken run):\n")
		for _, p := range r.Problems {
			b.WriteString("- " + p + "\n")
		}
	}
	return b.String()
}
