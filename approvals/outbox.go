package approvals

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// retryDelay is the wait before attempt number attempts+1 of a failed job:
// the one Backoff between RetryMin and RetryMax; a Retry-After from the
// remote side wins.
func (s *Service) retryDelay(attempts int, err error) time.Duration {
	if d, ok := RetryAfter(err); ok && d > 0 {
		return min(d, 5*time.Minute)
	}
	return Backoff(attempts, s.cfg.RetryMin, s.cfg.RetryMax)
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
		s.recent.add(t)
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
	kind   JobKind
	err    error
	effect func(t *Task, now time.Time)
	drawn  string // for an update: what the message showed (shown)
}

// shown is what a task's message shows, as far as a change to it needs a
// redraw: an audit record of a refused click changes nothing shown.
func shown(t *Task) string {
	return fmt.Sprintf("%s|%d|%t|%s|%s|%t|%t", t.Status, len(t.Approvals), t.DecidedBy != nil, t.Reason,
		t.Delivery.State, t.Delivery.LastError != "", t.Escalated)
}

// ReleaseLease gives back this process's lease on the task's outbox (at a
// stop), so that any process may do its work at once.
func (s *Service) ReleaseLease(ctx context.Context, id string) error {
	_, err := s.cfg.Store.Update(ctx, id, func(t *Task) error {
		if t.Lease.Owner != s.cfg.Owner {
			return ErrNothingToDo
		}
		t.Lease = Lease{}
		return nil
	})
	if errors.Is(err, ErrNothingToDo) || errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// Round is what one outbox round of a task left to do.
type Round struct {
	// RetryAt is when to come back for a retry this process keeps the
	// lease for (zero: none).
	RetryAt time.Time
	// More is work due at once (it arrived during the round).
	More bool
}

// Work runs one outbox round of the task: claim it, do its due jobs, record
// the results in one write. A task another process holds, or one with
// nothing due, is no work and no error. It is the scheduler's to call; it
// starts nothing and waits for nothing but the calls it makes.
func (s *Service) Work(ctx context.Context, id string) (Round, error) {
	next, more, err := s.workOnce(ctx, id)
	return Round{RetryAt: next, More: more}, err
}

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
	jobCtx, cancel := context.WithTimeout(ctx, t.Lease.Until.Sub(now)-s.cfg.Lease/4)
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
		results = append(results, jobResult{seq: j.Seq, kind: j.Kind, err: err, effect: effect, drawn: shown(t)})
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
		waiting := false    // a job waits for its turn in this process's queue
		var redraw []string // what each update done this round showed
		for _, r := range results {
			i := jobIndex(t, r.seq)
			if i < 0 {
				// Done by a process that took the work over, or dropped
				// meanwhile because the task became final. Direct messages
				// that went out are recorded all the same, so that the
				// final update reaches them too.
				if r.kind == JobDirect && r.effect != nil {
					r.effect(t, now)
					if t.Status.Final() {
						t.EnsureUpdate(now)
					}
				}
				continue
			}
			if r.effect != nil {
				r.effect(t, now)
			}
			if r.err == nil || IsPermanent(r.err) {
				t.Outbox = append(t.Outbox[:i], t.Outbox[i+1:]...)
				if r.kind == JobUpdate && r.err == nil {
					redraw = append(redraw, r.drawn)
				}
				continue
			}
			j := &t.Outbox[i]
			if turn, ok := TurnWait(r.err); ok {
				// Not a failure: the job's attempts stay, and so does its
				// last error, if it had one.
				j.NotBefore, j.Waiting = now.Add(max(turn, 0)), true
				waiting = true
				continue
			}
			j.Attempts++
			j.LastError = r.err.Error()
			j.NotBefore = now.Add(s.retryDelay(j.Attempts, r.err))
			j.Waiting = false
		}
		for _, drawn := range redraw {
			if drawn != shown(t) {
				// The task changed while its message was being drawn (a
				// vote came in, which saw this update waiting and queued
				// none): draw it again.
				t.EnsureUpdate(now)
			}
		}
		if t.Lease.HeldByOther(s.cfg.Owner, now) {
			return nil // taken over meanwhile: the lease is the other process's now
		}
		// Keep the lease through the next retry so this process does it
		// (within a second, not at the next sweep), and through a turn
		// however far, since only this process's queue knows the place;
		// release it otherwise.
		t.Lease = Lease{}
		if due, ok := t.DueAt(); ok && len(t.Outbox) > 0 && (waiting || due.Before(now.Add(s.cfg.RetryMax+s.cfg.Lease))) {
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
		if _, ok := TurnWait(err); ok {
			e.Type = EventJobWait
		}
	}
	s.observe(ctx, e)
}

