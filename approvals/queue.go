package approvals

import (
	"context"
	"slices"
	"sync"
	"time"
)

// maxQueue bounds what Waiting returns: a person's screen, not an export.
const maxQueue = 50

// MayDecide reports whether the user may decide the pending task under its
// policy as now in force: a named approver, a member of a require_from
// entry, or (once escalated) of the escalation. Self-approval, windows and
// freezes are the click's to check; they do not hide a task.
func (s *Service) MayDecide(ctx context.Context, t *Task, person Person) (bool, error) {
	p := FindPolicy(s.cfg.Rules().Policies, t.Policy)
	if p == nil || t.Status != StatusPending {
		return false, nil
	}
	who := s.asker(s.person(person))
	if ok, err := p.Approvers.IsApprover(ctx, who); ok || err != nil {
		return ok, err
	}
	for _, r := range p.RequireFrom {
		if ok, err := r.Includes(ctx, who); ok || err != nil {
			return ok, err
		}
	}
	if t.Escalated && p.Escalate != nil {
		if ok, err := p.Escalate.To.IsApprover(ctx, who); ok || err != nil {
			return ok, err
		}
	}
	if s.mayDecideOnCall(ctx, p, who.Person) {
		return true, nil
	}
	return s.mayDecideFor(ctx, t, who.Person)
}

// Waiting returns the pending tasks the user may decide, across tools and
// channels, newest first, at most 50. It walks the store's due index page
// by page (every pending task is in it, due at its expiry at the latest).
func (s *Service) Waiting(ctx context.Context, person Person) ([]*Task, error) {
	ctx, err := s.withDelegations(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Task
	var cursor Cursor
	for {
		page, err := s.cfg.Store.Due(ctx, s.now().Add(farFuture), cursor, 500)
		if err != nil {
			return nil, err
		}
		for _, t := range page.Tasks {
			if t.Status != StatusPending || t.Expired(s.now()) {
				continue
			}
			ok, err := s.MayDecide(ctx, t, person)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, t)
			}
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	slices.SortFunc(out, func(a, b *Task) int { return b.CreatedAt.Compare(a.CreatedAt) })
	if len(out) > maxQueue {
		out = out[:maxQueue]
	}
	return out, nil
}

// recentlyDecided remembers the last tasks this process saw decided, for a
// person's "recently decided" list. It is the process's own memory: with
// several replicas each shows what it decided, and a restart forgets.
type recentlyDecided struct {
	mu    sync.Mutex
	tasks []*Task // newest last
}

const maxRecent = 200

func (r *recentlyDecided) add(t *Task) {
	if t == nil || !t.Status.Final() {
		return
	}
	cp := *t
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tasks = slices.DeleteFunc(r.tasks, func(o *Task) bool { return o.ID == t.ID })
	r.tasks = append(r.tasks, &cp)
	if len(r.tasks) > maxRecent {
		r.tasks = r.tasks[len(r.tasks)-maxRecent:]
	}
}

// RecentlyDecided returns up to n tasks this process saw become final in
// the last day whose policy names the user, newest first.
func (s *Service) RecentlyDecided(ctx context.Context, person Person, n int) ([]*Task, error) {
	ctx, err := s.withDelegations(ctx)
	if err != nil {
		return nil, err
	}
	s.recent.mu.Lock()
	tasks := slices.Clone(s.recent.tasks)
	s.recent.mu.Unlock()
	var out []*Task
	since := s.now().Add(-24 * time.Hour)
	for i := len(tasks) - 1; i >= 0 && len(out) < n; i-- {
		t := tasks[i]
		if t.DecidedAt != nil && t.DecidedAt.Before(since) {
			continue
		}
		pending := *t
		pending.Status = StatusPending // who could have decided it
		ok, err := s.MayDecide(ctx, &pending, person)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, t)
		}
	}
	return out, nil
}
