package rest

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

// script is an attempt func that fails as listed, then succeeds with "ok".
func script(failures ...*Failure) (attempt func() ([]byte, *Failure), calls func() int) {
	n := 0
	return func() ([]byte, *Failure) {
			n++
			if n <= len(failures) {
				return nil, failures[n-1]
			}
			return []byte("ok"), nil
		}, func() int {
			return n
		}
}

var (
	errBusy = errors.New("answered 503")
	errBad  = errors.New("answered 400")
)

func TestDo(t *testing.T) {
	t.Parallel()
	busy := &Failure{Err: errBusy, Retryable: true}
	bad := &Failure{Err: errBad}
	slowDown := &Failure{Err: errBusy, Retryable: true, RetryAfter: 30 * time.Second, HasAfter: true}
	soon := &Failure{Err: errBusy, Retryable: true, RetryAfter: 2 * time.Millisecond, HasAfter: true}
	tests := []struct {
		name       string
		retries    int
		failures   []*Failure
		wantCalls  int
		wantWaits  []time.Duration // nil: only their number is checked
		nWaits     int
		wantErr    string // "" for a success
		permanent  bool
		retryAfter time.Duration // 0: no RetryAfterError
	}{
		{name: "first try", retries: 3, wantCalls: 1},
		{name: "mends on the third try", retries: 3, failures: []*Failure{busy, busy}, wantCalls: 3, nWaits: 2},
		{name: "final at once", retries: 3, failures: []*Failure{bad}, wantCalls: 1,
			wantErr: "tool: approve task 1: answered 400", permanent: true},
		{name: "final after a retry", retries: 3, failures: []*Failure{busy, bad}, wantCalls: 2, nWaits: 1,
			wantErr: "tool: approve task 1: answered 400", permanent: true},
		{name: "tries spent", retries: 2, failures: []*Failure{busy, busy, busy, busy}, wantCalls: 3, nWaits: 2,
			wantErr: "tool: approve task 1: answered 503 (after 3 attempts)"},
		{name: "no retries", retries: 0, failures: []*Failure{busy}, wantCalls: 1,
			wantErr: "tool: approve task 1: answered 503 (after 1 attempts)"},
		{name: "the server's wait, capped at MaxBackoff", retries: 2, failures: []*Failure{slowDown, slowDown, slowDown},
			wantCalls: 3, wantWaits: []time.Duration{8 * time.Millisecond, 8 * time.Millisecond},
			wantErr: "tool: approve task 1: answered 503 (after 3 attempts)", retryAfter: 30 * time.Second},
		{name: "the server's wait within MaxBackoff", retries: 2, failures: []*Failure{soon},
			wantCalls: 2, wantWaits: []time.Duration{2 * time.Millisecond}},
		{name: "a later answer without a wait", retries: 1, failures: []*Failure{slowDown, busy}, wantCalls: 2, nWaits: 1,
			wantErr: "tool: approve task 1: answered 503 (after 2 attempts)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Do waits in its caller's goroutine, so a plain slice records it.
			var waits []time.Duration
			r := Retrier{Retries: tc.retries, MinBackoff: time.Millisecond, MaxBackoff: 8 * time.Millisecond,
				Sleep: func(ctx context.Context, d time.Duration) error {
					waits = append(waits, d)
					return ctx.Err()
				}}
			attempt, calls := script(tc.failures...)

			answer, err := r.Do(context.Background(), "tool: approve task 1", attempt)
			if tc.wantErr == "" {
				if err != nil || string(answer) != "ok" {
					t.Fatalf("Do = %q, %v; want ok", answer, err)
				}
			} else {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v\nwant    %s", err, tc.wantErr)
				}
				if answer != nil {
					t.Errorf("answer %q with an error", answer)
				}
				if approvals.IsPermanent(err) != tc.permanent {
					t.Errorf("IsPermanent = %v, want %v", !tc.permanent, tc.permanent)
				}
				if !errors.Is(err, errBusy) && !errors.Is(err, errBad) {
					t.Errorf("error %v does not wrap the failure's", err)
				}
				after, ok := approvals.RetryAfter(err)
				if ok != (tc.retryAfter != 0) || after != tc.retryAfter {
					t.Errorf("RetryAfter = %v, %v; want %v", after, ok, tc.retryAfter)
				}
			}
			if n := calls(); n != tc.wantCalls {
				t.Errorf("%d attempts, want %d", n, tc.wantCalls)
			}
			if tc.wantWaits != nil {
				if len(waits) != len(tc.wantWaits) {
					t.Fatalf("waits = %v, want %v", waits, tc.wantWaits)
				}
				for i := range waits {
					if waits[i] != tc.wantWaits[i] {
						t.Errorf("waits = %v, want %v", waits, tc.wantWaits)
					}
				}
			} else if len(waits) != tc.nWaits {
				t.Errorf("waits = %v, want %d", waits, tc.nWaits)
			}
			for i, w := range waits {
				if w < 0 || w > 8*time.Millisecond {
					t.Errorf("wait %d = %v, want within [0, MaxBackoff]", i, w)
				}
			}
		})
	}
}

func TestDoStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	r := Retrier{Retries: 5, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
		Sleep: func(ctx context.Context, _ time.Duration) error {
			cancel() // the process shuts down during the first wait
			return ctx.Err()
		}}
	attempt, calls := script(&Failure{Err: errBusy, Retryable: true, RetryAfter: time.Minute, HasAfter: true})

	_, err := r.Do(ctx, "tool: op", attempt)
	if err == nil || err.Error() != "tool: op: answered 503 (stopped retrying: context canceled)" {
		t.Fatalf("error = %v", err)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errBusy) || approvals.IsPermanent(err) {
		t.Errorf("error %v must be retryable and wrap both context.Canceled and the failure", err)
	}
	if _, ok := approvals.RetryAfter(err); ok {
		t.Errorf("error %v carries a Retry-After though no try was spent", err)
	}
	if n := calls(); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

// TestDoWithoutSleep runs the real timer once, with a small wait.
func TestDoWithoutSleep(t *testing.T) {
	t.Parallel()
	r := Retrier{Retries: 1, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
	attempt, calls := script(&Failure{Err: errBusy, Retryable: true})
	if answer, err := r.Do(context.Background(), "tool: op", attempt); err != nil || string(answer) != "ok" {
		t.Fatalf("Do = %q, %v", answer, err)
	}
	if n := calls(); n != 2 {
		t.Errorf("%d attempts, want 2", n)
	}
}

func TestRetryCount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ configured, want int }{{0, 4}, {-1, 0}, {-100, 0}, {1, 1}, {7, 7}} {
		if got := RetryCount(tc.configured, 4); got != tc.want {
			t.Errorf("RetryCount(%d, 4) = %d, want %d", tc.configured, got, tc.want)
		}
	}
}

// TestDoWaitsTheOneBackoff checks that the waits between tries are
// approvals.Backoff's: a ceiling doubling from MinBackoff up to MaxBackoff,
// never below a tenth of it.
func TestDoWaitsTheOneBackoff(t *testing.T) {
	t.Parallel()
	const tries = 8
	var waits []time.Duration
	r := Retrier{Retries: tries - 1, MinBackoff: 10 * time.Millisecond, MaxBackoff: 80 * time.Millisecond,
		Sleep: func(ctx context.Context, d time.Duration) error {
			waits = append(waits, d)
			return nil
		}}
	busy := &Failure{Err: errBusy, Retryable: true}
	failures := make([]*Failure, tries)
	for i := range failures {
		failures[i] = busy
	}
	attempt, _ := script(failures...)
	if _, err := r.Do(context.Background(), "tool: get task 1", attempt); err == nil {
		t.Fatal("Do succeeded")
	}
	if len(waits) != tries-1 {
		t.Fatalf("waits = %v, want %d", waits, tries-1)
	}
	for i, w := range waits {
		ceiling := min(10*time.Millisecond<<i, 80*time.Millisecond)
		if w < ceiling/10 || w > ceiling {
			t.Errorf("wait %d = %v, want within [%v, %v]", i, w, ceiling/10, ceiling)
		}
	}
}

func TestOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		failure    *Failure
		wantErr    string
		permanent  bool
		retryAfter time.Duration
		hasAfter   bool
	}{
		{name: "success"},
		{name: "may mend", failure: &Failure{Err: errBusy, Retryable: true},
			wantErr: "tool: approve task 1: answered 503"},
		{name: "final", failure: &Failure{Err: errBad},
			wantErr: "tool: approve task 1: answered 400", permanent: true},
		{name: "the server names a wait", failure: &Failure{Err: errBusy, Retryable: true, RetryAfter: 30 * time.Second, HasAfter: true},
			wantErr: "tool: approve task 1: answered 503", retryAfter: 30 * time.Second, hasAfter: true},
		{name: "a wait gone by", failure: &Failure{Err: errBusy, Retryable: true, HasAfter: true},
			wantErr: "tool: approve task 1: answered 503", hasAfter: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var failures []*Failure
			if tc.failure != nil {
				failures = append(failures, tc.failure, tc.failure)
			}
			attempt, calls := script(failures...)
			answer, err := Once("tool: approve task 1", attempt)
			if n := calls(); n != 1 {
				t.Errorf("%d tries, want exactly 1", n)
			}
			if tc.wantErr == "" {
				if err != nil || string(answer) != "ok" {
					t.Fatalf("Once = %q, %v; want ok", answer, err)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr || answer != nil {
				t.Fatalf("Once = %q, %v\nwant error %s", answer, err, tc.wantErr)
			}
			if !errors.Is(err, tc.failure.Err) {
				t.Errorf("error %v does not wrap the failure's", err)
			}
			if approvals.IsPermanent(err) != tc.permanent {
				t.Errorf("IsPermanent = %v, want %v", !tc.permanent, tc.permanent)
			}
			if after, ok := approvals.RetryAfter(err); ok != tc.hasAfter || after != tc.retryAfter {
				t.Errorf("RetryAfter = %v, %v; want %v, %v", after, ok, tc.retryAfter, tc.hasAfter)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 14, 0, 0, 0, time.UTC)
	tests := []struct {
		value  string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"5", 5 * time.Second, true},
		{" 7 ", 7 * time.Second, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"1.5", 0, false},
		{"99999999", time.Hour, true},
		{"99999999999", time.Hour, true},
		{"99999999999999999999", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{now.Add(3 * time.Hour).Format(http.TimeFormat), time.Hour, true},
		{now.Add(10 * time.Second).Format(time.RFC850), 10 * time.Second, true},
	}
	for _, tc := range tests {
		got, ok := ParseRetryAfter(tc.value, now)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.value, got, ok, tc.want, tc.wantOK)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 22, 14, 0, 0, 0, time.UTC)
	for _, seed := range []string{
		"", "0", "120", " 7 ", "-1", "1e3", "99999999999999999999", "soon",
		now.Add(time.Minute).Format(http.TimeFormat), "Sun, 06 Nov 1994 08:49:37 GMT",
		"Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := ParseRetryAfter(v, now)
		if d < 0 || d > MaxRetryAfter || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v", v, d, ok)
		}
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs >= 0 && secs <= 3600 &&
			(!ok || d != time.Duration(secs)*time.Second) {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v; want %ds", v, d, ok, secs)
		}
	})
}

func TestStatusFailure(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 14, 0, 0, 0, time.UTC)
	tests := []struct {
		status     int
		retryAfter string
		want       Failure
		asksClock  bool
	}{
		{status: 429, retryAfter: "30", want: Failure{Retryable: true, RetryAfter: 30 * time.Second, HasAfter: true}, asksClock: true},
		{status: 429, want: Failure{Retryable: true}, asksClock: true},
		{status: 503, retryAfter: now.Add(time.Minute).Format(http.TimeFormat), want: Failure{Retryable: true, RetryAfter: time.Minute, HasAfter: true}, asksClock: true},
		{status: 500, retryAfter: "30", want: Failure{Retryable: true}},
		{status: 502, want: Failure{Retryable: true}},
		{status: 408, want: Failure{Retryable: true}},
		{status: 599, want: Failure{Retryable: true}},
		{status: 400, retryAfter: "30", want: Failure{}},
		{status: 401, want: Failure{}},
		{status: 404, want: Failure{}},
		{status: 409, want: Failure{}},
		{status: 302, want: Failure{}},
		{status: 203, want: Failure{}},
	}
	for _, tc := range tests {
		asked := false
		clock := func() time.Time { asked = true; return now }
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{}}
		if tc.retryAfter != "" {
			resp.Header.Set("Retry-After", tc.retryAfter)
		}
		got := StatusFailure(errBusy, resp, clock)
		if got.Err != errBusy {
			t.Errorf("%d: Err = %v, want the error given", tc.status, got.Err)
		}
		got.Err = nil
		if *got != tc.want {
			t.Errorf("%d %q: failure = %+v, want %+v", tc.status, tc.retryAfter, *got, tc.want)
		}
		if asked != tc.asksClock {
			t.Errorf("%d: clock asked = %v, want %v", tc.status, asked, tc.asksClock)
		}
	}
}
