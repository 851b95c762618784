package main

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/bot"
	"github.com/approvalbot/approvalbot/internal/slacktest"
)

// taskNamed finds the FlexDeploy task a message names.
var taskNamed = regexp.MustCompile(`FlexDeploy task ([A-Za-z0-9]+)`)

// postLog keeps, through the fake Slack's answer hook, the channel and task
// of every top-level post the fake takes (not those it answers 429), in the
// order it takes them.
type postLog struct {
	mu    sync.Mutex
	takes []string // "CHANNEL taskID"
}

// hook returns the answer function: refuse (may be nil) decides which post
// is answered instead.
func (l *postLog) hook(refuse func(slacktest.Call) *slacktest.Answer) func(slacktest.Call) *slacktest.Answer {
	return func(c slacktest.Call) *slacktest.Answer {
		if c.Method != "chat.postMessage" || c.Form.Get("thread_ts") != "" {
			return nil
		}
		if refuse != nil {
			if a := refuse(c); a != nil {
				return a
			}
		}
		id := ""
		if m := taskNamed.FindStringSubmatch(c.Text()); m != nil {
			id = m[1]
		}
		l.mu.Lock()
		l.takes = append(l.takes, c.Form.Get("channel")+" "+id)
		l.mu.Unlock()
		return nil
	}
}

// byChannel is the tasks taken into each channel, in order, and the
// channels of all takes in order.
func (l *postLog) byChannel() (map[string][]string, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]string{}
	var order []string
	for _, take := range l.takes {
		ch, id, _ := strings.Cut(take, " ")
		out[ch] = append(out[ch], id)
		order = append(order, ch)
	}
	return out, order
}

func (l *postLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.takes)
}

// TestBurstIntoOneChannelIsPostedInOrder: a release train of 100 tasks
// into one channel, against a Slack that answers 429 past one post a
// second per channel (with a burst of four): every one is posted, in intake
// order, with at most five 429s. Both sides run fifty times faster than
// Slack (20 ms a post) so that the test takes seconds; Retry-After stays in
// whole seconds, so every outbox worker may wait for the channel.
func TestBurstIntoOneChannelIsPostedInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.extra = "reconcile: {interval: 1h}"
	e.slack.LimitRates(slacktest.RateLimits{PostPerChannel: slacktest.Limit{Every: 20 * time.Millisecond, Burst: 4}})
	var log postLog
	e.slack.SetAnswer(log.hook(nil))
	e.pace = &bot.PaceConfig{Channel: bot.Limit{Every: 20 * time.Millisecond, Burst: 3}, Methods: map[string]bot.Limit{}, MaxWaiting: 8}
	e.start()

	const n = 100
	var want []string
	began := time.Now()
	for i := range n {
		id := fmt.Sprintf("train%03d", i)
		want = append(want, id)
		e.submit(fmt.Sprintf(`{"taskId":%q,"environment":"PROD"}`, id))
	}
	intook := time.Since(began)
	waitFor(t, "every task posted", func() bool { return log.count() >= n })
	took := time.Since(began)
	got, _ := log.byChannel()
	limited := e.slack.RateLimited()["chat.postMessage"]
	t.Logf("%d tasks intaken in %s, all posted %s after the first (floor at this pace: %s); %d 429s",
		n, intook.Round(time.Millisecond), took.Round(time.Millisecond), (n-3)*20*time.Millisecond, limited)
	if strings.Join(got["CPROD"], " ") != strings.Join(want, " ") {
		t.Errorf("posted in the order\n%v\nwant\n%v", got["CPROD"], want)
	}
	if limited > 5 {
		t.Errorf("Slack answered %d posts 429, want at most 5", limited)
	}
}

