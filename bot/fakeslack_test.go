package bot

import (
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/slacktest"
)

const testBotToken = "xoxb-test-0123456789-secret"

// firstTS is the ts a fresh fake Slack answers the first chat.postMessage
// with.
const firstTS = "1700000000.000001"

// newFakeSlack starts the shared fake Slack Web API for one test.
func newFakeSlack(t *testing.T) *slacktest.Server {
	t.Helper()
	f := slacktest.New()
	t.Cleanup(f.Close)
	return f
}

// notifierFor returns a Notifier talking to the fake.
func notifierFor(f *slacktest.Server, mutate func(*Config)) *Notifier {
	cfg := Config{BotToken: testBotToken, APIURL: f.APIURL(), DefaultChannel: "CDEFAULT", Timeout: 5 * time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	return New(cfg)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// slackChannel is where the outbox would post the task in Slack: the
// channel its Slack message names ("" for the default).
func slackChannel(t *approvals.Task) string {
	for _, m := range t.Messages {
		if m.User == "" && (m.Chat == "" || m.Chat == ChatName) {
			return m.Channel
		}
	}
	return ""
}

// slackRefs are the task's Slack messages as the outbox hands them to
// Update: the channel message first, then the copies.
func slackRefs(t *approvals.Task) []approvals.MessageRef {
	var refs []approvals.MessageRef
	for _, m := range t.Messages {
		if m.User == "" && (m.Chat == "" || m.Chat == ChatName) {
			refs = append([]approvals.MessageRef{m}, refs...)
		} else if m.Chat == "" || m.Chat == ChatName {
			refs = append(refs, m)
		}
	}
	return refs
}

// slackCopies are the task's direct-message copies in Slack.
func slackCopies(t *approvals.Task) []approvals.MessageRef {
	var out []approvals.MessageRef
	for _, m := range t.Messages {
		if m.User != "" && (m.Chat == "" || m.Chat == ChatName) {
			out = append(out, m)
		}
	}
	return out
}
