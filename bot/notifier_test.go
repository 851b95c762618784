package bot

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/slacktest"

	"github.com/slack-go/slack"
)

func policies() []approvals.Policy { return []approvals.Policy{*singlePolicy()} }

// formBlocks decodes the blocks a chat.* call sent.
func formBlocks(t *testing.T, call slacktest.Call) []slack.Block {
	t.Helper()
	raw := call.Form.Get("blocks")
	if raw == "" {
		t.Fatalf("%s sent no blocks", call.Method)
	}
	var blocks slack.Blocks
	if err := json.Unmarshal([]byte(raw), &blocks); err != nil {
		t.Fatalf("%s sent blocks that do not parse: %v", call.Method, err)
	}
	return blocks.BlockSet
}

func checkToken(t *testing.T, calls []slacktest.Call) {
	t.Helper()
	for _, c := range calls {
		if got := c.Token(); got != testBotToken {
			t.Errorf("%s authenticated with %q, want the bot token", c.Method, got)
		}
	}
}

func TestNotifierPost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		taskChannel string
		defaultCh   string
		wantChannel string
		wantErr     bool
	}{
		{"task channel", "C0PROD", "CDEFAULT", "C0PROD", false},
		{"default channel", "", "CDEFAULT", "CDEFAULT", false},
		{"channel by name", "#deploys", "", "CRESOLVED", false},
		{"no channel", "", "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := newFakeSlack(t)
			// Slack answers with the channel's id, even when given a name.
			fake.Channels["#deploys"] = "CRESOLVED"
			n := notifierFor(fake, func(c *Config) {
				c.DefaultChannel = tc.defaultCh
				c.Policies = policies
				c.Now = func() time.Time { return renderNow }
			})
			task := fixtureTask()
			task.Messages = []approvals.MessageRef{approvals.MessageRef{Channel: tc.taskChannel}}
			ref, err := n.Post(context.Background(), task, slackChannel(task), "tok-post")
			if tc.wantErr {
				if err == nil {
					t.Fatal("Post without a channel succeeded")
				}
				if n := len(fake.Calls()); n != 0 {
					t.Errorf("Post without a channel made %d calls", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Post: %v", err)
			}
			if ref.Channel != tc.wantChannel || ref.TS != firstTS {
				t.Errorf("ref = %+v, want channel %s ts %s", ref, tc.wantChannel, firstTS)
			}
			calls := fake.CallsTo("chat.postMessage")
			if len(calls) != 1 {
				t.Fatalf("got %d chat.postMessage calls, want 1", len(calls))
			}
			checkToken(t, calls)
			call := calls[0]
			want := tc.taskChannel
			if want == "" {
				want = tc.defaultCh
			}
			if got := call.Form.Get("channel"); got != want {
				t.Errorf("channel = %q, want %q", got, want)
			}
			if call.Form.Get("text") == "" {
				t.Error("no fallback text")
			}
			if call.Form.Get("thread_ts") != "" {
				t.Error("the message was posted in a thread")
			}
			checkButtons(t, formBlocks(t, call), "tok-post")
		})
	}
}

