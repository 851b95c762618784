package approvals

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// retryDelay is the wait before attempt number attempts+1 of a failed job:
// the first within RetryMin, then exponential with full jitter, capped at
// RetryMax; a Retry-After from the remote side wins.
func (s *Service) retryDelay(attempts int, err error) time.Duration {
	if d, ok := RetryAfter(err); ok && d > 0 {
		return min(d, 5*time.Minute)
	}
	ceiling := s.cfg.RetryMin
	for i := 1; i < attempts && ceiling < s.cfg.RetryMax; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, s.cfg.RetryMax)
	// Full jitter, but never hammer: at least a tenth of the ceiling.
	return ceiling/10 + rand.N(ceiling-ceiling/10+1)
}

// Run works the outbox until ctx is done: tasks kicked by intake and
// decisions at once, and every SweepInterval whatever is due (retries, work
// of a process that died, expiries); every ReconcileInterval it asks the
// deployment tools about pending tasks. Work left unfinished at shutdown
// stays in the store for the next start.
func (s *Service) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("approvals: service already running")
	}
	s.running = true
	s.mu.Unlock()

	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				id, ok := s.nextKicked()
				if !ok {
					select {
					case <-ctx.Done():
					case <-s.wake:
					}
					continue
				}
				s.work(ctx, id)
			}
		}()
	}
	// Unfinished work resumes at once after a start.
	s.Sweep(ctx)
	sweep := time.NewTicker(s.cfg.SweepInterval)
	defer sweep.Stop()
	var reconcile <-chan time.Time
	if s.cfg.ReconcileInterval > 0 && len(s.cfg.Checkers) > 0 {
		t := time.NewTicker(s.cfg.ReconcileInterval)
		defer t.Stop()
		reconcile = t.C
	}
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			s.stopped = true
			for _, t := range s.timers {
				t.Stop()
			}
			s.mu.Unlock()
			wg.Wait()
			return nil
		case <-sweep.C:
			s.Sweep(ctx)
		case <-reconcile:
			s.Reconcile(ctx)
		}
	}
}

// Kick asks for the task's outbox to be worked now. It never blocks; a
// task kicked twice before a worker takes it is worked once.
func (s *Service) Kick(id string) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	if s.inFlight[id] {
		s.again[id] = true
		s.mu.Unlock()
		return
	}
	if !s.queued[id] {
		s.queued[id] = true
		s.queue = append(s.queue, id)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default: // every worker has a wake-up waiting already
	}
}

// nextKicked takes the oldest kicked task off the queue.
func (s *Service) nextKicked() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return "", false
	}
	id := s.queue[0]
	s.queue[0] = ""
	s.queue = s.queue[1:]
	delete(s.queued, id)
	return id, true
}

// kickAt kicks the task at a later time (a retry this process will do while
// it keeps the lease).
func (s *Service) kickAt(id string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	if t := s.timers[id]; t != nil {
		t.Stop()
	}
	s.timers[id] = time.AfterFunc(at.Sub(s.now()), func() {
		s.mu.Lock()
		delete(s.timers, id)
		s.mu.Unlock()
		s.Kick(id)
	})
}

// Sweep kicks every task that is due now.
func (s *Service) Sweep(ctx context.Context) {
	for {
		tasks, err := s.cfg.Store.Due(ctx, s.now(), 500)
		if err != nil {
			if ctx.Err() == nil {
				s.observe(ctx, Event{Type: EventError, Err: err, Detail: "sweep"})
			}
			return
		}
		for _, t := range tasks {
			s.Kick(t.ID)
		}
		if len(tasks) < 500 || ctx.Err() != nil {
			return
		}
		// A full page: let the workers catch up before the next one.
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// work does the task's due outbox jobs while holding its lease, and repeats
// while new work keeps arriving.
func (s *Service) work(ctx context.Context, id string) {
	s.mu.Lock()
	if s.inFlight[id] {
		s.again[id] = true
		s.mu.Unlock()
		return
	}
	s.inFlight[id] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.inFlight, id)
		delete(s.again, id)
		s.mu.Unlock()
	}()
	for ctx.Err() == nil {
		next, more, err := s.workOnce(ctx, id)
		if err != nil && ctx.Err() == nil {
			s.observe(ctx, Event{Type: EventError, TaskID: id, Err: err, Detail: "outbox"})
		}
		if !next.IsZero() {
			s.kickAt(id, next)
		}
		s.mu.Lock()
		again := s.again[id]
		delete(s.again, id)
		s.mu.Unlock()
		if !more && !again {
			return
		}
	}
}

