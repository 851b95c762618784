package slacktest

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Limit is a rate the fake enforces: a token bucket that holds Burst calls
// and refills one per Every.
type Limit struct {
	Every time.Duration
	Burst int
}

// RateLimits are the limits the fake enforces as Slack does: a call over
// its limit is answered 429 with a Retry-After (whole seconds) and
// {"ok":false,"error":"ratelimited"}, and is not carried out.
type RateLimits struct {
	// PostPerChannel limits chat.postMessage (thread replies too) per
	// channel.
	PostPerChannel Limit
	// Methods limits methods across the workspace.
	Methods map[string]Limit
}

// SlackRateLimits are Slack's documented limits, as a fake: chat.postMessage
// one per second per channel with a burst of four ("short bursts >1
// allowed"); chat.update, users.lookupByEmail Tier 3 (50 per minute),
// usergroups.users.list Tier 2 (20 per minute), chat.postEphemeral and
// views.* Tier 4 (100 per minute), each with a burst of a fifth of its
// minute.
func SlackRateLimits() RateLimits {
	tier := func(perMinute int) Limit {
		return Limit{Every: time.Minute / time.Duration(perMinute), Burst: perMinute / 5}
	}
	return RateLimits{
		PostPerChannel: Limit{Every: time.Second, Burst: 4},
		Methods: map[string]Limit{
			"chat.update":           tier(50),
			"users.lookupByEmail":   tier(50),
			"users.info":            tier(100),
			"usergroups.users.list": tier(20),
			"chat.postEphemeral":    tier(100),
			"views.open":            tier(100),
			"views.publish":         tier(100),
		},
	}
}

// LimitRates makes the fake enforce limits from now on, with full buckets;
// the zero RateLimits turns them off.
func (f *Server) LimitRates(l RateLimits) {
	f.limits.mu.Lock()
	defer f.limits.mu.Unlock()
	f.limits.cfg = l
	f.limits.buckets = map[string]*bucket{}
}

// RateLimited returns how many calls of each method the fake answered 429.
func (f *Server) RateLimited() map[string]int {
	f.limits.mu.Lock()
	defer f.limits.mu.Unlock()
	out := make(map[string]int, len(f.limits.limited))
	for m, n := range f.limits.limited {
		out[m] = n
	}
	return out
}

// rateLimiter is the fake's enforcement of RateLimits.
type rateLimiter struct {
	mu      sync.Mutex
	cfg     RateLimits
	buckets map[string]*bucket
	limited map[string]int
}

type bucket struct {
	tokens float64
	at     time.Time
}

// take takes a token of the bucket key under l at now, or says how long
// until one is there.
func (r *rateLimiter) take(key string, l Limit, now time.Time) (wait time.Duration, ok bool) {
	if l.Every <= 0 {
		return 0, true
	}
	b := r.buckets[key]
	if b == nil {
		b = &bucket{tokens: float64(max(l.Burst, 1)), at: now}
		r.buckets[key] = b
	}
	b.tokens = math.Min(float64(max(l.Burst, 1)), b.tokens+float64(now.Sub(b.at))/float64(l.Every))
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) * float64(l.Every)), false
}

// limit decides whether call is over a limit; if so it returns the
// Retry-After in whole seconds (at least one).
func (r *rateLimiter) limit(call Call) (retryAfter int, limited bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.buckets == nil {
		return 0, false
	}
	now := call.At
	var wait time.Duration
	ok := true
	if call.Method == "chat.postMessage" && r.cfg.PostPerChannel.Every > 0 {
		channel := call.Form.Get("channel")
		if channel == "" && call.JSON != nil {
			channel, _ = call.JSON["channel"].(string)
		}
		wait, ok = r.take("channel "+channel, r.cfg.PostPerChannel, now)
	}
	if ok {
		wait, ok = r.take("method "+call.Method, r.cfg.Methods[call.Method], now)
	}
	if ok {
		return 0, false
	}
	if r.limited == nil {
		r.limited = map[string]int{}
	}
	r.limited[call.Method]++
	return max(1, int(math.Ceil(wait.Seconds()))), true
}

// answerRateLimited answers 429 as Slack does when call is over a limit,
// and marks the recorded call (index recorded, -1 when not recorded) with
// the error code "ratelimited". It reports whether it answered.
func (f *Server) answerRateLimited(w http.ResponseWriter, call Call, recorded int) bool {
	retryAfter, limited := f.limits.limit(call)
	if !limited {
		return false
	}
	if recorded >= 0 {
		f.mu.Lock()
		f.calls[recorded].Refused = "ratelimited"
		f.mu.Unlock()
	}
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write([]byte(`{"ok":false,"error":"ratelimited"}` + "\n"))
	return true
}
