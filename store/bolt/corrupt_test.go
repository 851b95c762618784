package bolt

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/store/storetest"
)

// TestCorruptRecord damages two records in the file, one of them holding a
// lease, among sound tasks: the store still opens (clearing the sound
// task's lease), walks Due past them naming them, refuses to read or write
// them, and purges around them.
func TestCorruptRecord(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "x.db")
	now := time.Now().UTC().Truncate(time.Millisecond)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}

	overdue := pendingTask("overdue", now)
	overdue.ExpiresAt = now.Add(-time.Minute)
	leased := pendingTask("leased", now) // its lease goes at the next open
	leased.Enqueue(approvals.JobPost, now.Add(-10*time.Second))
	leased.Lease = approvals.Lease{Owner: "dead-process", Until: now.Add(100 * 365 * 24 * time.Hour)}
	soon := pendingTask("soon", now)
	soon.ExpiresAt = now.Add(30 * time.Second)
	decided := now.Add(-40 * 24 * time.Hour)
	old := pendingTask("old", decided)
	old.Status, old.DecidedAt = approvals.StatusApproved, &decided
	for _, task := range []*approvals.Task{overdue, leased, soon, old} {
		if _, _, err := s.Create(ctx, task); err != nil {
			t.Fatal(err)
		}
	}

	garbage := approvals.TaskRecordID("flexdeploy", "garbage")
	wrongType := approvals.TaskRecordID("flexdeploy", "wrong-type")
	damage := []struct {
		id     string
		data   string
		due    time.Time
		leased bool
	}{
		{garbage, "\x00\xffnot json at all", now.Add(-30 * time.Second), true},
		{wrongType, `{"id":"flexdeploy-wrong-type","status":5}`, now, false},
	}
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		for _, d := range damage {
			if err := tx.Bucket([]byte(bucketTasks)).Put([]byte(d.id), []byte(d.data)); err != nil {
				return err
			}
			key, _ := dueKey(&approvals.Task{ID: d.id, Status: approvals.StatusPending, ExpiresAt: d.due})
			if err := tx.Bucket([]byte(bucketDue)).Put(key, []byte{}); err != nil {
				return err
			}
			if d.leased {
				if err := tx.Bucket([]byte(bucketLeased)).Put([]byte(d.id), []byte{}); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path)
	if err != nil {
		t.Fatalf("Open with damaged records: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if got, err := s.Get(ctx, leased.ID); err != nil || got.Lease != (approvals.Lease{}) {
		t.Errorf("after Open: the sound leased task = %+v, %v; want its lease cleared", got, err)
	}

	storetest.CheckCorrupt(t, s, now.Add(time.Minute), []string{garbage, wrongType},
		[]string{overdue.ID, leased.ID, soon.ID})

	n, err := s.Purge(ctx, now.Add(-30*24*time.Hour))
	if err != nil || n != 1 {
		t.Errorf("Purge beside damaged records = %d, %v; want the old task purged", n, err)
	}
	for _, d := range damage {
		if _, err := s.Get(ctx, d.id); !errors.Is(err, approvals.ErrCorrupt) {
			t.Errorf("after Purge: Get(%s) = %v, want the damaged record kept", d.id, err)
		}
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
