package approvals

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Sentinel errors. Each has one entry in the table below, which gives its
// code (the API's and the metrics' name for it), its HTTP status and what a
// person is told; no other place lists them.
var (
	// ErrNotFound: no task with that id.
	ErrNotFound = errors.New("task not found")
	// ErrInvalid: the request is malformed; wrap it with what is wrong.
	ErrInvalid = errors.New("invalid request")
	// ErrConflict: a conditional write lost a race; stores retry it.
	ErrConflict = errors.New("write conflict")
	// ErrUnavailable: the store (or another dependency) cannot be reached.
	ErrUnavailable = errors.New("service unavailable")
	// ErrCorrupt: a stored record cannot be decoded. The store names the
	// record; background loops skip it, a read of it fails.
	ErrCorrupt = errors.New("stored record cannot be decoded")

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
	// ErrIdentityUnknown: whether the clicker requested the deployment could
	// not be checked (a chat look-up failed); nothing is decided.
	ErrIdentityUnknown = errors.New("could not check who requested this")
	// ErrClickerUnknown: who the clicker is could not be checked in their
	// chat (the look-up of their email failed); nothing is decided.
	ErrClickerUnknown = errors.New("could not check who the clicker is")

	// ErrApprovingClosed: approving is closed now (outside the policy's
	// windows, or inside a freeze); rejecting still works. Wrapped in a
	// *Refusal saying why and when it opens.
	ErrApprovingClosed = errors.New("approving is closed now")
	// ErrBreakGlassNeeded: the person may approve only by breaking glass
	// (their own task, or approving is closed): they are asked for a reason.
	ErrBreakGlassNeeded = errors.New("approving needs break-glass with a reason")
	// ErrBreakGlassReason: a break-glass approval without a reason.
	ErrBreakGlassReason = errors.New("a reason is required to break glass")
	// ErrConfirmRequired: the policy asks the approver to type the
	// environment first (the surface asks for it).
	ErrConfirmRequired = errors.New("type the environment to confirm")
	// ErrConfirmMismatch: what the approver typed is not the environment.
	ErrConfirmMismatch = errors.New("the typed environment does not match")
	// ErrSSORequired: the policy asks for a decision on the web, after
	// single sign-on.
	ErrSSORequired = errors.New("this task is decided after signing in on the web")

	// ErrRequesterUnmapped: the tool names who requested the deployment,
	// but no chat user is mapped to them, so self-approval cannot be ruled
	// out.
	ErrRequesterUnmapped = errors.New("the requester is not mapped to a chat user")
	// ErrRequesterUnreadable: the requester is written in chat markup that
	// is not understood, so self-approval cannot be ruled out.
	ErrRequesterUnreadable = errors.New("the requester is written in markup that cannot be read")
	// ErrUnauthenticated: a webhook's signature is missing or wrong.
	ErrUnauthenticated = errors.New("request signature missing or invalid")
	// ErrNoTask: the request carries no task (a ping, an event not acted
	// on); it is answered 200 and nothing is recorded.
	ErrNoTask = errors.New("nothing to record")

	// ErrToolDecided: the deployment tool answered a decision call by
	// saying the task is decided already. For a tool without a status
	// read, on an attempt after the first, that is the answer to an
	// earlier attempt that went through: the outbox counts it delivered.
	ErrToolDecided = errors.New("the deployment tool has the task decided already")

	// ErrLeased: another process holds the task's outbox lease.
	ErrLeased = errors.New("outbox leased by another process")
	// ErrNothingToDo: the task needs no work now.
	ErrNothingToDo = errors.New("nothing to do")
)

// Code names a kind of error where people and programs see it: the
// refusal label of the metrics, the log, the API.
type Code string

// CodeInternal is the code of every error the table does not name: a
// failure of the bot's own, logged as an error, its text never shown.
const CodeInternal Code = "internal"

// Kind is everything the surfaces need to know about one kind of error.
type Kind struct {
	Code Code
	// HTTPStatus is the status the API answers with.
	HTTPStatus int
	// Refusal marks a person's decision refused under the rules: it is
	// answered, audited and counted, never logged as a failure.
	Refusal bool
	// Reply is what a person is told; "{tool}" stands for the task's
	// deployment tool, "{chat}" for the chat (Kind.Text fills them in).
	Reply string
	// Answer is what the API answers a program with (an invalid request's
	// own error, which says what to mend, is quoted instead).
	Answer string
	// Prompt marks a refusal the surface answers by asking for more (a
	// reason, a confirmation) and trying again: it is not audited.
	Prompt bool
}

// Text is the reply with the tool's and the chat's display names filled in.
func (k Kind) Text(tool, chat string) string {
	if tool == "" {
		tool = "the deployment tool"
	}
	if chat == "" {
		chat = "chat"
	}
	return strings.NewReplacer("{tool}", tool, "{chat}", chat).Replace(k.Reply)
}