func TestNotifierUpdate(t *testing.T) {
	t.Parallel()
	approved := func() *approvals.Task {
		task := fixtureTask()
		task.Status = approvals.StatusApproved
		task.DecidedBy = &approvals.Person{ID: "U1"}
		task.DecidedAt = &decidedAt
		return task
	}
	tests := []struct {
		name       string
		task       func() *approvals.Task
		token      string
		wantErr    bool
		permanent  bool
		wantButton string // "" when the update must have no buttons
	}{
		{name: "final", task: approved},
		{name: "final ignores a token", task: approved, token: "tok-stale"},
		{name: "pending keeps working buttons", task: fixtureTask, token: "tok-given", wantButton: "tok-given"},
		// The outbox hands a pending task's token over; without one the
		// message would lose its buttons for good, which no retry mends.
		{name: "pending without a token", task: fixtureTask, wantErr: true, permanent: true},
		{name: "not posted", wantErr: true, permanent: true, task: func() *approvals.Task {
			task := approved()
			task.Messages = []approvals.MessageRef{approvals.MessageRef{}}
			return task
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := newFakeSlack(t)
			n := notifierFor(fake, func(c *Config) { c.Policies = policies; c.Now = func() time.Time { return renderNow } })
			task := tc.task()
			err := n.Update(context.Background(), task, slackRefs(task), tc.token)
			if tc.wantErr {
				if err == nil {
					t.Fatal("Update succeeded")
				}
				if approvals.IsPermanent(err) != tc.permanent {
					t.Errorf("permanent = %v, want %v (%v)", approvals.IsPermanent(err), tc.permanent, err)
				}
				if n := len(fake.Calls()); n != 0 {
					t.Errorf("a failed Update made %d calls", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			calls := fake.CallsTo("chat.update")
			if len(calls) != 1 {
				t.Fatalf("got %d chat.update calls, want 1", len(calls))
			}
			checkToken(t, calls)
			call := calls[0]
			if call.Form.Get("channel") != "C0PROD" || call.Form.Get("ts") != "1700000000.000100" {
				t.Errorf("updated channel %q ts %q", call.Form.Get("channel"), call.Form.Get("ts"))
			}
			blocks := formBlocks(t, call)
			if tc.wantButton == "" {
				if a := actionBlocks(blocks); len(a) != 0 {
					t.Errorf("update of a final task has %d actions blocks", len(a))
				}
				if findBlock(blocks, blockIDOutcome) == nil {
					t.Error("update of a final task has no outcome")
				}
				if tc.token != "" && strings.Contains(call.Form.Get("blocks"), tc.token) {
					t.Error("update of a final task carries the token")
				}
			} else {
				checkButtons(t, blocks, tc.wantButton)
			}
		})
	}
}

// TestNotifierNamesTool: a message names the task's tool by the display
// name the registry gives it, and by its source without one.
func TestNotifierNamesTool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		tools *approvals.Tools
		want  string
	}{
		{"registry", testTools, "decide it in FlexDeploy"},
		{"no registry", nil, "decide it in flexdeploy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := newFakeSlack(t)
			n := notifierFor(fake, func(c *Config) { c.Tools = tc.tools }) // no policies: nobody can decide it from Slack
			if _, err := n.Post(context.Background(), fixtureTask(), slackChannel(fixtureTask()), "tok"); err != nil {
				t.Fatalf("Post: %v", err)
			}
			if err := n.Notice(context.Background(), fixtureTask(), slackMessage(fixtureTask()), approvals.NoticeReminder); err != nil {
				t.Fatalf("Remind: %v", err)
			}
			posts := fake.CallsTo("chat.postMessage")
			if len(posts) != 2 {
				t.Fatalf("got %d chat.postMessage calls, want 2", len(posts))
			}
			for _, c := range posts {
				if !strings.Contains(c.Text(), tc.want) {
					t.Errorf("%s does not say %q: %s", c.Method, tc.want, c.Text())
				}
			}
		})
	}
}

func TestNotifierRemind(t *testing.T) {
	t.Parallel()
	fake := newFakeSlack(t)
	n := notifierFor(fake, func(c *Config) { c.Policies = policies })
	if err := n.Notice(context.Background(), fixtureTask(), slackMessage(fixtureTask()), approvals.NoticeReminder); err != nil {
		t.Fatalf("Remind: %v", err)
	}
	calls := fake.CallsTo("chat.postMessage")
	if len(calls) != 1 {
		t.Fatalf("got %d chat.postMessage calls, want 1", len(calls))
	}
	checkToken(t, calls)
	call := calls[0]
	if call.Form.Get("channel") != "C0PROD" || call.Form.Get("thread_ts") != "1700000000.000100" {
		t.Errorf("reminder went to channel %q thread %q", call.Form.Get("channel"), call.Form.Get("thread_ts"))
	}
	text := call.Form.Get("text")
	for _, want := range []string{"⏰ Still waiting for approval", "expires <!date^", "<@U1>", "<!subteam^S2>"} {
		if !strings.Contains(text, want) {
			t.Errorf("reminder %q does not contain %q", text, want)
		}
	}

	t.Run("final task", func(t *testing.T) {
		t.Parallel()
		fake := newFakeSlack(t)
		task := fixtureTask()
		task.Status = approvals.StatusRejected
		if err := notifierFor(fake, nil).Notice(context.Background(), task, slackMessage(task), approvals.NoticeReminder); err != nil {
			t.Fatalf("Remind: %v", err)
		}
		if n := len(fake.Calls()); n != 0 {
			t.Errorf("reminding a final task made %d calls", n)
		}
	})
	t.Run("not posted", func(t *testing.T) {
		t.Parallel()
		fake := newFakeSlack(t)
		task := fixtureTask()
		task.Messages = []approvals.MessageRef{approvals.MessageRef{}}
		if err := notifierFor(fake, nil).Notice(context.Background(), task, slackMessage(task), approvals.NoticeReminder); !approvals.IsPermanent(err) {
			t.Errorf("Remind of an unposted task = %v, want a permanent error", err)
		}
	})
}

