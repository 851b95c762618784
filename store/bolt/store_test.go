package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/store/storetest"
)

func openStore(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) approvals.Store {
		s := openStore(t, filepath.Join(t.TempDir(), "x.db"))
		// Every write, of the contract too, must leave the indexes in step.
		t.Cleanup(func() { checkIndexes(t, s) })
		return s
	})
}

// checkIndexes verifies that the due and leased buckets list exactly the
// tasks that belong there, each once, under its current due time: Due skips
// stale entries, so a stale index would not show in Due's results.
func checkIndexes(t *testing.T, s *Store) {
	t.Helper()
	err := s.db.View(func(tx *bbolt.Tx) error {
		wantDue, wantLeased := map[string]bool{}, map[string]bool{}
		if err := tx.Bucket([]byte(bucketTasks)).ForEach(func(k, _ []byte) error {
			task, err := get(tx, string(k))
			if err != nil {
				return err
			}
			if key, ok := dueKey(task); ok {
				wantDue[string(key)] = true
			}
			if task.Lease.Owner != "" {
				wantLeased[task.ID] = true
			}
			return nil
		}); err != nil {
			return err
		}
		for name, want := range map[string]map[string]bool{bucketDue: wantDue, bucketLeased: wantLeased} {
			n := 0
			if err := tx.Bucket([]byte(name)).ForEach(func(k, _ []byte) error {
				n++
				if !want[string(k)] {
					t.Errorf("%s index: stray entry %q", name, k)
				}
				return nil
			}); err != nil {
				return err
			}
			if n != len(want) {
				t.Errorf("%s index: %d entries, want %d", name, n, len(want))
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("check indexes: %v", err)
	}
}

func pendingTask(taskID string, now time.Time) *approvals.Task {
	return &approvals.Task{
		ID:                approvals.TaskRecordID("flexdeploy", taskID),
		Source:            "flexdeploy",
		TaskID:            taskID,
		Status:            approvals.StatusPending,
		RequiredApprovals: 1,
		CreatedAt:         now,
		ExpiresAt:         now.Add(time.Hour),
	}
}

func TestOpenClearsLeasesOfDeadProcess(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "x.db")
	now := time.Now().UTC().Truncate(time.Millisecond)
	farFuture := now.Add(100 * 365 * 24 * time.Hour)

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	leased := pendingTask("leased", now)
	leased.Enqueue(approvals.JobPost, now)
	leased.Lease = approvals.Lease{Owner: "dead-process", Until: farFuture}
	idle := pendingTask("idle", now) // no lease: left as it is
	idle.Enqueue(approvals.JobPost, now)
	// A dead process's retry waits end with it; work scheduled for later
	// keeps its time.
	retrying := pendingTask("retrying", now)
	retrying.Enqueue(approvals.JobPost, now.Add(25*time.Second))
	retrying.Outbox[0].Attempts = 6
	retrying.Enqueue(approvals.JobUpdate, now.Add(3*time.Minute))
	retrying.Outbox[1].Waiting = true // its turn in the dead process's queue
	retrying.Enqueue(approvals.JobEscalate, now.Add(time.Hour))
	retrying.Lease = approvals.Lease{Owner: "dead-process", Until: now.Add(40 * time.Second)}
	for _, task := range []*approvals.Task{leased, idle, retrying} {
		if _, _, err := s.Create(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	if due, err := s.Due(ctx, now.Add(30*time.Second), "", 10); err != nil || len(due.Tasks) != 1 || due.Tasks[0].ID != idle.ID {
		t.Fatalf("before restart: Due = %v, %v; want only the unleased task", due.Tasks, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, path)
	got, err := s.Get(ctx, leased.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Lease != (approvals.Lease{}) {
		t.Errorf("after restart: lease = %+v, want cleared", got.Lease)
	}
	if got.Version != 2 || len(got.Outbox) != 1 {
		t.Errorf("after restart: version %d outbox %d, want 2 and the job kept", got.Version, len(got.Outbox))
	}
	if g, _ := s.Get(ctx, idle.ID); g.Version != 1 {
		t.Errorf("unleased task rewritten: version %d", g.Version)
	}
	due, err := s.Due(ctx, time.Now(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range due.Tasks {
		ids = append(ids, d.ID)
	}
	if len(ids) != 3 || !strings.Contains(strings.Join(ids, ","), leased.ID) || !strings.Contains(strings.Join(ids, ","), retrying.ID) {
		t.Errorf("after restart: Due = %v, want the formerly leased tasks due at once", ids)
	}
	got, err = s.Get(ctx, retrying.ID)
	if err != nil {
		t.Fatal(err)
	}
	if post := got.Outbox[0]; post.NotBefore.After(time.Now()) || post.Attempts != 6 {
		t.Errorf("after restart: retried post %+v, want due now with its attempts kept", post)
	}
	if update := got.Outbox[1]; update.NotBefore.After(time.Now()) {
		t.Errorf("after restart: update waiting for its turn %+v, want due now", update)
	}
	if esc := got.Outbox[2]; !esc.NotBefore.Equal(now.Add(time.Hour)) {
		t.Errorf("after restart: escalation due %v, want %v as scheduled", esc.NotBefore, now.Add(time.Hour))
	}
	checkIndexes(t, s)
}

func TestOpenFileInUse(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "x.db")
	first := openStore(t, path)
	_, err := Open(path, WithLockTimeout(50*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "store file is in use by another process") {
		t.Fatalf("second Open: err = %v, want 'in use'", err)
	}
	if err := first.Ping(t.Context()); err != nil {
		t.Errorf("first store after the refused Open: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	// Once the holder is gone, the file opens.
	openStore(t, path)
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "x.db")
	openStore(t, path)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode %v, want 0600", perm)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notDB := filepath.Join(dir, "not.db")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("not a bolt file ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "missing", "x.db"), notDB} {
		if s, err := Open(path); err == nil {
			_ = s.Close()
			t.Errorf("Open(%s) succeeded", path)
		}
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	t.Parallel()
	s, err := Open(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	now := time.Now()
	_, _, createErr := s.Create(ctx, pendingTask("1", now))
	_, getErr := s.Get(ctx, "x")
	_, updateErr := s.Update(ctx, "x", func(*approvals.Task) error { return nil })
	_, dueErr := s.Due(ctx, now, "", 1)
	for name, err := range map[string]error{"Ping": s.Ping(ctx), "Create": createErr, "Get": getErr, "Update": updateErr, "Due": dueErr} {
		if !errors.Is(err, approvals.ErrUnavailable) {
			t.Errorf("%s on a closed store: err = %v, want ErrUnavailable", name, err)
		}
	}
}

func TestCancelledContext(t *testing.T) {
	t.Parallel()
	s := openStore(t, filepath.Join(t.TempDir(), "x.db"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := s.Create(ctx, pendingTask("1", time.Now())); !errors.Is(err, context.Canceled) {
		t.Errorf("Create: err = %v, want context.Canceled", err)
	}
	if _, err := s.Get(t.Context(), approvals.TaskRecordID("flexdeploy", "1")); !errors.Is(err, approvals.ErrNotFound) {
		t.Errorf("a cancelled Create wrote: Get err = %v", err)
	}
}

func TestCreateWithoutID(t *testing.T) {
	t.Parallel()
	s := openStore(t, filepath.Join(t.TempDir(), "x.db"))
	if _, _, err := s.Create(t.Context(), &approvals.Task{}); !errors.Is(err, approvals.ErrInvalid) {
		t.Errorf("Create without id: err = %v, want ErrInvalid", err)
	}
}

func TestDueTimeOrder(t *testing.T) {
	t.Parallel()
	times := []time.Time{
		{},
		time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Date(2026, 11, 22, 14, 2, 0, 0, time.UTC),
		time.Date(2026, 11, 22, 14, 2, 0, 1, time.UTC),
		time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i := 1; i < len(times); i++ {
		a, b := dueTime(times[i-1]), dueTime(times[i])
		clamped := i == 1 || i == len(times)-1 // both ends fall outside unix nanoseconds
		if a > b || (a == b && !clamped) {
			t.Errorf("dueTime(%v) = %d, dueTime(%v) = %d: out of order", times[i-1], a, times[i], b)
		}
	}
	// The due key of a task without an expiry sorts first: due at once.
	task := pendingTask("1", time.Now())
	task.ExpiresAt = time.Time{}
	key, ok := dueKey(task)
	if !ok || binary.BigEndian.Uint64(key) != 0 || string(key[8:]) != task.ID {
		t.Errorf("dueKey of a task without expiry = %x %v", key, ok)
	}
}

// TestConcurrentReadersAndWriters mixes Due, Get and Update across tasks
// under the race detector.
func TestConcurrentReadersAndWriters(t *testing.T) {
	t.Parallel()
	s := openStore(t, filepath.Join(t.TempDir(), "x.db"))
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond)
	const n = 10
	for i := range n {
		task := pendingTask(strconv.Itoa(i), now)
		task.Enqueue(approvals.JobPost, now)
		if _, _, err := s.Create(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := s.Update(ctx, approvals.TaskRecordID("flexdeploy", strconv.Itoa(i)), func(task *approvals.Task) error {
				task.Outbox = nil
				task.Status = approvals.StatusApproved
				return nil
			})
			if err != nil {
				t.Errorf("Update: %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			due, err := s.Due(ctx, now.Add(time.Minute), "", n)
			if err != nil {
				t.Errorf("Due: %v", err)
			}
			for _, d := range due.Tasks {
				if _, err := s.Get(ctx, d.ID); err != nil {
					t.Errorf("Get: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if due, err := s.Due(ctx, now.Add(24*time.Hour), "", n); err != nil || len(due.Tasks) != 0 || due.Next != "" {
		t.Errorf("Due after all tasks finished = %d tasks, next %q, %v", len(due.Tasks), due.Next, err)
	}
	checkIndexes(t, s)
}

func BenchmarkCreate(b *testing.B) {
	s := openStore(b, filepath.Join(b.TempDir(), "x.db"))
	ctx := context.Background()
	now := time.Now().UTC()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		task := pendingTask(strconv.Itoa(i), now)
		task.Nonce = make([]byte, 32)
		task.TokenHash = make([]byte, 32)
		task.Enqueue(approvals.JobPost, now)
		if _, _, err := s.Create(ctx, task); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreateParallel(b *testing.B) {
	s := openStore(b, filepath.Join(b.TempDir(), "x.db"))
	ctx := context.Background()
	now := time.Now().UTC()
	var mu sync.Mutex
	next := 0
	b.ReportAllocs()
	b.SetParallelism(8) // intake is many concurrent requests
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			next++
			id := strconv.Itoa(next)
			mu.Unlock()
			task := pendingTask(id, now)
			task.Enqueue(approvals.JobPost, now)
			if _, _, err := s.Create(ctx, task); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkUpdate(b *testing.B) {
	s := openStore(b, filepath.Join(b.TempDir(), "x.db"))
	ctx := context.Background()
	now := time.Now().UTC()
	const tasks = 100
	for i := range tasks {
		if _, _, err := s.Create(ctx, pendingTask(strconv.Itoa(i), now)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		id := approvals.TaskRecordID("flexdeploy", strconv.Itoa(i%tasks))
		if _, err := s.Update(ctx, id, func(task *approvals.Task) error {
			task.Enqueue(approvals.JobUpdate, now.Add(time.Duration(i)))
			task.Outbox = task.Outbox[len(task.Outbox)-1:]
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestUpdatePanicReachesCaller(t *testing.T) {
	t.Parallel()
	s := openStore(t, filepath.Join(t.TempDir(), "x.db"))
	task := pendingTask("1", time.Now().UTC())
	if _, _, err := s.Create(t.Context(), task); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want the fn's panic", r)
			}
		}()
		_, _ = s.Update(t.Context(), task.ID, func(task *approvals.Task) error {
			task.Status = approvals.StatusApproved
			panic("boom")
		})
	}()
	// The store lives on and nothing of the panicking fn was written.
	got, err := s.Update(t.Context(), task.ID, func(*approvals.Task) error { return nil })
	if err != nil {
		t.Fatalf("Update after a panic: %v", err)
	}
	if got.Status != approvals.StatusPending || got.Version != 2 {
		t.Errorf("after a panic: status %s version %d, want pending version 2", got.Status, got.Version)
	}
}

func TestUnencodableTaskIsInvalid(t *testing.T) {
	t.Parallel()
	s := openStore(t, filepath.Join(t.TempDir(), "x.db"))
	ctx := t.Context()
	now := time.Now().UTC()
	bad := pendingTask("bad", now)
	bad.ExpiresAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) // JSON cannot hold it
	if _, _, err := s.Create(ctx, bad); !errors.Is(err, approvals.ErrInvalid) {
		t.Errorf("Create: err = %v, want ErrInvalid", err)
	}
	good := pendingTask("good", now)
	if _, _, err := s.Create(ctx, good); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, good.ID, func(task *approvals.Task) error {
		task.ExpiresAt = bad.ExpiresAt
		return nil
	}); !errors.Is(err, approvals.ErrInvalid) {
		t.Errorf("Update: err = %v, want ErrInvalid", err)
	}
	if got, err := s.Get(ctx, good.ID); err != nil || got.Version != 1 {
		t.Errorf("after the refused Update: %v, %v", got, err)
	}
	checkIndexes(t, s)
}

// TestCommitFailureIsolated checks the group commit's fallback: when one
// write of a batch fails, the others still land, each in a transaction of
// its own, and only the failing one reports the failure.
func TestCommitFailureIsolated(t *testing.T) {
	t.Parallel()
	s := openStore(t, filepath.Join(t.TempDir(), "x.db"))
	errWrite := errors.New("write failed")
	runs := make([]int, 3)
	mkop := func(i int, fail bool) *op {
		return &op{done: make(chan error, 1), run: func(tx *bbolt.Tx) error {
			runs[i]++
			if err := tx.Bucket([]byte(bucketTasks)).Put([]byte("k"+strconv.Itoa(i)), []byte("{}")); err != nil {
				return err
			}
			if fail {
				return errWrite
			}
			return nil
		}}
	}
	batch := []*op{mkop(0, false), mkop(1, true), mkop(2, false)}
	s.commit(batch)
	for i, o := range batch {
		err := <-o.done
		if want := i == 1; errors.Is(err, errWrite) != want || (!want && err != nil) {
			t.Errorf("op %d: err = %v", i, err)
		}
	}
	// The batch stops at the failing op; then each runs alone.
	if runs[0] != 2 || runs[1] != 2 || runs[2] != 1 {
		t.Errorf("runs = %v, want [2 2 1]", runs)
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bucketTasks))
		for i, want := range []bool{true, false, true} {
			if got := b.Get([]byte("k"+strconv.Itoa(i))) != nil; got != want {
				t.Errorf("key k%d written = %v, want %v", i, got, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCloseTwice(t *testing.T) {
	t.Parallel()
	s, err := Open(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// Tasks with growing ids and due times, as a tool's tasks come, written
// together (group commit puts a burst in few commits) fill the pages of the
// tasks and the due index: not half, as bbolt's default split leaves the
// pages written at the end of a bucket.
func TestGrowingKeysWrittenTogetherFillTheirPages(t *testing.T) {
	t.Parallel()
	s := openStore(t, filepath.Join(t.TempDir(), "x.db"))
	now := time.Now().UTC().Truncate(time.Millisecond)
	for batch := range 10 {
		if err := s.db.Update(func(tx *bbolt.Tx) error {
			for i := range 200 {
				n := 200*batch + i
				task := pendingTask(fmt.Sprintf("%06d", 100000+n), now.Add(time.Duration(n)*time.Millisecond))
				task.Description = strings.Repeat("d", 400) // about 800 bytes, as the bench's tasks
				task.Enqueue(approvals.JobPost, task.CreatedAt)
				if _, err := put(tx, index{}, task); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.View(func(tx *bbolt.Tx) error {
		for _, name := range []string{bucketTasks, bucketDue} {
			st := tx.Bucket([]byte(name)).Stats()
			used := float64(st.LeafInuse) / float64(st.LeafAlloc)
			t.Logf("%s: %d leaf pages, %.0f%% in use", name, st.LeafPageN, 100*used)
			if used < 0.75 {
				t.Errorf("%s: leaf pages %.0f%% in use, want at least 75%%", name, 100*used)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