// Reply is what a person is told about err in chat: its kind's reply with
// the tool's and the chat's names and, where the refusal carries one, its
// detail ("frozen until …") filled in.
func Reply(err error, tool, chat string) string {
	text := KindOf(err).Text(tool, chat)
	detail := ""
	var r *Refusal
	if errors.As(err, &r) {
		detail = r.Detail
	}
	if detail == "" {
		detail = "try again later"
	}
	return strings.ReplaceAll(text, "{detail}", detail)
}

// Refusal is a refusal with a detail for people: why, and until when.
type Refusal struct {
	Err    error
	Detail string
}

func (r *Refusal) Error() string { return r.Err.Error() + ": " + r.Detail }
func (r *Refusal) Unwrap() error { return r.Err }

// kinds is the one table of error kinds, most specific first: an error
// that wraps two (break-glass needed because of a self-approval) takes the
// first row it matches.
var kinds = []struct {
	err  error
	kind Kind
}{
	{ErrBreakGlassNeeded, Kind{"break_glass_needed", http.StatusForbidden, true, "You can approve this only by breaking glass, with a written reason.", "approving needs break-glass with a reason", true}},
	{ErrNotApprover, Kind{"not_approver", http.StatusForbidden, true, "You are not an approver for this deployment.", "not an approver", false}},
	{ErrSelfApproval, Kind{"self_approval", http.StatusForbidden, true, "You requested this deployment, so you cannot approve it yourself. Ask another approver.", "self-approval not allowed", false}},
	{ErrAlreadyDecided, Kind{"already_decided", http.StatusConflict, true, "This deployment has already been decided; your click changed nothing.", "already decided", false}},
	{ErrExpired, Kind{"expired", http.StatusGone, true, "This approval request has expired. Decide it in {tool}.", "expired", false}},
	{ErrBadToken, Kind{"bad_token", http.StatusForbidden, true, "This button is no longer valid.", "invalid token", true}},
	{ErrAlreadyVoted, Kind{"already_voted", http.StatusConflict, true, "Your approval is already counted.", "already voted", false}},
	{ErrReasonRequired, Kind{"reason_required", http.StatusBadRequest, true, "A reason is required to reject this deployment.", "a reason is required to reject", true}},
	{ErrNoPolicy, Kind{"no_policy", http.StatusForbidden, true, "No policy names approvers for this deployment, so nobody can decide it from {chat}. Decide it in {tool}.", "no policy names approvers for this task", false}},
	{ErrClickerUnknown, Kind{"clicker_unknown", http.StatusServiceUnavailable, true, "Could not check who you are in {chat}, so nothing was decided; try again in a minute.", "could not check who the clicker is, retry later", false}},
	{ErrIdentityUnknown, Kind{"identity_unknown", http.StatusServiceUnavailable, true, "Could not check who requested this; try again in a minute.", "could not check who requested this, retry later", false}},
	{ErrOnCallUnknown, Kind{"oncall_unknown", http.StatusServiceUnavailable, true, "Could not check who is on call; try again in a minute.", "could not check who is on call, retry later", false}},
	{ErrApprovingClosed, Kind{"approving_closed", http.StatusForbidden, true, "Approving is closed now: {detail}. Rejecting still works.", "approving is closed now", false}},
	{ErrBreakGlassReason, Kind{"break_glass_reason", http.StatusBadRequest, true, "A reason is required to break glass.", "a reason is required to break glass", true}},
	{ErrConfirmRequired, Kind{"confirm_required", http.StatusBadRequest, true, "Type the environment's name to confirm the approval.", "type the environment to confirm", true}},
	{ErrConfirmMismatch, Kind{"confirm_mismatch", http.StatusBadRequest, true, "The environment you typed does not match; nothing was decided.", "the typed environment does not match", false}},
	{ErrSSORequired, Kind{"sso_required", http.StatusForbidden, true, "This deployment is decided on the web after signing in: use the Review button.", "this task is decided after signing in on the web", false}},
	{ErrRequesterUnmapped, Kind{"requester_unmapped", http.StatusForbidden, true, "Who requested this in {tool} is not mapped to a {chat} user, so nobody can approve it here until an admin maps them in approvalbot's configuration. Rejecting works.", "the requester is not mapped to a chat user", false}},
	{ErrRequesterUnreadable, Kind{"requester_unreadable", http.StatusForbidden, true, "Who requested this is written in a form approvalbot cannot read, so nobody can approve it here; decide it in {tool}. Rejecting works.", "the requester is written in markup that cannot be read", false}},
	{ErrUnauthenticated, Kind{"unauthenticated", http.StatusUnauthorized, false, "The request's signature is missing or invalid.", "request signature missing or invalid", false}},
	{ErrNoTask, Kind{"no_task", http.StatusOK, false, "Nothing to decide.", "ignored", false}},
	{ErrArtifactMismatch, Kind{"artifact_mismatch", http.StatusConflict, false, "This task was recorded with another artifact; nothing changed.", "the task was recorded with another artifact; an approval never moves to another build, so nothing changed", false}},
	{ErrChangeNotReady, Kind{"change_not_ready", http.StatusForbidden, true, "Approving waits for the change record: {detail}. Rejecting still works.", "the change record does not allow approving yet", false}},
	{ErrChangeUnknown, Kind{"change_unknown", http.StatusServiceUnavailable, true, "Could not check the change record: {detail}. Rejecting still works.", "could not check the change record, retry later", false}},
	{ErrNoArtifact, Kind{"no_artifact", http.StatusNotFound, false, "This task names no artifact.", "the task names no artifact, so there is nothing to attest", false}},
	{ErrNotDecided, Kind{"not_decided", http.StatusConflict, false, "This task is not decided yet.", "the task is not decided yet; its attestation comes with the decision", false}},
	{ErrNoReceipt, Kind{"no_receipt", http.StatusNotFound, false, "This task has no receipt yet.", "the task has no receipt (not decided yet, or decided before receipts were configured)", false}},
	{ErrInvalid, Kind{"invalid", http.StatusBadRequest, false, "The request was not understood; nothing was decided.", "invalid request", false}},
	{ErrNotFound, Kind{"not_found", http.StatusNotFound, false, "This button is no longer valid.", "task not found", false}},
	{ErrUnavailable, Kind{"unavailable", http.StatusServiceUnavailable, false, "approvalbot cannot reach its store right now; try again in a minute.", "store unavailable, retry later", false}},
	{ErrConflict, Kind{"conflict", http.StatusServiceUnavailable, false, "approvalbot is busy with this task; try again in a minute.", "store busy, retry later", false}},
	{ErrCorrupt, Kind{"corrupt", http.StatusInternalServerError, false, "approvalbot cannot read this task's record; nothing was decided. Tell the bot's operators.", "the task's stored record cannot be read", false}},
}

