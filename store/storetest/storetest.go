// Package storetest is the contract every approvals.Store backend must pass.
// A backend's test calls Run with a constructor of fresh, empty stores:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) approvals.Store { ... })
//	}
//
// Fixtures use UTC times truncated to milliseconds, so a backend may keep
// millisecond precision; times are compared with time.Equal, and an empty
// slice or map is taken to equal a nil one.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

// contenders is how many goroutines race in the concurrency subtests: the
// design's "50 concurrent clicks on one message".
const contenders = 50

// Run runs the Store contract against stores made by newStore; each call of newStore returns a fresh, empty store.
func Run(t *testing.T, newStore func(t *testing.T) approvals.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s approvals.Store)
	}{
		{"CreateGetRoundTrip", testCreateGetRoundTrip},
		{"CreateMinimalRoundTrip", testCreateMinimalRoundTrip},
		{"CreateExistingKeepsOriginal", testCreateExistingKeepsOriginal},
		{"CreateConcurrentOneWinner", testCreateConcurrentOneWinner},
		{"GetUnknown", testGetUnknown},
		{"GetReturnsCopy", testGetReturnsCopy},
		{"UpdateAppliesAndIncrementsVersion", testUpdateAppliesAndIncrementsVersion},
		{"UpdateUnknown", testUpdateUnknown},
		{"UpdateFnErrorAborts", testUpdateFnErrorAborts},
		{"UpdateConcurrentNoLostUpdate", testUpdateConcurrentNoLostUpdate},
		{"UpdateConcurrentExactlyOneDecides", testUpdateConcurrentExactlyOneDecides},
		{"DueOrderAndFilter", testDueOrderAndFilter},
		{"DueLimit", testDueLimit},
		{"DuePagingReachesEveryTask", testDuePagingReachesEveryTask},
		{"DueCursorContinuesAfterChanges", testDueCursorContinuesAfterChanges},
		{"DueInvalid", testDueInvalid},
		{"DueFollowsUpdates", testDueFollowsUpdates},
		{"DueLeaseDelaysTakeover", testDueLeaseDelaysTakeover},
		{"Ping", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
	runDelegations(t, newStore)
}

// baseTime is the fixtures' "now": UTC, millisecond precision.
func baseTime() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// fullTask builds a valid task with every field set, so that a round trip
// shows any field a backend drops.
func fullTask(taskID string, now time.Time) *approvals.Task {
	decided := now.Add(-time.Minute)
	delivered := now.Add(-30 * time.Second)
	return &approvals.Task{
		ID:     approvals.TaskRecordID("flexdeploy", taskID),
		Source: "flexdeploy",
		TaskID: taskID,
		Context: approvals.Context{
			Description: "v2.3 is about to be deployed to PROD",
			Environment: "PROD",
			Project:     "shop",
			Release:     "2.3",
			Pipeline:    "main",
			Stage:       "deploy",
			RequestedBy: "bob@example.com",
			URL:         "https://fd.example.com/task/" + taskID,
		},
		Status: approvals.StatusApproved,
		Approvals: []approvals.Vote{
			{Person: approvals.Person{ID: "U1", Name: "Alice", Email: "alice@example.com", Chat: "slack"}, At: now.Add(-2 * time.Minute)},
			{Person: approvals.Person{ID: "U2", Name: "Carol"}, At: decided},
		},
		RequiredApprovals: 2,
		DecidedBy:         &approvals.Person{ID: "U2", Name: "Carol"},
		DecidedAt:         &decided,
		Reason:            "looks good",
		Delivery: approvals.Delivery{
			State:       approvals.DeliveryDelivered,
			Attempts:    2,
			LastError:   "flexdeploy: 503",
			DeliveredAt: &delivered,
		},
		CreatedAt: now.Add(-time.Hour),
		ExpiresAt: now.Add(3 * time.Hour),
		Audit: []approvals.AuditRecord{
			{At: now.Add(-2 * time.Minute), User: "U1", Name: "Alice", Event: "vote"},
			{At: decided, User: "U2", Name: "Carol", Event: "decide", Detail: "approve"},
		},
		Policy:   "production",
		OnExpiry: approvals.ExpiryReject,
		Messages: []approvals.MessageRef{
			{Chat: "slack", Channel: "C0PROD", TS: "1700000000.000100"},
			{Chat: "slack", Channel: "D0ALICE", TS: "1700000000.000200", User: "U1"},
			{Chat: "other", Channel: "19:x@thread.tacv2", TS: "1:abc"},
		},
		TokenHash: approvals.HashToken("token-" + taskID),
		Nonce:     []byte{0, 1, 2, 3, 255, 254, 253, 252, 10, 13},
		KeyID:     "k1",
		Secret:    []byte("sealed\x00secret"),
		Extra:     map[string]string{"org": "acme", "planId": "42"},
		Outbox: []approvals.Job{
			{Seq: 3, Kind: approvals.JobUpdate, Attempts: 1, NotBefore: now.Add(time.Second), LastError: "slack: ratelimited"},
			{Seq: 4, Kind: approvals.JobDeliver, NotBefore: now.Add(2 * time.Second)},
		},
		NextSeq: 4,
		Lease:   approvals.Lease{Owner: "host-1/123", Until: now.Add(15 * time.Second)},
	}
}

// pendingTask builds a minimal valid pending task expiring at expires.
func pendingTask(taskID string, now, expires time.Time) *approvals.Task {
	return &approvals.Task{
		ID:                approvals.TaskRecordID("flexdeploy", taskID),
		Source:            "flexdeploy",
		TaskID:            taskID,
		Status:            approvals.StatusPending,
		RequiredApprovals: 1,
		Delivery:          approvals.Delivery{State: approvals.DeliveryPending},
		CreatedAt:         now,
		ExpiresAt:         expires,
	}
}

func mustCreate(t *testing.T, s approvals.Store, task *approvals.Task) *approvals.Task {
	t.Helper()
	stored, created, err := s.Create(t.Context(), cloneTask(task))
	if err != nil {
		t.Fatalf("Create(%s): %v", task.ID, err)
	}
	if !created {
		t.Fatalf("Create(%s): created = false on a fresh id", task.ID)
	}
	return stored
}

func mustGet(t *testing.T, s approvals.Store, id string) *approvals.Task {
	t.Helper()
	got, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return got
}

func testCreateGetRoundTrip(t *testing.T, s approvals.Store) {
	want := fullTask("8900", baseTime())
	stored := mustCreate(t, s, want)
	want.Version = 1
	if d := diffTask(want, stored); d != "" {
		t.Errorf("Create returned a different task:\n%s", d)
	}
	if d := diffTask(want, mustGet(t, s, want.ID)); d != "" {
		t.Errorf("Get after Create:\n%s", d)
	}
}

func testCreateMinimalRoundTrip(t *testing.T, s approvals.Store) {
	now := baseTime()
	want := pendingTask("a task id with spaces/and slashes", now, now.Add(time.Hour))
	mustCreate(t, s, want)
	want.Version = 1
	if d := diffTask(want, mustGet(t, s, want.ID)); d != "" {
		t.Errorf("Get after Create:\n%s", d)
	}
}

func testCreateExistingKeepsOriginal(t *testing.T, s approvals.Store) {
	now := baseTime()
	want := fullTask("8901", now)
	mustCreate(t, s, want)
	want.Version = 1

	again := pendingTask("8901", now, now.Add(time.Hour))
	again.Description = "a different description"
	stored, created, err := s.Create(t.Context(), again)
	if err != nil {
		t.Fatalf("second Create: %v", err)
	}
	if created {
		t.Errorf("second Create: created = true, want false")
	}
	if d := diffTask(want, stored); d != "" {
		t.Errorf("second Create returned not the original:\n%s", d)
	}
	if d := diffTask(want, mustGet(t, s, want.ID)); d != "" {
		t.Errorf("second Create changed the record:\n%s", d)
	}
}

func testCreateConcurrentOneWinner(t *testing.T, s approvals.Store) {
	now := baseTime()
	var (
		mu      sync.Mutex
		winners []string
		results []*approvals.Task
		errs    []error
	)
	race(contenders, func(i int) {
		task := pendingTask("9000", now, now.Add(time.Hour))
		task.Description = "attempt " + strconv.Itoa(i)
		stored, created, err := s.Create(context.Background(), task)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, err)
			return
		}
		if created {
			winners = append(winners, task.Description)
		}
		results = append(results, stored)
	})
	for _, err := range errs {
		t.Errorf("concurrent Create: %v", err)
	}
	if len(winners) != 1 {
		t.Fatalf("concurrent Create: %d callers got created=true, want exactly 1", len(winners))
	}
	final := mustGet(t, s, approvals.TaskRecordID("flexdeploy", "9000"))
	if final.Description != winners[0] || final.Version != 1 {
		t.Errorf("stored task: description %q version %d, want the winner's %q version 1", final.Description, final.Version, winners[0])
	}
	for _, r := range results {
		if d := diffTask(final, r); d != "" {
			t.Errorf("a Create returned a task other than the stored one:\n%s", d)
			break
		}
	}
}

