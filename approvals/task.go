// Package approvals is the domain of approvalbot: a deployment tool's pending
// human task, who may decide it, the decision, and the durable outbox that
// hands the decision on. It imports only the standard library; the chats, the
// deployment tools and the stores are adapters around it.
package approvals

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"time"
)

// Status is where a task is in its lifecycle. Every status but pending is
// final.
type Status string

const (
	StatusPending  Status = "pending"
	StatusApproved Status = "approved"
	StatusRejected Status = "rejected"
	StatusExpired  Status = "expired"
)

// Final reports whether no further decision can change the status.
func (s Status) Final() bool { return s != StatusPending }

// Action is what an approver asks for.
type Action string

const (
	ActionApprove Action = "approve"
	ActionReject  Action = "reject"
)

// OnExpiry says what the deployment tool is told when a task expires.
type OnExpiry string

const (
	// ExpiryIgnore marks the task expired and tells the deployment tool
	// nothing: the task stays open in its own UI.
	ExpiryIgnore OnExpiry = "ignore"
	// ExpiryReject rejects the task in the deployment tool.
	ExpiryReject OnExpiry = "reject"
)

// DeliveryState is how far handing the outcome to the deployment tool got.
type DeliveryState string

const (
	DeliveryPending   DeliveryState = "pending"
	DeliveryDelivered DeliveryState = "delivered"
	DeliveryFailed    DeliveryState = "failed"
	// DeliveryNotNeeded is for outcomes the deployment tool is not told
	// about (an expiry with on_expiry: ignore, a decision made in the
	// deployment tool's own UI).
	DeliveryNotNeeded DeliveryState = "not_needed"
)

// Person is someone who acts on a task in a chat (or on the web page).
//
// Across chats a person is their verified email where the chat gives one,
// else their id qualified by the chat ("chat:U123"): see Service.same.
type Person struct {
	// ID is the person's id in their chat, as the chat names them.
	ID   string `json:"user"`
	Name string `json:"userName,omitempty"`
	// Email is the person's verified email, folded for comparison; ""
	// when the chat gives none.
	Email string `json:"email,omitempty"`
	// Chat is the name of the chat ID belongs to; "" (as in every record
	// written before chats were registered) is the primary chat.
	Chat string `json:"chat,omitempty"`
}

// Vote is one person's approval.
type Vote struct {
	Person
	At time.Time `json:"at"`
	// Fills names the policy's require_from entries the person belonged to
	// when they approved.
	Fills []string `json:"fills,omitempty"`
	// BreakGlass marks an approval that broke glass (its reason is the
	// task's Reason).
	BreakGlass bool `json:"breakGlass,omitempty"`
	// By is the delegate who voted for the person (delegation.go).
	By *Person `json:"by,omitempty"`
}

// Delivery records handing the outcome to the deployment tool.
type Delivery struct {
	State       DeliveryState `json:"state"`
	Attempts    int           `json:"attempts"`
	LastError   string        `json:"lastError,omitempty"`
	DeliveredAt *time.Time    `json:"deliveredAt,omitempty"`
}

// AuditRecord is one thing that happened to a task: a vote, a decision, a
// refusal, an expiry, a delivery.
//
// The records of a task are hash-chained: Prev is the Hash of the record
// before (empty for the first), and Hash is the hex SHA-256 of Prev and the
// record's canonical JSON without Hash (see Record). Changing, dropping or
// reordering any record breaks every hash after it.
type AuditRecord struct {
	At     time.Time `json:"at"`
	User   string    `json:"user,omitempty"`
	Name   string    `json:"userName,omitempty"`
	Event  string    `json:"event"`
	Detail string    `json:"detail,omitempty"`
	Prev   string    `json:"prev,omitempty"`
	Hash   string    `json:"hash,omitempty"`
}

// Context is what the deployment tool tells about a task. Every field is
// optional; policies match on them and the chat messages show them.
type Context struct {
	Description string `json:"description,omitempty"`
	Environment string `json:"environment,omitempty"`
	Project     string `json:"project,omitempty"`
	Release     string `json:"release,omitempty"`
	Pipeline    string `json:"pipeline,omitempty"`
	Stage       string `json:"stage,omitempty"`
	RequestedBy string `json:"requestedBy,omitempty"`
	// RequestedByUnmapped is the tool's own name for a requester that no
	// chat user is mapped to (RequestedBy is then empty): approving is
	// refused while self-approval is not allowed, since it cannot be ruled
	// out.
	RequestedByUnmapped string `json:"requestedByUnmapped,omitempty"`
	URL                 string `json:"url,omitempty"`
	// Artifact is the build the task deploys (artifact.go); Change names
	// its change record, which a policy may require approved (change.go).
	Artifact *Artifact `json:"artifact,omitempty"`
	Change   string    `json:"change,omitempty"`
}

