package approvals

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. The HTTP layer maps them to statuses and the chat layer to
// replies in one place each; only errors that are none of these are internal.
var (
	// ErrNotFound: no task with that id.
	ErrNotFound = errors.New("task not found")
	// ErrInvalid: the request is malformed; wrap it with what is wrong.
	ErrInvalid = errors.New("invalid request")
	// ErrConflict: a conditional write lost a race; stores retry it.
	ErrConflict = errors.New("write conflict")
	// ErrUnavailable: the store (or another dependency) cannot be reached.
	ErrUnavailable = errors.New("service unavailable")

	// ErrBadToken: the token is malformed, forged, signed by an unknown key,
	// or not the token of this task.
	ErrBadToken = errors.New("invalid token")
	// ErrExpired: the task's (or token's) time has run out.
	ErrExpired = errors.New("expired")
	// ErrAlreadyDecided: the task is no longer pending.
	ErrAlreadyDecided = errors.New("already decided")
	// ErrNotApprover: the person may not decide this task.
	ErrNotApprover = errors.New("not an approver")
	// ErrSelfApproval: the requester may not approve their own task.
	ErrSelfApproval = errors.New("self-approval not allowed")
	// ErrAlreadyVoted: the person's approval is counted already.
	ErrAlreadyVoted = errors.New("already voted")
	// ErrReasonRequired: the policy asks for a reason to reject.
	ErrReasonRequired = errors.New("a reason is required to reject")
	// ErrNoPolicy: no policy matches the task, so nobody may decide it from chat.
	ErrNoPolicy = errors.New("no policy names approvers for this task")

	// ErrLeased: another process holds the task's outbox lease.
	ErrLeased = errors.New("outbox leased by another process")
	// ErrNothingToDo: the task needs no work now.
	ErrNothingToDo = errors.New("nothing to do")
)

// Invalidf returns an ErrInvalid that says what is wrong.
func Invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// PermanentError marks a failure that retrying cannot mend: the deployment
// tool answered 4xx, the channel does not exist. The outbox gives up on the
// job and shows the error.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err is marked permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// RetryAfterError is a failure whose remote side said when to try again (an
// HTTP 429 with Retry-After).
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter returns the wait a RetryAfterError asks for, if err has one.
func RetryAfter(err error) (time.Duration, bool) {
	var r *RetryAfterError
	if errors.As(err, &r) {
		return r.After, true
	}
	return 0, false
}