func testGetUnknown(t *testing.T, s approvals.Store) {
	_, err := s.Get(t.Context(), "flexdeploy-does-not-exist")
	if !errors.Is(err, approvals.ErrNotFound) {
		t.Errorf("Get unknown: err = %v, want ErrNotFound", err)
	}
}

// testGetReturnsCopy guards against a backend handing out its own record:
// a caller changing what it got must not change the store.
func testGetReturnsCopy(t *testing.T, s approvals.Store) {
	want := fullTask("8902", baseTime())
	mustCreate(t, s, want)
	want.Version = 1
	got := mustGet(t, s, want.ID)
	got.Status = approvals.StatusRejected
	got.Approvals[0].ID = "changed"
	got.Extra["org"] = "changed"
	got.Nonce[0] = 99
	got.Outbox = nil
	if d := diffTask(want, mustGet(t, s, want.ID)); d != "" {
		t.Errorf("changing a Get result changed the store:\n%s", d)
	}
}

func testUpdateAppliesAndIncrementsVersion(t *testing.T, s approvals.Store) {
	now := baseTime()
	want := pendingTask("8903", now, now.Add(time.Hour))
	mustCreate(t, s, want)

	var seenVersion int64
	updated, err := s.Update(t.Context(), want.ID, func(task *approvals.Task) error {
		seenVersion = task.Version
		task.Approvals = append(task.Approvals, approvals.Vote{Person: approvals.Person{ID: "U1", Name: "Alice"}, At: now})
		task.Status = approvals.StatusApproved
		task.Enqueue(approvals.JobDeliver, now)
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if seenVersion != 1 {
		t.Errorf("fn saw Version %d, want the stored 1", seenVersion)
	}
	want.Approvals = []approvals.Vote{{Person: approvals.Person{ID: "U1", Name: "Alice"}, At: now}}
	want.Status = approvals.StatusApproved
	want.Enqueue(approvals.JobDeliver, now)
	want.Version = 2
	if d := diffTask(want, updated); d != "" {
		t.Errorf("Update returned:\n%s", d)
	}
	if d := diffTask(want, mustGet(t, s, want.ID)); d != "" {
		t.Errorf("Get after Update:\n%s", d)
	}

	updated, err = s.Update(t.Context(), want.ID, func(task *approvals.Task) error {
		task.Outbox = nil
		return nil
	})
	if err != nil {
		t.Fatalf("second Update: %v", err)
	}
	if updated.Version != 3 || len(updated.Outbox) != 0 {
		t.Errorf("second Update: version %d outbox %v, want version 3 and empty outbox", updated.Version, updated.Outbox)
	}
}

func testUpdateUnknown(t *testing.T, s approvals.Store) {
	called := false
	_, err := s.Update(t.Context(), "flexdeploy-does-not-exist", func(*approvals.Task) error {
		called = true
		return nil
	})
	if !errors.Is(err, approvals.ErrNotFound) {
		t.Errorf("Update unknown: err = %v, want ErrNotFound", err)
	}
	if called {
		t.Errorf("Update unknown called fn")
	}
	if _, err := s.Get(t.Context(), "flexdeploy-does-not-exist"); !errors.Is(err, approvals.ErrNotFound) {
		t.Errorf("Update unknown created a record: Get err = %v", err)
	}
}

func testUpdateFnErrorAborts(t *testing.T, s approvals.Store) {
	tests := []struct {
		name string
		err  error
	}{
		{"sentinel", approvals.ErrAlreadyDecided},
		{"wrapped", fmt.Errorf("decide: %w", approvals.ErrNotApprover)},
		{"permanent", approvals.Permanent(errors.New("boom"))},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := fullTask("abort-"+strconv.Itoa(i), baseTime())
			mustCreate(t, s, want)
			want.Version = 1
			_, err := s.Update(t.Context(), want.ID, func(task *approvals.Task) error {
				// Change everything before failing: none of it may be written.
				task.Status = approvals.StatusRejected
				task.Approvals = append(task.Approvals, approvals.Vote{Person: approvals.Person{ID: "U9"}})
				task.Approvals[0].Name = "changed"
				task.Extra["org"] = "changed"
				task.Nonce[0] = 99
				task.Outbox = nil
				return tc.err
			})
			if !errors.Is(err, tc.err) {
				t.Errorf("Update: err = %v, want %v", err, tc.err)
			}
			if d := diffTask(want, mustGet(t, s, want.ID)); d != "" {
				t.Errorf("aborted Update changed the record:\n%s", d)
			}
		})
	}
}