// MessageRef names a chat message of a task: its channel message (User
// empty) or a direct-message copy sent to User. A channel message not
// posted yet has a Channel (the target, "" for the chat's default) and no
// TS.
type MessageRef struct {
	// Chat is the name of the chat; "" (records written before chats were
	// registered) is the primary chat.
	Chat    string `json:"chat,omitempty"`
	Channel string `json:"channel,omitempty"`
	// TS is the chat's id of the message.
	TS string `json:"ts,omitempty"`
	// User is whom a direct message copy was sent to.
	User string `json:"user,omitempty"`
}

// Posted reports whether the message was posted.
func (m MessageRef) Posted() bool { return m.TS != "" }

// Task is one pending human task of a deployment tool and everything the bot
// knows about it. It is the unit the Store keeps: the whole record, token
// hash and outbox included, is written in one conditional write. Its JSON
// form is the storage form; the HTTP API renders its own view and never
// shows the token hash, the nonce or the outbox.
type Task struct {
	ID     string `json:"id"`
	Source string `json:"source"`
	TaskID string `json:"taskId"`
	Context

	Status            Status        `json:"status"`
	Approvals         []Vote        `json:"approvals,omitempty"`
	RequiredApprovals int           `json:"requiredApprovals"`
	DecidedBy         *Person       `json:"decidedBy,omitempty"`
	DecidedAt         *time.Time    `json:"decidedAt,omitempty"`
	Reason            string        `json:"reason,omitempty"`
	Delivery          Delivery      `json:"delivery"`
	CreatedAt         time.Time     `json:"createdAt"`
	ExpiresAt         time.Time     `json:"expiresAt"`
	Audit             []AuditRecord `json:"audit,omitempty"`
	// Seal is the signed receipt of the final decision (see Receipt).
	Seal *Seal `json:"seal,omitempty"`

	// Policy is the name of the policy that matched at intake ("" when none
	// did: then nobody may decide from chat). OnExpiry is its on_expiry.
	Policy   string   `json:"policy,omitempty"`
	OnExpiry OnExpiry `json:"onExpiry,omitempty"`
	// Messages are the task's messages in every chat: one channel message
	// per chat it is posted to (or to be posted to, not posted yet) and the
	// direct-message copies sent to approvers. Every update reaches them
	// all.
	Messages []MessageRef `json:"messages,omitempty"`
	// Gate marks a task whose tool reads the outcome itself (it polls the
	// intake or the task's status) and is told nothing: a GitOps tool's
	// gate. Its delivery is not needed.
	Gate bool `json:"gate,omitempty"`
	// Escalated is set once the policy's escalation added its approvers.
	Escalated bool `json:"escalated,omitempty"`
	// ChangeRecord is the task's change record as last looked up: kept at
	// the decision, for the message, the receipt and the attestation.
	ChangeRecord *ChangeRecord `json:"changeRecord,omitempty"`
	// RequesterTold is set once the requester was told the outcome.
	RequesterTold bool `json:"requesterTold,omitempty"`

	// TokenHash is the SHA-256 of the task's one-time token; the token
	// itself is never stored. Nonce and KeyID let the signing-key holder
	// mint the very same token again (to post it after a restart).
	TokenHash []byte `json:"tokenHash,omitempty"`
	Nonce     []byte `json:"nonce,omitempty"`
	KeyID     string `json:"keyId,omitempty"`

	// Secret is a source-specific credential needed to deliver the outcome
	// (for example a job token the tool gave), sealed by the adapter that
	// owns it and dropped once delivered. Extra holds a source's other
	// routing fields.
	Secret []byte            `json:"secret,omitempty"`
	Extra  map[string]string `json:"extra,omitempty"`

	// Outbox is the side effects still to be done, in order; Lease says
	// which process may do them now. NextSeq numbers new jobs.
	Outbox  []Job `json:"outbox,omitempty"`
	NextSeq int   `json:"nextSeq,omitempty"`
	Lease   Lease `json:"lease,omitempty"`

	// Version counts the writes of the record; stores use it for
	// optimistic concurrency. Only stores set it.
	Version int64 `json:"version"`
}

// Key is the task's identity at its source: one record per source and task id.
func (t *Task) Key() string { return t.Source + "/" + t.TaskID }