// TestSlack429OnOneChannelDoesNotDelayAnother: with Slack's own limits on
// both sides, Slack answers the first post into CPROD 429 with a
// Retry-After of 5 s. CPROD's tasks wait and are posted in order; CTEST's,
// intaken after them, are all posted before CPROD's first; the 429 is
// counted in the metrics.
func TestSlack429OnOneChannelDoesNotDelayAnother(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.policies = defaultPolicies + `
  - name: test
    match: {environment: "TEST"}
    channel: CTEST
    approvers: {users: [UALICE]}
`
	e.slack.LimitRates(slacktest.SlackRateLimits())
	var (
		log  postLog
		once sync.Once
	)
	e.slack.SetAnswer(log.hook(func(c slacktest.Call) *slacktest.Answer {
		var a *slacktest.Answer
		if c.Form.Get("channel") == "CPROD" {
			once.Do(func() {
				a = &slacktest.Answer{Status: http.StatusTooManyRequests, Header: map[string]string{"Retry-After": "5"},
					Body: `{"ok":false,"error":"ratelimited"}`}
			})
		}
		return a
	}))
	e.start()

	var prod, test []string
	began := time.Now()
	for i := range 4 {
		id := fmt.Sprintf("prod%d", i)
		prod = append(prod, id)
		e.submit(fmt.Sprintf(`{"taskId":%q,"environment":"PROD"}`, id))
	}
	for i := range 4 {
		id := fmt.Sprintf("test%d", i)
		test = append(test, id)
		e.submit(fmt.Sprintf(`{"taskId":%q,"environment":"TEST"}`, id))
	}
	waitFor(t, "every task posted", func() bool { return log.count() >= len(prod)+len(test) })
	t.Logf("8 tasks posted %s after the first intake", time.Since(began).Round(time.Millisecond))

	got, order := log.byChannel()
	if strings.Join(got["CPROD"], " ") != strings.Join(prod, " ") {
		t.Errorf("CPROD posted in the order %v, want %v", got["CPROD"], prod)
	}
	if strings.Join(got["CTEST"], " ") != strings.Join(test, " ") {
		t.Errorf("CTEST posted in the order %v, want %v", got["CTEST"], test)
	}
	firstProd, lastTest := -1, -1
	for i, ch := range order {
		if ch == "CPROD" && firstProd < 0 {
			firstProd = i
		}
		if ch == "CTEST" {
			lastTest = i
		}
	}
	if firstProd < lastTest {
		t.Errorf("posts by channel, in order: %v; CTEST's waited for CPROD's Retry-After", order)
	}
	if n := e.slack.RateLimited()["chat.postMessage"]; n != 0 {
		t.Errorf("the fake's own limits answered %d posts 429, want none", n)
	}

	res, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if want := `approvalbot_slack_rate_limited_total{method="chat.postMessage"} 1`; !strings.Contains(string(raw), want) {
		t.Errorf("metrics lack %s", want)
	}
}

// TestBurstIntoOneChannelAtSlacksPace: twelve tasks into one channel with
// Slack's own limits on both sides (the bot's defaults, the fake's
// SlackRateLimits): a few posts wait for their turn, the others go back to
// the outbox with a Retry-After and keep their places; all are posted in
// intake order, at about one a second, without a 429.
func TestBurstIntoOneChannelAtSlacksPace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.slack.LimitRates(slacktest.SlackRateLimits())
	var log postLog
	e.slack.SetAnswer(log.hook(nil))
	e.start()
	const n = 12
	var want []string
	began := time.Now()
	for i := range n {
		id := fmt.Sprintf("pace%02d", i)
		want = append(want, id)
		e.submit(fmt.Sprintf(`{"taskId":%q,"environment":"PROD"}`, id))
	}
	waitFor(t, "every task posted", func() bool { return log.count() >= n })
	t.Logf("%d tasks posted %s after the first intake (floor: %ds)", n, time.Since(began).Round(time.Millisecond), n-3)
	got, _ := log.byChannel()
	if strings.Join(got["CPROD"], " ") != strings.Join(want, " ") {
		t.Errorf("posted in the order %v, want %v", got["CPROD"], want)
	}
	if limited := e.slack.RateLimited()["chat.postMessage"]; limited > 0 {
		t.Errorf("Slack answered %d posts 429", limited)
	}
}
