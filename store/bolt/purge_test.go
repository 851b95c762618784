package bolt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

func TestPurge(t *testing.T) {
	t.Parallel()
	s, err := Open(filepath.Join(t.TempDir(), "purge.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	old, recent := now.Add(-40*24*time.Hour), now.Add(-24*time.Hour)
	mk := func(id string, status approvals.Status, decided time.Time, outbox bool) {
		task := &approvals.Task{ID: id, Source: "flexdeploy", TaskID: id, Status: status, CreatedAt: decided.Add(-time.Hour), ExpiresAt: decided.Add(time.Hour)}
		if status != approvals.StatusPending && status != approvals.StatusExpired {
			task.DecidedAt = &decided
		}
		if status == approvals.StatusExpired {
			task.ExpiresAt = decided
		}
		if outbox {
			task.Enqueue(approvals.JobUpdate, decided)
		}
		if _, _, err := s.Create(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	mk("old-approved", approvals.StatusApproved, old, false)
	mk("old-expired", approvals.StatusExpired, old, false)
	mk("old-with-work", approvals.StatusRejected, old, true)
	mk("recent-approved", approvals.StatusApproved, recent, false)
	mk("old-pending", approvals.StatusPending, old, false)
	for i := range 1200 { // more than one batch
		mk(fmt.Sprintf("bulk-%04d", i), approvals.StatusRejected, old, false)
	}

	n, err := s.Purge(ctx, now.Add(-30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1202 {
		t.Fatalf("purged %d, want 1202", n)
	}
	for id, kept := range map[string]bool{
		"old-approved": false, "old-expired": false, "bulk-0000": false, "bulk-1199": false,
		"old-with-work": true, "recent-approved": true, "old-pending": true,
	} {
		_, err := s.Get(ctx, id)
		if kept && err != nil {
			t.Errorf("%s was purged: %v", id, err)
		}
		if !kept && !errors.Is(err, approvals.ErrNotFound) {
			t.Errorf("%s was kept: %v", id, err)
		}
	}
	// The pending one is still due (its expiry), and work still found.
	due, err := s.Due(ctx, now.Add(365*24*time.Hour), 10)
	if err != nil || len(due) != 2 {
		t.Fatalf("due after purge: %d tasks, %v", len(due), err)
	}
	if n, err := s.Purge(ctx, now.Add(-30*24*time.Hour)); err != nil || n != 0 {
		t.Fatalf("second purge: %d, %v", n, err)
	}
}
