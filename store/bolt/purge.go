package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/approvalbot/approvalbot/approvals"
)

// purgeBatch bounds one purge transaction, so that intake and clicks never
// wait long behind a clean-up.
const purgeBatch = 500

// The purge schedule's defaults: the first purge waits until start-up is
// over, then one runs every few hours (a task's retention is counted in
// days, so a purge a few hours late costs nothing).
const (
	DefaultPurgeFirst    = time.Minute
	DefaultPurgeInterval = 6 * time.Hour
)

type purgeSchedule struct {
	first, interval time.Duration
}

// PurgeOption tunes RunPurge.
type PurgeOption func(*purgeSchedule)

// WithPurgeSchedule sets how long after RunPurge starts the first purge
// runs and how long each later one waits for the one before (defaults
// DefaultPurgeFirst and DefaultPurgeInterval; a value of zero or less
// keeps the default).
func WithPurgeSchedule(first, interval time.Duration) PurgeOption {
	return func(p *purgeSchedule) {
		if first > 0 {
			p.first = first
		}
		if interval > 0 {
			p.interval = interval
		}
	}
}

// RunPurge purges, on the schedule, the tasks decided or expired more than
// retention ago (see Purge) until ctx ends, and then returns nil. A
// retention of zero or less keeps tasks forever: RunPurge then only waits
// for ctx. After each purge, report (if not nil) is told how many tasks
// went and the error that stopped it, if any; a failed purge is tried
// again at the next interval. A purge that ctx's end cuts short is not
// reported.
func (s *Store) RunPurge(ctx context.Context, retention time.Duration, report func(deleted int, err error), opts ...PurgeOption) error {
	sched := purgeSchedule{first: DefaultPurgeFirst, interval: DefaultPurgeInterval}
	for _, opt := range opts {
		opt(&sched)
	}
	if retention <= 0 {
		<-ctx.Done()
		return nil
	}
	timer := time.NewTimer(sched.first)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		n, err := s.Purge(ctx, time.Now().Add(-retention))
		if ctx.Err() != nil {
			return nil
		}
		if report != nil {
			report(n, err)
		}
		timer.Reset(sched.interval)
	}
}

// Purge deletes the tasks that are final, have no outbox work left and
// were decided (or expired) before before: the embedded store's counterpart
// of DynamoDB's TTL. Pending tasks and tasks with work left are never
// deleted. It returns how many were deleted.
func (s *Store) Purge(ctx context.Context, before time.Time) (int, error) {
	deleted := 0
	var after []byte // the last key looked at
	for {
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		var ids [][]byte
		done := false
		if err := s.db.View(func(tx *bbolt.Tx) error {
			c := tx.Bucket([]byte(bucketTasks)).Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if k != nil && string(k) == string(after) {
					k, v = c.Next()
				}
			}
			for n := 0; k != nil && n < purgeBatch*4 && len(ids) < purgeBatch; k, v = c.Next() {
				n++
				after = append(after[:0], k...)
				if expendable(v, before) {
					ids = append(ids, append([]byte(nil), k...))
				}
			}
			done = k == nil
			return nil
		}); err != nil {
			return deleted, storeError("purge", err)
		}
		if len(ids) > 0 {
			n, err := s.deleteIfExpendable(ctx, ids, before)
			deleted += n
			if err != nil {
				return deleted, storeError("purge", err)
			}
		}
		if done {
			return deleted, nil
		}
	}
}

// deleteIfExpendable deletes the tasks that are still expendable when the
// write runs (a task may have changed since it was read).
func (s *Store) deleteIfExpendable(ctx context.Context, ids [][]byte, before time.Time) (int, error) {
	n := 0
	err := s.write(ctx, func(tx *bbolt.Tx) error {
		n = 0
		tasks := tx.Bucket([]byte(bucketTasks))
		for _, id := range ids {
			v := tasks.Get(id)
			if v == nil || !expendable(v, before) {
				continue
			}
			// An expendable task is in no index (it is due never and
			// holds no lease), so the record is all there is.
			if err := tasks.Delete(id); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if errors.Is(err, errClosed) {
		err = approvals.ErrUnavailable
	}
	return n, err
}

// expendable reports whether the encoded task may go: final, no outbox
// work, no lease, decided (or expired) before before.
func expendable(data []byte, before time.Time) bool {
	var t approvals.Task
	if json.Unmarshal(data, &t) != nil {
		return false // never delete what cannot be read: someone should look at it
	}
	if !t.Status.Final() || len(t.Outbox) > 0 || t.Lease.Owner != "" {
		return false
	}
	at := t.ExpiresAt
	if t.DecidedAt != nil {
		at = *t.DecidedAt
	}
	return at.Before(before)
}
