package config

import (
	"errors"
	"fmt"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/condition"
)

// whenKey is the key of a policy's match that holds a CEL condition
// rather than a glob.
const whenKey = "when"

// validateWhen compiles and type-checks the policy's match.when; each
// problem names the policy and the place in the expression.
func validateWhen(p *problems, key string, pol PolicyConfig) {
	expr, ok := pol.Match[whenKey]
	if !ok {
		return
	}
	if _, err := condition.Compile(expr); err != nil {
		var ce *condition.CompileError
		if !errors.As(err, &ce) {
			p.addf(key+".match.when", "policy %q: %v", pol.Name, err)
			return
		}
		for _, prob := range ce.Problems {
			p.addf(key+".match.when", "policy %q: %s", pol.Name, prob)
		}
	}
}

// policyWhen splits the policy's match into its globs and its condition.
// The configuration has been validated; should the condition not compile
// all the same, it matches nothing (fail closed).
func policyWhen(out *approvals.Policy) {
	expr, ok := out.Match[whenKey]
	if !ok {
		return
	}
	delete(out.Match, whenKey)
	c, err := condition.Compile(expr)
	if err != nil {
		out.When = never{err}
		return
	}
	out.When = c
}

// never is a condition that did not compile: it matches no task.
type never struct{ err error }

func (n never) Eval(*approvals.Task) (bool, error) {
	return false, fmt.Errorf("the condition does not compile: %w", n.err)
}
