package approvals

import (
	"context"
	"time"
)

// Store keeps tasks. Every method is safe for concurrent use, also across
// processes sharing one backend. Backends: store/bolt (embedded),
// store/dynamodb (shared); store/storetest is the contract both pass.
//
// A record that cannot be decoded makes Get and Update fail with a
// *CorruptError (matching ErrCorrupt) naming it; Due skips it and names it
// in the page, so that one bad record never stops the work on the others.
type Store interface {
	// Create writes a new task if no task with its ID exists. It returns the
	// stored task and created=true, or the existing task and created=false
	// (idempotent intake: the existing record is left as it is).
	Create(ctx context.Context, t *Task) (stored *Task, created bool, err error)
	// Get returns the task, or ErrNotFound.
	Get(ctx context.Context, id string) (*Task, error)
	// Update applies fn to the current task and writes the result in one
	// conditional write; when another write came in between it calls fn
	// again on the fresh record. An error from fn aborts without writing
	// and is returned as it is. fn must not change ID or Version.
	Update(ctx context.Context, id string, fn func(*Task) error) (*Task, error)
	// Due returns one page of at most limit tasks whose DueAt is at or
	// before before, earliest first, without a scan. after is the Next of
	// the page before ("" for the first); a task whose due time changes
	// between pages may be missed by this walk or seen twice, and is found
	// by the next.
	Due(ctx context.Context, before time.Time, after Cursor, limit int) (DuePage, error)
	// Ping reports whether the store takes writes now: it makes a small
	// durable write that no task operation sees, and fails with
	// ErrUnavailable while writes fail or do not finish before ctx ends.
	Ping(ctx context.Context) error
}

// LoopLeases elects one process at a time for each background loop (the
// sweeper, reconcile), so that with several replicas each due task is
// swept, and each pending task asked about, once per interval.
type LoopLeases interface {
	// TryLoop takes or renews the loop's lease for owner until until; it
	// reports whether owner holds it now (nobody held it, owner did, or
	// the holder's lease ran out before now).
	TryLoop(ctx context.Context, loop, owner string, now, until time.Time) (bool, error)
	// ReleaseLoop gives the lease back if owner holds it.
	ReleaseLoop(ctx context.Context, loop, owner string) error
}

// Cursor is where a walk through the due tasks goes on; its form is the
// store's own. The zero Cursor is the start.
type Cursor string

// DuePage is one page of due tasks.
type DuePage struct {
	Tasks []*Task
	// Corrupt are the keys of records on this page that could not be
	// decoded and were skipped.
	Corrupt []string
	// Next continues the walk after this page; "" when it is done.
	Next Cursor
}

// TokenIssuer mints and verifies one-time tokens.
type TokenIssuer interface {
	// Mint returns the task's token. It sets t.KeyID when empty (to the
	// current signing key) and otherwise signs with that key, so minting
	// the same task again yields the very same token. t.ID, t.Nonce,
	// t.ExpiresAt must be set.
	Mint(t *Task) (string, error)
	// Verify checks signature, key and expiry at now and returns the id of
	// the task the token is for. Errors wrap ErrBadToken or ErrExpired.
	Verify(token string, now time.Time) (taskID string, err error)
}

// Notifier shows tasks in one chat. The outbox mints the tokens and
// hands them over; a notifier never mints one. The refs it returns name
// its chat (MessageRef.Chat).
type Notifier interface {
	// Post posts the task's message with its decision buttons carrying
	// token to channel ("" for the chat's default channel).
	Post(ctx context.Context, t *Task, channel, token string) (MessageRef, error)
	// Update renders the task's current state into the chat's messages
	// refs (its channel message and its direct-message copies); token is
	// the task's token while it is pending (its buttons keep working) and
	// "" once it is final.
	Update(ctx context.Context, t *Task, refs []MessageRef, token string) error
	// Notice posts a notice in the thread of the channel message ref: a
	// reminder that the task expires soon, a break-glass approval
	// (mentioning every named approver), an escalation.
	Notice(ctx context.Context, t *Task, ref MessageRef, kind NoticeKind) error
	// Direct sends the task's message, with its buttons carrying token, to
	// every approver the policy names (and its escalation's, once
	// escalated) who has no copy among have yet, and returns the new
	// copies; when some could not be sent, those that were and the error.
	Direct(ctx context.Context, t *Task, have []MessageRef, token string) ([]MessageRef, error)
}

// Directory answers who is who in one chat.
type Directory interface {
	// GroupMembers returns the user ids of a user group.
	GroupMembers(ctx context.Context, groupID string) ([]string, error)
	// UserIDByEmail returns the user id of the user with that email, or
	// ErrNotFound.
	UserIDByEmail(ctx context.Context, email string) (string, error)
}

// EmailDirectory is a Directory that can also tell a user's verified
// email (for comparing a person across chats); "" when the chat has none.
type EmailDirectory interface {
	Directory
	EmailOf(ctx context.Context, userID string) (string, error)
}

// Clock is injectable time.
type Clock func() time.Time
