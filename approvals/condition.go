package approvals

import (
	"context"
	"fmt"
)

// Condition is a policy's match.when: an expression over the task's
// fields (DESIGN.md, "Who may decide, beyond lists"). It is compiled and
// type-checked when the configuration loads, outside this package (the
// condition package wraps CEL), so that the domain keeps to the standard
// library.
type Condition interface {
	// Eval reports whether the task meets the condition. An error (a
	// missing extra key, a bad conversion) is no match.
	Eval(t *Task) (bool, error)
}

// ConditionError is a policy's condition that could not be evaluated on a
// task: the task is not matched by that policy (fail closed).
type ConditionError struct {
	Policy string
	Err    error
}

func (e *ConditionError) Error() string {
	return fmt.Sprintf("policy %s: match.when could not be evaluated (no match): %v", e.Policy, e.Err)
}
func (e *ConditionError) Unwrap() error { return e.Err }

// matchWhen reports whether the policy's condition, if it has one, holds
// for the task; an evaluation error is no match and is returned for the
// log.
func (p *Policy) matchWhen(t *Task) (bool, error) {
	if p.When == nil {
		return true, nil
	}
	ok, err := p.When.Eval(t)
	if err != nil {
		return false, &ConditionError{Policy: p.Name, Err: err}
	}
	return ok, nil
}

// MatchPolicyReport is MatchPolicy that hands report every condition that
// could not be evaluated on the way (report may be nil).
func MatchPolicyReport(policies []Policy, t *Task, report func(error)) *Policy {
	for i := range policies {
		p := &policies[i]
		if !p.matchGlobs(t) {
			continue
		}
		ok, err := p.matchWhen(t)
		if err != nil && report != nil {
			report(err)
		}
		if ok {
			return p
		}
	}
	return nil
}

// matchPolicy is MatchPolicyReport whose failed conditions are observed
// (logged, as an error of the configuration).
func (s *Service) matchPolicy(policies []Policy, t *Task) *Policy {
	return MatchPolicyReport(policies, t, func(err error) {
		s.observe(context.Background(), Event{Type: EventError, TaskID: t.ID, Source: t.Source, Err: err, Detail: "policy condition"})
	})
}
