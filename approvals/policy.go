package approvals

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
)

// Policy says who may decide which tasks, how many approvals they need and
// for how long they stay open.
type Policy struct {
	Name string
	// Match holds glob patterns (case-insensitive) on the task's context:
	// keys environment, project, release, pipeline, stage, source. All must
	// match; an empty Match matches every task.
	Match map[string]string
	// Channels names the channel a task goes to in each chat, by the
	// chat's name; a chat not named gets the task in its default channel
	// when it posts by default (Chat.PostsByDefault).
	Channels map[string]string
	// When, if set, must hold too (match.when, condition.go).
	When                Condition
	Approvers           Approvers
	RequiredApprovals   int
	AllowSelfApproval   bool
	RequireRejectReason bool
	TTL                 time.Duration
	OnExpiry            OnExpiry
	// RemindBefore is how long before expiry a reminder is posted in the
	// message's thread; 0 posts none.
	RemindBefore time.Duration

	// RequireFrom entries must each be filled as well as RequiredApprovals
	// (distinct people); their members may approve too. A person fills one
	// entry unless Overlap lets them fill every entry they belong to.
	RequireFrom []Requirement
	Overlap     bool
	// Windows, when given, are the only times approving is open; Freezes
	// close it. Rejecting is always open.
	Windows []Window
	Freezes []Freeze
	// BreakGlass names who may approve their own task, outside the windows
	// and inside a freeze, with a written reason.
	BreakGlass Approvers
	// Confirm, when ConfirmTypeEnvironment, makes approving ask for the
	// task's environment typed out.
	Confirm string
	// RequireSSO makes deciding possible only after signing in on the web
	// (a link instead of deciding buttons).
	RequireSSO bool
	// NotifyDM sends every named approver the message in a direct message
	// too; every copy is kept up to date.
	NotifyDM bool
	// NotifyRequester tells the requester the outcome by direct message
	// (requester.go).
	NotifyRequester bool
	// Escalate, when set, adds approvers to a task still pending after a
	// while, and tells them.
	Escalate *Escalation
	// RequireChange names the change system (ChangeSystems) whose record
	// the task names must allow approving (change.go); "" requires none.
	RequireChange string
}

// Escalation adds To as approvers of a task still pending After its intake.
type Escalation struct {
	After time.Duration
	To    Approvers
}

// Approvers names who may decide: Slack user ids, user-group ids, emails.
type Approvers struct {
	Users  []string
	Groups []string
	Emails []string
	// OnCallSchedules name whoever is on call on them (PagerDuty), at
	// the moment of the click (oncall.go).
	OnCallSchedules []string
}

// Empty reports whether nobody is named.
func (a Approvers) Empty() bool {
	return len(a.Users) == 0 && len(a.Groups) == 0 && len(a.Emails) == 0 && len(a.OnCallSchedules) == 0
}

// MatchKeys are the context fields a policy may match on.
var MatchKeys = []string{"environment", "project", "release", "pipeline", "stage", "source"}

func matchField(t *Task, key string) string {
	switch key {
	case "environment":
		return t.Environment
	case "project":
		return t.Project
	case "release":
		return t.Release
	case "pipeline":
		return t.Pipeline
	case "stage":
		return t.Stage
	case "source":
		return t.Source
	}
	return ""
}

// ValidGlob reports whether pattern is a well-formed glob.
func ValidGlob(pattern string) error {
	_, err := path.Match(strings.ToLower(pattern), "")
	return err
}

// Matches reports whether every pattern of the policy, and its condition,
// match the task.
func (p *Policy) Matches(t *Task) bool {
	if !p.matchGlobs(t) {
		return false
	}
	ok, _ := p.matchWhen(t)
	return ok
}

func (p *Policy) matchGlobs(t *Task) bool {
	for key, pattern := range p.Match {
		ok, err := path.Match(strings.ToLower(pattern), strings.ToLower(matchField(t, key)))
		if err != nil || !ok {
			return false
		}
	}
	return true
}

// MatchPolicy returns the first policy that matches the task, or nil.
func MatchPolicy(policies []Policy, t *Task) *Policy {
	return MatchPolicyReport(policies, t, nil)
}

// FindPolicy returns the policy with the name, or nil.
func FindPolicy(policies []Policy, name string) *Policy {
	if name == "" {
		return nil
	}
	for i := range policies {
		if policies[i].Name == name {
			return &policies[i]
		}
	}
	return nil
}

// asker is the person a decision is checked for, with what their chat
// can tell about them.
type asker struct {
	Person
	// primary: their chat is the primary chat, whose ids approvers.users,
	// approvers.groups and require_from name.
	primary bool
	// dir is their chat's directory; nil when it has none.
	dir  Directory
	fold func(string) string
}

// asker is the person of a request as the decision checks see them.
func (s *Service) asker(p Person) asker {
	c, _ := s.cfg.Chats.Get(p.Chat)
	a := asker{Person: p, fold: s.fold}
	if c != nil {
		a.primary, a.dir = c.Primary, c.Directory
	} else if p.Chat == "" || s.cfg.Chats.primary() == nil {
		// No chat registered (tests of the core, a bot without chats): the
		// ids are the approvers' own.
		a.primary = true
	}
	return a
}

// IsApprover reports whether the person is named by the approvers: by their
// id or a user group of the primary chat, or by their email in any chat.
func (a Approvers) IsApprover(ctx context.Context, who asker) (bool, error) {
	if who.primary {
		for _, u := range a.Users {
			if u == who.ID {
				return true, nil
			}
		}
		if who.dir != nil {
			for _, g := range a.Groups {
				members, err := who.dir.GroupMembers(ctx, g)
				if err != nil {
					return false, fmt.Errorf("user group %s: %w", g, err)
				}
				for _, m := range members {
					if m == who.ID {
						return true, nil
					}
				}
			}
		}
	}
	if who.Email != "" {
		// The chat told the person's verified email: compare it.
		for _, e := range a.Emails {
			if who.fold(strings.TrimSpace(e)) == who.Email {
				return true, nil
			}
		}
		return false, nil
	}
	if who.dir == nil {
		return false, nil
	}
	for _, e := range a.Emails {
		id, err := who.dir.UserIDByEmail(ctx, e)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return false, fmt.Errorf("look up approver email: %w", err)
		}
		if id == who.ID {
			return true, nil
		}
	}
	return false, nil
}
