package approvals

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Tool is one deployment tool as the core knows it: a value its adapter
// builds and the wiring registers. The core never names a tool; it asks the
// tool's value. A nil func field is a capability the tool lacks.
type Tool struct {
	// Name is the tool's source name, kept on every task it hands over
	// ("acme"): lower case letters, digits and dashes.
	Name string
	// DisplayName is how people read it ("Acme Deploy").
	DisplayName string
	// Intakes are the tool's intake endpoints.
	Intakes []Intake
	// ReadByTaskID lets the tool's tasks also be read by its own task id
	// (GET /v1/tasks/8900 as well as /v1/tasks/acme-8900). At most
	// one tool may say so.
	ReadByTaskID bool

	// Decide hands the outcome to the tool, once: it makes one call and
	// never retries it, because only the outbox knows whether an earlier
	// call went through (it reads Status first). nil: no connection is
	// configured, and the outcome waits in the outbox until there is one.
	// A PermanentError is a refusal for good; ErrToolDecided says the tool
	// has the task decided already; any other error may mend later.
	// repeat is the outbox's word that an earlier call may have gone
	// through (an attempt after the first, or work resumed after a restart
	// or a takeover), so that a tool can read its refusal of a second call
	// as the answer to its first.
	Decide func(ctx context.Context, t *Task, action Action, notes string, repeat bool) error
	// Status reads the task's status at the tool: StatusPending while open
	// there, StatusApproved or StatusRejected once decided (StatusExpired
	// when it ended there without a decision). It may retry, being a read.
	// nil: the tool has no status read.
	Status func(ctx context.Context, t *Task) (Status, error)
	// Enrich fills in context the intake left out, from the tool's own
	// record of the task. Its failure never stops an intake.
	Enrich func(ctx context.Context, sub *Submission) error
	// MapRequester maps the tool's own name for a requester that its intake
	// could not map to a chat user (Context.RequestedByUnmapped) to one (a
	// chat user id or an email), when the tool can now: the self-approval
	// check asks at every decision, so that a mapping added since the
	// intake applies to the tasks already waiting. nil: no mapping.
	MapRequester func(name string) (string, bool)
	// NeedsEnrichment reports whether Enrich has anything to fill in for
	// an intake with context c. A task it says no to is posted in its
	// first outbox round, without a round of enrichment (a read and a
	// write of the task saved). nil: every task is enriched first.
	NeedsEnrichment func(c Context) bool
	// Announce tells the tool's users where the task waits, once its chat
	// message is posted; the values it returns are kept in the task's Extra
	// (for example the id of a log it created).
	// waiting is the line to show (WaitingLine: in which chats, under
	// which policy, until when).
	Announce func(ctx context.Context, t *Task, waiting string) (extra map[string]string, err error)
	// Poll finds tasks waiting in the tool that no intake handed over (a
	// tool version that sends no event for them) and returns them as
	// submissions of its source. The scheduler calls it every
	// PollInterval, on one process at a time (the loop lease
	// "poll-<name>"), and submits each: Submit is idempotent, so a task
	// an intake took in too stays one task. nil: no polling.
	Poll func(ctx context.Context) ([]Submission, error)
	// PollInterval is how often Poll is called (default 30s).
	PollInterval time.Duration
}

// Intake is one intake endpoint of a tool.
type Intake struct {
	// Path is the endpoint's path under /v1/ ("tasks"), or for a Signed
	// intake its whole path ("/hooks/acme").
	Path string
	// Signed marks a webhook whose sender Parse proves itself (a signature
	// over the raw body, checked before anything is parsed; a failure
	// wraps ErrUnauthenticated). It is served at Path without the API key,
	// with the capacity of the webhooks people wait on.
	Signed bool
	// Parse turns a request into a submission of the tool's source. header
	// reads a request header by its name (case-insensitive). A request that
	// carries no task (a ping, an event the tool does not act on) is
	// answered with an error wrapping ErrNoTask.
	Parse func(header func(name string) string, body []byte) (Submission, error)
	// AnswerOK answers every accepted request 200, new or repeated (for
	// a tool that wants it); otherwise a new task is answered 202 and a
	// repeat as the status endpoint would.
	AnswerOK bool
	// BodyOptional accepts an empty body whatever its content type.
	BodyOptional bool
}

var toolName = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// Tools is the registry of deployment tools, built once at start-up.
type Tools struct {
	list   []*Tool
	byName map[string]*Tool
}

// NewTools checks and registers the tools: names well formed and unique,
// intake paths unique, at most one tool read by its own task ids.
func NewTools(tools ...Tool) (*Tools, error) {
	r := &Tools{byName: make(map[string]*Tool, len(tools))}
	paths := map[string]string{}
	byTaskID := ""
	var errs []error
	for i := range tools {
		t := tools[i]
		switch {
		case !toolName.MatchString(t.Name):
			errs = append(errs, fmt.Errorf("tool %q: the name must be lower case letters, digits and dashes", t.Name))
			continue
		case r.byName[t.Name] != nil:
			errs = append(errs, fmt.Errorf("tool %q is registered twice", t.Name))
			continue
		}
		if other, ok := prefixClash(t.Name, r.list); ok {
			// "acme" + task "eu-1" and "acme-eu" + task "1" would share an id.
			errs = append(errs, fmt.Errorf("tools %q and %q: one name is the other's and a dash, so their task ids could collide", other, t.Name))
			continue
		}
		if t.DisplayName == "" {
			t.DisplayName = t.Name
		}
		for _, in := range t.Intakes {
			if in.Path == "" || in.Parse == nil {
				errs = append(errs, fmt.Errorf("tool %q: an intake needs a path and a parser", t.Name))
				continue
			}
			if in.Signed != strings.HasPrefix(in.Path, "/") {
				errs = append(errs, fmt.Errorf("tool %q: intake %q: a signed intake has a whole path, others a path under /v1/", t.Name, in.Path))
			}
			if other, dup := paths[in.Path]; dup {
				errs = append(errs, fmt.Errorf("tools %q and %q both take /v1/%s", other, t.Name, in.Path))
			}
			paths[in.Path] = t.Name
		}
		if t.ReadByTaskID {
			if byTaskID != "" {
				errs = append(errs, fmt.Errorf("tools %q and %q are both read by their own task ids", byTaskID, t.Name))
			}
			byTaskID = t.Name
		}
		r.list = append(r.list, &t)
		r.byName[t.Name] = &t
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("approvals: %w", err)
	}
	return r, nil
}

// prefixClash finds a registered tool whose name, followed by a dash,
// begins name, or the other way round.
func prefixClash(name string, tools []*Tool) (string, bool) {
	for _, t := range tools {
		if strings.HasPrefix(name, t.Name+"-") || strings.HasPrefix(t.Name, name+"-") {
			return t.Name, true
		}
	}
	return "", false
}

// Get returns the tool of a source, if it is registered.
func (r *Tools) Get(name string) (*Tool, bool) {
	if r == nil {
		return nil, false
	}
	t, ok := r.byName[name]
	return t, ok
}

// All returns the tools in the order they were registered.
func (r *Tools) All() []*Tool {
	if r == nil {
		return nil
	}
	return r.list
}

// DisplayName is how people read a source's name; an unknown source is
// shown as it is.
func (r *Tools) DisplayName(source string) string {
	if t, ok := r.Get(source); ok {
		return t.DisplayName
	}
	return source
}

// readByTaskID is the tool whose tasks can be read by their own ids.
func (r *Tools) readByTaskID() (*Tool, bool) {
	for _, t := range r.All() {
		if t.ReadByTaskID {
			return t, true
		}
	}
	return nil, false
}