// Expired reports whether the task's time has run out at now. It is checked on
// every read and write; stores' TTL deletion lags far behind and is never
// trusted.
func (t *Task) Expired(now time.Time) bool { return !now.Before(t.ExpiresAt) }

// Outcome is what the deployment tool must be told, if anything: nothing
// for a gate, whose tool reads the outcome itself.
func (t *Task) Outcome() (Action, bool) {
	if t.Gate {
		return "", false
	}
	switch t.Status {
	case StatusApproved:
		return ActionApprove, true
	case StatusRejected:
		return ActionReject, true
	case StatusExpired:
		if t.OnExpiry == ExpiryReject {
			return ActionReject, true
		}
	}
	return "", false
}

// BrokeGlass reports whether an approval broke glass.
func (t *Task) BrokeGlass() bool {
	for _, v := range t.Approvals {
		if v.BreakGlass {
			return true
		}
	}
	return false
}

// HasVoted reports, for what a surface shows, whether someone with the id
// or the (folded) email approved the task already; the decision itself
// compares people as Service.Decide does.
func (t *Task) HasVoted(id, email string) bool {
	for _, v := range t.Approvals {
		if (id != "" && v.ID == id) || (email != "" && v.Email == email) {
			return true
		}
	}
	return false
}

// Channel returns the task's channel message in the chat (canonical
// names: see Chats.Canonical, applied by canon).
func (t *Task) Channel(chat string, canon func(string) string) (MessageRef, int) {
	for i, m := range t.Messages {
		if m.User == "" && canon(m.Chat) == chat {
			return m, i
		}
	}
	return MessageRef{}, -1
}

// Copies returns the task's direct-message copies in the chat.
func (t *Task) Copies(chat string, canon func(string) string) []MessageRef {
	var out []MessageRef
	for _, m := range t.Messages {
		if m.User != "" && canon(m.Chat) == chat {
			out = append(out, m)
		}
	}
	return out
}

// PostedAnywhere reports whether the task's message was posted in some chat.
func (t *Task) PostedAnywhere() bool {
	for _, m := range t.Messages {
		if m.User == "" && m.Posted() {
			return true
		}
	}
	return false
}

// UnmarshalJSON reads a task, including records written before chats were
// registered: their one message ("message") and its copies ("copies")
// become the primary chat's messages.
func (t *Task) UnmarshalJSON(data []byte) error {
	type plain Task
	if !bytes.Contains(data, []byte(`"message"`)) {
		// Written since chats were registered: no legacy fields to read.
		return json.Unmarshal(data, (*plain)(t))
	}
	var legacy struct {
		*plain
		Message *MessageRef  `json:"message"`
		Copies  []MessageRef `json:"copies"`
	}
	legacy.plain = (*plain)(t)
	if err := json.Unmarshal(data, &legacy); err != nil {
		return err
	}
	if len(t.Messages) == 0 && legacy.Message != nil {
		t.Messages = append([]MessageRef{*legacy.Message}, legacy.Copies...)
	}
	return nil
}

// JobKind names a side effect.
type JobKind string

const (
	// JobPost posts the chat message with the buttons.
	JobPost JobKind = "post"
	// JobUpdate renders the task's current state into its chat message.
	JobUpdate JobKind = "update"
	// JobDeliver hands the outcome to the deployment tool.
	JobDeliver JobKind = "deliver"
	// JobRemind posts a reminder in the message's thread.
	JobRemind JobKind = "remind"
	// JobAnnounce tells the deployment tool's users where the task waits
	// (for tools that announce).
	JobAnnounce JobKind = "announce"
	// JobNotice posts a notice (Job.Notice) in the message's thread.
	JobNotice JobKind = "notice"
	// JobDirect sends the message to approvers in direct messages (those
	// who have no copy yet).
	JobDirect JobKind = "direct"
	// JobEscalate adds the policy's escalation approvers to a task still
	// pending.
	JobEscalate JobKind = "escalate"
	// JobEnrich asks the deployment tool for the context the intake left
	// out, before the message is posted (for tools that enrich).
	JobEnrich JobKind = "enrich"
)

// NoticeKind names a notice posted in the message's thread.
type NoticeKind string

const (
	// NoticeReminder: the task expires soon.
	NoticeReminder NoticeKind = "reminder"
	// NoticeBreakGlass: the task was approved by breaking glass; every
	// named approver is mentioned.
	NoticeBreakGlass NoticeKind = "break_glass"
	// NoticeEscalation: the task is still pending and the escalation's
	// approvers were added; they are mentioned.
	NoticeEscalation NoticeKind = "escalation"
)

