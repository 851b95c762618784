package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

// Limit is a rate: one call per Every on average, with up to Burst calls at
// once after a quiet spell (a token bucket, run as GCRA). The zero value
// does not pace; a key with it still waits out Slack's Retry-After.
type Limit struct {
	Every time.Duration
	Burst int
}

// perMinute is the limit that never makes more than quota calls in any
// minute: a burst of burst, and the rest spread over the minute.
func perMinute(quota, burst int) Limit {
	return Limit{Every: time.Minute / time.Duration(quota-burst), Burst: burst}
}

// Slack's published limits ("Rate limits" in Slack's documentation and the
// methods' pages; see ../shared/reference/slack.md). Tiers are "N+ per
// minute" with bursts tolerated; the limits below stay within N in any
// sliding minute (burst + the rest of the quota spread evenly), so that they
// hold however Slack counts its minute.
var (
	// defaultChannelLimit paces chat.postMessage into one channel: "about
	// one message per second per channel, short bursts allowed".
	defaultChannelLimit = Limit{Every: time.Second, Burst: 3}

	tier2 = perMinute(20, 5)   // 20+/min: one call per 4 s after a burst of 5
	tier3 = perMinute(50, 10)  // 50+/min: one call per 1.5 s after a burst of 10
	tier4 = perMinute(100, 50) // 100+/min, "generous bursts": one call per 1.2 s after a burst of 50
)

// DefaultMethodLimits are the limits per method (workspace-wide, for this
// app). Methods not named are not paced, but still wait out a 429.
func DefaultMethodLimits() map[string]Limit {
	return map[string]Limit{
		// Special tier: besides the per-channel limit, a workspace-wide one
		// of "several hundred messages per minute"; read as 600.
		"chat.postMessage":      perMinute(600, 20),
		"chat.update":           tier3,
		"chat.postEphemeral":    tier4,
		"users.lookupByEmail":   tier3,
		"users.info":            tier4,
		"usergroups.users.list": tier2,
		"conversations.open":    tier3,
		"views.open":            tier4,
		"views.update":          tier4,
		"views.push":            tier4,
		"views.publish":         tier4,
	}
}

// clickMethod reports the methods called while a person waits for the
// answer to a click (Slack shows an error after 3 s; a modal's trigger_id
// expires then): they wait at most clickWait for their turn, and are
// otherwise answered 429 at once, so that the click fails closed in time
// ("could not check who requested this").
func clickMethod(method string) bool {
	switch method {
	case "users.lookupByEmail", "users.info", "usergroups.users.list", "views.open", "views.push":
		return true
	}
	return false
}

const clickWait = 250 * time.Millisecond

// Defaults of PaceConfig.
const (
	defaultMaxWait = 2 * time.Second
	defaultHorizon = 5 * time.Minute
	// defaultMaxWaiting bounds the outbox workers one channel holds.
	defaultMaxWaiting = 2
	// orderSettle is how long a post waits at least before it leaves, so
	// that the post of a task intaken just before, still on its way (the
	// outbox's workers race), arrives and goes first.
	orderSettle = 20 * time.Millisecond
	// promiseGrace is how long a call sent away keeps its place after the
	// time it was told to come back; then its place is given up.
	promiseGrace = 5 * time.Second
	// sendMargin is kept of a call's deadline for the call itself.
	sendMargin = 250 * time.Millisecond
)

// PaceConfig configures a Pacer. Zero values take the defaults.
type PaceConfig struct {
	// Channel paces chat.postMessage per channel; default one a second with a burst of 3.
	Channel Limit
	// Methods paces each method; nil takes DefaultMethodLimits. A method
	// not in the map is not paced.
	Methods map[string]Limit
	// MaxWait is the longest a call waits here for its turn (default 2s).
	// A call whose turn is further away is answered at once as Slack would
	// answer it: 429 with Retry-After, which the outbox retries then, so
	// that a backlog in one channel does not hold every outbox worker.
	MaxWait time.Duration
	// MaxWaiting is how many calls may wait here for one channel besides
	// the one being sent (default 2); the next are sent away, as above.
	MaxWaiting int
	// Horizon is the longest Retry-After such an answer carries (default
	// 5m, the longest wait the outbox takes from a Retry-After). A call
	// that names its task keeps its place, and its task's outbox keeps the
	// task's lease until then (approvals.RetryAfterError's Turn): no
	// failure is recorded and no attempt counted, so one round and one
	// write of the task per turn told, however long the queue.
	Horizon time.Duration
	// OnRateLimited is told the method of every 429 Slack itself answers
	// (not those the Pacer answers). May be nil.
	OnRateLimited func(method string)
	// Off sends every call at once, as it comes: for load runs against a
	// fake Slack without limits, where pacing is not what is measured.
	// Slack's 429s are still counted, and handed to the caller.
	Off bool
}

