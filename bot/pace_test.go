package bot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/slacktest"
	"github.com/slack-go/slack"
)

// fastPace is Slack's shape at fifty times the speed: a channel takes a
// post per 20 ms with a burst of 3; the fake Slack allows a burst of 4 at
// the same rate, as Slack allows "short bursts". Retry-After stays whole
// seconds, as Slack's.
func fastPace(cfg PaceConfig) PaceConfig {
	cfg.Channel = Limit{Every: 20 * time.Millisecond, Burst: 3}
	if cfg.Methods == nil {
		cfg.Methods = map[string]Limit{}
	}
	return cfg
}

var fastSlack = slacktest.RateLimits{PostPerChannel: slacktest.Limit{Every: 20 * time.Millisecond, Burst: 4}}

// pendingTask is a task to post, created at (intake order).
func pendingTask(id, channel string, at time.Time) *approvals.Task {
	return &approvals.Task{
		ID: id, Source: "flexdeploy", TaskID: id, Status: approvals.StatusPending,
		Context:   approvals.Context{Description: "deploy " + id, Environment: "PROD"},
		Messages:  []approvals.MessageRef{approvals.MessageRef{Channel: channel}},
		CreatedAt: at, ExpiresAt: at.Add(time.Hour),
	}
}

// postAll posts the tasks as the outbox's workers do: workers take them in
// intake order; a post answered with a Retry-After is taken again after
// it, from the back of the queue. It returns how many posts were answered
// with a Retry-After (by Slack or by the Pacer).
func postAll(t *testing.T, n *Notifier, tasks []*approvals.Task, workers int) (deferred int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	queue := make(chan *approvals.Task, len(tasks))
	for _, task := range tasks {
		queue <- task
	}
	var (
		left  sync.WaitGroup
		count atomic.Int64
	)
	left.Add(len(tasks))
	for range workers {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case task := <-queue:
					jobCtx, cancelJob := context.WithTimeout(ctx, 10*time.Second)
					_, err := n.Post(jobCtx, task, slackChannel(task), "token-"+task.ID)
					cancelJob()
					if after, ok := approvals.RetryAfter(err); ok {
						count.Add(1)
						time.AfterFunc(after, func() { queue <- task })
						continue
					}
					if err != nil {
						t.Errorf("post %s: %v", task.ID, err)
					}
					left.Done()
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { left.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("the posts did not all go through")
	}
	return int(count.Load())
}

// accepted is the fake's accepted top-level posts, by channel, in the
// order it took them, as the ids of their tasks (named in the messages).
func accepted(f *slacktest.Server, ids ...string) map[string][]string {
	out := map[string][]string{}
	for _, c := range f.CallsTo("chat.postMessage") {
		if c.Refused != "" {
			continue
		}
		ch := c.Form.Get("channel")
		for _, id := range ids {
			if strings.Contains(c.Text(), id) {
				out[ch] = append(out[ch], id)
			}
		}
	}
	return out
}

func taskIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("task-%s%03d", prefix, i)
	}
	return ids
}

// TestPacerPostsABurstIntoOneChannelInOrder: 100 tasks into one channel
// through eight workers are all posted, in intake order, with few 429s from
// the rate-limiting fake.
func TestPacerPostsABurstIntoOneChannelInOrder(t *testing.T) {
	t.Parallel()
	f := newFakeSlack(t)
	f.LimitRates(fastSlack)
	var limited atomic.Int64
	// At fifty times the speed a Retry-After of a whole second would be
	// fifty turns: every worker may wait here instead.
	pacer := NewPacer(fastPace(PaceConfig{MaxWaiting: 8, OnRateLimited: func(string) { limited.Add(1) }}))
	n := notifierFor(f, func(c *Config) { c.Pacer = pacer })
	ids := taskIDs("a", 100)
	base := time.Now()
	var tasks []*approvals.Task
	for i, id := range ids {
		tasks = append(tasks, pendingTask(id, "CBURST", base.Add(time.Duration(i)*time.Millisecond)))
	}
	began := time.Now()
	deferred := postAll(t, n, tasks, 8)
	t.Logf("100 posts in %s (floor at this pace: %s); %d sent back to the outbox to come back later",
		time.Since(began).Round(time.Millisecond), 97*20*time.Millisecond, deferred)

	got := accepted(f, ids...)["CBURST"]
	if strings.Join(got, " ") != strings.Join(ids, " ") {
		t.Errorf("posted in the order\n%v\nwant\n%v", got, ids)
	}
	if n := f.RateLimited()["chat.postMessage"]; n > 5 {
		t.Errorf("Slack answered 429 %d times, want at most 5", n)
	}
	if int(limited.Load()) != f.RateLimited()["chat.postMessage"] {
		t.Errorf("OnRateLimited heard of %d 429s, the fake answered %d", limited.Load(), f.RateLimited()["chat.postMessage"])
	}
}

