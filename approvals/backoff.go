package approvals

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the one backoff of approvalbot: the wait before try
// attempt+1 (attempt counts from 1) of something that failed. The ceiling
// starts at first and doubles per try up to most; the wait is drawn with
// full jitter over it, but never below a tenth of it, so that processes
// retrying together spread out without hammering. The outbox, the stores'
// conflict retries and the adapters' read retries all use it.
func Backoff(attempt int, first, most time.Duration) time.Duration {
	if first <= 0 || most <= 0 {
		return 0
	}
	ceiling := min(first, most)
	for i := 1; i < attempt && ceiling < most; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, most)
	return ceiling/10 + rand.N(ceiling-ceiling/10+1)
}

// Sleep waits d, or returns ctx.Err() as soon as ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