func testUpdateConcurrentNoLostUpdate(t *testing.T, s approvals.Store) {
	now := baseTime()
	task := pendingTask("9001", now, now.Add(time.Hour))
	mustCreate(t, s, task)

	errs := make([]error, contenders)
	race(contenders, func(i int) {
		_, errs[i] = s.Update(context.Background(), task.ID, func(task *approvals.Task) error {
			task.Approvals = append(task.Approvals, approvals.Vote{Person: approvals.Person{ID: "U" + strconv.Itoa(i)}, At: now})
			return nil
		})
	})
	for _, err := range errs {
		if err != nil {
			t.Errorf("concurrent Update: %v", err)
		}
	}
	got := mustGet(t, s, task.ID)
	if len(got.Approvals) != contenders {
		t.Errorf("after %d concurrent Updates: %d votes, want %d (lost updates)", contenders, len(got.Approvals), contenders)
	}
	seen := map[string]bool{}
	for _, v := range got.Approvals {
		if seen[v.ID] {
			t.Errorf("vote %s applied twice", v.ID)
		}
		seen[v.ID] = true
	}
	if got.Version != contenders+1 {
		t.Errorf("Version = %d, want %d", got.Version, contenders+1)
	}
}

func testUpdateConcurrentExactlyOneDecides(t *testing.T, s approvals.Store) {
	now := baseTime()
	task := pendingTask("9002", now, now.Add(time.Hour))
	mustCreate(t, s, task)

	errs := make([]error, contenders)
	race(contenders, func(i int) {
		_, errs[i] = s.Update(context.Background(), task.ID, func(task *approvals.Task) error {
			if task.Status != approvals.StatusPending {
				return approvals.ErrAlreadyDecided
			}
			task.Status = approvals.StatusApproved
			task.DecidedBy = &approvals.Person{ID: "U" + strconv.Itoa(i)}
			return nil
		})
	})
	var decided, refused int
	for _, err := range errs {
		switch {
		case err == nil:
			decided++
		case errors.Is(err, approvals.ErrAlreadyDecided):
			refused++
		default:
			t.Errorf("concurrent decide: unexpected error %v", err)
		}
	}
	if decided != 1 || refused != contenders-1 {
		t.Errorf("concurrent decide: %d decided, %d refused; want 1 and %d", decided, refused, contenders-1)
	}
	got := mustGet(t, s, task.ID)
	if got.Status != approvals.StatusApproved || got.Version != 2 {
		t.Errorf("after the race: status %s version %d, want approved version 2", got.Status, got.Version)
	}
}

