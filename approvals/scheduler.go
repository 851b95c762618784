package approvals

import (
	"context"
	"errors"
	"sync"
	"time"
)

// SchedulerConfig tunes a Scheduler. Zero values take the defaults.
type SchedulerConfig struct {
	Workers           int           // concurrent outbox workers, default 8
	SweepInterval     time.Duration // default 15s
	ReconcileInterval time.Duration // default 1m; negative disables
	// PageSize is how many due tasks one store read returns, default 500.
	PageSize int
	// ReconcileCalls is how many status reads reconcile makes at once,
	// default 4.
	ReconcileCalls int
	// Leases elects the process that sweeps and reconciles when several
	// share a store; nil runs both loops here.
	Leases LoopLeases
	// Busy reports that requests people and tools wait on (intakes,
	// clicks) are queueing up. While it does, every outbox worker but the
	// first yields before its next task, a few milliseconds at a time and
	// for at most yieldMax, so that the requests keep the CPU and the
	// outbox goes on all the same (a worker held by a slow tool does not
	// hold the rest). nil: never busy.
	Busy func() bool
}

// How an outbox worker yields while Busy: in steps of yieldStep, at most
// yieldMax before each task.
const (
	yieldStep = 5 * time.Millisecond
	yieldMax  = 50 * time.Millisecond
)

// The loops that run on one process at a time.
const (
	loopSweep     = "sweep"
	loopReconcile = "reconcile"
)

// Scheduler drives the lifecycle: outbox workers for tasks that have work
// (kicked at once by intake and decisions, or found due by the sweeper),
// the sweeper, and reconcile with the deployment tools. It holds no state
// that matters: everything it does is recorded by the Service in the store,
// so a restarted scheduler picks up where the last one stopped.
type Scheduler struct {
	svc *Service
	cfg SchedulerConfig

	wake     chan struct{} // a kick for the workers
	mu       sync.Mutex
	queue    []string        // kicked task ids, oldest first
	queued   map[string]bool // the ids in queue
	inFlight map[string]bool // task ids a worker is on
	again    map[string]bool // kicked while in flight
	timers   map[string]*time.Timer
	drained  chan struct{} // closed and renewed when the queue runs short
	corrupt  map[string]bool
	running  bool
	stopped  bool
	wait     func(ctx context.Context, d time.Duration) error // Sleep; tests replace it
}

// NewScheduler builds the scheduler of svc and makes it the one svc tells
// about new work.
func NewScheduler(svc *Service, cfg SchedulerConfig) *Scheduler {
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = 15 * time.Second
	}
	if cfg.ReconcileInterval == 0 {
		cfg.ReconcileInterval = time.Minute
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 500
	}
	if cfg.ReconcileCalls <= 0 {
		cfg.ReconcileCalls = 4
	}
	sc := &Scheduler{
		svc:      svc,
		cfg:      cfg,
		wake:     make(chan struct{}, cfg.Workers),
		queued:   map[string]bool{},
		inFlight: map[string]bool{},
		again:    map[string]bool{},
		timers:   map[string]*time.Timer{},
		drained:  make(chan struct{}),
		corrupt:  map[string]bool{},
		wait:     Sleep,
	}
	kick := sc.Kick
	svc.kick.Store(&kick)
	return sc
}

// Run works until ctx is done: the kicked tasks at once, every
// SweepInterval whatever is due (retries, work of a process that died,
// expiries), every ReconcileInterval every pending task of a tool with a
// status read. Work left unfinished at shutdown stays in the store for the
// next start.
func (sc *Scheduler) Run(ctx context.Context) error {
	sc.mu.Lock()
	if sc.running {
		sc.mu.Unlock()
		return errors.New("approvals: scheduler already running")
	}
	sc.running = true
	sc.mu.Unlock()

	var wg sync.WaitGroup
	for worker := range sc.cfg.Workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				if worker > 0 {
					sc.yield(ctx)
				}
				id, ok := sc.nextKicked()
				if !ok {
					select {
					case <-ctx.Done():
					case <-sc.wake:
					}
					continue
				}
				sc.work(ctx, id)
			}
		})
	}
	for _, tool := range sc.svc.Tools().All() {
		if tool.Poll != nil {
			wg.Go(func() { sc.poll(ctx, tool) })
		}
	}
	// Unfinished work resumes at once after a start.
	if sc.leads(ctx, loopSweep, sc.cfg.SweepInterval) {
		sc.Sweep(ctx)
	}
	sweep := time.NewTicker(sc.cfg.SweepInterval)
	defer sweep.Stop()
	var reconcile <-chan time.Time
	if sc.cfg.ReconcileInterval > 0 && sc.svc.CanReconcile() {
		t := time.NewTicker(sc.cfg.ReconcileInterval)
		defer t.Stop()
		reconcile = t.C
	}
	for {
		select {
		case <-ctx.Done():
			sc.mu.Lock()
			sc.stopped = true
			retrying := make([]string, 0, len(sc.timers))
			for id, t := range sc.timers {
				t.Stop()
				retrying = append(retrying, id)
			}
			sc.mu.Unlock()
			wg.Wait()
			sc.handBack(ctx, retrying)
			return nil
		case <-sweep.C:
			if sc.leads(ctx, loopSweep, sc.cfg.SweepInterval) {
				sc.Sweep(ctx)
			}
		case <-reconcile:
			if sc.leads(ctx, loopReconcile, sc.cfg.ReconcileInterval) {
				sc.Reconcile(ctx)
			}
		}
	}
}

