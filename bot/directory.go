package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/slack-go/slack"
)

// defaultDirectoryTTL is how long answers are kept when NewDirectory gets no
// ttl: long enough that a burst of clicks costs one lookup, short enough that
// a change of a user group shows within minutes.
const defaultDirectoryTTL = 5 * time.Minute

// Directory answers who is who from Slack: user-group members and users by
// email. Answers are cached for a while because every click checks the
// approvers and Slack rate-limits these methods; failures are not cached.
type Directory struct {
	n   *Notifier
	ttl time.Duration

	mu     sync.Mutex
	groups map[string]cached[[]string]
	emails map[string]cached[string]
	// profiles are users' emails by user id ("" for none).
	profiles map[string]cached[string]
}

type cached[T any] struct {
	value   T
	expires time.Time
}

var _ approvals.Directory = (*Directory)(nil)

// NewDirectory returns a Directory that asks Slack through n and keeps
// answers for ttl (default 5 minutes).
func NewDirectory(n *Notifier, ttl time.Duration) *Directory {
	d := newDirectory(n, ttl)
	n.dirOnce.Do(func() { n.directory = d }) // Direct resolves through it
	return d
}

func newDirectory(n *Notifier, ttl time.Duration) *Directory {
	if ttl <= 0 {
		ttl = defaultDirectoryTTL
	}
	return &Directory{
		n:        n,
		ttl:      ttl,
		groups:   make(map[string]cached[[]string]),
		emails:   make(map[string]cached[string]),
		profiles: make(map[string]cached[string]),
	}
}

// GroupMembers returns the user ids of a user group.
func (d *Directory) GroupMembers(ctx context.Context, groupID string) ([]string, error) {
	if members, ok := lookup(d, d.groups, groupID); ok {
		return slices.Clone(members), nil
	}
	op := "list members of user group " + groupID
	if err := d.n.ready(op); err != nil {
		return nil, err
	}
	members, err := d.n.api.GetUserGroupMembersContext(ctx, groupID)
	if err != nil {
		return nil, d.n.mapError(ctx, op, err)
	}
	store(d, d.groups, groupID, slices.Clone(members))
	return members, nil
}

// UserIDByEmail returns the id of the user with that email, or an error
// wrapping approvals.ErrNotFound.
func (d *Directory) UserIDByEmail(ctx context.Context, email string) (string, error) {
	key := strings.ToLower(strings.TrimSpace(email))
	if id, ok := lookup(d, d.emails, key); ok {
		return id, nil
	}
	op := "look up user by email"
	if err := d.n.ready(op); err != nil {
		return "", err
	}
	user, err := d.n.api.GetUserByEmailContext(ctx, key)
	if err != nil {
		var se slack.SlackErrorResponse
		if errors.As(err, &se) && se.Err == "users_not_found" {
			// The email is not logged: it is personal data.
			return "", fmt.Errorf("slack: %s: %w", op, approvals.ErrNotFound)
		}
		return "", d.n.mapError(ctx, op, err)
	}
	store(d, d.emails, key, user.ID)
	return user.ID, nil
}

// EmailOf returns the verified email of the user ("" when their profile
// shows none: the app lacks users:read.email, or the user is a bot).
func (d *Directory) EmailOf(ctx context.Context, userID string) (string, error) {
	if email, ok := lookup(d, d.profiles, userID); ok {
		return email, nil
	}
	op := "look up a user's email"
	if err := d.n.ready(op); err != nil {
		return "", err
	}
	user, err := d.n.api.GetUserInfoContext(ctx, userID)
	if err != nil {
		return "", d.n.mapError(ctx, op, err)
	}
	email := strings.TrimSpace(user.Profile.Email)
	store(d, d.profiles, userID, email)
	return email, nil
}

func lookup[T any](d *Directory, m map[string]cached[T], key string) (T, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := m[key]
	if !ok || !d.n.now().Before(c.expires) {
		var zero T
		return zero, false
	}
	return c.value, true
}

func store[T any](d *Directory, m map[string]cached[T], key string, value T) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.n.now()
	// Drop what has run out so that the cache cannot grow without bound
	// over a long run; it holds a policy's approvers, a handful of keys.
	for k, c := range m {
		if !now.Before(c.expires) {
			delete(m, k)
		}
	}
	m[key] = cached[T]{value: value, expires: now.Add(d.ttl)}
}