func TestNotifierEphemeral(t *testing.T) {
	t.Parallel()
	fake := newFakeSlack(t)
	if err := notifierFor(fake, nil).Ephemeral(context.Background(), "C1", "U1", "You are not an approver"); err != nil {
		t.Fatalf("Ephemeral: %v", err)
	}
	calls := fake.CallsTo("chat.postEphemeral")
	if len(calls) != 1 {
		t.Fatalf("got %d chat.postEphemeral calls, want 1", len(calls))
	}
	checkToken(t, calls)
	f := calls[0].Form
	if f.Get("channel") != "C1" || f.Get("user") != "U1" || f.Get("text") != "You are not an approver" {
		t.Errorf("ephemeral sent %v", f)
	}
}

func TestNotifierOpenRejectReason(t *testing.T) {
	t.Parallel()
	fake := newFakeSlack(t)
	if err := notifierFor(fake, nil).OpenRejectReason(context.Background(), "trigger-1", "tok-reason"); err != nil {
		t.Fatalf("OpenRejectReason: %v", err)
	}
	calls := fake.CallsTo("views.open")
	if len(calls) != 1 {
		t.Fatalf("got %d views.open calls, want 1", len(calls))
	}
	call := calls[0]
	if call.Auth != "Bearer "+testBotToken {
		t.Errorf("Authorization = %q", call.Auth)
	}
	raw, _ := json.Marshal(call.JSON)
	var req struct {
		TriggerID string `json:"trigger_id"`
		View      struct {
			Type            string `json:"type"`
			CallbackID      string `json:"callback_id"`
			PrivateMetadata string `json:"private_metadata"`
			Blocks          []struct {
				Type     string `json:"type"`
				BlockID  string `json:"block_id"`
				Optional bool   `json:"optional"`
				Element  struct {
					Type      string `json:"type"`
					ActionID  string `json:"action_id"`
					Multiline bool   `json:"multiline"`
				} `json:"element"`
			} `json:"blocks"`
		} `json:"view"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	v := req.View
	if req.TriggerID != "trigger-1" || v.Type != "modal" || v.CallbackID != "reject_reason" || v.PrivateMetadata != "tok-reason" {
		t.Errorf("views.open sent %s", raw)
	}
	if len(v.Blocks) != 1 {
		t.Fatalf("modal has %d blocks, want 1: %s", len(v.Blocks), raw)
	}
	b := v.Blocks[0]
	if b.Type != "input" || b.BlockID != "reason" || b.Optional || b.Element.Type != "plain_text_input" || b.Element.ActionID != "reason" || !b.Element.Multiline {
		t.Errorf("modal input = %+v", b)
	}
}

func TestNotifierErrors(t *testing.T) {
	t.Parallel()
	slackError := func(code string) *slacktest.Answer {
		return &slacktest.Answer{Body: `{"ok":false,"error":"` + code + `","needed":"chat:write"}`}
	}
	tests := []struct {
		name       string
		answer     *slacktest.Answer
		update     bool
		retryAfter time.Duration
		permanent  bool
		contains   string
	}{
		{name: "rate limited", answer: &slacktest.Answer{Status: 429, Header: map[string]string{"Retry-After": "7"}}, retryAfter: 7 * time.Second},
		{name: "server error", answer: &slacktest.Answer{Status: 503, Body: "<html>down</html>"}, contains: "HTTP 503"},
		{name: "bad gateway", answer: &slacktest.Answer{Status: 502}, contains: "HTTP 502"},
		{name: "not in channel", answer: slackError("not_in_channel"), contains: "invite"},
		{name: "channel not found", answer: slackError("channel_not_found"), contains: "channel_not_found"},
		{name: "invalid auth", answer: slackError("invalid_auth"), contains: "slack.bot_token"},
		{name: "account inactive", answer: slackError("account_inactive"), contains: "account_inactive"},
		{name: "token revoked", answer: slackError("token_revoked"), contains: "revoked"},
		{name: "missing scope", answer: slackError("missing_scope"), contains: "chat:write"},
		{name: "invalid blocks", answer: slackError("invalid_blocks"), permanent: true, contains: "invalid_blocks"},
		{name: "message too long", answer: slackError("msg_too_long"), permanent: true},
		{name: "invalid arguments", answer: slackError("invalid_arguments"), permanent: true},
		{name: "message not found", answer: slackError("message_not_found"), update: true, permanent: true},
		{name: "cannot update", answer: slackError("cant_update_message"), update: true, permanent: true},
		{name: "unknown code", answer: slackError("fatal_error"), contains: "fatal_error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := newFakeSlack(t)
			fake.SetAnswer(func(slacktest.Call) *slacktest.Answer { return tc.answer })
			n := notifierFor(fake, nil)
			var err error
			if tc.update {
				err = n.Update(context.Background(), fixtureTask(), slackRefs(fixtureTask()), "tok")
			} else {
				_, err = n.Post(context.Background(), fixtureTask(), slackChannel(fixtureTask()), "tok")
			}
			if err == nil {
				t.Fatal("call succeeded")
			}
			after, isRetryAfter := approvals.RetryAfter(err)
			if tc.retryAfter > 0 {
				if !isRetryAfter || after != tc.retryAfter {
					t.Errorf("RetryAfter(%v) = %v, %v; want %v", err, after, isRetryAfter, tc.retryAfter)
				}
			} else if isRetryAfter {
				t.Errorf("%v is a RetryAfterError", err)
			}
			if got := approvals.IsPermanent(err); got != tc.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, got, tc.permanent)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("error %q does not contain %q", err, tc.contains)
			}
			if !strings.HasPrefix(err.Error(), "slack: ") {
				t.Errorf("error %q does not name the adapter", err)
			}
			if strings.Contains(err.Error(), testBotToken) || strings.Contains(err.Error(), "xoxb") {
				t.Errorf("error %q shows the bot token", err)
			}
		})
	}
}

func TestNotifierTransportErrors(t *testing.T) {
	t.Parallel()
	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		fake := slacktest.New()
		fake.Close() // nobody listens there any more
		n := New(Config{BotToken: testBotToken, APIURL: fake.APIURL(), DefaultChannel: "C1"})
		_, err := n.Post(context.Background(), fixtureTask(), slackChannel(fixtureTask()), "tok")
		checkRetryable(t, err)
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		fake := newFakeSlack(t)
		fake.SetAnswer(func(slacktest.Call) *slacktest.Answer { return &slacktest.Answer{Stall: true} })
		n := New(Config{BotToken: testBotToken, APIURL: fake.APIURL(), Timeout: 50 * time.Millisecond})
		err := n.Ephemeral(context.Background(), "C1", "U1", "hi")
		checkRetryable(t, err)
	})
	t.Run("no bot token", func(t *testing.T) {
		t.Parallel()
		fake := newFakeSlack(t)
		n := notifierFor(fake, func(c *Config) { c.BotToken = "" })
		_, err := n.Post(context.Background(), fixtureTask(), slackChannel(fixtureTask()), "tok")
		checkRetryable(t, err)
		if n := len(fake.Calls()); n != 0 {
			t.Errorf("made %d calls without a token", n)
		}
	})
}

func checkRetryable(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("call succeeded")
	}
	if approvals.IsPermanent(err) {
		t.Errorf("%v is permanent, want retryable", err)
	}
	if _, ok := approvals.RetryAfter(err); ok {
		t.Errorf("%v is a RetryAfterError", err)
	}
	if strings.Contains(err.Error(), testBotToken) {
		t.Errorf("error %q shows the bot token", err)
	}
}
