// Package httpfault holds what the loopback stand-ins of the deployment
// tools (internal/flexdeploytest, internal/azuredevopstest) and their
// clients' tests share about a server that misbehaves: requests refused
// for a while, answers that come late or never, a slow server, scripted
// answers; and, on the client's side, the helpers that watch for them.
//
// A fake keeps its own strict checks and state; it holds a Faults, asks it
// what becomes of each answer, and lets it hold or drop that answer.
package httpfault

import (
	"io"
	"net/http"
	"sync"
	"time"
)

// Fault is what becomes of the answer to a request the server took.
type Fault int

const (
	// Answered: the answer is sent as usual.
	Answered Fault = iota
	// Late: the answer is held until the client gives up or the server
	// closes, as a server slower than the client's timeout does (Hold).
	Late
	// Dropped: the connection is closed without an answer, as a crashing
	// server or proxy does (Drop).
	Dropped
)

// Faults counts the faults a server has yet to show and holds back the
// answers it delays. The zero value shows none; its methods are safe for
// concurrent use. Close it with the server, so that held answers go.
type Faults struct {
	mu                       sync.Mutex
	failFirst, late, dropped int
	delay                    time.Duration
	closing                  chan struct{}
	closeOnce                sync.Once
}

// SetFailFirst makes the next n requests that ask Refuse refused. n < 0:
// every one from now on; 0: none.
func (f *Faults) SetFailFirst(n int) { f.set(&f.failFirst, n) }

// SetLate makes the next n answers that ask Take late. n < 0: every one
// from now on; 0: none.
func (f *Faults) SetLate(n int) { f.set(&f.late, n) }

// SetDropped makes the next n answers that ask Take dropped. n < 0: every
// one from now on; 0: none.
func (f *Faults) SetDropped(n int) { f.set(&f.dropped, n) }

// SetDelay makes Delay wait d.
func (f *Faults) SetDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = d
}

func (f *Faults) set(count *int, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	*count = n
}

// Refuse uses up one of the SetFailFirst count: it reports whether this
// request is to be refused.
func (f *Faults) Refuse() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return take(&f.failFirst)
}

// Take uses up the fault of the answer to a request the server took: a
// late answer first, then a dropped one, else Answered.
func (f *Faults) Take() Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case take(&f.late):
		return Late
	case take(&f.dropped):
		return Dropped
	}
	return Answered
}

// take uses up one of a fault's count; a negative count never runs out.
func take(n *int) bool {
	switch {
	case *n < 0:
		return true
	case *n > 0:
		*n--
		return true
	}
	return false
}

// Delay waits the SetDelay delay before anything is done and reports
// whether the client is still there to be answered: false when it gave
// up, or the server closed, first.
func (f *Faults) Delay(r *http.Request) bool {
	f.mu.Lock()
	d := f.delay
	f.mu.Unlock()
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-r.Context().Done():
	case <-f.closed():
	}
	return false
}

// Lose loses the answer as fault says (Hold for Late, Drop for Dropped),
// and then does not return; for Answered it returns at once.
func (f *Faults) Lose(w http.ResponseWriter, r *http.Request, fault Fault) {
	switch fault {
	case Late:
		f.Hold(r)
	case Dropped:
		f.Drop(w)
	}
}

// Hold holds the answer until the client gives up or the server closes,
// and then ends the handler without an answer, not even an empty one: it
// does not return.
func (f *Faults) Hold(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-f.closed():
	}
	Abort()
}

// Drop closes the connection without an answer and ends the handler: it
// does not return.
func (f *Faults) Drop(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
	}
	Abort()
}

// Abort ends the handler without an answer, not even an empty one: it
// does not return.
func Abort() { panic(http.ErrAbortHandler) }

// Close lets every held answer go (and any Delay end), at once and from
// now on. Call it before closing the server, which waits for its handlers.
func (f *Faults) Close() {
	closing := f.closed()
	f.closeOnce.Do(func() { close(closing) })
}

func (f *Faults) closed() chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing == nil {
		f.closing = make(chan struct{})
	}
	return f.closing
}

// Answer is a scripted answer to a request.
type Answer struct {
	Status int // 0: 200
	Header map[string]string
	Body   string
}

// Write sends the answer and returns its status.
func (a *Answer) Write(w http.ResponseWriter) int {
	code := a.Status
	if code == 0 {
		code = http.StatusOK
	}
	for k, v := range a.Header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, a.Body)
	return code
}

// Script answers the requests it is asked about with answers in turn, the
// last one repeating; a nil answer leaves the request to the server. It is
// safe for concurrent use; C is the fake's record of a request, unused.
func Script[C any](answers ...*Answer) func(C) *Answer {
	var (
		mu sync.Mutex
		n  int
	)
	return func(C) *Answer {
		mu.Lock()
		defer mu.Unlock()
		if len(answers) == 0 {
			return nil
		}
		n++
		return answers[min(n, len(answers))-1]
	}
}
