// Package rest is what the deployment-tool adapters share in talking to a
// REST API: one Exchange that sends every request (an HTTP client whose
// every phase has a timeout, common headers, bounded answers, one
// StatusError whose text quotes an answer without its secrets), one try for
// a write and retries with backoff for a read (both honouring Retry-After),
// and a strict reader of the JSON objects their intakes take in. Errors name the operation and the tool; the adapters keep their
// own wording, so this package never names one.
package rest

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

// MaxRetryAfter bounds a Retry-After handed up to the outbox.
const MaxRetryAfter = time.Hour

// Failure is one failed try: the error, whether another try may mend it, and
// the wait the server asked for, if any.
type Failure struct {
	Err        error
	Retryable  bool
	RetryAfter time.Duration
	HasAfter   bool
}

// StatusFailure is the failure of an answer other than a usable 2xx, err
// being what the adapter makes of it. 429 and 503 may mend after the wait the
// server names in Retry-After (now is its clock, asked only then); 408 and
// the other 5xx may mend after a backoff; anything else is final.
func StatusFailure(err error, resp *http.Response, now func() time.Time) *Failure {
	f := &Failure{Err: err}
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		f.Retryable = true
		f.RetryAfter, f.HasAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), now())
	case code == http.StatusRequestTimeout || code >= 500:
		f.Retryable = true
	}
	return f
}

// Once makes the one try of a write (a decision, a log line) and returns
// the answer of its success. A write is never tried again here: whether a
// try that got no answer went through is only known by reading the tool's
// status, and the outbox, which owns the retries, does that before its next
// attempt. The error begins with op and wraps the failure's:
//   - a final failure is an approvals.PermanentError;
//   - one that may mend is a plain error, or an approvals.RetryAfterError
//     when the answer named a wait, so that the outbox waits that long.
func Once(op string, attempt func() ([]byte, *Failure)) ([]byte, error) {
	answer, f := attempt()
	if f == nil {
		return answer, nil
	}
	err := fmt.Errorf("%s: %w", op, f.Err)
	switch {
	case !f.Retryable:
		return nil, approvals.Permanent(err)
	case f.HasAfter:
		return nil, &approvals.RetryAfterError{Err: err, After: f.RetryAfter}
	}
	return nil, err
}

// Retrier tries a read again while its failures may mend. It is for reads
// only (a GET, which changes nothing however often it is made): a write goes
// through Once, because a write tried again here after a timeout could
// decide a task twice.
type Retrier struct {
	// Retries is how many tries may follow the first (0: none).
	Retries int
	// MinBackoff and MaxBackoff bound the wait between tries, drawn by
	// approvals.Backoff (doubling from MinBackoff up to MaxBackoff, with
	// jitter); a Retry-After is waited too, but never longer than
	// MaxBackoff: a longer wait is the outbox's to make.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// Sleep waits between tries; it must return early with ctx.Err() when
	// ctx ends. Nil: approvals.Sleep.
	Sleep func(ctx context.Context, d time.Duration) error
}

// RetryCount is the Retries of a Retrier as the adapters' configs document
// theirs: 0 takes def, and a negative number means no retries.
func RetryCount(configured, def int) int {
	switch {
	case configured == 0:
		return def
	case configured < 0:
		return 0
	}
	return configured
}

// Do calls attempt until it succeeds, fails for good or has failed Retries+1
// times, and returns the answer of the success. Its errors begin with op
// (e.g. "flexdeploy: get task 8900") and wrap the last failure's:
//   - a final failure comes back at once as an approvals.PermanentError;
//   - when ctx ends during a wait, the error says so and wraps ctx.Err();
//   - when the tries are spent, it says how many there were, and is an
//     approvals.RetryAfterError if the last answer named a wait, so that the
//     outbox waits that long before its own next try.
func (r Retrier) Do(ctx context.Context, op string, attempt func() ([]byte, *Failure)) ([]byte, error) {
	sleep := r.Sleep
	if sleep == nil {
		sleep = approvals.Sleep
	}
	var last Failure
	attempts := 0
	for {
		attempts++
		answer, f := attempt()
		if f == nil {
			return answer, nil
		}
		if !f.Retryable {
			return nil, approvals.Permanent(fmt.Errorf("%s: %w", op, f.Err))
		}
		last = *f
		if attempts > r.Retries {
			break
		}
		wait := approvals.Backoff(attempts, r.MinBackoff, r.MaxBackoff)
		if f.HasAfter {
			// The server's word, within the bound of one wait here.
			wait = min(f.RetryAfter, r.MaxBackoff)
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("%s: %w (stopped retrying: %w)", op, last.Err, err)
		}
	}
	err := fmt.Errorf("%s: %w (after %d attempts)", op, last.Err, attempts)
	if last.HasAfter {
		return nil, &approvals.RetryAfterError{Err: err, After: last.RetryAfter}
	}
	return nil, err
}

// ParseRetryAfter reads a Retry-After header: delay seconds or an HTTP date,
// at most MaxRetryAfter; a date gone by is no wait.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		d = time.Duration(min(secs, int64(MaxRetryAfter/time.Second))) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = at.Sub(now)
	} else {
		return 0, false
	}
	return min(max(d, 0), MaxRetryAfter), true
}
