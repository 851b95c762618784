package approvals

import (
	"context"
	"time"
)

// YieldSteps runs one worker's yield, with waits that take no time, and
// returns how many steps it waited.
func YieldSteps(sc *Scheduler) int {
	sc.wait = func(context.Context, time.Duration) error { return nil }
	return sc.yield(context.Background())
}

// YieldBound is how many steps a yield waits at most.
const YieldBound = int(yieldMax / yieldStep)
