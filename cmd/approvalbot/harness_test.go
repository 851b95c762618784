package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/bot"
	"github.com/approvalbot/approvalbot/internal/flexdeploytest"
	"github.com/approvalbot/approvalbot/internal/slacktest"
)

// Secrets of the test configuration; the log scan looks for every one.
const (
	testAPIKey        = "e2e-api-key-0123456789abcdef"
	testBotToken      = "xoxb-e2e-bot-token-0123456789"
	testSigningSecret = "e2e-slack-signing-secret-0123456789"
	testSigningKey    = "e2e-token-signing-key-0123456789abcdefgh"
	testFDPassword    = "e2e-flexdeploy-password-0123"
)

// syncBuffer collects the bot's log lines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is one end-to-end set-up: the fake neighbours and a bot.
type env struct {
	t         *testing.T
	slack     *slacktest.Server
	fd        *flexdeploytest.Server
	dir       string
	config    string          // path of the config file
	policies  string          // YAML of the policies key
	extra     string          // more YAML appended to the config
	store     string          // YAML of the store key; the embedded store when empty
	slackCfg  string          // YAML of the slack key; HTTP mode when empty
	serverCfg string          // YAML of the server key; loopback on a free port when empty
	enrich    bool            // flexdeploy.enrich
	clock     approvals.Clock // the domain's clock; the wall clock when nil
	pace      *bot.PaceConfig // Slack's rate limits as the bot paces them; Slack's own when nil
	fdUser    string          // flexdeploy.username; approvalbot when empty
	chats     []chatAdapter   // chats registered after Slack
	logs      *syncBuffer
	url       string
	stop      func()
	tokens    []string // every token seen on a button
}

const defaultPolicies = `
  - name: production
    match: {environment: "PROD*"}
    channel: CPROD
    approvers: {users: [UALICE, UBOB, UCAROL], groups: [SREL], emails: [lead@example.com]}
    required_approvals: 1
`

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, slack: slacktest.New(), fd: flexdeploytest.New(), dir: t.TempDir(), logs: &syncBuffer{}, policies: defaultPolicies}
	e.slack.Groups["SREL"] = []string{"UGROUP"}
	e.slack.Emails["lead@example.com"] = "ULEAD"
	e.slack.Emails["dev@example.com"] = "UDEV"
	t.Cleanup(e.slack.Close)
	t.Cleanup(e.fd.Close)
	e.config = filepath.Join(e.dir, "approvalbot.yaml")
	t.Cleanup(func() {
		if e.stop != nil {
			e.stop()
		}
		e.assertNoSecretsInLogs()
		e.assertNoTokensAtRest()
	})
	return e
}

func (e *env) configYAML() string {
	store := e.store
	if store == "" {
		store = fmt.Sprintf("{driver: bolt, bolt: {path: %q}}", filepath.Join(e.dir, "approvalbot.db"))
	}
	serverCfg := e.serverCfg
	if serverCfg == "" {
		serverCfg = `{listen: "127.0.0.1:0", shutdown_timeout: 5s}`
	}
	slackCfg := e.slackCfg
	if slackCfg == "" {
		slackCfg = fmt.Sprintf("{bot_token: %q, signing_secret: %q, api_url: %q, channel: CDEFAULT}", testBotToken, testSigningSecret, e.slack.APIURL())
	}
	return fmt.Sprintf(`
server: %s
log: {level: debug}
intake:
  api_keys: [{name: flexdeploy, key: %q}]
store: %s
tokens:
  ttl: 1h
  signing_keys: [{id: k1, secret: %q}]
slack: %s
flexdeploy: {base_url: %q, username: %q, password: %q, timeout: 2s, enrich: %v}
sweeper: {interval: 200ms}
policies:%s
%s`, serverCfg, testAPIKey, store, testSigningKey, slackCfg, e.fd.BaseURL(), cmp.Or(e.fdUser, "approvalbot"), testFDPassword, e.enrich, e.policies, e.extra)
}

// start writes the configuration and runs the bot until stopped.
func (e *env) start() {
	e.t.Helper()
	if err := os.WriteFile(e.config, []byte(e.configYAML()), 0o600); err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	var stderr syncBuffer
	go func() {
		done <- serve(ctx, e.config, e.logs, &stderr, serveOptions{onReady: func(a net.Addr) { ready <- a }, clock: e.clock, pace: e.pace, chats: e.chats})
	}()
	select {
	case a := <-ready:
		e.url = "http://" + a.String()
	case err := <-done:
		cancel()
		e.t.Fatalf("bot did not start: %v\n%s", err, stderr.String())
	case <-time.After(10 * time.Second):
		cancel()
		e.t.Fatal("bot did not start in time")
	}
	e.stop = func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("bot stopped with: %v", err)
		}
		e.stop = nil
	}
}

