package approvals

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// Rules are the parts of the configuration that may change while the bot
// runs (hot reload): the policies and the default time to decide.
type Rules struct {
	Policies   []Policy
	DefaultTTL time.Duration
}

// Submission is a task as a deployment tool's intake adapter parsed it.
type Submission struct {
	Source string // the registered tool's name
	TaskID string // the source's own task id
	Context
	// Secret and Extra are copied to the task (see Task).
	Secret []byte
	Extra  map[string]string
	// Gate: the tool reads the outcome itself and is told nothing (see
	// Task.Gate).
	Gate bool
}

// DecideRequest is one click (or modal submission) of a chat user.
type DecideRequest struct {
	Token  string
	Action Action
	User   Person
	// Reason is why a rejection (or a break-glass approval) is made.
	Reason string
	// BreakGlass asks to approve under the policy's break_glass: one's own
	// task, outside the windows, inside a freeze; Reason is required.
	BreakGlass bool
	// Confirm is what the approver typed to confirm (the environment, for
	// confirm: type_environment).
	Confirm string
	// SignedIn reports that the surface signed the person in with single
	// sign-on (the web), as require_sso asks.
	SignedIn bool
	// By is the delegate who clicked for User (set by Decide, delegation.go).
	By *Person
}

// Event is something the service reports to its Observer (logs, metrics).
type Event struct {
	Type     EventType
	TaskID   string
	Source   string
	Job      JobKind
	Attempt  int
	Err      error
	Duration time.Duration
	Detail   string
}

// EventType names an Event.
type EventType string

const (
	EventReceived         EventType = "received"
	EventDuplicate        EventType = "duplicate"
	EventVoted            EventType = "voted"
	EventDecided          EventType = "decided"
	EventRefused          EventType = "refused"
	EventExpired          EventType = "expired"
	EventJobDone          EventType = "job_done"
	EventJobRetry         EventType = "job_retry"
	EventJobWait          EventType = "job_wait" // sent away to come back at its turn (TurnWait): no failure
	EventJobFailed        EventType = "job_failed"
	EventDecidedElsewhere EventType = "decided_elsewhere"
	EventError            EventType = "error"
	// EventCorrupt: a stored record cannot be decoded (TaskID is its key);
	// it is skipped.
	EventCorrupt EventType = "corrupt_record"
)

