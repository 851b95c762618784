package approvals_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

// memStore is an approvals.Store in memory, keeping each task as JSON the
// way the real stores do (so no caller shares memory with it). corrupt
// names records that "cannot be decoded".
type memStore struct {
	mu      sync.Mutex
	data    map[string][]byte
	version map[string]int64
	corrupt map[string]bool
	// failGet, when set, fails every Get and Update.
	failGet error
}

func newMemStore() *memStore {
	return &memStore{data: map[string][]byte{}, version: map[string]int64{}, corrupt: map[string]bool{}}
}

var _ approvals.Store = (*memStore)(nil)

func (s *memStore) decode(id string) (*approvals.Task, error) {
	if s.corrupt[id] {
		return nil, &approvals.CorruptError{Key: id, Err: fmt.Errorf("invalid character")}
	}
	raw, ok := s.data[id]
	if !ok {
		return nil, approvals.ErrNotFound
	}
	var t approvals.Task
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, err
	}
	t.Version = s.version[id]
	return &t, nil
}

func (s *memStore) put(t *approvals.Task) {
	raw, err := json.Marshal(t)
	if err != nil {
		panic(err)
	}
	s.data[t.ID] = raw
	s.version[t.ID]++
}

func (s *memStore) Create(_ context.Context, t *approvals.Task) (*approvals.Task, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.data[t.ID]; ok {
		got, err := s.decode(t.ID)
		return got, false, err
	}
	s.put(t)
	got, err := s.decode(t.ID)
	return got, true, err
}

func (s *memStore) Get(_ context.Context, id string) (*approvals.Task, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failGet != nil {
		return nil, s.failGet
	}
	return s.decode(id)
}

func (s *memStore) Update(_ context.Context, id string, fn func(*approvals.Task) error) (*approvals.Task, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failGet != nil {
		return nil, s.failGet
	}
	t, err := s.decode(id)
	if err != nil {
		return nil, err
	}
	if err := fn(t); err != nil {
		return nil, err
	}
	s.put(t)
	return s.decode(id)
}

// Due orders by due time, then id; the cursor is "unixnano/id".
func (s *memStore) Due(_ context.Context, before time.Time, after approvals.Cursor, limit int) (approvals.DuePage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	type entry struct {
		at int64
		id string
	}
	var all []entry
	for id := range s.data {
		if s.corrupt[id] {
			all = append(all, entry{0, id}) // a damaged record sits at the start of the index
			continue
		}
		t, _ := s.decode(id)
		if at, ok := t.DueAt(); ok && !at.After(before) {
			all = append(all, entry{at.UnixNano(), id})
		}
	}
	slices.SortFunc(all, func(a, b entry) int { return cmp.Or(cmp.Compare(a.at, b.at), strings.Compare(a.id, b.id)) })
	start := 0
	if after != "" {
		at, id, _ := strings.Cut(string(after), "/")
		n, err := strconv.ParseInt(at, 10, 64)
		if err != nil {
			return approvals.DuePage{}, approvals.Invalidf("bad cursor")
		}
		start, _ = slices.BinarySearchFunc(all, entry{n, id}, func(a, b entry) int {
			return cmp.Or(cmp.Compare(a.at, b.at), strings.Compare(a.id, b.id))
		})
		if start < len(all) && all[start] == (entry{n, id}) {
			start++
		}
	}
	var page approvals.DuePage
	end := min(start+limit, len(all))
	for _, e := range all[start:end] {
		if s.corrupt[e.id] {
			page.Corrupt = append(page.Corrupt, e.id)
			continue
		}
		t, _ := s.decode(e.id)
		page.Tasks = append(page.Tasks, t)
	}
	if end < len(all) {
		last := all[end-1]
		page.Next = approvals.Cursor(strconv.FormatInt(last.at, 10) + "/" + last.id)
	}
	return page, nil
}

func (s *memStore) Ping(context.Context) error { return nil }

func (s *memStore) task(t *testing.T, id string) *approvals.Task {
	t.Helper()
	got, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return got
}

// funcNotifier is a Notifier of func fields; nil fields succeed.
type funcNotifier struct {
	post   func(t *approvals.Task, token string) (approvals.MessageRef, error)
	update func(t *approvals.Task, token string) error
	notice func(t *approvals.Task, kind approvals.NoticeKind) error
	direct func(t *approvals.Task, token string) ([]approvals.MessageRef, error)
}

func (n funcNotifier) Direct(_ context.Context, t *approvals.Task, _ []approvals.MessageRef, token string) ([]approvals.MessageRef, error) {
	if n.direct == nil {
		return nil, nil
	}
	return n.direct(t, token)
}

func (n funcNotifier) Post(_ context.Context, t *approvals.Task, _, token string) (approvals.MessageRef, error) {
	if n.post == nil {
		return approvals.MessageRef{Channel: "C1", TS: "1.000001"}, nil
	}
	return n.post(t, token)
}

func (n funcNotifier) Update(_ context.Context, t *approvals.Task, _ []approvals.MessageRef, token string) error {
	if n.update == nil {
		return nil
	}
	return n.update(t, token)
}

func (n funcNotifier) Notice(_ context.Context, t *approvals.Task, _ approvals.MessageRef, kind approvals.NoticeKind) error {
	if n.notice == nil {
		return nil
	}
	return n.notice(t, kind)
}

// testChats registers one chat, primary and posting by default, as Slack
// is: its notifier n and directory d may be nil.
func testChats(n approvals.Notifier, d approvals.Directory) *approvals.Chats {
	chats, err := approvals.NewChats(approvals.Chat{
		Name: "slack", DisplayName: "Slack", Notifier: n, Directory: d, PostsByDefault: true, Primary: true,
	})
	if err != nil {
		panic(err)
	}
	return chats
}

// funcDirectory is a Directory of func fields; nil fields find nobody.
type funcDirectory struct {
	members func(group string) ([]string, error)
	byEmail func(email string) (string, error)
}

func (d funcDirectory) GroupMembers(_ context.Context, id string) ([]string, error) {
	if d.members == nil {
		return nil, nil
	}
	return d.members(id)
}

func (d funcDirectory) UserIDByEmail(_ context.Context, email string) (string, error) {
	if d.byEmail == nil {
		return "", approvals.ErrNotFound
	}
	return d.byEmail(email)
}

// manualClock is time that moves only when told to.
type manualClock struct{ now time.Time }

func (c *manualClock) Now() time.Time          { return c.now }
func (c *manualClock) Advance(d time.Duration) { c.now = c.now.Add(d) }

// postedTS is the id of the task's posted channel message, "" when none.
func postedTS(t *approvals.Task) string {
	for _, m := range t.Messages {
		if m.User == "" && m.Posted() {
			return m.TS
		}
	}
	return ""
}

// copiesOf are the task's direct-message copies.
func copiesOf(t *approvals.Task) []approvals.MessageRef {
	var out []approvals.MessageRef
	for _, m := range t.Messages {
		if m.User != "" {
			out = append(out, m)
		}
	}
	return out
}
