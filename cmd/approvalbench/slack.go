package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/approvalbot/approvalbot/internal/slacktest"
)

// message is what a click needs of a posted message.
type message struct {
	Token, Channel string
}

// slackIndex watches the fake Slack's chat.postMessage calls through its
// answer hook, so that the fake itself can stay quiet (record nothing):
// it counts the posts and, while indexing is on, keeps each message's
// approve token by task id.
type slackIndex struct {
	mu    sync.Mutex
	posts int
	index bool
	msgs  map[string]message // task record id → message
	seq   int                // the ts of the last message answered
	// logging keeps takes: every top-level post the fake takes, in order.
	logging bool
	takes   []take
}

// take is one post the fake Slack took.
type take struct {
	Channel, TaskID string // the task's record id
	At              time.Time
}

func newSlackIndex() *slackIndex { return &slackIndex{msgs: map[string]message{}} }

// hook is the fake Slack's answer function. It answers chat.postMessage and
// chat.update itself, as Slack answers them, without the fake's checks of
// Block Kit's limits: the fake runs on the bot's two cores, and what it
// spends is not the bot's (the tests check the messages; the bench counts
// them). Rate limits, when the fake enforces them, come first.
func (x *slackIndex) hook(call slacktest.Call) *slacktest.Answer {
	switch call.Method {
	case "chat.update":
		return okAnswer(call.Form.Get("channel"), call.Form.Get("ts"))
	case "chat.postMessage":
	default:
		return nil
	}
	channel := call.Form.Get("channel")
	x.mu.Lock()
	x.seq++
	ts := fmt.Sprintf("1700000000.%06d", x.seq)
	if call.Form.Get("thread_ts") != "" {
		x.mu.Unlock()
		return okAnswer(channel, ts)
	}
	x.posts++
	index, logging := x.index, x.logging
	x.mu.Unlock()
	if !index && !logging {
		return okAnswer(channel, ts)
	}
	token := approveToken(call)
	id, err := tokenTaskID(token)
	x.mu.Lock()
	if logging {
		x.takes = append(x.takes, take{Channel: channel, TaskID: id, At: call.At})
	}
	if index && err == nil {
		x.msgs[id] = message{Token: token, Channel: channel}
	}
	x.mu.Unlock()
	return okAnswer(channel, ts)
}

func okAnswer(channel, ts string) *slacktest.Answer {
	return &slacktest.Answer{Body: `{"ok":true,"channel":"` + channel + `","ts":"` + ts + `"}`}
}

// approveToken is the value of the message's approve button: found in the
// blocks' JSON as slack-go writes a button (action_id, then value), and
// decoded from them only when it is not there.
func approveToken(call slacktest.Call) string {
	blocks := call.Form.Get("blocks")
	if _, rest, ok := strings.Cut(blocks, `"action_id":"approve"`); ok {
		if _, rest, ok := strings.Cut(rest, `"value":"`); ok {
			if token, _, ok := strings.Cut(rest, `"`); ok && strings.Count(token, ".") == 2 {
				return token
			}
		}
	}
	for _, b := range call.Buttons() {
		if b.ActionID == "approve" {
			return b.Value
		}
	}
	return ""
}

// setIndexing turns keeping messages on or off and forgets those kept.
func (x *slackIndex) setIndexing(on bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.index = on
	clear(x.msgs)
}

// setLogging turns keeping takes on or off and forgets those kept.
func (x *slackIndex) setLogging(on bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.logging, x.takes = on, nil
}

// takesLog returns the takes kept so far.
func (x *slackIndex) takesLog() []take {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]take(nil), x.takes...)
}

// postCount is the number of top-level messages posted so far.
func (x *slackIndex) postCount() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.posts
}

func (x *slackIndex) message(taskID string) (message, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	m, ok := x.msgs[taskID]
	return m, ok
}

// waitPosts waits until at least n messages have been posted.
func (x *slackIndex) waitPosts(ctx context.Context, n int, timeout time.Duration) error {
	return waitUntil(ctx, timeout, func() bool { return x.postCount() >= n },
		func() string { return fmt.Sprintf("%d of %d messages posted", x.postCount(), n) })
}

// waitMessage waits for the task's message.
func (x *slackIndex) waitMessage(ctx context.Context, taskID string, timeout time.Duration) (message, error) {
	var m message
	err := waitUntil(ctx, timeout, func() bool {
		var ok bool
		m, ok = x.message(taskID)
		return ok
	}, func() string { return "no message for task " + taskID })
	return m, err
}

// tokenTaskID reads the task id (claim tid) of a button's token without
// verifying it: the bench only needs to know which message is whose.
func tokenTaskID(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("token is not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("token payload: %w", err)
	}
	var claims struct {
		TaskID string `json:"tid"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil || claims.TaskID == "" {
		return "", fmt.Errorf("token payload has no tid")
	}
	return claims.TaskID, nil
}

// waitUntil polls cond every 5ms until it holds, timeout passes or ctx is
// done; state describes how far it got, for the error.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool, state func() string) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", state(), ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("timed out after %s: %s", timeout, state())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}