// Observer receives the service's events. It must not block.
type Observer interface {
	Observe(ctx context.Context, e Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(ctx context.Context, e Event)

func (f ObserverFunc) Observe(ctx context.Context, e Event) { f(ctx, e) }

// Config wires a Service.
type Config struct {
	Store  Store
	Tokens TokenIssuer
	// Chats are the chats tasks are posted to and decided from. A chat's
	// notifier may be nil (no credentials yet): its posts then wait in the
	// outbox, retried, until one is set with SetNotifier.
	Chats *Chats
	// OnCall says who is on call (approvers' and break-glass' schedules);
	// nil refuses the clicks that would need it.
	OnCall OnCall
	// Delegations keeps who decides for whom; nil: no delegation.
	Delegations DelegationStore
	// Tools are the deployment tools; a task of a source not registered
	// is refused at intake.
	Tools *Tools
	// Fold normalises emails and names before they are compared (for
	// example NFKC case folding); nil lower-cases them.
	Fold func(string) string
	// ReceiptKey signs a receipt of every final decision; nil signs none.
	ReceiptKey ed25519.PrivateKey
	// Changes are the change systems a policy's require_change may name.
	Changes ChangeSystems
	// Rules returns the rules in force; it is called on every intake and
	// decision so that a reloaded configuration applies at once.
	Rules func() Rules

	Owner    string        // lease owner id; random when empty
	Lease    time.Duration // default 15s
	RetryMin time.Duration // first outbox retry within this, default 1s
	RetryMax time.Duration // longest wait between retries, default 30s
	Clock    Clock
	Observer Observer
}

// Service is the task lifecycle: intake, decisions, expiry, one outbox
// round of a task, reconciling one task with its tool. Its methods do their
// work and return; the Scheduler is what calls Work and Reconcile over time.
type Service struct {
	cfg Config
	now Clock
	// kick tells the scheduler that a task has work now.
	kick atomic.Pointer[func(id string)]
	// recent are the tasks this process saw decided (RecentlyDecided).
	recent recentlyDecided
	// changes are the change records looked up lately.
	changes changeCache
}

// NewService checks the wiring and fills in defaults.
func NewService(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Tokens == nil || cfg.Rules == nil || cfg.Tools == nil {
		return nil, errors.New("approvals: store, tokens, rules and tools are required")
	}
	if cfg.Chats == nil {
		cfg.Chats, _ = NewChats()
	}
	if cfg.Owner == "" {
		b := make([]byte, 8)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("approvals: owner id: %w", err)
		}
		cfg.Owner = hex.EncodeToString(b)
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 15 * time.Second
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Second
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(30*time.Second, cfg.RetryMin)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Observer == nil {
		cfg.Observer = ObserverFunc(func(context.Context, Event) {})
	}
	return &Service{cfg: cfg, now: cfg.Clock}, nil
}

// SetNotifier installs (or, with nil, removes) a chat's notifier, for
// example when its credentials arrive by a configuration reload.
func (s *Service) SetNotifier(chat string, n Notifier) {
	s.cfg.Chats.SetNotifier(chat, n)
}

// Chats is the registry of chats.
func (s *Service) Chats() *Chats { return s.cfg.Chats }

// same reports whether p and q are one person: the same verified email,
// or the same id in the same chat.
func (s *Service) same(p, q Person) bool {
	if p.Email != "" && p.Email == q.Email {
		return true
	}
	return p.ID != "" && p.ID == q.ID && s.cfg.Chats.Canonical(p.Chat) == s.cfg.Chats.Canonical(q.Chat)
}

// hasVoted reports whether the person has approved the task already.
func (s *Service) hasVoted(t *Task, p Person) bool {
	for _, v := range t.Approvals {
		if s.same(v.Person, p) {
			return true
		}
	}
	return false
}

// person is who a request names, with the chat's name made canonical and
// the email folded for comparison.
func (s *Service) person(p Person) Person {
	p.Chat = s.cfg.Chats.Canonical(p.Chat)
	if p.Email = strings.TrimSpace(p.Email); p.Email != "" {
		p.Email = s.fold(p.Email)
	}
	return p
}

func (s *Service) fold(v string) string {
	if s.cfg.Fold != nil {
		return s.cfg.Fold(v)
	}
	return strings.ToLower(v)
}

// Kick tells the scheduler, if there is one, that the task has work now.
func (s *Service) Kick(id string) {
	if k := s.kick.Load(); k != nil {
		(*k)(id)
	}
}

// Tools is the registry of deployment tools.
func (s *Service) Tools() *Tools { return s.cfg.Tools }

// Owner is this process's lease owner id.
func (s *Service) Owner() string { return s.cfg.Owner }

func (s *Service) observe(ctx context.Context, e Event) { s.cfg.Observer.Observe(ctx, e) }

// Submit records a deployment tool's task and queues its chat message. A task
// the store holds already (the deployment tool resent it) is answered as it
// is, with created false, and nothing new is posted.
func (s *Service) Submit(ctx context.Context, sub Submission) (*Task, bool, error) {
	sub.Source, sub.TaskID = strings.TrimSpace(sub.Source), strings.TrimSpace(sub.TaskID)
	if sub.Source == "" {
		return nil, false, Invalidf("source is required")
	}
	if sub.TaskID == "" {
		return nil, false, Invalidf("taskId is required")
	}
	id := TaskRecordID(sub.Source, sub.TaskID)
	tool, ok := s.cfg.Tools.Get(sub.Source)
	if !ok {
		return nil, false, Invalidf("unknown source %q", sub.Source)
	}
	t, err := s.newTask(id, sub, tool)
	if err != nil {
		return nil, false, err
	}
	// One conditional write, no read before it: a task the store holds
	// already comes back as it is, and nothing new is posted.
	stored, created, err := s.cfg.Store.Create(ctx, t)
	if err != nil {
		return nil, false, fmt.Errorf("submit task: %w", err)
	}
	if !created {
		if err := checkSameArtifact(stored, sub); err != nil {
			return nil, false, err
		}
		s.observe(ctx, Event{Type: EventDuplicate, TaskID: id, Source: sub.Source})
		return s.expireOnRead(ctx, stored), false, nil
	}
	s.observe(ctx, Event{Type: EventReceived, TaskID: id, Source: sub.Source, Detail: stored.Policy})
	s.Kick(stored.ID)
	return stored, true, nil
}

func (s *Service) newTask(id string, sub Submission, tool *Tool) (*Task, error) {
	now := s.now().UTC()
	t := &Task{
		ID:        id,
		Source:    sub.Source,
		TaskID:    sub.TaskID,
		Context:   sub.Context,
		Status:    StatusPending,
		Delivery:  Delivery{State: DeliveryPending},
		CreatedAt: now,
		Secret:    sub.Secret,
		Extra:     sub.Extra,
		Gate:      sub.Gate,
	}
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("submit task: nonce: %w", err)
	}
	t.Nonce = nonce
	if err := s.applyPolicy(t, now); err != nil {
		return nil, fmt.Errorf("submit task: %w", err)
	}
	if tool.Enrich != nil && (tool.NeedsEnrichment == nil || tool.NeedsEnrichment(t.Context)) {
		// The tool fills in what the intake lacked first, in the outbox:
		// intake never waits on it. The post follows the enrichment.
		t.Enqueue(JobEnrich, now)
	} else {
		t.Enqueue(JobPost, now)
	}
	// The intaking process holds the lease it needs to post the message
	// at once: no separate claim write.
	t.Lease = Lease{Owner: s.cfg.Owner, Until: now.Add(s.cfg.Lease)}
	t.Record(AuditRecord{At: now, Event: "received", Detail: policyDetail(t.Policy)})
	return t, nil
}

// applyPolicy gives a pending task what the first matching policy says:
// its channel, quorum, expiry, reminder and (its expiry being in the
// token) its token hash. It runs at intake and again once enrichment has
// filled in the context the policies match on; no token has been handed
// out before that.
func (s *Service) applyPolicy(t *Task, now time.Time) error {
	rules := s.cfg.Rules()
	t.Policy, t.RequiredApprovals, t.OnExpiry = "", 1, ExpiryIgnore
	ttl := rules.DefaultTTL
	var remind time.Duration
	p := s.matchPolicy(rules.Policies, t)
	s.target(t, p)
	if p != nil {
		t.Policy = p.Name
		if p.TTL > 0 {
			ttl = p.TTL
		}
		if p.RequiredApprovals > 0 {
			t.RequiredApprovals = p.RequiredApprovals
		}
		if p.OnExpiry != "" {
			t.OnExpiry = p.OnExpiry
		}
		remind = p.RemindBefore
	}
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	// Token expiry is in whole seconds; the task expires with its token.
	t.ExpiresAt = t.CreatedAt.Add(ttl).Truncate(time.Second)
	token, err := s.cfg.Tokens.Mint(t)
	if err != nil {
		return fmt.Errorf("mint token: %w", err)
	}
	t.TokenHash = HashToken(token)
	t.Outbox = removeJobs(t.Outbox, JobRemind)
	if remind > 0 && now.Before(t.ExpiresAt.Add(-remind)) {
		t.Enqueue(JobRemind, t.ExpiresAt.Add(-remind))
	}
	t.Outbox = removeJobs(t.Outbox, JobEscalate)
	if p := FindPolicy(rules.Policies, t.Policy); p != nil && p.Escalate != nil && p.Escalate.After > 0 {
		if at := t.CreatedAt.Add(p.Escalate.After); at.Before(t.ExpiresAt) {
			t.Enqueue(JobEscalate, at)
		}
	}
	return nil
}

// target names where the task's message goes in each chat: the policy's
// channel for the chat, else the chat's default channel when the chat
// posts by default. Messages posted already stay as they are; only those
// waiting to be posted are named again (the policy matched again after
// enrichment).
func (s *Service) target(t *Task, p *Policy) {
	kept := make([]MessageRef, 0, len(t.Messages)+len(s.cfg.Chats.All()))
	for _, m := range t.Messages {
		if m.Posted() || m.User != "" {
			kept = append(kept, m)
		}
	}
	t.Messages = kept
	for _, c := range s.cfg.Chats.All() {
		channel := ""
		if p != nil {
			channel = p.Channels[c.Name]
		}
		if channel == "" && !c.PostsByDefault {
			continue
		}
		if _, i := t.Channel(c.Name, s.cfg.Chats.Canonical); i >= 0 {
			continue // posted there already
		}
		t.Messages = append(t.Messages, MessageRef{Chat: c.Name, Channel: channel})
	}
}

func policyDetail(name string) string {
	if name == "" {
		return "no policy matched"
	}
	return "policy " + name
}

// Get returns a task by its id; a task whose time ran out is expired on the
// way (expiry never waits for the sweeper).
func (s *Service) Get(ctx context.Context, id string) (*Task, error) {
	t, err := s.cfg.Store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.expireOnRead(ctx, t), nil
}

// Lookup returns a task by its id or, failing that, by the own task id of
// the tool whose tasks can be read so (GET /v1/tasks/8900).
func (s *Service) Lookup(ctx context.Context, id string) (*Task, error) {
	t, err := s.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		if tool, ok := s.cfg.Tools.readByTaskID(); ok {
			return s.Get(ctx, TaskRecordID(tool.Name, id))
		}
	}
	return t, err
}