// TestPacer429OnOneChannelDoesNotDelayAnother: Slack answers a post into
// one channel 429 with a Retry-After of a second; that channel waits, in
// order, while the other channel's posts, queued after it, all go through
// before the first channel's next post.
func TestPacer429OnOneChannelDoesNotDelayAnother(t *testing.T) {
	t.Parallel()
	f := newFakeSlack(t)
	// Slack answers the first post into CSLOW 429; the answer hook keeps
	// the order in which the fake took the others.
	var (
		once  sync.Once
		takes []string // channel and task of each post taken, in order
		tmu   sync.Mutex
	)
	f.SetAnswer(func(c slacktest.Call) *slacktest.Answer {
		if c.Method != "chat.postMessage" {
			return nil
		}
		var a *slacktest.Answer
		if c.Form.Get("channel") == "CSLOW" {
			once.Do(func() {
				a = &slacktest.Answer{Status: http.StatusTooManyRequests, Header: map[string]string{"Retry-After": "1"}, Body: `{"ok":false,"error":"ratelimited"}`}
			})
		}
		if a == nil {
			tmu.Lock()
			for _, id := range append(taskIDs("s", 10), taskIDs("o", 10)...) {
				if strings.Contains(c.Text(), id) {
					takes = append(takes, c.Form.Get("channel")+" "+id)
				}
			}
			tmu.Unlock()
		}
		return a
	})
	var limited []string
	var mu sync.Mutex
	// Four may wait for a channel: at fifty times the speed, a Retry-After
	// of a whole second would be fifty turns. Eight workers: CSLOW holds at
	// most five of them (one sent, four waiting), the others post COTHER.
	pacer := NewPacer(fastPace(PaceConfig{MaxWaiting: 4, OnRateLimited: func(m string) { mu.Lock(); limited = append(limited, m); mu.Unlock() }}))
	n := notifierFor(f, func(c *Config) { c.Pacer = pacer })
	slow, other := taskIDs("s", 10), taskIDs("o", 10)
	base := time.Now()
	var tasks []*approvals.Task
	for i, id := range slow {
		tasks = append(tasks, pendingTask(id, "CSLOW", base.Add(time.Duration(i)*time.Millisecond)))
	}
	for i, id := range other {
		tasks = append(tasks, pendingTask(id, "COTHER", base.Add(time.Duration(100+i)*time.Millisecond)))
	}
	began := time.Now()
	postAll(t, n, tasks, 8)
	t.Logf("20 posts in %s", time.Since(began).Round(time.Millisecond))

	tmu.Lock()
	defer tmu.Unlock()
	byChannel := map[string][]string{}
	firstSlow, lastOther := -1, -1
	for i, take := range takes {
		ch, id, _ := strings.Cut(take, " ")
		byChannel[ch] = append(byChannel[ch], id)
		if ch == "CSLOW" && firstSlow < 0 {
			firstSlow = i
		}
		if ch == "COTHER" {
			lastOther = i
		}
	}
	if strings.Join(byChannel["CSLOW"], " ") != strings.Join(slow, " ") {
		t.Errorf("CSLOW posted in the order %v, want %v", byChannel["CSLOW"], slow)
	}
	if strings.Join(byChannel["COTHER"], " ") != strings.Join(other, " ") {
		t.Errorf("COTHER posted in the order %v, want %v", byChannel["COTHER"], other)
	}
	// Every COTHER post is taken before CSLOW's first (which waited out
	// its Retry-After), although all of CSLOW's were queued first.
	if firstSlow < lastOther {
		t.Errorf("posts taken, in order: %v; a CSLOW post went before COTHER's were through", takes)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(limited) != 1 || limited[0] != "chat.postMessage" {
		t.Errorf("OnRateLimited heard %v, want one chat.postMessage", limited)
	}
}

// stubSlack is a transport that answers every call from answer and keeps
// the order of the calls it got.
type stubSlack struct {
	mu     sync.Mutex
	calls  []string // "method channel"
	answer func(n int, req *http.Request) *http.Response
}

func (s *stubSlack) RoundTrip(req *http.Request) (*http.Response, error) {
	s.mu.Lock()
	n := len(s.calls)
	s.calls = append(s.calls, req.URL.Path[1:]+" "+channelOf(req)+" "+textOf(req))
	s.mu.Unlock()
	if s.answer != nil {
		if resp := s.answer(n, req); resp != nil {
			return resp, nil
		}
	}
	return okResponse(req), nil
}

func (s *stubSlack) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

func okResponse(req *http.Request) *http.Response {
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(rec, `{"ok":true}`)
	resp := rec.Result()
	resp.Request = req
	return resp
}

// textOf is the text field of a form request.
func textOf(req *http.Request) string {
	if req.GetBody == nil {
		return ""
	}
	rc, err := req.GetBody()
	if err != nil {
		return ""
	}
	raw, _ := io.ReadAll(rc)
	form, _ := url.ParseQuery(string(raw))
	return form.Get("text")
}

func postRequest(ctx context.Context, channel string) *http.Request {
	return postText(ctx, channel, "hi")
}

func postText(ctx context.Context, channel, text string) *http.Request {
	body := url.Values{"channel": {channel}, "text": {text}}.Encode()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://slack.test/chat.postMessage", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	return req
}

// TestPacerReleasesWaitersWhenTheirContextEnds: a post waiting for its
// channel's turn returns at once when its context is cancelled, and the
// next post is not held by it.
func TestPacerReleasesWaitersWhenTheirContextEnds(t *testing.T) {
	t.Parallel()
	stub := &stubSlack{}
	p := NewPacer(PaceConfig{Channel: Limit{Every: time.Hour, Burst: 1}, Methods: map[string]Limit{}, MaxWait: 2 * time.Hour})
	rt := p.Transport(stub)
	resp, err := rt.RoundTrip(postRequest(t.Context(), "C1"))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("first post: %v %v", resp, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := rt.RoundTrip(postRequest(ctx, "C1"))
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the cancelled post returned %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a cancelled post still waits for its turn")
	}
	// Another channel is not paced by C1's hour.
	if resp, err := rt.RoundTrip(postRequest(t.Context(), "C2")); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("post into another channel: %v %v", resp, err)
	}
	if got := stub.got(); len(got) != 2 {
		t.Errorf("Slack got %v, want the first post into C1 and the one into C2", got)
	}
}

