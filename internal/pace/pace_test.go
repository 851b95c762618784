package pace_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/pace"
)

// The Slack pacer's behaviour is tested in bot/pace_test.go against a fake
// Slack; these tests hold the package to its own contract with a chat of
// no particular kind: "POST /q/{queue}" is a post into a queue, "GET
// /lookup" a look-up made while a person waits.

func classify(req *http.Request) pace.Call {
	if q, ok := strings.CutPrefix(req.URL.Path, "/q/"); ok {
		return pace.Call{Method: "post", Queue: q}
	}
	return pace.Call{Method: strings.TrimPrefix(req.URL.Path, "/"), Click: req.URL.Path == "/lookup"}
}

// stubChat answers every call from answer (nil: 200) and keeps their order.
type stubChat struct {
	mu     sync.Mutex
	calls  []string
	answer func(n int) int
}

func (s *stubChat) RoundTrip(req *http.Request) (*http.Response, error) {
	s.mu.Lock()
	n := len(s.calls)
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
	}
	s.calls = append(s.calls, req.URL.Path+" "+string(body))
	s.mu.Unlock()
	status := http.StatusOK
	if s.answer != nil {
		status = s.answer(n)
	}
	h := http.Header{}
	if status == http.StatusTooManyRequests {
		h.Set("Retry-After", "1")
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
}

func (s *stubChat) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

func post(ctx context.Context, queue, text string) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://chat.test/q/"+queue, strings.NewReader(text))
	return req
}

// TestQueueKeepsIntakeOrder: of two posts into one queue, the one whose
// task was intaken first goes first although it arrives second.
func TestQueueKeepsIntakeOrder(t *testing.T) {
	t.Parallel()
	stub := &stubChat{}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p := pace.New(pace.Config{Classify: classify, Now: clock})
	rt := p.Transport(stub)
	base := clock()
	var wg sync.WaitGroup
	for i, id := range []string{"later", "earlier"} {
		at := base
		if id == "later" {
			at = base.Add(time.Millisecond)
		}
		ctx := pace.WithOrder(t.Context(), at, id)
		wg.Go(func() {
			if _, err := rt.RoundTrip(post(ctx, "conv1", id)); err != nil {
				t.Error(err)
			}
		})
		for deadline := time.Now().Add(time.Minute); p.Waiting("channel conv1") != i+1; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the post never queued")
			}
		}
	}
	mu.Lock()
	now = now.Add(time.Second) // past the settle, once both wait
	mu.Unlock()
	wg.Wait()
	if got := strings.Join(stub.got(), "; "); got != "/q/conv1 earlier; /q/conv1 later" {
		t.Errorf("the chat got %s", got)
	}
}

// TestChats429IsWaitedOutInPlace: the chat's 429 with Retry-After 1 is
// waited out and the call sent again with its body; the hook hears the
// method once.
func TestChats429IsWaitedOutInPlace(t *testing.T) {
	t.Parallel()
	stub := &stubChat{answer: func(n int) int {
		if n == 0 {
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	}}
	var heard []string
	p := pace.New(pace.Config{Classify: classify, MaxWait: 5 * time.Second, OnRateLimited: func(m string) { heard = append(heard, m) }})
	req := post(t.Context(), "conv1", "hello")
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("hello")), nil }
	resp, err := p.Transport(stub).RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("post: %v %v", resp, err)
	}
	if got := strings.Join(stub.got(), "; "); got != "/q/conv1 hello; /q/conv1 hello" {
		t.Errorf("the chat got %s, want the post twice", got)
	}
	if len(heard) != 1 || heard[0] != "post" {
		t.Errorf("OnRateLimited heard %v", heard)
	}
}

// TestClickCallsFailFastInTheChatsWords: a look-up whose turn is a second
// away is answered 429 at once with the configured body, without calling
// the chat; a task's post whose turn is far off is sent away for its turn.
func TestClickCallsFailFastInTheChatsWords(t *testing.T) {
	t.Parallel()
	stub := &stubChat{}
	p := pace.New(pace.Config{
		Classify:        classify,
		Methods:         map[string]pace.Limit{"lookup": {Every: time.Second, Burst: 1}},
		Channel:         pace.Limit{Every: time.Hour, Burst: 1},
		MaxWait:         time.Minute,
		RateLimitedBody: `{"error":{"code":"throttled"}}`,
	})
	rt := p.Transport(stub)
	lookup := func() *http.Response {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://chat.test/lookup", nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := lookup(); resp.StatusCode != http.StatusOK {
		t.Fatalf("first look-up: %d", resp.StatusCode)
	}
	resp := lookup()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests || string(body) != `{"error":{"code":"throttled"}}` || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("second look-up: %d %s Retry-After %q, want 429 at once in the chat's words", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	ctx := pace.WithOrder(t.Context(), time.Now(), "task1")
	if resp, _ := rt.RoundTrip(post(ctx, "c", "1")); resp.StatusCode != http.StatusOK {
		t.Fatalf("first post: %d", resp.StatusCode)
	}
	ctx = pace.WithOrder(t.Context(), time.Now(), "task2")
	if resp, _ := rt.RoundTrip(post(ctx, "c", "2")); resp.StatusCode != http.StatusTooManyRequests || !pace.SentAwayForTurn(ctx) {
		t.Errorf("post an hour from its turn: %d, sent away %v; want 429 and its place kept", resp.StatusCode, pace.SentAwayForTurn(ctx))
	}
	if got := len(stub.got()); got != 2 {
		t.Errorf("the chat got %d calls, want the first look-up and the first post", got)
	}
}