// defaultPollInterval is how often a tool's Poll is called when it names
// no interval.
const defaultPollInterval = 30 * time.Second

// pollLoop is the loop lease of a tool's polling.
func pollLoop(tool *Tool) string { return "poll-" + tool.Name }

// poll calls the tool's Poll at once and then every PollInterval while
// this process leads its loop, and submits what it finds.
func (sc *Scheduler) poll(ctx context.Context, tool *Tool) {
	interval := tool.PollInterval
	if interval <= 0 {
		interval = defaultPollInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if sc.leads(ctx, pollLoop(tool), interval) {
			sc.PollOnce(ctx, tool)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// PollOnce is one round of a tool's polling: what Poll finds is
// submitted; what it or a submission fails on is reported, never a reason
// to stop.
func (sc *Scheduler) PollOnce(ctx context.Context, tool *Tool) {
	subs, err := tool.Poll(ctx)
	if err != nil && ctx.Err() == nil {
		sc.svc.observe(ctx, Event{Type: EventError, Err: err, Detail: pollLoop(tool)})
	}
	for _, sub := range subs {
		sub.Source = tool.Name
		if _, _, err := sc.svc.Submit(ctx, sub); err != nil && ctx.Err() == nil {
			sc.svc.observe(ctx, Event{Type: EventError, TaskID: TaskRecordID(sub.Source, sub.TaskID), Err: err, Detail: pollLoop(tool)})
		}
	}
}

// yield waits while the requests people and tools wait on are busy, in
// steps of yieldStep and for at most yieldMax. It returns the steps waited.
func (sc *Scheduler) yield(ctx context.Context) int {
	steps := 0
	for waited := time.Duration(0); waited < yieldMax && sc.cfg.Busy != nil && sc.cfg.Busy(); waited += yieldStep {
		if sc.wait(ctx, yieldStep) != nil {
			break
		}
		steps++
	}
	return steps
}

// leads takes or renews this process's lease on a loop before a round of
// it: the lease outlasts two intervals, so a process that dies is replaced
// after that, and one that stops hands it back at once.
func (sc *Scheduler) leads(ctx context.Context, loop string, interval time.Duration) bool {
	if sc.cfg.Leases == nil {
		return true
	}
	now := sc.svc.now()
	ok, err := sc.cfg.Leases.TryLoop(ctx, loop, sc.svc.Owner(), now, now.Add(2*interval+time.Second))
	if err != nil {
		if ctx.Err() == nil {
			sc.svc.observe(ctx, Event{Type: EventError, Err: err, Detail: loop + " lease"})
		}
		return false
	}
	return ok
}

// handBack, at a stop, gives back the loops' leases and the leases of the
// tasks whose retries this process kept, so that another process takes
// their work over at once instead of waiting the leases out.
func (sc *Scheduler) handBack(ctx context.Context, retrying []string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if sc.cfg.Leases != nil {
		loops := []string{loopSweep, loopReconcile}
		for _, tool := range sc.svc.Tools().All() {
			if tool.Poll != nil {
				loops = append(loops, pollLoop(tool))
			}
		}
		for _, loop := range loops {
			if err := sc.cfg.Leases.ReleaseLoop(ctx, loop, sc.svc.Owner()); err != nil {
				sc.svc.observe(ctx, Event{Type: EventError, Err: err, Detail: loop + " lease"})
			}
		}
	}
	for _, id := range retrying {
		if err := sc.svc.ReleaseLease(ctx, id); err != nil {
			sc.svc.observe(ctx, Event{Type: EventError, TaskID: id, Err: err, Detail: "hand back lease"})
		}
	}
}

// Kick asks for the task's outbox to be worked now. It never blocks; a
// task kicked twice before a worker takes it is worked once.
func (sc *Scheduler) Kick(id string) {
	sc.mu.Lock()
	if sc.stopped {
		sc.mu.Unlock()
		return
	}
	if sc.inFlight[id] {
		sc.again[id] = true
		sc.mu.Unlock()
		return
	}
	if !sc.queued[id] {
		sc.queued[id] = true
		sc.queue = append(sc.queue, id)
	}
	sc.mu.Unlock()
	select {
	case sc.wake <- struct{}{}:
	default: // every worker has a wake-up waiting already
	}
}

// nextKicked takes the oldest kicked task off the queue.
func (sc *Scheduler) nextKicked() (string, bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if len(sc.queue) == 0 {
		return "", false
	}
	id := sc.queue[0]
	sc.queue[0] = ""
	sc.queue = sc.queue[1:]
	delete(sc.queued, id)
	if len(sc.queue) <= sc.cfg.PageSize {
		close(sc.drained)
		sc.drained = make(chan struct{})
	}
	return id, true
}

// backlog is how many kicked tasks wait, and a channel closed once they
// are at most a page.
func (sc *Scheduler) backlog() (int, <-chan struct{}) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return len(sc.queue), sc.drained
}

// kickAt kicks the task at a later time (a retry this process will do while
// it keeps the lease).
func (sc *Scheduler) kickAt(id string, at time.Time) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.stopped {
		return
	}
	if t := sc.timers[id]; t != nil {
		t.Stop()
	}
	sc.timers[id] = time.AfterFunc(at.Sub(sc.svc.now()), func() {
		sc.mu.Lock()
		delete(sc.timers, id)
		sc.mu.Unlock()
		sc.Kick(id)
	})
}

// work does the task's due outbox rounds, and repeats while new work keeps
// arriving.
func (sc *Scheduler) work(ctx context.Context, id string) {
	sc.mu.Lock()
	if sc.inFlight[id] {
		sc.again[id] = true
		sc.mu.Unlock()
		return
	}
	sc.inFlight[id] = true
	sc.mu.Unlock()
	defer func() {
		sc.mu.Lock()
		delete(sc.inFlight, id)
		delete(sc.again, id)
		sc.mu.Unlock()
	}()
	for ctx.Err() == nil {
		round, err := sc.svc.Work(ctx, id)
		if err != nil && ctx.Err() == nil {
			if errors.Is(err, ErrCorrupt) {
				sc.reportCorrupt(ctx, []string{id})
			} else {
				sc.svc.observe(ctx, Event{Type: EventError, TaskID: id, Err: err, Detail: "outbox"})
			}
		}
		if !round.RetryAt.IsZero() {
			sc.kickAt(id, round.RetryAt)
		}
		sc.mu.Lock()
		again := sc.again[id]
		delete(sc.again, id)
		sc.mu.Unlock()
		if !round.More && !again {
			return
		}
	}
}

// walk reads every task due at or before before, a page at a time, and
// hands each page to fn. Records that cannot be decoded are reported and
// skipped. It stops at the first store failure, and says so.
func (sc *Scheduler) walk(ctx context.Context, what string, before time.Time, fn func([]*Task)) {
	var cursor Cursor
	for ctx.Err() == nil {
		page, err := sc.svc.cfg.Store.Due(ctx, before, cursor, sc.cfg.PageSize)
		if err != nil {
			if ctx.Err() == nil {
				sc.svc.observe(ctx, Event{Type: EventError, Err: err, Detail: what})
			}
			return
		}
		sc.reportCorrupt(ctx, page.Corrupt)
		fn(page.Tasks)
		if page.Next == "" {
			return
		}
		cursor = page.Next
	}
}

// Sweep kicks every task that is due now, page by page; before reading the
// next page it lets the workers bring the backlog down to a page, so that
// memory stays bounded however many tasks are due.
func (sc *Scheduler) Sweep(ctx context.Context) {
	sc.walk(ctx, "sweep", sc.svc.now(), func(tasks []*Task) {
		for _, t := range tasks {
			sc.Kick(t.ID)
		}
		if n, drained := sc.backlog(); n > sc.cfg.PageSize {
			select {
			case <-ctx.Done():
			case <-drained:
			}
		}
	})
}

// farFuture is a due time past every task's: reconcile walks them all.
const farFuture = 100 * 365 * 24 * time.Hour

// Reconcile asks the deployment tools about every pending task, page by
// page, a few calls at a time, and closes those decided in a tool's own UI.
func (sc *Scheduler) Reconcile(ctx context.Context) {
	sem := make(chan struct{}, sc.cfg.ReconcileCalls)
	var wg sync.WaitGroup
	sc.walk(ctx, "reconcile", sc.svc.now().Add(farFuture), func(tasks []*Task) {
		for _, t := range tasks {
			if t.Status != StatusPending {
				continue
			}
			select {
			case <-ctx.Done():
				return
			case sem <- struct{}{}:
			}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := sc.svc.Reconcile(ctx, t); err != nil && ctx.Err() == nil {
					sc.svc.observe(ctx, Event{Type: EventError, TaskID: t.ID, Source: t.Source, Err: err, Detail: "reconcile"})
				}
			})
		}
	})
	wg.Wait()
}

// reportCorrupt reports each record that cannot be decoded once in the
// life of the process: it stays skipped, and one log line says which.
func (sc *Scheduler) reportCorrupt(ctx context.Context, keys []string) {
	for _, k := range keys {
		sc.mu.Lock()
		seen := sc.corrupt[k]
		sc.corrupt[k] = true
		sc.mu.Unlock()
		if !seen {
			sc.svc.observe(ctx, Event{Type: EventCorrupt, TaskID: k, Err: ErrCorrupt, Detail: "skipped"})
		}
	}
}