// claim makes sure this process holds the task's lease with time to spare,
// writing only when it must (the intake and decision writes hand the lease
// to the process that made them, which then needs no claim write). A
// pending task past its time is expired in the same write. resumed reports
// work that another process (or an earlier run of this one) had started,
// whose deliveries must first ask the deployment tool what it knows.
func (s *Service) claim(ctx context.Context, id string) (t *Task, resumed bool, err error) {
	now := s.now().UTC()
	t, err = s.cfg.Store.Get(ctx, id)
	if err != nil {
		return nil, false, err
	}
	mine := t.Lease.Owner == s.cfg.Owner && t.Lease.Until.Sub(now) > s.cfg.Lease/2
	needsExpiry := t.Status == StatusPending && t.Expired(now)
	if mine && !needsExpiry {
		return t, false, nil
	}
	if t.Lease.HeldByOther(s.cfg.Owner, now) {
		return nil, false, ErrLeased
	}
	if !needsExpiry && !hasDueJob(t, now) {
		return nil, false, ErrNothingToDo
	}
	expired := false
	t, err = s.cfg.Store.Update(ctx, id, func(t *Task) error {
		expired = false
		if t.Lease.HeldByOther(s.cfg.Owner, now) {
			return ErrLeased
		}
		resumed = t.Lease.Owner != s.cfg.Owner
		expired = s.expire(t, now)
		if !hasDueJob(t, now) {
			return ErrNothingToDo
		}
		t.Lease = Lease{Owner: s.cfg.Owner, Until: now.Add(s.cfg.Lease)}
		return nil
	})
	if expired && err == nil {
		s.observe(ctx, Event{Type: EventExpired, TaskID: id, Source: t.Source})
	}
	return t, resumed, err
}

func hasDueJob(t *Task, now time.Time) bool {
	for _, j := range t.Outbox {
		if !j.NotBefore.After(now) {
			return true
		}
	}
	return false
}

// jobResult is what doing one job changed; it is applied to the fresh
// record in the write that ends the round.
type jobResult struct {
	seq    int
	err    error
	effect func(t *Task, now time.Time)
}

