package approvals

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
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

// Approvers names who may decide: the primary chat's user ids and user
// groups, and emails (a person in any chat).
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
	// dir is their chat's directory, primaryDir the primary chat's; nil
	// when it has none.
	dir, primaryDir Directory
	fold            func(string) string
	// inPrimary is their id in the primary chat once looked up (shared by
	// the copies of the asker one check makes).
	inPrimary *primaryID
}

type primaryID struct {
	done bool
	id   string
}

// asker is the person of a request as the decision checks see them.
func (s *Service) asker(p Person) asker {
	c, _ := s.cfg.Chats.Get(p.Chat)
	a := asker{Person: p, fold: s.fold, primaryDir: s.cfg.Chats.directory(""), inPrimary: &primaryID{}}
	if c != nil {
		a.primary, a.dir = c.Primary, c.Directory
	} else if p.Chat == "" || s.cfg.Chats.primary() == nil {
		// No chat registered (tests of the core, a bot without chats): the
		// ids are the approvers' own.
		a.primary, a.dir = true, a.primaryDir
	}
	return a
}

// idInPrimary is the person's id in the primary chat, which the policies'
// user ids and groups name: their own id when they act there; else the
// primary chat's user with their verified email, so that one person is
// one person in every chat ("" when there is none, or no email to match).
func (a asker) idInPrimary(ctx context.Context) (string, error) {
	if a.primary {
		return a.ID, nil
	}
	if a.Email == "" || a.primaryDir == nil || a.inPrimary == nil {
		return "", nil
	}
	if !a.inPrimary.done {
		id, err := a.primaryDir.UserIDByEmail(ctx, a.Email)
		switch {
		case errors.Is(err, ErrNotFound):
			id = ""
		case err != nil:
			return "", fmt.Errorf("look up the person in the primary chat by email: %w", err)
		}
		a.inPrimary.id, a.inPrimary.done = id, true
	}
	return a.inPrimary.id, nil
}

// namedByID reports whether the person is one of users or a member of one
// of groups (the primary chat's ids).
func (a asker) namedByID(ctx context.Context, users, groups []string) (bool, error) {
	if len(users) == 0 && len(groups) == 0 {
		return false, nil
	}
	id, err := a.idInPrimary(ctx)
	if err != nil || id == "" {
		return false, err
	}
	if slices.Contains(users, id) {
		return true, nil
	}
	if a.primaryDir == nil {
		return false, nil
	}
	for _, g := range groups {
		members, err := a.primaryDir.GroupMembers(ctx, g)
		if err != nil {
			return false, fmt.Errorf("user group %s: %w", g, err)
		}
		if slices.Contains(members, id) {
			return true, nil
		}
	}
	return false, nil
}

// namedByEmail reports whether one of emails is the person's: their
// verified email compared where the chat gave it, else each email looked
// up in their chat.
func (a asker) namedByEmail(ctx context.Context, emails []string) (bool, error) {
	if a.Email != "" {
		for _, e := range emails {
			if a.fold(strings.TrimSpace(e)) == a.Email {
				return true, nil
			}
		}
		return false, nil
	}
	if a.dir == nil {
		return false, nil
	}
	for _, e := range emails {
		id, err := a.dir.UserIDByEmail(ctx, e)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return false, fmt.Errorf("look up approver email: %w", err)
		}
		if id == a.ID {
			return true, nil
		}
	}
	return false, nil
}

// IsApprover reports whether the person is named by the approvers: by their
// id or a user group of the primary chat (people of other chats by the
// primary chat's user with their email), or by their email in any chat.
func (a Approvers) IsApprover(ctx context.Context, who asker) (bool, error) {
	if ok, err := who.namedByID(ctx, a.Users, a.Groups); ok || err != nil {
		return ok, err
	}
	return who.namedByEmail(ctx, a.Emails)
}