// TestPacerAnswersLikeSlackWhenTheTurnIsFarOff: a post whose turn is past
// MaxWait is answered 429 with a Retry-After at once, without calling
// Slack; the Notifier turns it into the outbox's RetryAfterError.
func TestPacerAnswersLikeSlackWhenTheTurnIsFarOff(t *testing.T) {
	t.Parallel()
	f := newFakeSlack(t)
	pacer := NewPacer(PaceConfig{Channel: Limit{Every: 2 * time.Minute, Burst: 1}, Methods: map[string]Limit{}, MaxWait: 100 * time.Millisecond})
	n := notifierFor(f, func(c *Config) { c.Pacer = pacer })
	now := time.Now()
	if _, err := n.Post(t.Context(), pendingTask("task-f1", "CFAR", now), slackChannel(pendingTask("task-f1", "CFAR", now)), "tok"); err != nil {
		t.Fatal(err)
	}
	_, err := n.Post(t.Context(), pendingTask("task-f2", "CFAR", now.Add(time.Millisecond)), slackChannel(pendingTask("task-f2", "CFAR", now.Add(time.Millisecond))), "tok")
	// Its turn, however far (within the horizon), and told as a turn: the
	// outbox counts no failure and keeps the task's lease through it.
	after, ok := approvals.TurnWait(err)
	if !ok || after < 119*time.Second || after > 120*time.Second {
		t.Fatalf("second post: %v (turn in %s, %v), want a turn wait of 2m", err, after, ok)
	}
	if got := len(f.CallsTo("chat.postMessage")); got != 1 {
		t.Errorf("Slack got %d posts, want only the first", got)
	}
}

