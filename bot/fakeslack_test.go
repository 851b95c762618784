package bot

import (
	"sync"
	"testing"
	"time"

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