// do runs one job. The effect it returns is applied to the record when the
// round is written (and at once to t, for the jobs after it).
func (s *Service) do(ctx context.Context, t *Task, j Job, resumed bool) (func(*Task, time.Time), error) {
	switch j.Kind {
	case JobPost:
		s.showChange(ctx, t)
		return s.post(ctx, t)
	case JobDirect:
		if t.Status != StatusPending || !t.PostedAnywhere() {
			return nil, nil // decided before the copies went out: the channel messages say so
		}
		return s.direct(ctx, t)
	case JobEscalate:
		if t.Status != StatusPending || t.Escalated {
			return nil, nil
		}
		return func(t *Task, now time.Time) {
			if t.Status != StatusPending || t.Escalated {
				return
			}
			t.Escalated = true
			t.Record(AuditRecord{At: now, Event: "escalated", Detail: "the escalation's approvers may decide too"})
			t.EnqueueNotice(NoticeEscalation, now)
			if p := FindPolicy(s.cfg.Rules().Policies, t.Policy); p != nil && p.NotifyDM {
				t.Enqueue(JobDirect, now)
			}
			t.EnsureUpdate(now)
		}, nil
	case JobEnrich:
		return s.enrich(ctx, t, j)
	case JobAnnounce:
		tool, _ := s.cfg.Tools.Get(t.Source)
		if tool == nil || tool.Announce == nil {
			return nil, nil
		}
		// What the tool returns is kept even with an error: the progress of
		// a partly done announcement, so that the retry goes on from there.
		extra, err := tool.Announce(ctx, t, WaitingLine(t, s.cfg.Chats))
		if len(extra) == 0 {
			return nil, err
		}
		return func(t *Task, _ time.Time) {
			if t.Extra == nil {
				t.Extra = map[string]string{}
			}
			for k, v := range extra {
				t.Extra[k] = v
			}
		}, err
	case JobUpdate:
		if t.PostedAnywhere() {
			s.showChange(ctx, t)
		}
		return s.update(ctx, t)
	case JobRemind, JobNotice:
		kind := j.Notice
		if j.Kind == JobRemind {
			kind = NoticeReminder
			if t.Status != StatusPending {
				return nil, nil // decided meanwhile: nothing to remind of
			}
		}
		return s.notice(ctx, t, j, kind)
	case JobDeliver:
		return s.deliver(ctx, t, j, resumed)
	case JobTellRequester:
		return s.tellRequester(ctx, t)
	}
	return nil, Permanent(fmt.Errorf("unknown job kind %q", j.Kind))
}

// redrawAtGateChange queues an update of a pending task's message for when
// its policy's approving opens or closes next (a window, a freeze), so the
// message never says "open" while it is closed, or the other way round.
func (s *Service) redrawAtGateChange(t *Task, now time.Time) {
	if t.Status != StatusPending {
		return
	}
	p := FindPolicy(s.cfg.Rules().Policies, t.Policy)
	if p == nil || (len(p.Windows) == 0 && len(p.Freezes) == 0) {
		return
	}
	at := nextChange(p, now)
	if at.IsZero() || !at.Before(t.ExpiresAt) {
		return
	}
	for _, j := range t.Outbox {
		if j.Kind == JobUpdate && j.Attempts == 0 && !j.NotBefore.After(at) {
			return // an update comes first and schedules the next
		}
	}
	t.Enqueue(JobUpdate, at)
}

// maxEnrichAttempts is how often enrichment is tried before the message is
// posted with the intake's own fields: a person waits for it.
const maxEnrichAttempts = 3

// enrich asks the tool for the context the intake left out, then queues
// the post (with the policy matched again on the fuller context). When the
// tool cannot be asked, the message is posted all the same after a few
// tries: the intake's fields still make a usable message.
func (s *Service) enrich(ctx context.Context, t *Task, j Job) (func(*Task, time.Time), error) {
	post := func(t *Task, now time.Time) {
		if !t.HasJob(JobPost) && !t.PostedAnywhere() {
			t.Enqueue(JobPost, now)
		}
	}
	tool, _ := s.cfg.Tools.Get(t.Source)
	if tool == nil || tool.Enrich == nil || t.Status != StatusPending {
		return post, nil
	}
	sub := Submission{Source: t.Source, TaskID: t.TaskID, Context: t.Context}
	err := tool.Enrich(ctx, &sub)
	if err != nil {
		if !IsPermanent(err) && j.Attempts+1 < maxEnrichAttempts {
			return nil, err
		}
		return post, Permanent(fmt.Errorf("enrich: posting with the intake's fields: %w", err))
	}
	return func(t *Task, now time.Time) {
		if t.Status == StatusPending && !t.PostedAnywhere() {
			t.Context = sub.Context
			if err := s.applyPolicy(t, now); err == nil {
				t.Record(AuditRecord{At: now, Event: "enriched", Detail: policyDetail(t.Policy)})
			}
		}
		post(t, now)
	}, nil
}

