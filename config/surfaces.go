package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

// The keys of a policy that reach approvers where they already are (see
// DESIGN.md, "Slack surfaces"): a direct message to each named approver,
// and more approvers once a task has waited too long.

// NotifyConfig says whom a policy's tasks are sent to besides the channel.
type NotifyConfig struct {
	// DM sends every named approver (users, members of the groups, emails
	// resolved) the message with its buttons in a direct message too.
	DM bool `mapstructure:"dm"`
	// Requester tells the requester the outcome by direct message
	// (approved, rejected with its reason, expired); true unless false.
	Requester bool `mapstructure:"requester"`
}

// EscalateConfig adds approvers to a task still pending After its intake:
// they are mentioned in the thread (and sent a direct message under
// notify.dm), and the audit records it.
type EscalateConfig struct {
	After time.Duration    `mapstructure:"after"`
	To    EscalateToConfig `mapstructure:"to"`
}

// EscalateToConfig names the people an escalation adds.
type EscalateToConfig struct {
	Users  []string `mapstructure:"users"`
	Groups []string `mapstructure:"groups"`
}

// named reports whether the escalation names anybody.
func (e EscalateConfig) named() bool { return len(e.To.Users) > 0 || len(e.To.Groups) > 0 }

// policySurfaces fills in the policy's notify and escalate for the domain.
func policySurfaces(out *approvals.Policy, p PolicyConfig) {
	out.NotifyDM = p.Notify.DM
	out.NotifyRequester = p.Notify.Requester
	if p.Escalate.After > 0 && p.Escalate.named() {
		out.Escalate = &approvals.Escalation{
			After: p.Escalate.After,
			To:    approvals.Approvers{Users: slices.Clone(p.Escalate.To.Users), Groups: slices.Clone(p.Escalate.To.Groups)},
		}
	}
}

// validateSurfaces checks the policy's escalate; key is the policy's path
// ("policies[0]"), ttl the policy's time to decide.
func validateSurfaces(p *problems, key string, pol PolicyConfig, ttl time.Duration) {
	e := pol.Escalate
	switch {
	case e.After < 0:
		p.addf(key+".escalate.after", "must not be negative, got %s", e.After)
	case e.After == 0 && e.named():
		p.addf(key+".escalate.after", "is required when escalate.to names someone: how long a task waits before it escalates")
	case e.After > 0 && !e.named():
		p.addf(key+".escalate.to", "names nobody: give users or groups to escalate to")
	case e.After > 0 && ttl > 0 && e.After >= ttl:
		p.addf(key+".escalate.after", "must be less than the policy's ttl (%s), got %s: the task would expire first", ttl, e.After)
	}
	for _, l := range []struct {
		name string
		ids  []string
	}{{"users", e.To.Users}, {"groups", e.To.Groups}} {
		for j, id := range l.ids {
			if strings.TrimSpace(id) == "" {
				p.addf(fmt.Sprintf("%s.escalate.to.%s[%d]", key, l.name, j), "must not be empty")
			}
		}
	}
}