// TestPacerKeepsTheSentAwayTaskItsPlace: a task sent away to come back
// keeps its place in the channel: a later task arriving meanwhile is not
// posted before it, and it is posted first once it is back.
func TestPacerKeepsTheSentAwayTaskItsPlace(t *testing.T) {
	t.Parallel()
	stub := &stubSlack{}
	p := NewPacer(PaceConfig{Channel: Limit{Every: 300 * time.Millisecond, Burst: 1}, Methods: map[string]Limit{}, MaxWait: 50 * time.Millisecond})
	rt := p.Transport(stub)
	base := time.Now()
	post := func(ctx context.Context, id string, at time.Time) *http.Response {
		ctx = withPaceOrder(ctx, &approvals.Task{ID: id, CreatedAt: at})
		resp, err := rt.RoundTrip(postText(ctx, "C1", id))
		if err != nil {
			t.Error(err)
			return okResponse(nil)
		}
		return resp
	}
	if r := post(t.Context(), "one", base); r.StatusCode != http.StatusOK {
		t.Fatalf("first post: %d", r.StatusCode)
	}
	r := post(t.Context(), "two", base.Add(time.Second))
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "1" {
		t.Fatalf("second post: %d, Retry-After %q; want sent away for a second", r.StatusCode, r.Header.Get("Retry-After"))
	}
	// A later task arrives while "two" is away: it waits behind its place.
	later := make(chan int, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		// It may be sent away too; it then comes back until it is posted.
		for {
			r := post(ctx, "three", base.Add(2*time.Second))
			if r.StatusCode == http.StatusOK {
				later <- r.StatusCode
				return
			}
			time.Sleep(time.Duration(max(1, atoiOr(r.Header.Get("Retry-After"), 1))) * time.Second)
		}
	}()
	time.Sleep(time.Second)
	for {
		r := post(t.Context(), "two", base.Add(time.Second))
		if r.StatusCode == http.StatusOK {
			break
		}
		time.Sleep(time.Second)
	}
	<-later
	got := strings.Join(stub.got(), "; ")
	if want := "chat.postMessage C1 one; chat.postMessage C1 two; chat.postMessage C1 three"; got != want {
		t.Errorf("Slack got %s, want %s", got, want)
	}
}

func atoiOr(s string, def int) int {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil {
		return def
	}
	return n
}

// TestPacerWaitsOutSlacks429InPlace: Slack answers 429 with Retry-After 1;
// the call waits it out and is sent again (Slack carried nothing out), and
// the hook hears of the 429 once.
func TestPacerWaitsOutSlacks429InPlace(t *testing.T) {
	t.Parallel()
	stub := &stubSlack{answer: func(n int, req *http.Request) *http.Response {
		if n > 0 {
			return nil
		}
		resp := okResponse(req)
		resp.StatusCode, resp.Status = http.StatusTooManyRequests, "429 Too Many Requests"
		resp.Header.Set("Retry-After", "1")
		return resp
	}}
	var heard []string
	p := NewPacer(PaceConfig{Methods: map[string]Limit{}, MaxWait: 5 * time.Second, OnRateLimited: func(m string) { heard = append(heard, m) }})
	resp, err := p.Transport(stub).RoundTrip(postRequest(t.Context(), "C1"))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("post: %v %v", resp, err)
	}
	if got := stub.got(); len(got) != 2 {
		t.Errorf("Slack got %v, want the post twice", got)
	}
	if len(heard) != 1 || heard[0] != "chat.postMessage" {
		t.Errorf("OnRateLimited heard %v", heard)
	}
}