// internalKind is every error the table does not name.
var internalKind = Kind{CodeInternal, http.StatusInternalServerError, false, "Something went wrong; the deployment was not decided. Try again.", "internal error", false}

// KindOf looks err up in the table; an error it does not name is internal.
func KindOf(err error) Kind {
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return k.kind
		}
	}
	return internalKind
}

// Codes lists every code the table can give, internal last (for metrics
// that want their label values up front, and for documentation tests).
func Codes() []Code {
	out := make([]Code, 0, len(kinds)+1)
	for _, k := range kinds {
		out = append(out, k.kind.Code)
	}
	return append(out, internalKind.Code)
}

// IsRefusal reports whether err refuses a person's decision under the rules.
func IsRefusal(err error) bool { return err != nil && KindOf(err).Refusal }

// Invalidf returns an ErrInvalid that says what is wrong.
func Invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// CorruptError names a stored record that cannot be decoded. It matches
// ErrCorrupt.
type CorruptError struct {
	Key string // the record's key in the store
	Err error  // what the decoder said
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("stored record %q cannot be decoded: %v", e.Key, e.Err)
}
func (e *CorruptError) Unwrap() error        { return e.Err }
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

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
	// Turn says the wait is the job's turn under a rate limit this process
	// keeps, which holds the job's place in its queue: nothing failed. The
	// outbox counts no attempt and keeps the task's lease through the wait,
	// so that this process, whose queue knows the place, comes back.
	Turn bool
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// TurnWait returns the wait of a job sent away to come back at its turn
// (a RetryAfterError with Turn), if err is one.
func TurnWait(err error) (time.Duration, bool) {
	var r *RetryAfterError
	if errors.As(err, &r) && r.Turn {
		return r.After, true
	}
	return 0, false
}

// RetryAfter returns the wait a RetryAfterError asks for, if err has one.
func RetryAfter(err error) (time.Duration, bool) {
	var r *RetryAfterError
	if errors.As(err, &r) {
		return r.After, true
	}
	return 0, false
}

// BreakGlassWhy says, for a surface asking for a break-glass reason, what
// stops an ordinary approval: the service's refusal wraps it.
func BreakGlassWhy(err error) string {
	var r *Refusal
	switch {
	case errors.As(err, &r) && r.Detail != "":
		return "Approving is closed now: " + r.Detail + "."
	case errors.Is(err, ErrSelfApproval):
		return "You requested this deployment: approving it yourself needs break-glass."
	case errors.Is(err, ErrNotApprover):
		return "You are not one of its approvers: you may approve it only by breaking glass."
	}
	return "Approving this deployment needs break-glass."
}
