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
	due, err := s.Due(ctx, now.Add(365*24*time.Hour), "", 10)
	if err != nil || len(due.Tasks) != 2 {
		t.Fatalf("due after purge: %d tasks, %v", len(due.Tasks), err)
	}
	if n, err := s.Purge(ctx, now.Add(-30*24*time.Hour)); err != nil || n != 0 {
		t.Fatalf("second purge: %d, %v", n, err)
	}
}

// purgeReport is one call of RunPurge's report.
type purgeReport struct {
	deleted int
	err     error
}

// TestRunPurge: the loop purges on its schedule, reports each purge, and
// returns nil when ctx ends.
func TestRunPurge(t *testing.T) {
	t.Parallel()
	s := openStore(t, filepath.Join(t.TempDir(), "x.db"))
	now := time.Now().UTC().Truncate(time.Millisecond)
	decided := now.Add(-40 * 24 * time.Hour)
	old := pendingTask("old", decided)
	old.Status, old.DecidedAt = approvals.StatusApproved, &decided
	recent := pendingTask("recent", now)
	recent.Status, recent.DecidedAt = approvals.StatusApproved, &now
	for _, task := range []*approvals.Task{old, recent} {
		if _, _, err := s.Create(t.Context(), task); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	reports := make(chan purgeReport, 100)
	stopped := make(chan error, 1)
	go func() {
		stopped <- s.RunPurge(ctx, 30*24*time.Hour, func(deleted int, err error) {
			reports <- purgeReport{deleted, err}
		}, WithPurgeSchedule(time.Millisecond, time.Millisecond))
	}()
	if r := <-reports; r.deleted != 1 || r.err != nil {
		t.Errorf("first purge reported %d, %v; want the old task", r.deleted, r.err)
	}
	if r := <-reports; r.deleted != 0 || r.err != nil {
		t.Errorf("second purge reported %d, %v; want nothing left to purge", r.deleted, r.err)
	}
	cancel()
	if err := <-stopped; err != nil {
		t.Errorf("RunPurge after ctx ended: %v, want nil", err)
	}
	if _, err := s.Get(t.Context(), old.ID); !errors.Is(err, approvals.ErrNotFound) {
		t.Errorf("old task after RunPurge: %v, want purged", err)
	}
	if _, err := s.Get(t.Context(), recent.ID); err != nil {
		t.Errorf("recent task after RunPurge: %v", err)
	}
}

// TestRunPurgeReportsFailures: a purge that fails is reported and tried
// again at the next interval; the loop goes on until ctx ends.
func TestRunPurgeReportsFailures(t *testing.T) {
	t.Parallel()
	s, err := Open(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	reports := make(chan purgeReport, 100)
	stopped := make(chan error, 1)
	go func() {
		stopped <- s.RunPurge(ctx, time.Hour, func(deleted int, err error) {
			reports <- purgeReport{deleted, err}
		}, WithPurgeSchedule(time.Millisecond, time.Millisecond))
	}()
	for i := range 2 {
		if r := <-reports; !errors.Is(r.err, approvals.ErrUnavailable) {
			t.Errorf("purge %d of a closed store reported %d, %v; want ErrUnavailable", i+1, r.deleted, r.err)
		}
	}
	cancel()
	if err := <-stopped; err != nil {
		t.Errorf("RunPurge after ctx ended: %v, want nil", err)
	}
}

// TestRunPurgeKeepsForever: a retention of zero keeps every task; the loop
// only waits for ctx.
func TestRunPurgeKeepsForever(t *testing.T) {
	t.Parallel()
	s := openStore(t, filepath.Join(t.TempDir(), "x.db"))
	decided := time.Now().UTC().Add(-400 * 24 * time.Hour)
	old := pendingTask("old", decided)
	old.Status, old.DecidedAt = approvals.StatusApproved, &decided
	if _, _, err := s.Create(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	reported := false
	if err := s.RunPurge(ctx, 0, func(int, error) { reported = true }, WithPurgeSchedule(time.Nanosecond, time.Nanosecond)); err != nil {
		t.Errorf("RunPurge: %v, want nil", err)
	}
	if reported {
		t.Error("RunPurge with retention 0 purged")
	}
	if _, err := s.Get(t.Context(), old.ID); err != nil {
		t.Errorf("old task with retention 0: %v, want kept", err)
	}
}