// Pacer keeps the Slack calls of a process under Slack's rate limits: per
// method, and for chat.postMessage also per channel. Share one among every
// client of a workspace (all outbox workers use the Notifier's).
//
// Posts into a channel leave in the order of their tasks' intake (FIFO per
// channel), one at a time (the next once the last is answered), each after
// a short settle so that the post of a task intaken a moment earlier, its
// worker slower, still goes first. A post whose turn is too far off to wait
// for (or that would make more than MaxWaiting wait for one channel) is
// answered 429 with the Retry-After of its turn, and its task keeps its
// place until it comes back (within the Horizon, and a few seconds'
// grace). When Slack answers 429, the channel (or the method) waits its
// Retry-After, the others go on, and the refused call is sent again in its
// place if its deadline allows: Slack carries out nothing of a call it
// answers 429. A call's context ending releases it at once.
type Pacer struct {
	channel    Limit
	methods    map[string]Limit
	maxWait    time.Duration
	maxWaiting int
	horizon    time.Duration
	onLimited  func(string)
	off        bool
	now        func() time.Time

	mu    sync.Mutex
	keys  map[string]*schedule
	calls int // since the last prune
}

// NewPacer returns a Pacer for cfg.
func NewPacer(cfg PaceConfig) *Pacer {
	p := &Pacer{
		channel:    cfg.Channel,
		methods:    cfg.Methods,
		maxWait:    cfg.MaxWait,
		maxWaiting: cfg.MaxWaiting,
		horizon:    cfg.Horizon,
		onLimited:  cfg.OnRateLimited,
		off:        cfg.Off,
		now:        time.Now,
		keys:       map[string]*schedule{},
	}
	if p.channel == (Limit{}) {
		p.channel = defaultChannelLimit
	}
	if p.methods == nil {
		p.methods = DefaultMethodLimits()
	}
	if p.maxWait <= 0 {
		p.maxWait = defaultMaxWait
	}
	if p.horizon <= 0 {
		p.horizon = defaultHorizon
	}
	if p.maxWaiting <= 0 {
		p.maxWaiting = defaultMaxWaiting
	}
	return p
}

// Transport wraps next (nil: http.DefaultTransport) so that every call
// through it is paced.
func (p *Pacer) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &paceTransport{p: p, next: next}
}

// paceOrder is where a call stands in its keys' queues: its task's intake
// time and id. A call without one queues by its arrival time.
type paceOrder struct {
	at time.Time
	id string
}

type paceOrderKey struct{}

// paceNote is what the Pacer and the caller of a task's calls tell each
// other through the call's context.
type paceNote struct {
	order paceOrder
	// sentAway: the last call made under the context was answered 429 by
	// the Pacer (or by Slack, beyond what the call could wait) and its
	// task's place kept for when it comes back.
	sentAway atomic.Bool
}

// withPaceOrder tells the Pacer which task a call is for, so that the
// task's posts keep its intake order and a call sent away finds its place
// when it comes back.
func withPaceOrder(ctx context.Context, t *approvals.Task) context.Context {
	return context.WithValue(ctx, paceOrderKey{}, &paceNote{order: paceOrder{at: t.CreatedAt, id: t.ID}})
}

func paceNoteOf(ctx context.Context) *paceNote {
	n, _ := ctx.Value(paceOrderKey{}).(*paceNote)
	return n
}

func paceOrderOf(ctx context.Context, now time.Time) paceOrder {
	if n := paceNoteOf(ctx); n != nil && !n.order.at.IsZero() {
		return n.order
	}
	return paceOrder{at: now}
}

// sentAwayForTurn reports whether the last call made under ctx was sent
// away to come back at its task's turn, its place kept.
func sentAwayForTurn(ctx context.Context) bool {
	n := paceNoteOf(ctx)
	return n != nil && n.sentAway.Load()
}

// schedule is one key's queue: a channel's posts or a method's calls.
type schedule struct {
	limit Limit
	// strict keeps the order (a channel's posts): a call leaves only after
	// every call before it has been answered, one at a time, so that Slack
	// receives them in order. A method's calls leave at their slots; the
	// order only decides who gets which.
	strict   bool
	inflight bool // strict: a call has left and is not answered yet
	// tat is GCRA's theoretical arrival time: with the calls that have
	// left, the next may leave at tat - (Burst-1)·Every.
	tat time.Time
	// blocked is when Slack's Retry-After ends: nothing leaves before.
	blocked time.Time
	// queue holds the calls waiting for their turn and the places kept for
	// calls sent away, in order.
	queue []*ticket
	seq   uint64
}