func (s *Service) expireOnRead(ctx context.Context, t *Task) *Task {
	if t.Status != StatusPending || !t.Expired(s.now()) {
		return t
	}
	updated, err := s.cfg.Store.Update(ctx, t.ID, func(t *Task) error {
		if !s.expire(t, s.now().UTC()) {
			return ErrNothingToDo
		}
		return nil
	})
	if err != nil {
		if fresh, gerr := s.cfg.Store.Get(ctx, t.ID); gerr == nil {
			return fresh
		}
		return t
	}
	s.recent.add(updated)
	s.observe(ctx, Event{Type: EventExpired, TaskID: t.ID, Source: t.Source})
	s.Kick(t.ID)
	return updated
}

// expire moves a pending task past its time to expired and queues what
// follows. It reports whether it changed anything.
func (s *Service) expire(t *Task, now time.Time) bool {
	if t.Status != StatusPending || !t.Expired(now) {
		return false
	}
	t.Status = StatusExpired
	at := t.ExpiresAt
	t.DecidedAt = &at
	t.Record(AuditRecord{At: now, Event: "expired", Detail: "on_expiry " + string(t.OnExpiry)})
	s.queueOutcome(t, now)
	return true
}

// queueOutcome queues what a final status needs: the deployment tool told
// (if anything is to be told) and the message updated; reminders dropped.
func (s *Service) queueOutcome(t *Task, now time.Time) {
	_, tell := t.Outcome()
	s.queueFinal(t, now, tell)
}