// TestSlacks429BeyondTheWaitIsATurnForATask: Slack's own 429 with a
// Retry-After longer than the call may wait keeps a task's place, so the
// post is told to come back at its turn; a call for no task (a look-up)
// gets a plain Retry-After, a failure like any other.
func TestSlacks429BeyondTheWaitIsATurnForATask(t *testing.T) {
	t.Parallel()
	f := newFakeSlack(t)
	f.LimitRates(slacktest.RateLimits{PostPerChannel: slacktest.Limit{Every: time.Hour, Burst: 1}})
	pacer := NewPacer(PaceConfig{Methods: map[string]Limit{}, MaxWait: 100 * time.Millisecond})
	n := notifierFor(f, func(c *Config) { c.Pacer = pacer })
	now := time.Now()
	if _, err := n.Post(t.Context(), pendingTask("task-s1", "CSLACK", now), slackChannel(pendingTask("task-s1", "CSLACK", now)), "tok"); err != nil {
		t.Fatal(err)
	}
	// The Pacer's own limit (a burst of 3) lets the next go; Slack's does not.
	_, err := n.Post(t.Context(), pendingTask("task-s2", "CSLACK", now.Add(time.Millisecond)), slackChannel(pendingTask("task-s2", "CSLACK", now.Add(time.Millisecond))), "tok")
	if after, ok := approvals.TurnWait(err); !ok || after <= 0 {
		t.Fatalf("post refused by Slack: %v (turn %s, %v); want a turn wait", err, after, ok)
	}
	if f.RateLimited()["chat.postMessage"] != 1 {
		t.Errorf("Slack answered 429 %d times, want 1", f.RateLimited()["chat.postMessage"])
	}

	ctx := t.Context()
	stub := &stubSlack{answer: func(_ int, req *http.Request) *http.Response {
		resp := okResponse(req)
		resp.StatusCode, resp.Status = http.StatusTooManyRequests, "429 Too Many Requests"
		resp.Header.Set("Retry-After", "30")
		return resp
	}}
	client := &http.Client{Transport: NewPacer(PaceConfig{Methods: map[string]Limit{}, MaxWait: 100 * time.Millisecond}).Transport(stub)}
	api := slack.New("xoxb-test", slack.OptionHTTPClient(client), slack.OptionAPIURL("http://slack.test/"))
	_, lookupErr := api.GetUserInfoContext(ctx, "UALICE")
	err = (&Notifier{}).mapError(ctx, "look up UALICE", lookupErr)
	if _, ok := approvals.TurnWait(err); ok {
		t.Errorf("look-up refused by Slack: %v is a turn wait, want a plain Retry-After", err)
	}
	if after, ok := approvals.RetryAfter(err); !ok || after != 30*time.Second {
		t.Errorf("look-up refused by Slack: %v (after %s, %v), want Retry-After 30s", err, after, ok)
	}
}

// TestPacerPacesMethods: chat.update under a Tier-like limit of the fake:
// every update goes through and the fake answers no 429.
func TestPacerPacesMethods(t *testing.T) {
	t.Parallel()
	f := newFakeSlack(t)
	f.LimitRates(slacktest.RateLimits{Methods: map[string]slacktest.Limit{"chat.update": {Every: 20 * time.Millisecond, Burst: 4}}})
	pacer := NewPacer(PaceConfig{Methods: map[string]Limit{"chat.update": {Every: 25 * time.Millisecond, Burst: 2}}})
	n := notifierFor(f, func(c *Config) { c.Pacer = pacer })
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			task := pendingTask(fmt.Sprintf("task-u%02d", i), "CUP", time.Now())
			task.Messages[0].TS = "1700000000.000001"
			for {
				err := n.Update(t.Context(), task, slackRefs(task), "tok")
				if after, ok := approvals.RetryAfter(err); ok {
					time.Sleep(after)
					continue
				}
				if err != nil {
					t.Errorf("update: %v", err)
				}
				return
			}
		})
	}
	wg.Wait()
	limited := f.RateLimited()["chat.update"]
	t.Logf("Slack answered %d updates 429", limited)
	if limited > 2 {
		t.Errorf("Slack answered %d updates 429, want at most 2", limited)
	}
	if got := len(f.CallsTo("chat.update")) - limited; got != 20 {
		t.Errorf("%d updates went through, want 20", got)
	}
}