// ticket is one call's place in a queue.
type ticket struct {
	order paceOrder
	seq   uint64
	// present: its call waits here; otherwise it was sent away and told to
	// come back at promised.
	present  bool
	arrived  time.Time // when its call came (or came back)
	promised time.Time
	slot     time.Time     // when it may leave, as last planned
	wake     chan struct{} // told of every change of the queue
}

func (t *ticket) before(u *ticket) bool {
	if !t.order.at.Equal(u.order.at) {
		return t.order.at.Before(u.order.at)
	}
	if t.order.id != u.order.id {
		return t.order.id < u.order.id
	}
	return t.seq < u.seq
}

func (l Limit) tau() time.Duration {
	if l.Burst <= 1 {
		return 0
	}
	return time.Duration(l.Burst-1) * l.Every
}

// plan gives every ticket the time it may leave if all before it leave at
// theirs, and drops the places of calls that did not come back in time. A
// place whose call is late holds no slot of a method's queue: the calls
// behind it need not wait for it.
func (s *schedule) plan(now time.Time) {
	kept := s.queue[:0]
	for _, t := range s.queue {
		if !t.present && now.After(t.promised.Add(promiseGrace)) {
			continue
		}
		kept = append(kept, t)
	}
	clear(s.queue[len(kept):])
	s.queue = kept
	next := s.tat
	for _, t := range s.queue {
		slot := maxTime(now, s.blocked)
		if !s.strict && !t.present && now.After(t.promised) {
			t.slot = slot
			continue
		}
		if s.limit.Every > 0 {
			slot = maxTime(slot, next.Add(-s.limit.tau()))
			next = maxTime(next, slot).Add(s.limit.Every)
		}
		if s.strict && t.present {
			slot = maxTime(slot, t.arrived.Add(orderSettle))
		}
		t.slot = slot
	}
}

// mayLeave reports whether t's call may leave now.
func (s *schedule) mayLeave(t *ticket, now time.Time) bool {
	if t.slot.After(now) {
		return false
	}
	return !s.strict || (s.queue[0] == t && !s.inflight)
}

// leave takes t out of the queue as its call leaves now.
func (s *schedule) leave(t *ticket, now time.Time) {
	s.remove(t)
	s.inflight = s.strict
	if s.limit.Every > 0 {
		s.tat = maxTime(s.tat, now).Add(s.limit.Every)
	}
}

// waitingAhead counts the calls waiting here before t (and the one in
// flight).
func (s *schedule) waitingAhead(t *ticket) int {
	n := 0
	if s.inflight {
		n++
	}
	for _, q := range s.queue {
		if q == t {
			break
		}
		if q.present {
			n++
		}
	}
	return n
}

func (s *schedule) insert(t *ticket) {
	i, _ := slices.BinarySearchFunc(s.queue, t, func(a, b *ticket) int {
		if a.before(b) {
			return -1
		}
		return 1
	})
	s.queue = slices.Insert(s.queue, i, t)
}

func (s *schedule) remove(t *ticket) {
	if i := slices.Index(s.queue, t); i >= 0 {
		s.queue = slices.Delete(s.queue, i, i+1)
	}
}

// notify wakes every call waiting in the queue to look again.
func (s *schedule) notify() {
	for _, t := range s.queue {
		if t.present {
			select {
			case t.wake <- struct{}{}:
			default:
			}
		}
	}
}

// block keeps everything of the key waiting until until (Slack's
// Retry-After), and then starts without a burst: Slack's bucket is empty.
func (s *schedule) block(until time.Time) {
	s.blocked = maxTime(s.blocked, until)
	s.tat = maxTime(s.tat, s.blocked.Add(s.limit.tau()))
}

func (s *schedule) idle(now time.Time) bool {
	return len(s.queue) == 0 && !s.inflight && !s.tat.After(now) && !s.blocked.After(now)
}

