package approvals

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
)

// ChangeRecord is a change record (a ServiceNow change request, a Jira
// issue) as its system's adapter read it. The adapter says whether the
// system approves it; the window, which depends on when one asks, is
// checked at each decision (Blocks).
type ChangeRecord struct {
	// System is the change system's registered name (servicenow, jira).
	System string `json:"system"`
	Number string `json:"number"`
	// State is the record's state as people read it ("Implement",
	// "Approved").
	State string `json:"state"`
	// Approved: the system's record allows the deployment (ServiceNow:
	// approval approved, state Scheduled or Implement; Jira: a status
	// among the approved ones). NotApproved says why not, for people.
	Approved    bool   `json:"approved"`
	NotApproved string `json:"notApproved,omitempty"`
	// Start and End bound when the change may be carried out (ServiceNow's
	// planned window, UTC); nil when the system has none.
	Start *time.Time `json:"start,omitempty"`
	End   *time.Time `json:"end,omitempty"`
	// URL links to the record in its system.
	URL       string    `json:"url,omitempty"`
	CheckedAt time.Time `json:"checkedAt"`
}

// ChangeLookup reads change records from one change system. Errors are the
// adapter's own (they never quote a credential); ErrNotFound for a record
// that does not exist.
type ChangeLookup interface {
	LookupChange(ctx context.Context, number string) (ChangeRecord, error)
}

// ChangeSystems are the change systems configured, by the name a policy's
// require_change uses.
type ChangeSystems map[string]ChangeLookup

var (
	// ErrChangeNotReady: the policy requires an approved change record in
	// its window, and the task's is not (or the task names none). Wrapped
	// in a *Refusal naming the change and why.
	ErrChangeNotReady = errors.New("the change record does not allow approving")
	// ErrChangeUnknown: the change record could not be looked up, so
	// approving is refused (rejecting still works).
	ErrChangeUnknown = errors.New("could not check the change record")
)

// ChangeCacheTTL is how long a change record looked up is trusted.
const ChangeCacheTTL = 30 * time.Second

// changeNumber is what a change's number may look like: CHG0030001,
// OPS-123. It goes into a query and a path, so nothing else passes.
var changeNumber = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ParseChange checks an intake's change field ("" is none). Errors wrap
// ErrInvalid and quote nothing of the input.
func ParseChange(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s != "" && !changeNumber.MatchString(s) {
		return "", Invalidf("change must be a change record's number (letters, digits, '-', '_', '.'; at most 64), such as CHG0030001 or OPS-123")
	}
	return s, nil
}

// Blocks says why the record does not allow approving at now ("" when it
// does): not approved, or outside its window.
func (c ChangeRecord) Blocks(now time.Time) string {
	if !c.Approved {
		why := c.NotApproved
		if why == "" {
			why = "state " + c.State
		}
		return fmt.Sprintf("change %s is not approved (%s)", c.Number, why)
	}
	if (c.Start != nil && now.Before(*c.Start)) || (c.End != nil && !now.Before(*c.End)) {
		return fmt.Sprintf("change %s is not in its window (%s to %s)", c.Number, windowTime(c.Start), windowTime(c.End))
	}
	return ""
}

func windowTime(t *time.Time) string {
	if t == nil {
		return "open"
	}
	return t.UTC().Format("2006-01-02 15:04 MST")
}

// changeCache keeps looked-up records for ChangeCacheTTL; failures are not
// kept, so the next click asks again.
type changeCache struct {
	mu      sync.Mutex
	entries map[string]ChangeRecord
}

// maxChangeCache bounds the cache; stale entries go first.
const maxChangeCache = 1024

// lookupChange returns the record from the cache or its system.
func (s *Service) lookupChange(ctx context.Context, system, number string) (ChangeRecord, error) {
	key := system + "/" + number
	now := s.now()
	c := &s.changes
	c.mu.Lock()
	rec, ok := c.entries[key]
	c.mu.Unlock()
	if ok && now.Sub(rec.CheckedAt) < ChangeCacheTTL && !now.Before(rec.CheckedAt) {
		return rec, nil
	}
	lookup := s.cfg.Changes[system]
	if lookup == nil {
		return ChangeRecord{}, fmt.Errorf("no %s connection is configured", system)
	}
	rec, err := lookup.LookupChange(ctx, number)
	if err != nil {
		return ChangeRecord{}, err
	}
	rec.System, rec.Number, rec.CheckedAt = system, number, now.UTC()
	c.mu.Lock()
	if c.entries == nil || len(c.entries) >= maxChangeCache {
		c.entries = map[string]ChangeRecord{}
	}
	c.entries[key] = rec
	c.mu.Unlock()
	return rec, nil
}

// checkChange refuses an approval while the policy's required change
// record does not allow it. Only those who may approve otherwise are asked
// about (the look-up is not made for anyone else); rejects never come here.
func (s *Service) checkChange(ctx context.Context, t *Task, p *Policy, mayApprove bool, now time.Time) error {
	if p == nil || p.RequireChange == "" || !mayApprove {
		return nil
	}
	if t.Change == "" {
		return &Refusal{Err: ErrChangeNotReady, Detail: fmt.Sprintf("the deployment names no change record, and policy %s requires an approved one (%s)", p.Name, p.RequireChange)}
	}
	rec, err := s.lookupChange(ctx, p.RequireChange, t.Change)
	if errors.Is(err, ErrNotFound) {
		return &Refusal{Err: ErrChangeNotReady, Detail: fmt.Sprintf("change %s does not exist in %s", t.Change, p.RequireChange)}
	}
	if err != nil {
		return &Refusal{Err: fmt.Errorf("%w: %v", ErrChangeUnknown, err), Detail: fmt.Sprintf("change %s could not be looked up in %s; try again in a minute", t.Change, p.RequireChange)}
	}
	if why := rec.Blocks(now); why != "" {
		return &Refusal{Err: ErrChangeNotReady, Detail: why}
	}
	return nil
}

// currentChange is the task's change record as its policy's system has it
// now (from the cache when fresh), or nil when the policy requires none or
// the look-up fails: for showing and recording, never for deciding.
func (s *Service) currentChange(ctx context.Context, t *Task) *ChangeRecord {
	p := FindPolicy(s.cfg.Rules().Policies, t.Policy)
	if p == nil || p.RequireChange == "" || t.Change == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rec, err := s.lookupChange(ctx, p.RequireChange, t.Change)
	if err != nil {
		return nil
	}
	return &rec
}

// showChange gives a pending task the change record as it stands, for the
// message about to be drawn (the decision keeps the one it was made on).
func (s *Service) showChange(ctx context.Context, t *Task) {
	if t.Status == StatusPending {
		if rec := s.currentChange(ctx, t); rec != nil {
			t.ChangeRecord = rec
		}
	}
}

// keepChange records on a task being decided the change record the
// decision was made on.
func keepChange(t *Task, rec *ChangeRecord) {
	if rec != nil {
		t.ChangeRecord = rec
	}
}