// EnqueueNotice queues a notice in the thread.
func (t *Task) EnqueueNotice(kind NoticeKind, at time.Time) {
	t.NextSeq++
	t.Outbox = append(t.Outbox, Job{Seq: t.NextSeq, Kind: JobNotice, Notice: kind, NotBefore: at})
}

// Job is one outbox entry.
type Job struct {
	Seq       int        `json:"seq"`
	Kind      JobKind    `json:"kind"`
	Notice    NoticeKind `json:"notice,omitempty"`
	Attempts  int        `json:"attempts,omitempty"`
	NotBefore time.Time  `json:"notBefore"`
	// Waiting says NotBefore is the job's turn under a rate limit (see
	// TurnWait), not a retry after a failure or a time it was scheduled for.
	Waiting   bool   `json:"waiting,omitempty"`
	LastError string `json:"lastError,omitempty"`
	// Done names the chats a notice was posted in already, when it failed
	// in others: its retry posts only in the rest.
	Done []string `json:"done,omitempty"`
}

// Lease says which process may work the task's outbox, until when.
type Lease struct {
	Owner string    `json:"owner,omitempty"`
	Until time.Time `json:"until,omitempty"`
}

// HeldByOther reports whether a process other than owner holds the lease at now.
func (l Lease) HeldByOther(owner string, now time.Time) bool {
	return l.Owner != "" && l.Owner != owner && now.Before(l.Until)
}

// Enqueue adds a job due at notBefore.
func (t *Task) Enqueue(kind JobKind, notBefore time.Time) {
	t.NextSeq++
	t.Outbox = append(t.Outbox, Job{Seq: t.NextSeq, Kind: kind, NotBefore: notBefore})
}

// EnsureUpdate queues a message update unless one that has not been tried
// yet is waiting: an update renders the task's state when it runs, so one
// waiting update shows every change made before it.
//
// A waiting update scheduled for later (a redraw when a window opens) is
// brought forward to now.
func (t *Task) EnsureUpdate(now time.Time) {
	for i, j := range t.Outbox {
		if j.Kind == JobUpdate && j.Attempts == 0 {
			if j.NotBefore.After(now) {
				t.Outbox[i].NotBefore = now
			}
			return
		}
	}
	t.Enqueue(JobUpdate, now)
}

// HasJob reports whether a job of the kind is waiting.
func (t *Task) HasJob(kind JobKind) bool {
	for _, j := range t.Outbox {
		if j.Kind == kind {
			return true
		}
	}
	return false
}

// DueAt is when the task next needs attention from a worker: its earliest
// outbox job (or, while another process holds the lease, the lease's end,
// when the work may be taken over) or, while pending, its expiry. ok is false
// when the task needs nothing ever again; stores index only tasks that are
// due some time, so that finding work needs no scan.
func (t *Task) DueAt() (due time.Time, ok bool) {
	for _, j := range t.Outbox {
		if !ok || j.NotBefore.Before(due) {
			due, ok = j.NotBefore, true
		}
	}
	if ok && t.Lease.Owner != "" && t.Lease.Until.After(due) {
		due = t.Lease.Until
	}
	if t.Status == StatusPending && (!ok || t.ExpiresAt.Before(due)) {
		due, ok = t.ExpiresAt, true
	}
	return due, ok
}

// idPattern is what a source's task id may look like to be used in a task's
// id as it is; anything else is hashed. It has no '~': that marks a hashed
// id, so that no task id a tool submits can spell another task's id.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// TaskRecordID derives the stable, URL-safe id of the task a source knows as
// taskID: "acme-8900" for task 8900 of the tool named acme, and
// "acme-~" + 32 hex digits for an id that is not URL-safe as it is. Plain
// and hashed ids live apart ('~' is never in a plain one), and tool names
// are registered so that none is another's name and a dash (NewTools), so
// an id names one task of one tool.
func TaskRecordID(source, taskID string) string {
	if idPattern.MatchString(taskID) {
		return source + "-" + taskID
	}
	sum := sha256.Sum256([]byte(taskID))
	return source + "-~" + hex.EncodeToString(sum[:16])
}

// HashToken is what the store keeps of a token.
func HashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// TokenMatches compares a presented token with the stored hash in constant time.
func (t *Task) TokenMatches(token string) bool {
	return len(t.TokenHash) == sha256.Size && subtle.ConstantTimeCompare(HashToken(token), t.TokenHash) == 1
}