// dueFixture is a task with its expected due time (ok=false: never due).
type dueFixture struct {
	task *approvals.Task
	due  time.Duration
	ok   bool
}

// dueFixtures covers every reason a task is due and every reason it is not.
// Due times are relative to now; "before" in the tests is now+1m.
func dueFixtures(now time.Time) []dueFixture {
	withJobs := func(task *approvals.Task, status approvals.Status, offsets ...time.Duration) *approvals.Task {
		task.Status = status
		for _, off := range offsets {
			task.Enqueue(approvals.JobUpdate, now.Add(off))
		}
		return task
	}
	expiring := pendingTask("pending-expiry", now, now.Add(10*time.Second))
	postFirst := withJobs(pendingTask("pending-post", now, now.Add(time.Hour)), approvals.StatusPending, 3*time.Second, time.Second)
	decided := withJobs(pendingTask("decided-deliver", now, now.Add(time.Hour)), approvals.StatusApproved, 5*time.Second)
	leased := withJobs(pendingTask("leased", now, now.Add(time.Hour)), approvals.StatusRejected, 2*time.Second)
	leased.Lease = approvals.Lease{Owner: "other-process", Until: now.Add(20 * time.Second)}
	atBefore := withJobs(pendingTask("at-before", now, now.Add(time.Hour)), approvals.StatusExpired, time.Minute)
	overdue := withJobs(pendingTask("overdue", now, now.Add(-time.Hour)), approvals.StatusPending)
	finalDone := withJobs(pendingTask("final-done", now, now.Add(-time.Hour)), approvals.StatusApproved)
	finalDone.Lease = approvals.Lease{Owner: "other-process", Until: now.Add(time.Second)}
	later := withJobs(pendingTask("later", now, now.Add(2*time.Hour)), approvals.StatusPending)
	laterJob := withJobs(pendingTask("later-job", now, now.Add(-time.Hour)), approvals.StatusApproved, 61*time.Second)
	return []dueFixture{
		{overdue, -time.Hour, true},
		{postFirst, time.Second, true},
		{decided, 5 * time.Second, true},
		{expiring, 10 * time.Second, true},
		{leased, 20 * time.Second, true},
		{atBefore, time.Minute, true},
		{laterJob, 61 * time.Second, true},
		{later, 2 * time.Hour, true},
		{finalDone, 0, false},
	}
}

