package bolt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/approvalbot/approvalbot/approvals"
)

// writeStore makes a sound store file of n pending tasks at path, written
// in one transaction (fast), and closes it.
func writeStore(t testing.TB, path string, n int) {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	err = s.db.Update(func(tx *bbolt.Tx) error {
		for i := range n {
			task := pendingTask(strconv.Itoa(i), now)
			task.Description = "v2.3 is about to be deployed to PROD"
			task.Nonce, task.TokenHash = make([]byte, 32), make([]byte, 32)
			task.Enqueue(approvals.JobPost, now)
			task.Version = 1
			if _, err := put(tx, index{}, task); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// layout is where the tasks bucket lies in a closed store file.
type layout struct {
	pageSize int
	root     uint64 // the tasks bucket's root page, a branch page here
	leaf     uint64 // a leaf page below it, not the first
}

func readLayout(t *testing.T, path string) layout {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l := layout{pageSize: db.Info().PageSize}
	if err := db.View(func(tx *bbolt.Tx) error {
		l.root = uint64(tx.Bucket([]byte(bucketTasks)).RootPage())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Down the second element of each branch to a leaf (the page layout is
	// in check.go).
	for id := l.root; ; {
		p := data[int(id)*l.pageSize:]
		flags, count := order.Uint16(p[8:]), order.Uint16(p[10:])
		switch {
		case flags == leafPageFlag && id != l.root:
			l.leaf = id
			return l
		case flags != branchPageFlag || count < 2:
			t.Fatalf("page %d: flags %#x, %d elements; want a branch page with children (make more tasks)", id, flags, count)
		}
		id = order.Uint64(p[pageHeaderSize+elementSize+8:])
	}
}

// patch writes b at offset off of the file.
func patch(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func u64(v uint64) []byte { return order.AppendUint64(nil, v) }

// TestOpenDamagedFile damages a sound file in the ways files get damaged
// (cut short by a full disk or a partial copy, overwritten, not a store
// file at all): Open must return an error naming the file and what to do,
// and never panic or fault — before the damage check, bbolt faulted in
// a goroutine of its own on most of these and the process died.
func TestOpenDamagedFile(t *testing.T) {
	t.Parallel()
	sound := filepath.Join(t.TempDir(), "sound.db")
	writeStore(t, sound, 2000)
	info, err := os.Stat(sound)
	if err != nil {
		t.Fatal(err)
	}
	size := info.Size()

	tests := []struct {
		name   string
		damage func(t *testing.T, path string, l layout)
	}{
		{"cut to a third", func(t *testing.T, path string, _ layout) {
			if err := os.Truncate(path, size/3); err != nil {
				t.Fatal(err)
			}
		}},
		{"cut to nothing (zero bytes)", func(t *testing.T, path string, _ layout) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"cut to half", func(t *testing.T, path string, _ layout) {
			if err := os.Truncate(path, size/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"cut to a few bytes", func(t *testing.T, path string, _ layout) {
			if err := os.Truncate(path, 10); err != nil {
				t.Fatal(err)
			}
		}},
		{"cut inside the second meta page", func(t *testing.T, path string, l layout) {
			if err := os.Truncate(path, int64(l.pageSize)+100); err != nil {
				t.Fatal(err)
			}
		}},
		{"not a store file", func(t *testing.T, path string, _ layout) {
			if err := os.WriteFile(path, []byte(strings.Repeat("not a bolt file ", 1000)), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"meta pages overwritten", func(t *testing.T, path string, l layout) {
			patch(t, path, 0, make([]byte, 2*l.pageSize))
		}},
		{"tasks root page zeroed", func(t *testing.T, path string, l layout) {
			patch(t, path, int64(l.root)*int64(l.pageSize), make([]byte, l.pageSize))
		}},
		{"branch points past the end of the file", func(t *testing.T, path string, l layout) {
			patch(t, path, int64(l.root)*int64(l.pageSize)+pageHeaderSize+8, u64(uint64(size)/uint64(l.pageSize)+3))
		}},
		{"branch points far outside the file", func(t *testing.T, path string, l layout) {
			patch(t, path, int64(l.root)*int64(l.pageSize)+pageHeaderSize+8, u64(1<<40))
		}},
		{"keys out of order", func(t *testing.T, path string, l layout) {
			// The first key of the second leaf sorts before its
			// neighbours: found by bbolt's own walk, inside Open.
			leaf := int64(l.leaf) * int64(l.pageSize)
			f, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			pos := order.Uint32(f[leaf+pageHeaderSize+4:])
			patch(t, path, leaf+pageHeaderSize+int64(pos), []byte{0})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "x.db")
			data, err := os.ReadFile(sound)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, path, readLayout(t, path))
			// Twice: a failed Open must not leave the file locked.
			for range 2 {
				s, err := Open(path, WithLockTimeout(100*time.Millisecond))
				if err == nil {
					_ = s.Close()
					t.Fatal("Open of a damaged file succeeded")
				}
				t.Logf("Open: %v", err)
				msg := err.Error()
				for _, want := range []string{path, "is damaged", "restore it from a backup or move it aside"} {
					if !strings.Contains(msg, want) {
						t.Errorf("err = %q, want it to contain %q", msg, want)
					}
				}
				if de := (*damagedError)(nil); !errors.As(err, &de) {
					t.Errorf("err = %v, want a *damagedError", err)
				}
			}
		})
	}
}

// TestOpenSoundFiles guards against the worse failure, a sound file
// refused at start: files of every shape this code writes (inline buckets,
// values on overflow pages, free pages after updates and purges, a
// freelist written by bbolt's defaults) pass the check, which bbolt's own
// tx.Check confirms, and open with their tasks.
func TestOpenSoundFiles(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Millisecond)
	decided := now.Add(-40 * 24 * time.Hour)
	tests := []struct {
		name  string
		write func(t *testing.T, s *Store)
		want  []string // task ids that must be there after the reopen
	}{
		{"empty", func(*testing.T, *Store) {}, nil},
		{"one task, inline buckets", func(t *testing.T, s *Store) {
			task := pendingTask("1", now)
			task.Lease = approvals.Lease{Owner: "other", Until: now.Add(time.Hour)}
			if _, _, err := s.Create(t.Context(), task); err != nil {
				t.Fatal(err)
			}
			if err := s.Ping(t.Context()); err != nil {
				t.Fatal(err)
			}
		}, []string{approvals.TaskRecordID("flexdeploy", "1")}},
		{"values on overflow pages", func(t *testing.T, s *Store) {
			for i := range 20 {
				task := pendingTask("big-"+strconv.Itoa(i), now)
				task.Description = strings.Repeat("x", 3000*(i+1))
				if _, _, err := s.Create(t.Context(), task); err != nil {
					t.Fatal(err)
				}
			}
		}, []string{approvals.TaskRecordID("flexdeploy", "big-0"), approvals.TaskRecordID("flexdeploy", "big-19")}},
		{"after updates and a purge", func(t *testing.T, s *Store) {
			ctx := t.Context()
			for i := range 1000 {
				task := pendingTask(strconv.Itoa(i), now)
				task.Enqueue(approvals.JobPost, now)
				if i%2 == 0 {
					task.Status, task.DecidedAt = approvals.StatusApproved, &decided
					task.Outbox = nil
				}
				if _, _, err := s.Create(ctx, task); err != nil {
					t.Fatal(err)
				}
			}
			for i := 1; i < 1000; i += 6 {
				if _, err := s.Update(ctx, approvals.TaskRecordID("flexdeploy", strconv.Itoa(i)), func(task *approvals.Task) error {
					task.Outbox = nil
					task.Description = strings.Repeat("y", i)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := s.Purge(ctx, now.Add(-30*24*time.Hour)); err != nil || n != 500 {
				t.Fatalf("Purge = %d, %v", n, err)
			}
		}, []string{approvals.TaskRecordID("flexdeploy", "1"), approvals.TaskRecordID("flexdeploy", "999")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "x.db")
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			tc.write(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			checkWithBbolt(t, path)
			s = openStore(t, path)
			for _, id := range tc.want {
				if _, err := s.Get(t.Context(), id); err != nil {
					t.Errorf("Get(%s) after reopen: %v", id, err)
				}
			}
			checkIndexes(t, s)
		})
	}

	t.Run("freelist written by bbolt's defaults", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "x.db")
		db, err := bbolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		task := pendingTask("1", now)
		task.Version = 1
		if err := db.Update(func(tx *bbolt.Tx) error {
			for _, name := range buckets {
				if _, err := tx.CreateBucket([]byte(name)); err != nil {
					return err
				}
			}
			_, err := put(tx, index{}, task)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		checkWithBbolt(t, path)
		s := openStore(t, path)
		if _, err := s.Get(t.Context(), task.ID); err != nil {
			t.Errorf("Get after reopen: %v", err)
		}
	})
}

// checkWithBbolt runs bbolt's own full check on a closed file (safe on a
// sound one).
func checkWithBbolt(t *testing.T, path string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt's check: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := checkFile(path, time.Second); err != nil {
		t.Errorf("checkFile of a sound file: %v", err)
	}
}

// TestOpenSoundFileWithSlack: a file longer than its pages need (bbolt
// grows files ahead) and one cut back to exactly what its pages need are
// sound.
func TestOpenSoundFileWithSlack(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "x.db")
	writeStore(t, path, 2000)
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var need int64
	_ = db.View(func(tx *bbolt.Tx) error { need = tx.Size(); return nil })
	_ = db.Close()
	if err := os.Truncate(path, need); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, path)
	if _, err := s.Get(t.Context(), approvals.TaskRecordID("flexdeploy", "1999")); err != nil {
		t.Errorf("Get after Open: %v", err)
	}
}

// readOnlyFile hands bbolt a descriptor that refuses every write: the
// file turned read-only (a remount) or the disk fails every write. Reads
// go on working.
func readOnlyFile(o *options) {
	o.openFile = func(name string, _ int, perm os.FileMode) (*os.File, error) {
		return os.OpenFile(name, os.O_RDONLY, perm)
	}
}

// TestPingFailsWhileWritesFail: ready means writable. Before Ping wrote,
// it opened a read transaction, which a store that takes no writes still
// answers.
func TestPingFailsWhileWritesFail(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "x.db")
	s := openStore(t, path)
	task := pendingTask("1", time.Now().UTC())
	if _, _, err := s.Create(ctx, task); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping of a writable store: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(path, readOnlyFile)
	if err != nil {
		t.Fatalf("Open (nothing to write at start): %v", err)
	}
	defer s.Close()
	if _, err := s.Get(ctx, task.ID); err != nil {
		t.Fatalf("Get from a store that takes no writes: %v", err)
	}
	err = s.Ping(ctx)
	t.Logf("Ping: %v", err)
	if !errors.Is(err, approvals.ErrUnavailable) {
		t.Errorf("Ping while writes fail: err = %v, want ErrUnavailable", err)
	}
	if _, _, err := s.Create(ctx, pendingTask("2", time.Now().UTC())); !errors.Is(err, approvals.ErrUnavailable) {
		t.Errorf("Create while writes fail: err = %v, want ErrUnavailable", err)
	}
}

// TestPingFailsWhileWritesHang: a write that does not finish by the
// caller's deadline (a hung disk) is not ready either. The committer is
// held here by an Update whose fn waits.
func TestPingFailsWhileWritesHang(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t, filepath.Join(t.TempDir(), "x.db"))
	task := pendingTask("1", time.Now().UTC())
	if _, _, err := s.Create(ctx, task); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	updated := make(chan error, 1)
	go func() {
		_, err := s.Update(ctx, task.ID, func(*approvals.Task) error {
			close(entered)
			<-release
			return nil
		})
		updated <- err
	}()
	<-entered
	pingCtx, cancel := context.WithCancel(ctx)
	pinged := make(chan error, 1)
	go func() { pinged <- s.Ping(pingCtx) }()
	cancel()
	if err := <-pinged; !errors.Is(err, approvals.ErrUnavailable) {
		t.Errorf("Ping while the write hangs: err = %v, want ErrUnavailable", err)
	}
	close(release)
	if err := <-updated; err != nil {
		t.Errorf("the held Update: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping once writes go through: %v", err)
	}
}

// TestHealthRecordIsNoTask: what Ping writes is in a bucket of its own,
// which no task operation reads and Purge does not touch.
func TestHealthRecordIsNoTask(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t, filepath.Join(t.TempDir(), "x.db"))
	decided := time.Now().UTC().Add(-40 * 24 * time.Hour)
	old := pendingTask("old", decided)
	old.Status, old.DecidedAt = approvals.StatusApproved, &decided
	if _, _, err := s.Create(ctx, old); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{string(healthKey), bucketHealth} {
		if _, err := s.Get(ctx, id); !errors.Is(err, approvals.ErrNotFound) {
			t.Errorf("Get(%q): err = %v, want ErrNotFound", id, err)
		}
	}
	if page, err := s.Due(ctx, time.Now().Add(100*365*24*time.Hour), "", 10); err != nil || len(page.Tasks)+len(page.Corrupt) != 0 {
		t.Errorf("Due = %+v, %v; want nothing", page, err)
	}
	if n, err := s.Purge(ctx, time.Now()); err != nil || n != 1 {
		t.Errorf("Purge = %d, %v; want the old task only", n, err)
	}
	if err := s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket([]byte(bucketHealth)).Get(healthKey) == nil {
			t.Error("the health record is gone after Purge")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	checkIndexes(t, s)
}

// BenchmarkOpen measures Open (with its damage check) and Close of a file
// of 10,000 pending tasks, the design's "ready in < 200 ms" load.
func BenchmarkOpen(b *testing.B) {
	path := filepath.Join(b.TempDir(), "x.db")
	writeStore(b, path, 10_000)
	for b.Loop() {
		s, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzOpenDamaged patches bytes into a sound file: Open must return an
// error or a store, never panic or fault, and a store it returns must
// serve every read (damaged records come back as approvals.ErrCorrupt).
func FuzzOpenDamaged(f *testing.F) {
	sound := filepath.Join(f.TempDir(), "sound.db")
	writeStore(f, sound, 300)
	data, err := os.ReadFile(sound)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint32(0), []byte{0xff})
	f.Add(uint32(4096+40), []byte{0, 0, 0, 0, 1})
	f.Add(uint32(2*4096+16), []byte{0xff, 0xff, 0xff, 0xff})
	f.Add(uint32(5*4096+10), []byte{0x7f, 0})
	f.Add(uint32(len(data)/2), []byte("garbage garbage garbage"))
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		damagedData := append([]byte(nil), data...)
		copy(damagedData[int(off)%len(damagedData):], patch)
		path := filepath.Join(t.TempDir(), "x.db")
		if err := os.WriteFile(path, damagedData, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path)
		if err != nil {
			return
		}
		defer s.Close()
		ctx := t.Context()
		page, err := s.Due(ctx, time.Now().Add(24*time.Hour), "", 1000)
		if err != nil {
			return
		}
		for _, task := range page.Tasks {
			_, _ = s.Get(ctx, task.ID)
		}
		_, _ = s.Purge(ctx, time.Now())
	})
}