// queueFinal queues the jobs of a task that became final: its reminders
// dropped, a delivery if tell, a message update.
func (s *Service) queueFinal(t *Task, now time.Time, tell bool) {
	for _, kind := range []JobKind{JobRemind, JobEscalate, JobDirect, JobDeliver} {
		t.Outbox = removeJobs(t.Outbox, kind) // pending-only work, and any delivery queued before
	}
	if tell {
		t.Delivery = Delivery{State: DeliveryPending}
		t.Enqueue(JobDeliver, now)
	} else {
		t.Delivery = Delivery{State: DeliveryNotNeeded}
	}
	seal(t, s.cfg.ReceiptKey, now)
	s.queueTellRequester(t, now)
	s.queueUpdate(t, now)
}

// queueUpdate queues a message update and takes the lease to do it.
func (s *Service) queueUpdate(t *Task, now time.Time) {
	t.EnsureUpdate(now)
	s.takeLease(t, now)
}

// takeLease makes this process the one to do the task's outbox work now,
// unless another live process holds it (which then does the work).
func (s *Service) takeLease(t *Task, now time.Time) {
	if !t.Lease.HeldByOther(s.cfg.Owner, now) {
		t.Lease = Lease{Owner: s.cfg.Owner, Until: now.Add(s.cfg.Lease)}
	}
}

// maxAudit bounds a task's audit trail so that a clicking frenzy cannot grow
// a record without end; decisions are always kept.
const maxAudit = 200