func (e *env) restart() {
	e.t.Helper()
	e.stop()
	e.start()
}

// api calls the bot's HTTP API with the key.
func (e *env) api(method, path, body string) (int, http.Header, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
	req.Header.Set("X-API-Key", testAPIKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, res.Header, out
}

// submit posts a task and returns its id.
func (e *env) submit(body string) string {
	e.t.Helper()
	status, h, task := e.api("POST", "/v1/tasks", body)
	if status != http.StatusAccepted {
		e.t.Fatalf("intake: %d %v", status, task)
	}
	if h.Get("Location") != "/v1/tasks/"+task["id"].(string) {
		e.t.Fatalf("Location %q for %v", h.Get("Location"), task["id"])
	}
	return task["id"].(string)
}

// message waits for the FlexDeploy task's message to be posted and returns
// the call.
func (e *env) message(taskID string) slacktest.Call {
	e.t.Helper()
	return e.messageOf("FlexDeploy task " + taskID)
}

// messageOf waits for the message whose text names the task, e.g. "Azure
// DevOps task 1a2b", and returns the call.
func (e *env) messageOf(name string) slacktest.Call {
	e.t.Helper()
	var found slacktest.Call
	waitFor(e.t, "message for "+name, func() bool {
		for _, c := range e.slack.CallsTo("chat.postMessage") {
			// Tests use task ids that are no prefix of each other.
			if c.Form.Get("thread_ts") == "" && strings.Contains(c.Text(), name) {
				found = c
				return true
			}
		}
		return false
	})
	for _, b := range found.Buttons() {
		e.tokens = append(e.tokens, b.Value)
	}
	return found
}

// click sends a signed click on the message's button as the user.
func (e *env) click(msg slacktest.Call, actionID, userID, userName string) int {
	e.t.Helper()
	click, err := slacktest.ClickOn(msg, actionID, userID, userName)
	if err != nil {
		e.t.Fatal(err)
	}
	req, err := slacktest.InteractionRequest(e.url+"/slack/interactions", testSigningSecret, time.Now(), click.Payload())
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// task reads the task's status JSON.
func (e *env) task(id string) (int, map[string]any) {
	e.t.Helper()
	status, _, body := e.api("GET", "/v1/tasks/"+id, "")
	return status, body
}

// waitTask waits until the task JSON satisfies cond.
func (e *env) waitTask(id, what string, cond func(task map[string]any) bool) map[string]any {
	e.t.Helper()
	var last map[string]any
	waitFor(e.t, what, func() bool {
		_, last = e.task(id)
		return cond(last)
	})
	return last
}

func delivered(task map[string]any) bool {
	d, _ := task["delivery"].(map[string]any)
	return d["state"] == "delivered"
}

func deliveryState(task map[string]any) string {
	d, _ := task["delivery"].(map[string]any)
	s, _ := d["state"].(string)
	return s
}

// assertNoSecretsInLogs scans everything the bot logged for the configured
// secrets and every token it put on a button.
func (e *env) assertNoSecretsInLogs() {
	logs := e.logs.String()
	for _, c := range e.slack.CallsTo("chat.postMessage") {
		for _, b := range c.Buttons() {
			e.tokens = append(e.tokens, b.Value)
		}
	}
	for _, secret := range append([]string{testAPIKey, testBotToken, testSigningSecret, testSigningKey, testFDPassword}, e.tokens...) {
		if secret != "" && strings.Contains(logs, secret) {
			e.t.Errorf("a secret reached the logs: %.12s…", secret)
		}
	}
}

// assertNoTokensAtRest reads the embedded store's file (the bot has
// stopped) and looks for every token the bot put on a button: the store
// keeps only their hashes.
func (e *env) assertNoTokensAtRest() {
	raw, err := os.ReadFile(filepath.Join(e.dir, "approvalbot.db"))
	if err != nil {
		return // another store, or the bot never started
	}
	for _, token := range e.tokens {
		if token != "" && bytes.Contains(raw, []byte(token)) {
			e.t.Errorf("a token is readable in the store file: %.12s…", token)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
