package bolt

import (
	"context"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

var _ approvals.LoopLeases = (*Store)(nil)

// TryLoop always succeeds: the file lock makes this process the only one
// using the store, so it runs every loop.
func (s *Store) TryLoop(ctx context.Context, _, _ string, _, _ time.Time) (bool, error) {
	return ctx.Err() == nil, ctx.Err()
}

// ReleaseLoop has nothing to give back.
func (s *Store) ReleaseLoop(context.Context, string, string) error { return nil }