// maxPages ends a walk that would never end; no test here needs as many.
const maxPages = 10_000

// walkDue reads every page of the tasks due at or before before, limit at a
// time, from the start until Next is "", and checks what every page must
// keep: at most limit tasks, a cursor never handed out twice, an end.
func walkDue(t *testing.T, s approvals.Store, before time.Time, limit int) (tasks []*approvals.Task, corrupt []string, pages int) {
	t.Helper()
	seen := map[approvals.Cursor]bool{}
	var after approvals.Cursor
	for {
		page, err := s.Due(t.Context(), before, after, limit)
		if err != nil {
			t.Fatalf("Due(after %q, limit %d) on page %d: %v", after, limit, pages+1, err)
		}
		pages++
		if len(page.Tasks) > limit {
			t.Fatalf("Due(limit %d) page %d holds %d tasks", limit, pages, len(page.Tasks))
		}
		tasks = append(tasks, page.Tasks...)
		corrupt = append(corrupt, page.Corrupt...)
		if page.Next == "" {
			return tasks, corrupt, pages
		}
		if seen[page.Next] || page.Next == after {
			t.Fatalf("Due(limit %d) page %d: cursor %q handed out twice, the walk would never end", limit, pages, page.Next)
		}
		if pages == maxPages {
			t.Fatalf("Due(limit %d): no end after %d pages", limit, pages)
		}
		seen[page.Next] = true
		after = page.Next
	}
}

// dueIDs walks all of Due(before) and returns the tasks' ids.
func dueIDs(t *testing.T, s approvals.Store, before time.Time, limit int) []string {
	t.Helper()
	tasks, corrupt, _ := walkDue(t, s, before, limit)
	if len(corrupt) > 0 {
		t.Errorf("Due named corrupt records %v in a store of sound ones", corrupt)
	}
	return ids(tasks)
}

func ids(tasks []*approvals.Task) []string {
	out := make([]string, len(tasks))
	for i, task := range tasks {
		out[i] = task.ID
	}
	return out
}

func testDueOrderAndFilter(t *testing.T, s approvals.Store) {
	now := baseTime()
	fixtures := dueFixtures(now)
	// Create them out of order so that insertion order cannot pass for due order.
	for i := len(fixtures) - 1; i >= 0; i-- {
		mustCreate(t, s, fixtures[i].task)
	}
	before := now.Add(time.Minute)
	var want []string
	for _, f := range fixtures {
		if due, ok := f.task.DueAt(); ok != f.ok || (ok && !due.Equal(now.Add(f.due))) {
			t.Fatalf("fixture %s: DueAt = %v %v, want %v %v (fixture out of step with Task.DueAt)", f.task.ID, due, ok, now.Add(f.due), f.ok)
		}
		if f.ok && f.due <= time.Minute {
			want = append(want, f.task.ID)
		}
	}

	tests := []struct {
		name   string
		before time.Time
		limit  int
		want   []string
	}{
		{"due by before, earliest first", before, 100, want},
		{"one a page", before, 1, want},
		{"nothing before the earliest", now.Add(-2 * time.Hour), 100, []string{}},
		{"exactly at a due time", now.Add(time.Second), 100, want[:2]},
		{"everything due some time", now.Add(24 * time.Hour), 3, append(append([]string(nil), want...), fixtures[6].task.ID, fixtures[7].task.ID)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := dueIDs(t, s, tc.before, tc.limit); !equalStrings(got, tc.want) {
				t.Errorf("Due(%v, %d) = %v, want %v", tc.before.Sub(now), tc.limit, got, tc.want)
			}
		})
	}

	// Due hands out whole records, fit to work on.
	tasks, _, _ := walkDue(t, s, before, 2)
	if len(tasks) != len(want) {
		t.Fatalf("Due: %d tasks, want %d", len(tasks), len(want))
	}
	want1 := cloneTask(fixtures[1].task)
	want1.Version = 1
	if d := diffTask(want1, tasks[1]); d != "" {
		t.Errorf("Due returned a task other than the stored one:\n%s", d)
	}
}