// Decide handles one chat user's approve or reject. The token is checked
// (signature, expiry, stored hash), then the user's right to decide, and
// the vote or decision is one conditional write: of any number of
// concurrent clicks exactly one decides. Refusals return a sentinel error
// (ErrNotApprover, ErrSelfApproval, ErrAlreadyDecided, ErrExpired,
// ErrAlreadyVoted, ErrReasonRequired, ErrNoPolicy, ErrBadToken) and change
// nothing but the audit trail.
func (s *Service) Decide(ctx context.Context, req DecideRequest) (*Task, error) {
	if req.Action != ActionApprove && req.Action != ActionReject {
		return nil, Invalidf("unknown action %q", req.Action)
	}
	if req.User.ID == "" {
		return nil, Invalidf("user is required")
	}
	req.User = s.person(req.User)
	now := s.now().UTC()
	id, err := s.cfg.Tokens.Verify(req.Token, now)
	if err != nil {
		return nil, err
	}
	t, err := s.cfg.Store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrBadToken
	}
	if err != nil {
		return nil, fmt.Errorf("decide: %w", err)
	}
	if !t.TokenMatches(req.Token) {
		return nil, ErrBadToken
	}
	if req, err = s.actingFor(ctx, t, req, now); err != nil {
		s.refuse(ctx, t, req, err, now)
		return t, err
	}
	fills, err := s.checkDecider(ctx, t, req, now)
	if err != nil {
		s.refuse(ctx, t, req, err, now)
		return t, err
	}
	policy := FindPolicy(s.cfg.Rules().Policies, t.Policy)
	change := s.currentChange(ctx, t)
	decided := false
	updated, err := s.cfg.Store.Update(ctx, id, func(t *Task) error {
		decided = false
		if err := CheckOpen(t, req.Token, now); err != nil {
			return err
		}
		switch req.Action {
		case ActionApprove:
			if s.hasVoted(t, req.User) {
				return ErrAlreadyVoted
			}
			t.Approvals = append(t.Approvals, Vote{Person: req.User, At: now, Fills: fills, BreakGlass: req.BreakGlass, By: req.By})
			if req.BreakGlass {
				// An emergency: one break-glass approval decides, and it
				// says so everywhere.
				t.Reason = strings.TrimSpace(req.Reason)
				t.Record(AuditRecord{At: now, User: req.User.ID, Name: req.User.Name, Event: "approved", Detail: "BREAK-GLASS: " + t.Reason})
				t.EnqueueNotice(NoticeBreakGlass, now)
			} else {
				// An approval may say why too (the web form asks): the
				// audit keeps it, and the deciding one goes to the tool.
				comment := strings.TrimSpace(req.Reason)
				t.Record(AuditRecord{At: now, User: req.User.ID, Name: req.User.Name, Event: "approved", Detail: comment})
				if len(t.Approvals) < t.RequiredApprovals || !requirementsMet(t.Approvals, policy) {
					s.queueUpdate(t, now) // show the progress
					return nil
				}
				t.Reason = comment
			}
			t.Status = StatusApproved
		case ActionReject:
			t.Status = StatusRejected
			t.Reason = strings.TrimSpace(req.Reason)
			t.Record(AuditRecord{At: now, User: req.User.ID, Name: req.User.Name, Event: "rejected", Detail: t.Reason})
		}
		decided = true
		by := req.User
		t.DecidedBy, t.DecidedAt = &by, &now
		keepChange(t, change)
		s.queueOutcome(t, now)
		return nil
	})
	if err != nil {
		if IsRefusal(err) {
			s.refuse(ctx, t, req, err, now)
			return t, err
		}
		return nil, fmt.Errorf("decide: %w", err)
	}
	if decided {
		s.recent.add(updated)
		s.observe(ctx, Event{Type: EventDecided, TaskID: id, Source: updated.Source, Detail: string(updated.Status)})
	} else {
		s.observe(ctx, Event{Type: EventVoted, TaskID: id, Source: updated.Source})
	}
	s.Kick(id)
	return updated, nil
}

// CheckOpen reports whether token can decide the task at now: it is the
// task's token (else ErrBadToken), and the task is pending (ErrExpired
// once its time ran out, ErrAlreadyDecided once decided). Decide checks it
// again at the conditional write itself; a surface asks it before showing
// a form.
func CheckOpen(t *Task, token string, now time.Time) error {
	switch {
	case token == "" || !t.TokenMatches(token):
		return ErrBadToken
	case t.Status == StatusExpired:
		return ErrExpired
	case t.Status.Final():
		return ErrAlreadyDecided
	case t.Expired(now):
		return ErrExpired
	}
	return nil
}

