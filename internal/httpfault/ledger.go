package httpfault

import (
	"fmt"
	"slices"
	"sync"
)

// Ledger is what a strict fake keeps of the requests it answered: how
// many arrived, those the real API would not have taken as sent, and
// whether the fake is down. A fake embeds it; it is safe for concurrent
// use.
type Ledger struct {
	mu       sync.Mutex
	requests int
	mistakes []string
	down     bool
}

// SetDown makes the fake answer as a service that is down (true) or work
// again.
func (l *Ledger) SetDown(down bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = down
}

// Down reports whether the fake is down.
func (l *Ledger) Down() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.down
}

// Requests is how many requests arrived.
func (l *Ledger) Requests() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.requests
}

// Mistakes are the requests that were not as the real API wants them.
func (l *Ledger) Mistakes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.mistakes)
}

// Arrived counts a request.
func (l *Ledger) Arrived() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests++
}

// Mistake records a request the real API would refuse, and returns what
// is wrong with it.
func (l *Ledger) Mistake(format string, args ...any) string {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mistakes = append(l.mistakes, msg)
	return msg
}
