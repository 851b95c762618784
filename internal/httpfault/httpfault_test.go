package httpfault

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCounts(t *testing.T) {
	t.Parallel()
	var f Faults
	if f.Refuse() || f.Take() != Answered {
		t.Fatal("the zero Faults shows a fault")
	}
	f.SetLate(1)
	f.SetDropped(2)
	f.SetFailFirst(1)
	var got []Fault
	for range 4 {
		got = append(got, f.Take())
	}
	if want := []Fault{Late, Dropped, Dropped, Answered}; !slices.Equal(got, want) {
		t.Errorf("Take = %v, want %v", got, want)
	}
	if !f.Refuse() || f.Refuse() {
		t.Error("SetFailFirst(1) does not refuse exactly one")
	}
	f.SetDropped(-1)
	for range 3 {
		if f.Take() != Dropped {
			t.Fatal("a negative count ran out")
		}
	}
	f.SetDropped(0)
	if f.Take() != Answered {
		t.Error("SetDropped(0) still drops")
	}
}

// TestCountsAreSharedSafely: concurrent requests use up exactly the count.
func TestCountsAreSharedSafely(t *testing.T) {
	t.Parallel()
	var f Faults
	f.SetDropped(50)
	f.SetFailFirst(30)
	var dropped, refused atomic.Int32
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if f.Refuse() {
				refused.Add(1)
			}
			if f.Take() == Dropped {
				dropped.Add(1)
			}
		})
	}
	wg.Wait()
	if dropped.Load() != 50 || refused.Load() != 30 {
		t.Errorf("%d dropped, %d refused; want 50, 30", dropped.Load(), refused.Load())
	}
}

// server answers "ok" through the faults, as a fake does: refused, then
// delayed, then taken and its answer lost or sent. taken counts what got
// that far.
func server(t *testing.T) (*httptest.Server, *Faults, *atomic.Int32) {
	t.Helper()
	f := &Faults{}
	var taken atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.Refuse() {
			(&Answer{Status: 500, Body: "refused"}).Write(w)
			return
		}
		if !f.Delay(r) {
			Abort()
		}
		taken.Add(1)
		f.Lose(w, r, f.Take())
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(func() { f.Close(); s.Close() })
	return s, f, &taken
}

func TestServerFaults(t *testing.T) {
	t.Parallel()
	s, f, taken := server(t)
	f.SetFailFirst(1)
	if code, body, err := Send(nil, "GET", s.URL, "", "", ""); code != 500 || body != "refused" || err != nil {
		t.Errorf("refused = %d %q %v", code, body, err)
	}

	f.SetLate(1)
	_, _, err := Send(&http.Client{Timeout: 50 * time.Millisecond}, "GET", s.URL, "", "", "")
	if !IsTimeout(err) {
		t.Errorf("late: error = %v, want a timeout", err)
	}

	f.SetDropped(1)
	if _, _, err := Send(nil, "GET", s.URL, "", "", ""); !errors.Is(err, io.EOF) || IsTimeout(err) {
		t.Errorf("dropped: error = %v, want EOF", err)
	}
	if n := taken.Load(); n != 2 {
		t.Errorf("%d requests taken, want the late and the dropped one", n)
	}
	if code, body, err := Send(nil, "GET", s.URL, "", "", ""); code != 200 || body != "ok" || err != nil {
		t.Errorf("after the faults = %d %q %v", code, body, err)
	}
}

// TestDelayTakesNothingFromAClientThatLeft: a request whose client gave up
// during the delay gets no further.
func TestDelayTakesNothingFromAClientThatLeft(t *testing.T) {
	t.Parallel()
	s, f, taken := server(t)
	f.SetDelay(time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL, nil)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("a delayed answer came")
	}
	time.Sleep(20 * time.Millisecond) // the handler sees the client go
	if n := taken.Load(); n != 0 {
		t.Errorf("%d requests taken, want none", n)
	}
	f.SetDelay(time.Millisecond)
	if code, _, err := Send(nil, "GET", s.URL, "", "", ""); code != 200 || err != nil {
		t.Errorf("a short delay = %d %v", code, err)
	}
}

func TestCloseReleasesHeldAnswers(t *testing.T) {
	t.Parallel()
	s, f, taken := server(t)
	f.SetLate(-1)
	send := func() error { _, _, err := Send(&http.Client{}, "GET", s.URL, "", "", ""); return err }
	if err := CloseReleases(send, func() bool { return taken.Load() > 0 }, func() { f.Close(); s.Close() }); err != nil {
		t.Fatal(err)
	}
	// Closed: a delay ends at once.
	f.SetDelay(time.Hour)
	r := httptest.NewRequest("GET", "/", nil)
	if f.Delay(r) {
		t.Error("Delay waited after Close")
	}
}

func TestScript(t *testing.T) {
	t.Parallel()
	next := Script[string](&Answer{Status: 503}, nil, &Answer{Status: 429})
	var got []int
	for range 5 {
		status := -1
		if a := next(""); a != nil {
			status = a.Status
		}
		got = append(got, status)
	}
	if want := []int{503, -1, 429, 429, 429}; !slices.Equal(got, want) {
		t.Errorf("scripted statuses %v, want %v", got, want)
	}
	if Script[int]()(0) != nil {
		t.Error("an empty script answers")
	}

	w := httptest.NewRecorder()
	if code := (&Answer{Header: map[string]string{"Retry-After": "3"}, Body: "x"}).Write(w); code != 200 ||
		w.Code != 200 || w.Header().Get("Retry-After") != "3" || w.Body.String() != "x" {
		t.Errorf("Write = %d, recorded %d %v %q", code, w.Code, w.Header(), w.Body)
	}
}

func TestClientHelpers(t *testing.T) {
	t.Parallel()
	url, err := RefusingURL()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Send(nil, "GET", url, "", "", ""); err == nil || IsTimeout(err) {
		t.Errorf("a refusing URL: error = %v, want a refused connection", err)
	}

	var s Sleeps
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Sleep(ctx, time.Second); err != nil {
		t.Error(err)
	}
	cancel()
	if err := s.Sleep(ctx, time.Millisecond); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep after the context ended = %v", err)
	}
	if w := s.Waits(); len(w) != 2 || w[0] != time.Second || w[1] != time.Millisecond {
		t.Errorf("Waits = %v", w)
	}
}