// testDueLimit walks 30 due tasks with several limits: every page within
// its limit, all of them reached in order, and a walk that fits one page
// done after it.
func testDueLimit(t *testing.T, s approvals.Store) {
	now := baseTime()
	const n = 30
	var want []string
	// Create in a scrambled order; due times i seconds from now.
	for k := 0; k < n; k++ {
		i := (k * 7) % n
		task := pendingTask("limit-"+strconv.Itoa(i), now, now.Add(time.Duration(i+1)*time.Second))
		mustCreate(t, s, task)
	}
	for i := 0; i < n; i++ {
		want = append(want, approvals.TaskRecordID("flexdeploy", "limit-"+strconv.Itoa(i)))
	}
	for _, limit := range []int{1, 7, 25, n, n + 10} {
		t.Run(strconv.Itoa(limit), func(t *testing.T) {
			tasks, _, pages := walkDue(t, s, now.Add(time.Hour), limit)
			if got := ids(tasks); !equalStrings(got, want) {
				t.Errorf("Due walk (limit %d) = %v, want %v", limit, got, want)
			}
			if limit > n && pages != 1 {
				t.Errorf("Due(limit %d) of %d due tasks took %d pages, want 1 with Next empty", limit, n, pages)
			}
		})
	}
	// The first page is as full as the limit allows and says where to go on.
	page, err := s.Due(t.Context(), now.Add(time.Hour), "", 7)
	if err != nil {
		t.Fatalf("Due: %v", err)
	}
	if got := ids(page.Tasks); len(got) == 0 || !equalStrings(got, want[:len(got)]) || page.Next == "" {
		t.Errorf("Due(limit 7) first page = %v next %q, want a start of %v and a cursor", got, page.Next, want[:7])
	}
}

// testDuePagingReachesEveryTask is the background loops' walk at scale:
// 1,200 due tasks (three at a time sharing a millisecond, so that ties fall
// on page boundaries) among tasks due later and tasks never due, walked 100
// at a time, reach every due task exactly once, earliest first, and nothing
// else.
func testDuePagingReachesEveryTask(t *testing.T, s approvals.Store) {
	now := baseTime()
	const due, later, never = 1200, 40, 20
	start := now.Add(-time.Hour)
	var tasks []*approvals.Task
	want := map[string]time.Time{}
	for i := range due {
		at := start.Add(time.Duration(i/3) * time.Millisecond)
		task := pendingTask("page-"+strconv.Itoa(i), now, at)
		tasks = append(tasks, task)
		want[task.ID] = at
	}
	for i := range later {
		tasks = append(tasks, pendingTask("page-later-"+strconv.Itoa(i), now, now.Add(time.Minute+time.Duration(i)*time.Millisecond)))
	}
	for i := range never {
		task := pendingTask("page-never-"+strconv.Itoa(i), now, start)
		task.Status = approvals.StatusApproved
		tasks = append(tasks, task)
	}
	// Scrambled, so that creation order cannot pass for due order.
	for i := range tasks {
		j := (i * 7919) % len(tasks)
		tasks[i], tasks[j] = tasks[j], tasks[i]
	}
	createAll(t, s, tasks)

	const limit = 100
	got, corrupt, pages := walkDue(t, s, now, limit)
	if len(corrupt) > 0 {
		t.Errorf("Due named corrupt records %v in a store of sound ones", corrupt)
	}
	seen := map[string]bool{}
	var prev time.Time
	for i, task := range got {
		at, ok := want[task.ID]
		switch {
		case !ok:
			t.Errorf("Due handed out %s, which is not due by then", task.ID)
			continue
		case seen[task.ID]:
			t.Errorf("Due handed out %s twice", task.ID)
		case i > 0 && at.Before(prev):
			t.Errorf("Due handed out %s (due %v) after a task due %v: out of order", task.ID, at, prev)
		}
		seen[task.ID] = true
		prev = at
	}
	if len(seen) != due {
		t.Errorf("the walk reached %d of %d due tasks in %d pages", len(seen), due, pages)
	}
	if pages < due/limit {
		t.Errorf("the walk took %d pages of at most %d for %d tasks", pages, limit, due)
	}
}