// TestPacerBoundsTheCallsWaitingForAChannel: with one call being sent and
// MaxWaiting waiting, the next posts into that channel are sent away at
// once (their workers are free for other channels).
func TestPacerBoundsTheCallsWaitingForAChannel(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	stub := &stubSlack{answer: func(n int, req *http.Request) *http.Response {
		if n == 0 {
			<-release // the first post is slow to be answered
		}
		return nil
	}}
	p := NewPacer(PaceConfig{Channel: Limit{Every: time.Millisecond, Burst: 10}, Methods: map[string]Limit{}, MaxWait: time.Minute, MaxWaiting: 1})
	rt := p.Transport(stub)
	base := time.Now()
	results := make(chan int, 4)
	post := func(i int) {
		ctx := withPaceOrder(t.Context(), &approvals.Task{ID: fmt.Sprintf("b%d", i), CreatedAt: base.Add(time.Duration(i) * time.Second)})
		resp, err := rt.RoundTrip(postText(ctx, "C1", fmt.Sprintf("b%d", i)))
		if err != nil {
			t.Error(err)
			results <- 0
			return
		}
		results <- resp.StatusCode
	}
	go post(0)
	paceWaitUntil(t, func() bool { return len(stub.got()) == 1 }) // b0 is being sent
	go post(1)
	paceWaitUntil(t, func() bool { return p.Waiting("channel C1") == 1 })
	go post(2)
	go post(3)
	away := 0
	for range 2 {
		if <-results == http.StatusTooManyRequests {
			away++
		}
	}
	if away != 2 {
		t.Errorf("%d of the posts past MaxWaiting were sent away, want both", away)
	}
	close(release)
	for range 2 {
		if code := <-results; code != http.StatusOK {
			t.Errorf("a post that could wait answered %d", code)
		}
	}
}

// TestPacerOrdersPostsArrivingTogether: the post of a task intaken a moment
// earlier, arriving a moment later (its worker slower), still goes first.
// The Pacer runs on a clock of the test's, which moves past the settle only
// once both posts wait.
func TestPacerOrdersPostsArrivingTogether(t *testing.T) {
	t.Parallel()
	stub := &stubSlack{}
	clock := &fakeClock{now: time.Now()}
	p := NewPacer(PaceConfig{Methods: map[string]Limit{}, Now: clock.Now})
	rt := p.Transport(stub)
	base := clock.Now()
	var wg sync.WaitGroup
	for i, id := range []string{"later", "earlier"} { // the later one arrives first
		at := base
		if id == "later" {
			at = base.Add(time.Millisecond)
		}
		ctx := withPaceOrder(t.Context(), &approvals.Task{ID: id, CreatedAt: at})
		wg.Go(func() {
			if _, err := rt.RoundTrip(postText(ctx, "C1", id)); err != nil {
				t.Error(err)
			}
		})
		paceWaitUntil(t, func() bool { return p.Waiting("channel C1") == i+1 })
	}
	clock.Advance(time.Second)
	wg.Wait()
	if got := strings.Join(stub.got(), "; "); got != "chat.postMessage C1 earlier; chat.postMessage C1 later" {
		t.Errorf("Slack got %s", got)
	}
}

// paceWaitUntil polls cond (a state, not a time) for up to a minute.
func paceWaitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// TestPacerFailsClickLookupsFast: a look-up made while a person waits for
// the click's answer does not wait seconds for its turn: it is answered
// 429 at once (the click then fails closed).
func TestPacerFailsClickLookupsFast(t *testing.T) {
	t.Parallel()
	stub := &stubSlack{}
	p := NewPacer(PaceConfig{Methods: map[string]Limit{"usergroups.users.list": {Every: time.Second, Burst: 1}}, MaxWait: time.Minute})
	rt := p.Transport(stub)
	lookup := func() int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://slack.test/usergroups.users.list?usergroup=S1", nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	if code := lookup(); code != http.StatusOK {
		t.Fatalf("first look-up: %d", code)
	}
	if code := lookup(); code != http.StatusTooManyRequests {
		t.Errorf("second look-up, its turn a second away: %d, want 429 at once", code)
	}
	if got := len(stub.got()); got != 1 {
		t.Errorf("Slack got %d look-ups, want 1", got)
	}
}
