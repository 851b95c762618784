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
}

func newSlackIndex() *slackIndex { return &slackIndex{msgs: map[string]message{}} }

// hook is the fake Slack's answer function; it answers as Slack would.
func (x *slackIndex) hook(call slacktest.Call) *slacktest.Answer {
	if call.Method != "chat.postMessage" || call.Form.Get("thread_ts") != "" {
		return nil
	}
	x.mu.Lock()
	x.posts++
	index := x.index
	x.mu.Unlock()
	if !index {
		return nil
	}
	for _, b := range call.Buttons() {
		if b.ActionID != "approve" {
			continue
		}
		if id, err := tokenTaskID(b.Value); err == nil {
			x.mu.Lock()
			x.msgs[id] = message{Token: b.Value, Channel: call.Form.Get("channel")}
			x.mu.Unlock()
		}
	}
	return nil
}

// setIndexing turns keeping messages on or off and forgets those kept.
func (x *slackIndex) setIndexing(on bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.index = on
	clear(x.msgs)
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