// testDueCursorContinuesAfterChanges checks that a cursor goes on strictly
// after the page it ended, also when the page's last task has left the
// index since and a task due later has come in.
func testDueCursorContinuesAfterChanges(t *testing.T, s approvals.Store) {
	now := baseTime()
	var want []string
	for i := range 6 {
		task := pendingTask("cursor-"+strconv.Itoa(i), now, now.Add(time.Duration(i+1)*time.Second))
		mustCreate(t, s, task)
		want = append(want, task.ID)
	}
	before := now.Add(time.Minute)
	first, err := s.Due(t.Context(), before, "", 2)
	if err != nil {
		t.Fatalf("Due: %v", err)
	}
	got := ids(first.Tasks)
	if len(got) == 0 || !equalStrings(got, want[:len(got)]) || first.Next == "" {
		t.Fatalf("first page = %v next %q, want a start of %v and a cursor", got, first.Next, want)
	}
	last := got[len(got)-1]
	// The page's last task is decided and worked off: it leaves the index.
	if _, err := s.Update(t.Context(), last, func(task *approvals.Task) error {
		task.Status = approvals.StatusApproved
		return nil
	}); err != nil {
		t.Fatalf("Update(%s): %v", last, err)
	}
	late := pendingTask("cursor-late", now, now.Add(30*time.Second))
	mustCreate(t, s, late)

	rest := append(append([]string(nil), want[len(got):]...), late.ID)
	var after = first.Next
	var walked []string
	for pages := 0; after != ""; pages++ {
		if pages == maxPages {
			t.Fatalf("no end after %d pages", pages)
		}
		page, err := s.Due(t.Context(), before, after, 2)
		if err != nil {
			t.Fatalf("Due(after %q): %v", after, err)
		}
		walked = append(walked, ids(page.Tasks)...)
		after = page.Next
	}
	if !equalStrings(walked, rest) {
		t.Errorf("the walk after the first page = %v, want %v", walked, rest)
	}
}

// testDueInvalid checks that a limit below one and a cursor the store did
// not make are refused as invalid, not taken for the end of a walk.
func testDueInvalid(t *testing.T, s approvals.Store) {
	now := baseTime()
	mustCreate(t, s, pendingTask("invalid", now, now))
	for _, limit := range []int{0, -1} {
		if page, err := s.Due(t.Context(), now, "", limit); !errors.Is(err, approvals.ErrInvalid) {
			t.Errorf("Due(limit %d) = %d tasks, next %q, err %v; want ErrInvalid", limit, len(page.Tasks), page.Next, err)
		}
	}
	for _, c := range []approvals.Cursor{"!", "zz", "not a cursor", "%00"} {
		if page, err := s.Due(t.Context(), now, c, 10); !errors.Is(err, approvals.ErrInvalid) {
			t.Errorf("Due(after %q) = %d tasks, next %q, err %v; want ErrInvalid", c, len(page.Tasks), page.Next, err)
		}
	}
}