// workOnce runs one round: claim, do the due jobs, record the results in
// one write. It returns when to come back for a retry this process keeps
// the lease for, and whether more work is due at once.
func (s *Service) workOnce(ctx context.Context, id string) (next time.Time, more bool, err error) {
	t, resumed, err := s.claim(ctx, id)
	if errors.Is(err, ErrLeased) || errors.Is(err, ErrNothingToDo) || errors.Is(err, ErrNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	now := s.now().UTC()
	// Stop well before the lease runs out, so that no other process can
	// take the work over while a call is still under way.
	jobCtx, cancel := context.WithDeadline(ctx, t.Lease.Until.Add(-s.cfg.Lease/4))
	defer cancel()
	var results []jobResult
	for _, j := range t.Outbox {
		if j.NotBefore.After(now) {
			continue
		}
		if jobCtx.Err() != nil {
			break
		}
		start := time.Now()
		effect, err := s.do(jobCtx, t, j, resumed)
		results = append(results, jobResult{seq: j.Seq, err: err, effect: effect})
		if effect != nil {
			effect(t, now) // later jobs of this round see it (e.g. the message ts)
		}
		s.observeJob(ctx, t, j, err, time.Since(start))
	}
	if len(results) == 0 {
		return time.Time{}, false, nil
	}
	// The results are recorded even when shutdown began meanwhile: a call
	// that went through must not be made again by the next start.
	writeCtx, cancelWrite := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancelWrite()
	var retryAt time.Time
	updated, err := s.cfg.Store.Update(writeCtx, id, func(t *Task) error {
		now := s.now().UTC()
		retryAt = time.Time{}
		for _, r := range results {
			i := jobIndex(t, r.seq)
			if i < 0 {
				continue // done by a process that took the work over
			}
			if r.effect != nil {
				r.effect(t, now)
			}
			if r.err == nil || IsPermanent(r.err) {
				t.Outbox = append(t.Outbox[:i], t.Outbox[i+1:]...)
				continue
			}
			j := &t.Outbox[i]
			j.Attempts++
			j.LastError = r.err.Error()
			j.NotBefore = now.Add(s.retryDelay(j.Attempts, r.err))
		}
		if t.Lease.HeldByOther(s.cfg.Owner, now) {
			return nil // taken over meanwhile: the lease is the other process's now
		}
		// Keep the lease through the next retry so this process does it
		// (within a second, not at the next sweep); release it otherwise.
		t.Lease = Lease{}
		if due, ok := t.DueAt(); ok && len(t.Outbox) > 0 && due.Before(now.Add(s.cfg.RetryMax+s.cfg.Lease)) {
			retryAt = due
			t.Lease = Lease{Owner: s.cfg.Owner, Until: maxTime(due, now).Add(s.cfg.Lease)}
		}
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("record outbox results: %w", err)
	}
	if hasDueJob(updated, s.now()) {
		return time.Time{}, true, nil
	}
	return retryAt, false, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func jobIndex(t *Task, seq int) int {
	for i, j := range t.Outbox {
		if j.Seq == seq {
			return i
		}
	}
	return -1
}

func (s *Service) observeJob(ctx context.Context, t *Task, j Job, err error, d time.Duration) {
	e := Event{TaskID: t.ID, Source: t.Source, Job: j.Kind, Attempt: j.Attempts + 1, Err: err, Duration: d}
	switch {
	case err == nil:
		e.Type = EventJobDone
	case IsPermanent(err):
		e.Type = EventJobFailed
	default:
		e.Type = EventJobRetry
	}
	s.observe(ctx, e)
}

// errNoNotifier keeps posts waiting until chat credentials are configured.
var errNoNotifier = errors.New("slack is not configured (no bot token): the message waits in the outbox")

// do runs one job. The effect it returns is applied to the record when the
// round is written (and at once to t, for the jobs after it).
func (s *Service) do(ctx context.Context, t *Task, j Job, resumed bool) (func(*Task, time.Time), error) {
	switch j.Kind {
	case JobPost:
		n := s.getNotifier()
		if n == nil {
			return nil, errNoNotifier
		}
		token, err := s.cfg.Tokens.Mint(t)
		if err != nil {
			return nil, Permanent(fmt.Errorf("mint token: %w", err))
		}
		ref, err := n.Post(ctx, t, token)
		if err != nil {
			return nil, err
		}
		_, announces := s.cfg.Deployers[t.Source].(Announcer)
		return func(t *Task, now time.Time) {
			t.Message = ref
			if announces && !t.HasJob(JobAnnounce) {
				t.Enqueue(JobAnnounce, now)
			}
		}, nil
	case JobAnnounce:
		a, ok := s.cfg.Deployers[t.Source].(Announcer)
		if !ok {
			return nil, nil
		}
		extra, err := a.Announce(ctx, t)
		if err != nil || len(extra) == 0 {
			return nil, err
		}
		return func(t *Task, _ time.Time) {
			if t.Extra == nil {
				t.Extra = map[string]string{}
			}
			for k, v := range extra {
				t.Extra[k] = v
			}
		}, nil
	case JobUpdate:
		n := s.getNotifier()
		if t.Message.TS == "" {
			return nil, nil // not posted yet: the post shows the current state
		}
		if n == nil {
			return nil, errNoNotifier
		}
		return nil, n.Update(ctx, t)
	case JobRemind:
		n := s.getNotifier()
		if t.Status != StatusPending || t.Message.TS == "" {
			return nil, nil
		}
		if n == nil {
			return nil, errNoNotifier
		}
		return nil, n.Remind(ctx, t)
	case JobDeliver:
		return s.deliver(ctx, t, j, resumed)
	}
	return nil, Permanent(fmt.Errorf("unknown job kind %q", j.Kind))
}

// deliver hands the outcome to the deployment tool. A retry, or work taken
// over from another process, first asks the tool whether it already has
// the outcome, so that a call that went through before a crash is not made
// twice.
func (s *Service) deliver(ctx context.Context, t *Task, j Job, resumed bool) (func(*Task, time.Time), error) {
	action, ok := t.Outcome()
	if !ok {
		return nil, nil
	}
	d := s.cfg.Deployers[t.Source]
	if d == nil {
		// Nothing is lost: the decision waits in the outbox until the
		// bot is started with the connection configured.
		err := fmt.Errorf("no %s connection is configured; the decision waits in the outbox", displaySource(t.Source))
		return deliveryEffect(err), err
	}
	if c := s.cfg.Checkers[t.Source]; c != nil && (resumed || j.Attempts > 0) {
		remote, err := c.RemoteStatus(ctx, t)
		switch {
		case err != nil && !IsPermanent(err):
			// Without knowing whether the earlier call went through, a
			// second call could decide twice: ask again later.
			err = fmt.Errorf("ask %s whether it has the decision: %w", displaySource(t.Source), err)
			return deliveryEffect(err), err
		case err == nil && remote.Final():
			if want := outcomeStatus(action); remote == want {
				return deliveryEffect(nil), nil
			}
			err := Permanent(fmt.Errorf("the task is %s in %s already", remote, displaySource(t.Source)))
			return deliveryEffect(err), err
		}
	}
	err := d.Deliver(ctx, t, action, Notes(t, action, s.now()))
	return deliveryEffect(err), err
}

func outcomeStatus(a Action) Status {
	if a == ActionApprove {
		return StatusApproved
	}
	return StatusRejected
}

// deliveryEffect records a delivery attempt on the task.
func deliveryEffect(err error) func(*Task, time.Time) {
	return func(t *Task, now time.Time) {
		t.Delivery.Attempts++
		switch {
		case err == nil:
			at := now
			t.Delivery.State, t.Delivery.LastError, t.Delivery.DeliveredAt = DeliveryDelivered, "", &at
			t.Secret = nil // a delivery credential is needed no longer
			t.Audit = append(t.Audit, AuditRecord{At: now, Event: "delivered", Detail: t.Source})
			t.EnsureUpdate(now)
		case IsPermanent(err):
			t.Delivery.State, t.Delivery.LastError = DeliveryFailed, err.Error()
			t.Secret = nil
			t.Audit = append(t.Audit, AuditRecord{At: now, Event: "delivery_failed", Detail: err.Error()})
			t.EnsureUpdate(now)
		default:
			t.Delivery.LastError = err.Error()
			if t.Delivery.Attempts == 1 {
				t.EnsureUpdate(now) // show "retrying" once
			}
		}
	}
}

// Reconcile asks the deployment tools about pending tasks and closes the
// ones decided in the tool's own UI.
func (s *Service) Reconcile(ctx context.Context) {
	tasks, err := s.cfg.Store.Due(ctx, s.now().Add(100*365*24*time.Hour), 1000)
	if err != nil {
		s.observe(ctx, Event{Type: EventError, Err: err, Detail: "reconcile"})
		return
	}
	for _, t := range tasks {
		if ctx.Err() != nil {
			return
		}
		c := s.cfg.Checkers[t.Source]
		if c == nil || t.Status != StatusPending {
			continue
		}
		remote, err := c.RemoteStatus(ctx, t)
		if err != nil || !remote.Final() {
			continue
		}
		s.closeDecidedElsewhere(ctx, t.ID, remote)
	}
}

func (s *Service) closeDecidedElsewhere(ctx context.Context, id string, remote Status) {
	now := s.now().UTC()
	t, err := s.cfg.Store.Update(ctx, id, func(t *Task) error {
		if t.Status != StatusPending {
			return ErrNothingToDo
		}
		t.Status = remote
		t.DecidedAt = &now
		t.Reason = fmt.Sprintf("%s in %s", remote, displaySource(t.Source))
		t.Audit = append(t.Audit, AuditRecord{At: now, Event: "decided_elsewhere", Detail: t.Reason})
		s.queueOutcome(t, now)
		// The tool decided it: there is nothing to tell it.
		t.Outbox = removeJobs(t.Outbox, JobDeliver)
		t.Delivery = Delivery{State: DeliveryNotNeeded}
		return nil
	})
	if err != nil {
		if !errors.Is(err, ErrNothingToDo) {
			s.observe(ctx, Event{Type: EventError, TaskID: id, Err: err, Detail: "reconcile"})
		}
		return
	}
	s.observe(ctx, Event{Type: EventDecidedElsewhere, TaskID: id, Source: t.Source, Detail: string(remote)})
	s.Kick(id)
}

func removeJobs(jobs []Job, kind JobKind) []Job {
	kept := jobs[:0]
	for _, j := range jobs {
		if j.Kind != kind {
			kept = append(kept, j)
		}
	}
	return kept
}

func displaySource(source string) string {
	switch source {
	case "flexdeploy":
		return "FlexDeploy"
	case "azure-devops":
		return "Azure DevOps"
	}
	return source
}