// checkDecider checks, before any write, whether the user may take the
// action on the task under its policy as now in force. It returns the
// require_from entries the user fills, for the vote.
func (s *Service) checkDecider(ctx context.Context, t *Task, req DecideRequest, now time.Time) ([]string, error) {
	if err := CheckOpen(t, req.Token, now); err != nil {
		return nil, err
	}
	p := FindPolicy(s.cfg.Rules().Policies, t.Policy)
	if p == nil {
		return nil, ErrNoPolicy
	}
	if p.RequireSSO && !req.SignedIn {
		return nil, ErrSSORequired
	}
	who := s.asker(req.User)
	approver, err := s.isApprover(ctx, p.Approvers, req.User)
	if err != nil {
		return nil, fmt.Errorf("check approver: %w", err)
	}
	if !approver && t.Escalated && p.Escalate != nil {
		if approver, err = s.isApprover(ctx, p.Escalate.To, req.User); err != nil {
			return nil, fmt.Errorf("check approver: %w", err)
		}
	}
	var fills []string
	for _, r := range p.RequireFrom {
		in, err := r.Includes(ctx, who)
		if err != nil {
			return nil, fmt.Errorf("check approver: %w", err)
		}
		if in {
			fills = append(fills, r.Name())
			approver = true
		}
	}
	breakGlass := false
	if !p.BreakGlass.Empty() && req.Action == ActionApprove {
		if breakGlass, err = s.isApprover(ctx, p.BreakGlass, req.User); err != nil && !onCallMoot(err, approver, req) {
			return nil, fmt.Errorf("check break-glass: %w", err)
		}
	}
	if req.Action == ActionReject {
		if !approver {
			return nil, ErrNotApprover
		}
		if p.RequireRejectReason && strings.TrimSpace(req.Reason) == "" {
			return nil, ErrReasonRequired
		}
		return nil, nil
	}
	if s.hasVoted(t, req.User) {
		return nil, ErrAlreadyVoted
	}
	if err := s.checkChange(ctx, t, p, approver || breakGlass, now); err != nil {
		return nil, err
	}
	if req.BreakGlass {
		switch {
		case !breakGlass:
			return nil, ErrNotApprover
		case strings.TrimSpace(req.Reason) == "":
			return nil, ErrBreakGlassReason
		}
		return fills, nil // neither windows, freezes nor self-approval stop it
	}
	// What would stop an approval that break glass lifts: offered to
	// those who may break glass, refused to everyone else.
	closedBy := func(err error) error {
		if breakGlass {
			return fmt.Errorf("%w (%w)", ErrBreakGlassNeeded, err)
		}
		return err
	}
	if !approver {
		return nil, closedBy(ErrNotApprover)
	}
	if g := gateAt(p, now); !g.open {
		return nil, closedBy(&Refusal{Err: ErrApprovingClosed, Detail: g.why})
	}
	if !p.AllowSelfApproval {
		self, err := s.isRequester(ctx, t, req.User)
		if err != nil {
			return nil, err
		}
		if self {
			return nil, closedBy(ErrSelfApproval)
		}
	}
	if p.Confirm == ConfirmTypeEnvironment {
		typed := strings.TrimSpace(req.Confirm)
		switch {
		case typed == "":
			return nil, ErrConfirmRequired
		case !strings.EqualFold(typed, strings.TrimSpace(t.Environment)):
			return nil, ErrConfirmMismatch
		}
	}
	return fills, nil
}

// refuse records a refusal in the audit trail (best effort: the refusal
// itself is the answer) and reports it.
func (s *Service) refuse(ctx context.Context, t *Task, req DecideRequest, reason error, now time.Time) {
	if !IsRefusal(reason) {
		return
	}
	s.observe(ctx, Event{Type: EventRefused, TaskID: t.ID, Source: t.Source, Err: reason})
	if KindOf(reason).Prompt {
		return // not a decision attempt worth a write: the surface asks again
	}
	_, err := s.cfg.Store.Update(ctx, t.ID, func(t *Task) error {
		if len(t.Audit) >= maxAudit {
			return ErrNothingToDo
		}
		t.Record(AuditRecord{At: now, User: req.User.ID, Name: req.User.Name, Event: "refused", Detail: string(req.Action) + ": " + reason.Error()})
		return nil
	})
	if err != nil && !errors.Is(err, ErrNothingToDo) {
		s.observe(ctx, Event{Type: EventError, TaskID: t.ID, Source: t.Source, Err: err, Detail: "audit refusal"})
	}
}
