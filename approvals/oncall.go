package approvals

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// OnCall says who is on call, for approvers (and break-glass) named as
// "whoever is on call on these schedules" (pagerduty/ implements it).
type OnCall interface {
	// OnCallEmails returns the emails of the people on call now on any of
	// the schedules. An error means it could not tell.
	OnCallEmails(ctx context.Context, schedules []string) ([]string, error)
}

// ErrOnCallUnknown: who is on call could not be looked up (PagerDuty
// failed, timed out or rate-limited us); the click is refused, never
// guessed.
var ErrOnCallUnknown = errors.New("could not check who is on call")

// isApprover reports whether the person is named by the approvers: in their
// lists (Approvers.IsApprover) or on call on one of their schedules at
// this moment. A failed on-call look-up is ErrOnCallUnknown.
func (s *Service) isApprover(ctx context.Context, a Approvers, u Person) (bool, error) {
	ok, err := a.IsApprover(ctx, s.asker(u))
	if ok || err != nil || len(a.OnCallSchedules) == 0 {
		return ok, err
	}
	return s.onCall(ctx, a.OnCallSchedules, u)
}

// onCall reports whether the person is on call on one of the schedules,
// matched by email: their verified email where their chat gives one, else
// their chat's look-up of each on-call email.
func (s *Service) onCall(ctx context.Context, schedules []string, u Person) (bool, error) {
	if s.cfg.OnCall == nil {
		return false, fmt.Errorf("%w: no PagerDuty connection is configured", ErrOnCallUnknown)
	}
	emails, err := s.cfg.OnCall.OnCallEmails(ctx, schedules)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrOnCallUnknown, err)
	}
	who := s.asker(u)
	for _, e := range emails {
		e = s.fold(strings.TrimSpace(e))
		if who.Email != "" {
			if e == who.Email {
				return true, nil
			}
			continue
		}
		if who.dir == nil {
			return false, fmt.Errorf("%w: no chat connection to look the on-call people up", ErrOnCallUnknown)
		}
		id, err := who.dir.UserIDByEmail(ctx, e)
		switch {
		case errors.Is(err, ErrNotFound):
			continue
		case err != nil:
			return false, fmt.Errorf("%w: %w", ErrOnCallUnknown, err)
		}
		if id == who.ID {
			return true, nil
		}
	}
	return false, nil
}

// mayDecideOnCall is MayDecide's on-call part: a look-up that fails hides
// the task (the click would be refused too).
func (s *Service) mayDecideOnCall(ctx context.Context, p *Policy, u Person) bool {
	if len(p.Approvers.OnCallSchedules) == 0 {
		return false
	}
	ok, err := s.onCall(ctx, p.Approvers.OnCallSchedules, u)
	return err == nil && ok
}

// onCallMoot reports whether a failed look-up of the break-glass on-call
// people does not matter to the click: an approver approving as usual
// does not need it (breaking glass does).
func onCallMoot(err error, approver bool, req DecideRequest) bool {
	return errors.Is(err, ErrOnCallUnknown) && approver && !req.BreakGlass
}
