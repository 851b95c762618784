package storetest

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

// memStore is the simplest store that keeps the contract: a map under a
// mutex. It checks the suite itself, so that a failure in a backend's run is
// the backend's and not the suite's.
type memStore struct {
	mu    sync.Mutex
	tasks map[string]*approvals.Task
}

var _ approvals.Store = (*memStore)(nil)

func (m *memStore) Create(_ context.Context, t *approvals.Task) (*approvals.Task, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.tasks[t.ID]; ok {
		return cloneTask(old), false, nil
	}
	c := cloneTask(t)
	c.Version = 1
	m.tasks[t.ID] = c
	return cloneTask(c), true, nil
}

func (m *memStore) Get(_ context.Context, id string) (*approvals.Task, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tasks[id]
	if !ok {
		return nil, approvals.ErrNotFound
	}
	return cloneTask(t), nil
}

func (m *memStore) Update(_ context.Context, id string, fn func(*approvals.Task) error) (*approvals.Task, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tasks[id]
	if !ok {
		return nil, approvals.ErrNotFound
	}
	c := cloneTask(t)
	if err := fn(c); err != nil {
		return nil, err
	}
	c.Version = t.Version + 1
	m.tasks[id] = c
	return cloneTask(c), nil
}

// Due orders by due time, then id; its cursor is the last task's due time
// in unix nanoseconds and id.
func (m *memStore) Due(_ context.Context, before time.Time, after approvals.Cursor, limit int) (approvals.DuePage, error) {
	if limit <= 0 {
		return approvals.DuePage{}, approvals.Invalidf("limit %d", limit)
	}
	type entry struct {
		at int64
		t  *approvals.Task
	}
	from, fromID, hasFrom := entry{}, "", after != ""
	if hasFrom {
		at, id, ok := strings.Cut(string(after), "/")
		n, err := strconv.ParseInt(at, 10, 64)
		if !ok || err != nil || id == "" {
			return approvals.DuePage{}, approvals.Invalidf("cursor %q", after)
		}
		from.at, fromID = n, id
	}
	order := func(a entry, aID string, b entry, bID string) int {
		return cmp.Or(cmp.Compare(a.at, b.at), strings.Compare(aID, bID))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var due []entry
	for _, t := range m.tasks {
		at, ok := t.DueAt()
		if !ok || at.After(before) {
			continue
		}
		e := entry{at.UnixNano(), t}
		if hasFrom && order(e, t.ID, from, fromID) <= 0 {
			continue
		}
		due = append(due, e)
	}
	slices.SortFunc(due, func(a, b entry) int { return order(a, a.t.ID, b, b.t.ID) })
	var page approvals.DuePage
	for _, e := range due[:min(limit, len(due))] {
		page.Tasks = append(page.Tasks, cloneTask(e.t))
	}
	if len(due) > limit {
		last := due[limit-1]
		page.Next = approvals.Cursor(strconv.FormatInt(last.at, 10) + "/" + last.t.ID)
	}
	return page, nil
}

func (m *memStore) Ping(context.Context) error { return nil }

func TestRunOnMemStore(t *testing.T) {
	t.Parallel()
	Run(t, func(*testing.T) approvals.Store { return &memStore{tasks: map[string]*approvals.Task{}} })
}

func TestDiffTask(t *testing.T) {
	t.Parallel()
	now := baseTime()
	base := fullTask("1", now)
	tests := []struct {
		name   string
		change func(*approvals.Task)
		equal  bool
	}{
		{"same", func(*approvals.Task) {}, true},
		{"other location", func(t *approvals.Task) { t.CreatedAt = t.CreatedAt.In(time.FixedZone("X", 3600)) }, true},
		{"empty slices", func(t *approvals.Task) { t.Approvals, t.Audit, t.Outbox, t.Extra = nil, nil, nil, nil }, false},
		{"nested time", func(t *approvals.Task) { t.Outbox[1].NotBefore = t.Outbox[1].NotBefore.Add(time.Millisecond) }, false},
		{"pointer time", func(t *approvals.Task) { *t.Delivery.DeliveredAt = t.Delivery.DeliveredAt.Add(time.Second) }, false},
		{"bytes", func(t *approvals.Task) { t.Nonce = slices.Clone(t.Nonce)[:3] }, false},
		{"map", func(t *approvals.Task) { t.Extra["org"] = "x" }, false},
		{"lease", func(t *approvals.Task) { t.Lease.Owner = "" }, false},
		{"version", func(t *approvals.Task) { t.Version++ }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := cloneTask(base)
			tc.change(got)
			if d := diffTask(base, got); (d == "") != tc.equal {
				t.Errorf("diffTask equal = %v, want %v: %s", d == "", tc.equal, d)
			}
		})
	}

	empty := pendingTask("2", now, now)
	withEmpty := cloneTask(empty)
	withEmpty.Approvals, withEmpty.Extra, withEmpty.Nonce = []approvals.Vote{}, map[string]string{}, []byte{}
	if d := diffTask(empty, withEmpty); d != "" {
		t.Errorf("empty and nil differ: %s", d)
	}
}