// mint is the one place a task's token is minted: the token of a task is
// the same every time, so posting and updating after a restart show
// buttons that work.
func (s *Service) mint(t *Task) (string, error) {
	c := *t // Mint may fill in the key id; the round's task stays as it is
	token, err := s.cfg.Tokens.Mint(&c)
	if err != nil {
		return "", Permanent(fmt.Errorf("mint token: %w", err))
	}
	return token, nil
}

// deliver hands the outcome to the deployment tool: one decision call per
// attempt. Every attempt after the first (a retry after a timeout or a
// dropped connection, work resumed after a restart or taken over from
// another process) first reads the tool's status, so that a call that went
// through is not made twice; a tool without a status read has its "already
// decided" answer to such an attempt counted as delivered.
func (s *Service) deliver(ctx context.Context, t *Task, j Job, resumed bool) (func(*Task, time.Time), error) {
	action, ok := t.Outcome()
	if !ok {
		return nil, nil
	}
	tool, _ := s.cfg.Tools.Get(t.Source)
	name := s.cfg.Tools.DisplayName(t.Source)
	if tool == nil || tool.Decide == nil {
		// Nothing is lost: the decision waits in the outbox until the
		// bot is started with the connection configured.
		err := fmt.Errorf("no %s connection is configured; the decision waits in the outbox", name)
		return deliveryEffect(err), err
	}
	later := resumed || j.Attempts > 0
	if later && tool.Status != nil {
		remote, err := tool.Status(ctx, t)
		switch {
		case err != nil:
			// Without knowing whether the earlier call went through, a
			// second call could decide twice: ask again later, or, if the
			// tool refuses the read for good, give up rather than send it
			// blind.
			err = fmt.Errorf("ask %s whether it has the decision: %w", name, err)
			return deliveryEffect(err), err
		case err == nil && remote.Final():
			if want := outcomeStatus(action); remote == want {
				return deliveryEffect(nil), nil
			}
			err := Permanent(fmt.Errorf("the task is %s in %s already", remote, name))
			return deliveryEffect(err), err
		}
	}
	err := tool.Decide(ctx, t, action, Notes(t, action, s.now(), s.cfg.Chats), later)
	if errors.Is(err, ErrToolDecided) {
		if later && tool.Status == nil {
			return deliveryEffect(nil), nil // the answer to an earlier attempt that went through
		}
		err = Permanent(err)
	}
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
			t.Record(AuditRecord{At: now, Event: "delivered", Detail: t.Source})
			t.EnsureUpdate(now)
		case IsPermanent(err):
			t.Delivery.State, t.Delivery.LastError = DeliveryFailed, err.Error()
			t.Secret = nil
			t.Record(AuditRecord{At: now, Event: "delivery_failed", Detail: err.Error()})
			t.EnsureUpdate(now)
		default:
			t.Delivery.LastError = err.Error()
			if t.Delivery.Attempts == 1 {
				t.EnsureUpdate(now) // show "retrying" once
			}
		}
	}
}

// Reconcile asks the task's deployment tool about a pending task and
// closes it when it was decided in the tool's own UI. A task that is not
// pending, or whose tool has no status read, needs nothing.
func (s *Service) Reconcile(ctx context.Context, t *Task) error {
	if t.Status != StatusPending {
		return nil
	}
	tool, ok := s.cfg.Tools.Get(t.Source)
	if !ok || tool.Status == nil {
		return nil
	}
	remote, err := tool.Status(ctx, t)
	if err != nil {
		return fmt.Errorf("ask %s about task %s: %w", tool.DisplayName, t.ID, err)
	}
	if !remote.Final() {
		return nil
	}
	return s.closeDecidedElsewhere(ctx, t.ID, remote)
}

// CanReconcile reports whether any registered tool has a status read.
func (s *Service) CanReconcile() bool {
	for _, t := range s.cfg.Tools.All() {
		if t.Status != nil {
			return true
		}
	}
	return false
}

func (s *Service) closeDecidedElsewhere(ctx context.Context, id string, remote Status) error {
	now := s.now().UTC()
	t, err := s.cfg.Store.Update(ctx, id, func(t *Task) error {
		if t.Status != StatusPending {
			return ErrNothingToDo
		}
		t.Status = remote
		t.DecidedAt = &now
		t.Reason = fmt.Sprintf("%s in %s", remote, s.cfg.Tools.DisplayName(t.Source))
		t.Record(AuditRecord{At: now, Event: "decided_elsewhere", Detail: t.Reason})
		// The tool decided it: there is nothing to tell it.
		s.queueFinal(t, now, false)
		return nil
	})
	if errors.Is(err, ErrNothingToDo) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("close task %s decided in its tool: %w", id, err)
	}
	s.recent.add(t)
	s.observe(ctx, Event{Type: EventDecidedElsewhere, TaskID: id, Source: t.Source, Detail: string(remote)})
	s.Kick(id)
	return nil
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