// createAll creates the tasks a few at a time: a bulk fixture stays quick
// on a backend that answers over the network.
func createAll(t *testing.T, s approvals.Store, tasks []*approvals.Task) {
	t.Helper()
	const workers = 16
	next := make(chan *approvals.Task)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for task := range next {
				if _, created, err := s.Create(t.Context(), cloneTask(task)); err != nil || !created {
					errs <- fmt.Errorf("Create(%s): created %v, %v", task.ID, created, err)
					for range next {
					}
					return
				}
			}
		})
	}
	for _, task := range tasks {
		next <- task
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// testDueFollowsUpdates checks that every write keeps the due index in step:
// a task finished by an Update leaves Due, a task given new work joins it,
// and a changed due time changes the order.
func testDueFollowsUpdates(t *testing.T, s approvals.Store) {
	now := baseTime()
	before := now.Add(time.Minute)
	a := pendingTask("follow-a", now, now.Add(10*time.Second))
	a.Enqueue(approvals.JobPost, now.Add(time.Second))
	b := pendingTask("follow-b", now, now.Add(20*time.Second))
	c := pendingTask("follow-c", now, now.Add(time.Hour))
	c.Status = approvals.StatusApproved
	for _, task := range []*approvals.Task{a, b, c} {
		mustCreate(t, s, task)
	}
	if got, want := dueIDs(t, s, before, 10), []string{a.ID, b.ID}; !equalStrings(got, want) {
		t.Fatalf("Due = %v, want %v", got, want)
	}

	update := func(id string, fn func(*approvals.Task)) {
		t.Helper()
		if _, err := s.Update(t.Context(), id, func(task *approvals.Task) error { fn(task); return nil }); err != nil {
			t.Fatalf("Update(%s): %v", id, err)
		}
	}

	// a is decided and its outbox worked off: it needs nothing ever again.
	update(a.ID, func(task *approvals.Task) {
		task.Status = approvals.StatusApproved
		task.Outbox = nil
	})
	if got, want := dueIDs(t, s, now.Add(24*time.Hour), 10), []string{b.ID}; !equalStrings(got, want) {
		t.Errorf("after finishing a: Due = %v, want %v", got, want)
	}

	// c, final and idle, gets a job: it is due again.
	update(c.ID, func(task *approvals.Task) { task.Enqueue(approvals.JobUpdate, now.Add(15*time.Second)) })
	if got, want := dueIDs(t, s, before, 10), []string{c.ID, b.ID}; !equalStrings(got, want) {
		t.Errorf("after enqueueing on c: Due = %v, want %v", got, want)
	}

	// c's job is retried later: it moves behind b, and out of an earlier window.
	update(c.ID, func(task *approvals.Task) { task.Outbox[0].NotBefore = now.Add(30 * time.Second) })
	if got, want := dueIDs(t, s, before, 10), []string{b.ID, c.ID}; !equalStrings(got, want) {
		t.Errorf("after postponing c: Due = %v, want %v", got, want)
	}
	if got, want := dueIDs(t, s, now.Add(25*time.Second), 10), []string{b.ID}; !equalStrings(got, want) {
		t.Errorf("after postponing c: Due(25s) = %v, want %v", got, want)
	}

	// An aborted Update leaves the index alone.
	if _, err := s.Update(t.Context(), b.ID, func(task *approvals.Task) error {
		task.Status = approvals.StatusExpired
		return approvals.ErrNothingToDo
	}); !errors.Is(err, approvals.ErrNothingToDo) {
		t.Fatalf("aborted Update: err = %v", err)
	}
	if got, want := dueIDs(t, s, before, 10), []string{b.ID, c.ID}; !equalStrings(got, want) {
		t.Errorf("after an aborted Update: Due = %v, want %v", got, want)
	}
}

// testDueLeaseDelaysTakeover checks that a task whose outbox another process
// leased becomes due only when the lease ends, and at once when it is
// released.
func testDueLeaseDelaysTakeover(t *testing.T, s approvals.Store) {
	now := baseTime()
	task := pendingTask("lease", now, now.Add(time.Hour))
	task.Enqueue(approvals.JobPost, now)
	mustCreate(t, s, task)
	if got, want := dueIDs(t, s, now, 10), []string{task.ID}; !equalStrings(got, want) {
		t.Fatalf("Due = %v, want %v", got, want)
	}
	if _, err := s.Update(t.Context(), task.ID, func(task *approvals.Task) error {
		task.Lease = approvals.Lease{Owner: "other-process", Until: now.Add(15 * time.Second)}
		return nil
	}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got := dueIDs(t, s, now.Add(14*time.Second), 10); len(got) != 0 {
		t.Errorf("while leased: Due = %v, want none", got)
	}
	if got, want := dueIDs(t, s, now.Add(15*time.Second), 10), []string{task.ID}; !equalStrings(got, want) {
		t.Errorf("at lease end: Due = %v, want %v", got, want)
	}
	if _, err := s.Update(t.Context(), task.ID, func(task *approvals.Task) error {
		task.Lease = approvals.Lease{}
		return nil
	}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got, want := dueIDs(t, s, now, 10), []string{task.ID}; !equalStrings(got, want) {
		t.Errorf("after release: Due = %v, want %v", got, want)
	}
}

// testPing checks that Ping succeeds on a sound store, again and again (it
// may write a health record to prove the store takes writes), and that
// whatever it writes is no task: a store that holds only Ping's record has
// nothing due at any time, and tasks written around it are unaffected.
func testPing(t *testing.T, s approvals.Store) {
	ctx := t.Context()
	for i := range 3 {
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping %d: %v", i+1, err)
		}
	}
	end := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	tasks, corrupt, _ := walkDue(t, s, end, 10)
	if len(tasks) != 0 || len(corrupt) != 0 {
		t.Errorf("Due after Ping = %v, corrupt %v; want nothing", ids(tasks), corrupt)
	}
	now := baseTime()
	task := pendingTask("after-ping", now, now.Add(time.Hour))
	mustCreate(t, s, task)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping beside a task: %v", err)
	}
	if got := mustGet(t, s, task.ID); got.Version != 1 {
		t.Errorf("Ping changed the task: version %d", got.Version)
	}
	if got := dueIDs(t, s, end, 10); !equalStrings(got, []string{task.ID}) {
		t.Errorf("Due after Ping = %v, want only %s", got, task.ID)
	}
}

// race runs fn(0..n-1) in n goroutines released at the same moment, and
// waits for all of them.
func race(n int, fn func(i int)) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			fn(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