// wait queues the call in key's schedule until its turn, which must come
// by until. It returns retryAfter > 0 when the turn comes later: then a
// call that names its task keeps its place until it comes back.
func (p *Pacer) wait(ctx context.Context, k paceKey, order paceOrder, until time.Time) (retryAfter time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.schedule(k)
	now := p.now()
	var t *ticket
	if order.id != "" {
		for _, q := range s.queue {
			if !q.present && q.order.id == order.id {
				t = q // back as told: its place is kept
				break
			}
		}
	}
	if t == nil {
		s.seq++
		t = &ticket{order: order, seq: s.seq}
		s.insert(t)
	}
	t.present, t.arrived, t.wake = true, now, make(chan struct{}, 1)
	for {
		s.plan(now)
		if s.mayLeave(t, now) {
			s.leave(t, now)
			s.notify()
			return 0, nil
		}
		// When its turn would come too late, or enough calls wait for this
		// channel already, the call is sent away (its worker is free for
		// other channels); one that names its task keeps its place for when
		// it comes back.
		leaves := maxTime(t.slot, now.Add(time.Millisecond))
		if leaves.After(until) || (s.strict && s.waitingAhead(t) > p.maxWaiting) {
			retry := p.retryAfter(leaves.Sub(now))
			if order.id != "" {
				t.present, t.promised, t.wake = false, now.Add(retry), nil
			} else {
				s.remove(t)
			}
			s.plan(now)
			s.notify()
			return retry, nil
		}
		d := leaves.Sub(now)
		if s.strict {
			// Behind a call that was sent away, look again when its place
			// would be given up (or at any change before).
			for _, q := range s.queue {
				if q == t {
					break
				}
				if !q.present {
					d = min(d, max(time.Millisecond, q.promised.Add(promiseGrace).Sub(now)+time.Millisecond))
					break
				}
			}
		}
		wake := t.wake
		p.mu.Unlock()
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			p.mu.Lock()
			s.remove(t)
			s.plan(p.now())
			s.notify()
			return 0, ctx.Err()
		case <-wake:
			timer.Stop()
		case <-timer.C:
		}
		p.mu.Lock()
		now = p.now()
	}
}

