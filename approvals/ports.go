package approvals

import (
	"context"
	"time"
)

// Store keeps tasks. Every method is safe for concurrent use, also across
// processes sharing one backend. Backends: store/bolt (embedded),
// store/dynamodb (shared); store/storetest is the contract both pass.
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
	// Due returns up to limit tasks whose DueAt is at or before before,
	// earliest first, without a scan.
	Due(ctx context.Context, before time.Time, limit int) ([]*Task, error)
	// Ping reports whether the store can be reached.
	Ping(ctx context.Context) error
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

// Notifier shows tasks in a chat tool.
type Notifier interface {
	// Post posts the task's message with its decision buttons carrying token.
	Post(ctx context.Context, t *Task, token string) (MessageRef, error)
	// Update renders the task's current state into its message.
	Update(ctx context.Context, t *Task) error
	// Remind posts a reminder in the message's thread.
	Remind(ctx context.Context, t *Task) error
}

// Deployer hands outcomes to a deployment tool.
type Deployer interface {
	// Deliver tells the deployment tool the outcome with notes. A
	// PermanentError means the tool refused for good (for example a 4xx:
	// the task was decided in its own UI).
	Deliver(ctx context.Context, t *Task, action Action, notes string) error
}

// Announcer is a Deployer that also shows its own users what is happening
// (Azure DevOps' task log: "Waiting for approval in Slack"). Announce is
// called once the chat message is posted; the values it returns are kept in
// the task's Extra (for example the id of a log it created).
type Announcer interface {
	Announce(ctx context.Context, t *Task) (extra map[string]string, err error)
}

// StatusChecker asks a deployment tool whether a task was decided in its own UI.
type StatusChecker interface {
	// RemoteStatus returns the task's status at the deployment tool:
	// StatusPending while open there, StatusApproved or StatusRejected once
	// decided there.
	RemoteStatus(ctx context.Context, t *Task) (Status, error)
}

// Directory answers who is who in the chat tool.
type Directory interface {
	// GroupMembers returns the user ids of a user group.
	GroupMembers(ctx context.Context, groupID string) ([]string, error)
	// UserIDByEmail returns the user id of the user with that email, or
	// ErrNotFound.
	UserIDByEmail(ctx context.Context, email string) (string, error)
}

// Clock is injectable time.
type Clock func() time.Time
