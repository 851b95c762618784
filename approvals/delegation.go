package approvals

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// MaxDelegation is the longest a delegation may last.
const MaxDelegation = 30 * 24 * time.Hour

// Delegation lets Delegate decide, until Until, wherever Delegator may:
// the vote is recorded as "Delegate for Delegator" and counts as the
// delegator's. A person has at most one delegation at a time; there are no
// chains (a delegate acts with the delegator's own rights only).
type Delegation struct {
	Delegator Person    `json:"delegator"`
	Delegate  Person    `json:"delegate"`
	Until     time.Time `json:"until"`
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

// Active reports whether the delegation holds at now.
func (d Delegation) Active(now time.Time) bool { return now.Before(d.Until) }

// DelegationStore keeps the delegations: one small set, changed by
// conditional writes (store/bolt and store/dynamodb, in the contract
// suite), shared by every replica.
type DelegationStore interface {
	// Delegations returns every stored delegation (expired ones too, until
	// a write drops them).
	Delegations(ctx context.Context) ([]Delegation, error)
	// UpdateDelegations applies fn to the current set and writes the
	// result in one conditional write, calling fn again when another write
	// came in between. An error from fn aborts without writing and is
	// returned as it is.
	UpdateDelegations(ctx context.Context, fn func([]Delegation) ([]Delegation, error)) ([]Delegation, error)
}

// DelegationError is a delegation refused, saying why, for the person.
type DelegationError struct{ Why string }

func (e *DelegationError) Error() string { return "delegation refused: " + e.Why }

// maxDelegationReason bounds a delegation's reason.
const maxDelegationReason = 300

// Delegate records that from's decisions may be taken by to until until,
// replacing from's delegation if there is one.
func (s *Service) Delegate(ctx context.Context, from, to Person, until time.Time, reason string) (Delegation, error) {
	ds := s.cfg.Delegations
	if ds == nil {
		return Delegation{}, fmt.Errorf("delegate: %w: no store for delegations", ErrUnavailable)
	}
	now := s.now().UTC()
	reason = CapRunes(strings.TrimSpace(reason), maxDelegationReason)
	switch {
	case from.ID == "" || to.ID == "":
		return Delegation{}, &DelegationError{"name the person to delegate to"}
	case s.same(from, to):
		return Delegation{}, &DelegationError{"you cannot delegate to yourself"}
	case !until.After(now):
		return Delegation{}, &DelegationError{"the end date is in the past"}
	case until.Sub(now) > MaxDelegation:
		return Delegation{}, &DelegationError{fmt.Sprintf("a delegation lasts at most %d days", int(MaxDelegation.Hours()/24))}
	}
	d := Delegation{Delegator: from, Delegate: to, Until: until.UTC(), Reason: reason, CreatedAt: now}
	_, err := ds.UpdateDelegations(ctx, func(all []Delegation) ([]Delegation, error) {
		all = slices.DeleteFunc(all, func(o Delegation) bool { return !o.Active(now) || s.same(o.Delegator, from) })
		for _, o := range all {
			if s.same(o.Delegator, to) {
				// No chains: Bob, away himself, cannot take Alice's decisions.
				return nil, &DelegationError{fmt.Sprintf("%s has delegated their own decisions until %s; no chains", displayName(to), o.Until.Format(time.DateOnly))}
			}
		}
		return append(all, d), nil
	})
	if err != nil {
		return Delegation{}, fmt.Errorf("delegate: %w", err)
	}
	s.observe(ctx, Event{Type: EventDelegated, Detail: "delegation until " + d.Until.Format(time.RFC3339)})
	return d, nil
}

// EventDelegated: a delegation was made or cancelled.
const EventDelegated EventType = "delegated"

// CancelDelegation ends from's delegation; ErrNotFound when there is none.
func (s *Service) CancelDelegation(ctx context.Context, from Person) (Delegation, error) {
	ds := s.cfg.Delegations
	if ds == nil {
		return Delegation{}, fmt.Errorf("cancel delegation: %w: no store for delegations", ErrUnavailable)
	}
	now := s.now().UTC()
	var cancelled Delegation
	_, err := ds.UpdateDelegations(ctx, func(all []Delegation) ([]Delegation, error) {
		i := slices.IndexFunc(all, func(o Delegation) bool { return o.Active(now) && s.same(o.Delegator, from) })
		if i < 0 {
			return nil, ErrNotFound
		}
		cancelled = all[i]
		return slices.DeleteFunc(all, func(o Delegation) bool { return !o.Active(now) || s.same(o.Delegator, from) }), nil
	})
	if err != nil {
		return Delegation{}, err
	}
	s.observe(ctx, Event{Type: EventDelegated, Detail: "delegation cancelled"})
	return cancelled, nil
}

// DelegationsOf returns the person's own active delegation (given, nil
// when none) and those made to them (received).
func (s *Service) DelegationsOf(ctx context.Context, u Person) (given *Delegation, received []Delegation, err error) {
	all, err := s.activeDelegations(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, d := range all {
		if s.same(d.Delegator, u) {
			d := d
			given = &d
		}
		if s.same(d.Delegate, u) {
			received = append(received, d)
		}
	}
	return given, received, nil
}

// listingKey carries the delegations read once for a whole listing
// (Waiting, RecentlyDecided), so that a list of many tasks costs one read
// of them, not one a task.
type listingKey struct{}

// withDelegations reads the delegations once for a listing.
func (s *Service) withDelegations(ctx context.Context) (context.Context, error) {
	if s.cfg.Delegations == nil {
		return ctx, nil
	}
	all, err := s.activeDelegations(ctx)
	if err != nil {
		return ctx, err
	}
	return context.WithValue(ctx, listingKey{}, all), nil
}

func (s *Service) activeDelegations(ctx context.Context) ([]Delegation, error) {
	if s.cfg.Delegations == nil {
		return nil, nil
	}
	if listed, ok := ctx.Value(listingKey{}).([]Delegation); ok {
		return listed, nil
	}
	all, err := s.cfg.Delegations.Delegations(ctx)
	if err != nil {
		return nil, fmt.Errorf("read delegations: %w", err)
	}
	now := s.now()
	return slices.DeleteFunc(all, func(d Delegation) bool { return !d.Active(now) }), nil
}

// displayName is how a person is named in texts.
func displayName(p Person) string {
	if n := strings.TrimSpace(p.Name); n != "" {
		return n
	}
	return p.ID
}

// actingFor turns the click of a delegate who is no approver in their own
// right (or has voted already) into the click of a delegator who may
// decide: the request's user becomes the delegator, named "Bob (UBOB) for
// Alice", and By the delegate. Self-approval applies to both: a delegate
// approves neither the delegator's request nor their own. It returns the
// request unchanged when no delegation applies.
func (s *Service) actingFor(ctx context.Context, t *Task, req DecideRequest, now time.Time) (DecideRequest, error) {
	if s.cfg.Delegations == nil || req.By != nil {
		return req, nil
	}
	p := FindPolicy(s.cfg.Rules().Policies, t.Policy)
	if p == nil {
		return req, nil
	}
	own, err := s.mayDecideAs(ctx, t, p, req.User)
	if err != nil {
		return req, err
	}
	if own && (req.Action == ActionReject || !s.hasVoted(t, req.User)) {
		return req, nil
	}
	all, err := s.activeDelegations(ctx)
	if err != nil {
		return req, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	for _, d := range all {
		if !s.same(d.Delegate, req.User) || (req.Action == ActionApprove && s.hasVoted(t, d.Delegator)) {
			continue
		}
		ok, err := s.mayDecideAs(ctx, t, p, d.Delegator)
		if err != nil {
			return req, err
		}
		if !ok {
			continue
		}
		if req.Action == ActionApprove && !p.AllowSelfApproval {
			// The delegate's own request: refused as theirs.
			self, err := s.isRequester(ctx, t, req.User)
			if err != nil {
				return req, err
			}
			if self {
				return req, ErrSelfApproval
			}
		}
		delegate := req.User
		req.By = &delegate
		req.User = d.Delegator
		req.User.Name = displayName(delegate) + " (" + delegate.ID + ") for " + displayName(d.Delegator)
		return req, nil
	}
	return req, nil
}

// mayDecideAs reports whether the person is an approver of the task's
// policy in their own right (the lists, require_from, an escalation, on
// call). A failed on-call look-up is an error.
func (s *Service) mayDecideAs(ctx context.Context, t *Task, p *Policy, u Person) (bool, error) {
	if ok, err := s.isApprover(ctx, p.Approvers, u); ok || err != nil {
		return ok, err
	}
	who := s.asker(u)
	for _, r := range p.RequireFrom {
		if ok, err := r.Includes(ctx, who); ok || err != nil {
			return ok, err
		}
	}
	if t.Escalated && p.Escalate != nil {
		return s.isApprover(ctx, p.Escalate.To, u)
	}
	return false, nil
}

// mayDecideFor is MayDecide's delegation part: the user is an active
// delegate of someone who may decide the task.
func (s *Service) mayDecideFor(ctx context.Context, t *Task, u Person) (bool, error) {
	p := FindPolicy(s.cfg.Rules().Policies, t.Policy)
	if p == nil || s.cfg.Delegations == nil {
		return false, nil
	}
	all, err := s.activeDelegations(ctx)
	if err != nil {
		return false, err
	}
	for _, d := range all {
		if !s.same(d.Delegate, u) {
			continue
		}
		ok, err := s.mayDecideAs(ctx, t, p, d.Delegator)
		if errors.Is(err, ErrOnCallUnknown) {
			continue
		}
		if ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}