// answered lets the next call of a strict key leave: the one in flight has
// its answer.
func (p *Pacer) answered(k paceKey) {
	if !k.strict {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.schedule(k)
	s.inflight = false
	s.plan(p.now())
	s.notify()
}

// retryAfter is what Slack would say: whole seconds, at least one, at most
// the horizon.
func (p *Pacer) retryAfter(d time.Duration) time.Duration {
	secs := time.Duration(math.Ceil(d.Seconds())) * time.Second
	return min(max(secs, time.Second), max(p.horizon.Truncate(time.Second), time.Second))
}

// blockKey records Slack's Retry-After for k.
func (p *Pacer) blockKey(k paceKey, until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.schedule(k)
	s.block(until)
	s.plan(p.now())
	s.notify()
}

// schedule returns key's schedule, made on first use; p.mu is held. Now
// and then the schedules of keys with nothing going on are dropped, so
// that the map holds only the channels in use.
func (p *Pacer) schedule(k paceKey) *schedule {
	if p.calls++; p.calls >= 1024 {
		p.calls = 0
		now := p.now()
		for k, s := range p.keys {
			if s.idle(now) {
				delete(p.keys, k)
			}
		}
	}
	s := p.keys[k.name]
	if s == nil {
		s = &schedule{limit: k.limit, strict: k.strict}
		p.keys[k.name] = s
	}
	return s
}

// paceTransport is the Pacer in front of the Slack client's transport.
type paceTransport struct {
	p    *Pacer
	next http.RoundTripper
}

// paceKey is one limit a call is under.
type paceKey struct {
	name   string
	limit  Limit
	strict bool
}

// keysOf are the limits of a call: its channel's (chat.postMessage), then its
// method's. The first is the narrowest: a 429 blocks it.
func (p *Pacer) keysOf(req *http.Request, method string) []paceKey {
	var keys []paceKey
	if method == "chat.postMessage" {
		if ch := channelOf(req); ch != "" {
			keys = append(keys, paceKey{name: "channel " + ch, limit: p.channel, strict: true})
		}
	}
	return append(keys, paceKey{name: "method " + method, limit: p.methods[method]})
}

func (pt *paceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	p := pt.p
	if p.off {
		resp, err := pt.next.RoundTrip(req)
		if err == nil && resp.StatusCode == http.StatusTooManyRequests && p.onLimited != nil {
			p.onLimited(req.URL.Path[strings.LastIndexByte(req.URL.Path, '/')+1:])
		}
		return resp, err
	}
	ctx := req.Context()
	method := req.URL.Path[strings.LastIndexByte(req.URL.Path, '/')+1:]
	arrived := p.now()
	wait := p.maxWait
	if clickMethod(method) {
		wait = min(wait, clickWait)
	}
	c := call{req: req, method: method, order: paceOrderOf(ctx, arrived), until: arrived.Add(wait)}
	if dl, ok := ctx.Deadline(); ok {
		c.until = minTime(c.until, dl.Add(-sendMargin))
	}
	c.keys = p.keysOf(req, method)
	c.note = paceNoteOf(ctx)
	if c.note != nil {
		c.note.sentAway.Store(false)
	}
	for attempt := 0; ; attempt++ {
		resp, err, again := pt.try(c, attempt)
		if !again {
			return resp, err
		}
	}
}

// call is what RoundTrip knows of a request.
type call struct {
	req    *http.Request
	method string
	order  paceOrder
	until  time.Time // its turn must come by then
	keys   []paceKey
	note   *paceNote // nil for a call that names no task
}

// sendAway records that the call's task keeps its place for when it comes back.
func (c call) sendAway() {
	if c.note != nil && c.order.id != "" {
		c.note.sentAway.Store(true)
	}
}

// try waits for the call's turn under each of its keys and sends it. again
// reports a 429 of Slack's that the call waits out in its place, to be
// sent again.
func (pt *paceTransport) try(c call, attempt int) (resp *http.Response, err error, again bool) {
	p, ctx := pt.p, c.req.Context()
	for _, k := range c.keys {
		retry, err := p.wait(ctx, k, c.order, c.until)
		if err != nil {
			return nil, err, false
		}
		if retry > 0 {
			c.sendAway()
			return rateLimitedResponse(c.req, retry), nil, false
		}
		defer p.answered(k) // the next of a channel goes once this one has its answer
	}
	out := c.req
	if attempt > 0 {
		if c.req.GetBody == nil && c.req.Body != nil && c.req.Body != http.NoBody {
			return rateLimitedResponse(c.req, time.Second), nil, false // cannot send it again
		}
		out = c.req.Clone(ctx)
		if c.req.GetBody != nil {
			if out.Body, err = c.req.GetBody(); err != nil {
				return nil, err, false
			}
		}
	}
	resp, err = pt.next.RoundTrip(out)
	if err != nil || resp.StatusCode != http.StatusTooManyRequests {
		return resp, err, false
	}
	// Slack's own 429: the narrowest key waits its Retry-After, and the call
	// goes again in its place if its deadline allows; otherwise its place
	// is kept as for a call the Pacer sends away.
	if p.onLimited != nil {
		p.onLimited(c.method)
	}
	after := time.Second
	if secs, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && secs > 0 {
		after = time.Duration(secs) * time.Second
	}
	now := p.now()
	p.blockKey(c.keys[0], now.Add(after))
	if now.Add(after).After(c.until) || ctx.Err() != nil {
		if c.order.id != "" {
			p.keepPlace(c.keys[0], c.order, now.Add(after))
			c.sendAway()
		}
		return resp, nil, false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return nil, nil, true
}

// keepPlace queues a place for the task's call, which was told to come back
// at promised.
func (p *Pacer) keepPlace(k paceKey, order paceOrder, promised time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.schedule(k)
	for _, q := range s.queue {
		if q.order.id == order.id {
			return
		}
	}
	s.seq++
	s.insert(&ticket{order: order, seq: s.seq, promised: promised})
	s.plan(p.now())
	s.notify()
}

// rateLimitedResponse is the Pacer's answer to a call whose turn is too far
// off: what Slack answers, so that slack-go returns a RateLimitedError and
// the outbox comes back after it.
func rateLimitedResponse(req *http.Request, after time.Duration) *http.Response {
	body := `{"ok":false,"error":"ratelimited","paced":true}`
	return &http.Response{
		Status:     "429 Too Many Requests",
		StatusCode: http.StatusTooManyRequests,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{
			"Retry-After":  {strconv.Itoa(int(after / time.Second))},
			"Content-Type": {"application/json"},
		},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

// channelOf reads the channel a chat.postMessage goes to from its body (a
// form, as slack-go sends it, or JSON) without consuming the request's.
func channelOf(req *http.Request) string {
	if ch := req.URL.Query().Get("channel"); ch != "" {
		return ch
	}
	if req.GetBody == nil {
		return ""
	}
	rc, err := req.GetBody()
	if err != nil {
		return ""
	}
	defer func() { _ = rc.Close() }()
	raw, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil {
		return ""
	}
	if strings.HasPrefix(req.Header.Get("Content-Type"), "application/json") {
		var v struct {
			Channel string `json:"channel"`
		}
		_ = json.NewDecoder(bytes.NewReader(raw)).Decode(&v)
		return v.Channel
	}
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		return ""
	}
	return form.Get("channel")
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
