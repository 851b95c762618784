package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/pace"
)

// Slack's calls are paced by internal/pace; this file says what Slack's
// limits are and how a Slack call is named.
type (
	// Limit is a rate (pace.Limit).
	Limit = pace.Limit
	// PaceConfig configures a Pacer (pace.Config); NewPacer fills in
	// Slack's defaults.
	PaceConfig = pace.Config
	// Pacer keeps the Slack calls of a process under Slack's rate limits:
	// per method, and for chat.postMessage also per channel. Share one among
	// every client of a workspace (all outbox workers use the Notifier's).
	Pacer = pace.Pacer
)

// perMinute is the limit that never makes more than quota calls in any
// minute: a burst of burst, and the rest spread over the minute.
func perMinute(quota, burst int) Limit { return pace.PerWindow(quota, time.Minute, burst) }

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

// NewPacer returns a Pacer of Slack's calls for cfg. Zero values take
// Slack's defaults: a post per second per channel with a burst of 3, and
// DefaultMethodLimits when Methods is nil.
func NewPacer(cfg PaceConfig) *Pacer {
	if cfg.Channel == (Limit{}) {
		cfg.Channel = defaultChannelLimit
	}
	if cfg.Methods == nil {
		cfg.Methods = DefaultMethodLimits()
	}
	if cfg.Classify == nil {
		cfg.Classify = slackCall
	}
	if cfg.RateLimitedBody == "" {
		// What Slack answers, so that slack-go returns a RateLimitedError
		// and the outbox comes back after it.
		cfg.RateLimitedBody = `{"ok":false,"error":"ratelimited","paced":true}`
	}
	return pace.New(cfg)
}

// slackCall names a Slack call: its method (the last part of the path),
// and for chat.postMessage its channel's queue.
func slackCall(req *http.Request) pace.Call {
	method := req.URL.Path[strings.LastIndexByte(req.URL.Path, '/')+1:]
	c := pace.Call{Method: method, Click: clickMethod(method)}
	if method == "chat.postMessage" {
		c.Queue = channelOf(req)
	}
	return c
}

// withPaceOrder tells the Pacer which task a call is for, so that the
// task's posts keep its intake order and a call sent away finds its place
// when it comes back.
func withPaceOrder(ctx context.Context, t *approvals.Task) context.Context {
	return pace.WithOrder(ctx, t.CreatedAt, t.ID)
}

// sentAwayForTurn reports whether the last call made under ctx was sent
// away to come back at its task's turn, its place kept.
func sentAwayForTurn(ctx context.Context) bool { return pace.SentAwayForTurn(ctx) }

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
