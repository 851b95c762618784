package main

// Crash tests: the real binary, run as a child process on the embedded
// store, is killed with SIGKILL at each step of the flow and started again.
// Whatever the moment of the kill, every task the intake accepted must get
// its Slack message, and every decision a click recorded must reach
// FlexDeploy exactly once.
//
// Each start of the bot is a generation (1, 2, …) with its own Slack bot
// token and FlexDeploy user name, so the fakes can tell which process sent
// a call. That makes "Slack (or FlexDeploy) was down while the killed
// process ran" exact: a request the dead process wrote just before the kill
// but the fake read only afterwards still gets the answer meant for it.
//
// The window the design cannot close: chat.postMessage has no idempotency
// key. When Slack has posted a message (whether or not its answer got back)
// and the process dies before it has written the message's ts to the
// store, the next start posts the task again: a second message with the
// same, still valid, buttons. For posts the outbox is at least once. These
// tests keep the kill out of that window — Slack refuses the killed
// process's posts, or the test awaits the recorded ts before the kill —
// and TestCrashAfterIntake's in-flight case uses a Slack that did not take
// the killed request.

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/flexdeploy"
	"github.com/approvalbot/approvalbot/internal/flexdeploytest"
	"github.com/approvalbot/approvalbot/internal/slacktest"
)

// crashBinary is the approvalbot binary the crash tests run, built once per
// test binary run.
var crashBinary struct {
	once sync.Once
	path string
	err  error
}

// approvalbotBinary builds the bot (without -race: the child's speed
// matters more than its race checks, which the in-process tests do).
func approvalbotBinary(t *testing.T) string {
	t.Helper()
	crashBinary.once.Do(func() {
		gobin, err := exec.LookPath("go")
		if err != nil {
			crashBinary.err = fmt.Errorf("the crash tests build the bot and need the go command: %w", err)
			return
		}
		dir, err := crashBuildDir()
		if err != nil {
			crashBinary.err = err
			return
		}
		path := filepath.Join(dir, "approvalbot-crashtest")
		cmd := exec.Command(gobin, "build", "-o", path, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			crashBinary.err = fmt.Errorf("go build: %w\n%s", err, out)
			return
		}
		crashBinary.path = path
	})
	if crashBinary.err != nil {
		t.Fatal(crashBinary.err)
	}
	return crashBinary.path
}

// crashBuildDir is where the bot is built. Under `go test` the test binary
// runs from the go command's work directory, which the go command removes
// after the run, so the bot built beside it leaves nothing behind; a test
// binary run by hand builds into a temporary directory of its own.
func crashBuildDir() (string, error) {
	if exe, err := os.Executable(); err == nil && strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return filepath.Dir(exe), nil
	}
	return os.MkdirTemp("", "approvalbot-crashtest-")
}

// crashBot is one bot whose process the test kills and restarts, with its
// fake neighbours. The store (a bolt file) outlives the processes.
type crashBot struct {
	t      *testing.T
	bin    string
	slack  *slacktest.Server
	fd     *flexdeploytest.Server
	dir    string
	client *http.Client
	// fdBaseURL is flexdeploy.base_url; the fake's unless a test puts
	// something in front of it.
	fdBaseURL string

	gen    int // generation of the current (or last) process
	cmd    *exec.Cmd
	exited chan struct{}
	url    string
}

func newCrashBot(t *testing.T) *crashBot {
	t.Helper()
	b := &crashBot{
		t:      t,
		bin:    approvalbotBinary(t),
		slack:  slacktest.New(),
		fd:     flexdeploytest.New(),
		dir:    t.TempDir(),
		client: &http.Client{Timeout: 10 * time.Second},
	}
	b.fdBaseURL = b.fd.BaseURL()
	t.Cleanup(b.slack.Close)
	t.Cleanup(b.fd.Close)
	// Registered after the fakes, so it runs before they close: a fake
	// waits for its open requests, and a live child would keep making them.
	t.Cleanup(func() {
		b.kill()
		if t.Failed() {
			b.dumpLogs()
		}
	})
	return b
}

// crashBotToken and crashFDUser are a generation's credentials.
func crashBotToken(gen int) string { return fmt.Sprintf("xoxb-crash-test-token-g%d", gen) }
func crashFDUser(gen int) string   { return fmt.Sprintf("approvalbot-g%d", gen) }

// slackGen is the generation of the process that made a Slack call.
func slackGen(c slacktest.Call) int { return generationOf(c.Token()) }

// fdGen is the generation of the process that made a FlexDeploy call.
func fdGen(c flexdeploytest.Call) int {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(c.Auth, "Basic "))
	if err != nil {
		return 0
	}
	user, _, _ := strings.Cut(string(raw), ":")
	return generationOf(user)
}

func generationOf(s string) int {
	i := strings.LastIndex(s, "-g")
	if i < 0 {
		return 0
	}
	n, err := strconv.Atoi(s[i+2:])
	if err != nil {
		return 0
	}
	return n
}

func (b *crashBot) configYAML() string {
	// reconcile is pushed out of the way: its status reads would blur the
	// "status read before a resumed delivery" checks. Expiry is an hour off.
	return fmt.Sprintf(`
server: {listen: "127.0.0.1:0", shutdown_timeout: 1s}
log: {level: debug}
intake:
  api_keys: [{name: flexdeploy, key: %q}]
store: {driver: bolt, bolt: {path: %q}}
tokens:
  ttl: 1h
  signing_keys: [{id: k1, secret: %q}]
slack: {bot_token: %q, signing_secret: %q, api_url: %q, channel: CDEFAULT}
flexdeploy: {base_url: %q, username: %q, password: %q, timeout: 10s, enrich: false}
sweeper: {interval: 200ms}
reconcile: {interval: 1h}
policies:%s
`, testAPIKey, filepath.Join(b.dir, "approvalbot.db"), testSigningKey, crashBotToken(b.gen), testSigningSecret,
		b.slack.APIURL(), b.fdBaseURL, crashFDUser(b.gen), testFDPassword, defaultPolicies)
}

func (b *crashBot) logPath(gen int) string {
	return filepath.Join(b.dir, fmt.Sprintf("approvalbot-g%d.log", gen))
}

// start starts the next generation and waits until it is ready.
func (b *crashBot) start() {
	b.t.Helper()
	if b.cmd != nil {
		b.t.Fatal("start: the bot is running")
	}
	b.gen++
	config := filepath.Join(b.dir, fmt.Sprintf("approvalbot-g%d.yaml", b.gen))
	if err := os.WriteFile(config, []byte(b.configYAML()), 0o600); err != nil {
		b.t.Fatal(err)
	}
	logFile, err := os.Create(b.logPath(b.gen))
	if err != nil {
		b.t.Fatal(err)
	}
	cmd := exec.Command(b.bin, "serve", "--config", config)
	cmd.Dir = b.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "APPROVALBOT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	err = cmd.Start()
	logFile.Close() // the child has its own copy
	if err != nil {
		b.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	b.cmd, b.exited = cmd, exited

	var addr string
	waitFor(b.t, fmt.Sprintf("generation %d to listen", b.gen), func() bool {
		select {
		case <-exited:
			b.t.Fatalf("generation %d exited: %s\n%s", b.gen, cmd.ProcessState, b.readLog(b.gen))
		default:
		}
		addr = b.readyAddr()
		return addr != ""
	})
	b.url = "http://" + addr
	waitFor(b.t, "/readyz", func() bool {
		res, err := b.client.Get(b.url + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}

// readyAddr is the address the current generation logged it listens on.
func (b *crashBot) readyAddr() string {
	f, err := os.Open(b.logPath(b.gen))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Message string `json:"message"`
			Addr    string `json:"addr"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Message == "approvalbot ready" && line.Addr != "" {
			return line.Addr
		}
	}
	return ""
}

// kill ends the process with SIGKILL: no shutdown code runs.
func (b *crashBot) kill() {
	if b.cmd == nil {
		return
	}
	if err := b.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		b.t.Errorf("kill generation %d: %v", b.gen, err)
	}
	select {
	case <-b.exited:
	case <-time.After(15 * time.Second):
		b.t.Errorf("generation %d did not exit after SIGKILL", b.gen)
	}
	b.cmd = nil
}

func (b *crashBot) readLog(gen int) string {
	raw, _ := os.ReadFile(b.logPath(gen))
	return string(raw)
}

// dumpLogs shows what each process did, its HTTP access lines left out.
func (b *crashBot) dumpLogs() {
	for gen := 1; gen <= b.gen; gen++ {
		var kept []string
		for _, line := range strings.Split(b.readLog(gen), "\n") {
			if !strings.Contains(line, `"message":"request"`) {
				kept = append(kept, line)
			}
		}
		log := strings.Join(kept, "\n")
		if len(log) > 32<<10 {
			log = "…" + log[len(log)-32<<10:]
		}
		b.t.Logf("log of generation %d:\n%s", gen, log)
	}
}

// api calls the bot's HTTP API with the key.
func (b *crashBot) api(method, path, body string) (int, map[string]any) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.url+path, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("X-API-Key", testAPIKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, out
}

// submit hands the bot a PROD task and returns its record id once the
// intake accepted it.
func (b *crashBot) submit(taskID string) string {
	b.t.Helper()
	status, task := b.api(http.MethodPost, "/v1/tasks", fmt.Sprintf(`{"taskId":%q,"environment":"PROD","description":"crash test"}`, taskID))
	if status != http.StatusAccepted {
		b.t.Fatalf("intake of %s: %d %v", taskID, status, task)
	}
	id, _ := task["id"].(string)
	if id == "" {
		b.t.Fatalf("intake of %s answered no id: %v", taskID, task)
	}
	return id
}

func (b *crashBot) task(id string) map[string]any {
	b.t.Helper()
	status, task := b.api(http.MethodGet, "/v1/tasks/"+id, "")
	if status != http.StatusOK && status != http.StatusAccepted {
		b.t.Fatalf("status of %s: %d %v", id, status, task)
	}
	return task
}

func (b *crashBot) waitTask(id, what string, cond func(task map[string]any) bool) map[string]any {
	b.t.Helper()
	var last map[string]any
	waitFor(b.t, id+": "+what, func() bool {
		last = b.task(id)
		return cond(last)
	})
	return last
}

// messageTS is the ts of the message the store recorded for the task.
func messageTS(task map[string]any) string {
	m, _ := task["message"].(map[string]any)
	ts, _ := m["ts"].(string)
	return ts
}

func hasMessage(task map[string]any) bool { return messageTS(task) != "" }

// posts are the task's chat.postMessage calls (thread replies aside) made
// by the given generation; gen 0 means every generation.
func (b *crashBot) posts(taskID string, gen int) []slacktest.Call {
	var out []slacktest.Call
	for _, c := range b.slack.CallsTo("chat.postMessage") {
		if c.Form.Get("thread_ts") == "" && isAbout(c, taskID) && (gen == 0 || slackGen(c) == gen) {
			out = append(out, c)
		}
	}
	return out
}

// isAbout tells whether a Slack call renders the task (tests use task ids
// of which none is a prefix of another).
func isAbout(c slacktest.Call, taskID string) bool {
	return strings.Contains(c.Text(), "FlexDeploy task "+taskID)
}

// finalUpdate waits for a chat.update of the message that shows the
// outcome FlexDeploy accepted, without buttons, sent by generation gen.
func (b *crashBot) finalUpdate(taskID, ts string, gen int) {
	b.t.Helper()
	waitFor(b.t, taskID+": message updated with the accepted outcome", func() bool {
		for _, c := range b.slack.CallsTo("chat.update") {
			if c.Form.Get("ts") == ts && slackGen(c) == gen && len(c.Buttons()) == 0 &&
				strings.Contains(c.Text(), "accepted the decision") {
				return true
			}
		}
		return false
	})
}

// click sends a signed click on the message's button.
func (b *crashBot) click(msg slacktest.Call, actionID, userID, userName string) {
	b.t.Helper()
	click, err := slacktest.ClickOn(msg, actionID, userID, userName)
	if err != nil {
		b.t.Fatal(err)
	}
	req, err := slacktest.InteractionRequest(b.url+"/slack/interactions", testSigningSecret, time.Now(), click.Payload())
	if err != nil {
		b.t.Fatal(err)
	}
	res, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b.t.Fatalf("click answered %d", res.StatusCode)
	}
}

// fdCalls are FlexDeploy's calls for the task from index from on: PUTs
// (approve or reject) and GETs (status reads).
func (b *crashBot) fdCalls(taskID string, from int) (calls []flexdeploytest.Call) {
	all := b.fd.Calls()
	for _, c := range all[min(from, len(all)):] {
		if strings.HasSuffix(c.Path, "/"+taskID) {
			calls = append(calls, c)
		}
	}
	return calls
}

func isDecision(c flexdeploytest.Call) bool { return c.Method == http.MethodPut }

func isStatusRead(c flexdeploytest.Call, taskID string) bool {
	return c.Method == http.MethodGet && c.Path == flexdeploytest.Root+"/tasks/approval/"+taskID
}

// checkStatusReadFirst fails unless the calls (those of a resumed delivery)
// hold a status read before their first decision.
func checkStatusReadFirst(t *testing.T, taskID string, calls []flexdeploytest.Call) {
	t.Helper()
	for _, c := range calls {
		if isStatusRead(c, taskID) {
			return
		}
		if isDecision(c) {
			t.Errorf("%s: the resumed delivery sent %s %s without asking FlexDeploy's status first", taskID, c.Method, c.Path)
			return
		}
	}
	t.Errorf("%s: the resumed delivery never asked FlexDeploy's status", taskID)
}

// TestCrashAfterIntake: the intake answered 202 and the process dies before
// the message is in Slack — before the post, with the post on the wire, or
// after a refused post was recorded for a retry. The next start posts the
// message, once, with buttons that work.
func TestCrashAfterIntake(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// hold: Slack holds the first process's posts unanswered (in
		// flight) until after the kill; otherwise it refuses them at once.
		hold bool
		// postsBeforeKill is how many of the first process's posts to see
		// before the kill. A second post means the first one's failure
		// was written to the outbox.
		postsBeforeKill int
	}{
		{name: "right after the 202", postsBeforeKill: 0},
		{name: "with the post in flight", hold: true, postsBeforeKill: 1},
		{name: "after a refused post was recorded", postsBeforeKill: 2},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			taskID := fmt.Sprintf("intake%d", i+1)
			b := newCrashBot(t)
			release := make(chan struct{})
			t.Cleanup(func() { closeOnce(release) }) // before the fake closes
			// Slack does not take the first process's posts: Slack here
			// never holds a message the store has no record of (see the
			// file comment for the window when it does).
			b.slack.SetAnswer(func(c slacktest.Call) *slacktest.Answer {
				if c.Method != "chat.postMessage" || slackGen(c) != 1 {
					return nil
				}
				if tc.hold {
					<-release
				}
				return &slacktest.Answer{Status: http.StatusServiceUnavailable, Body: "upstream connect error"}
			})
			b.start()
			id := b.submit(taskID)
			if tc.postsBeforeKill > 0 {
				waitFor(t, fmt.Sprintf("%d posts", tc.postsBeforeKill), func() bool {
					return len(b.posts(taskID, 1)) >= tc.postsBeforeKill
				})
			}
			b.kill()
			closeOnce(release)

			b.start()
			task := b.waitTask(id, "message posted after the restart", hasMessage)
			// The post job leaves the outbox in the write that records the
			// ts: once the status shows the message, no post can follow.
			posts := b.posts(taskID, 2)
			if len(posts) != 1 {
				t.Fatalf("%d messages posted after the restart, want 1", len(posts))
			}
			if got := task["status"]; got != "pending" {
				t.Fatalf("status %v, want pending", got)
			}
			// No token is at rest: the restarted process minted the
			// buttons' token again, and the click must be accepted.
			b.click(posts[0], "approve", "UALICE", "Alice")
			b.waitTask(id, "delivered", delivered)
			if n := len(b.fd.Decisions()); n != 1 {
				t.Fatalf("%d FlexDeploy decisions, want 1", n)
			}
		})
	}
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// TestCrashDuringDelivery: the click was answered 200 and the process dies
// while its PUT hangs at FlexDeploy. Whether FlexDeploy took the decision
// or lost it, the next start asks FlexDeploy's status first and the
// decision takes effect exactly once.
func TestCrashDuringDelivery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// taken: FlexDeploy processed the hung PUT (its status says so);
		// otherwise the PUT was lost with the connection.
		taken bool
	}{
		{name: "FlexDeploy took the decision", taken: true},
		{name: "FlexDeploy lost the decision", taken: false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			taskID := fmt.Sprintf("deliver%d", i+1)
			b := newCrashBot(t)
			b.start()
			id := b.submit(taskID)
			b.waitTask(id, "message posted", hasMessage)
			msg := b.posts(taskID, 1)[0]

			// Far longer than the kill takes; the fake lets go when the
			// killed process's connection closes.
			b.fd.SetDelay(time.Minute)
			b.click(msg, "approve", "UALICE", "Alice")
			waitFor(t, "the PUT to reach FlexDeploy", func() bool {
				for _, c := range b.fdCalls(taskID, 0) {
					if isDecision(c) {
						return true
					}
				}
				return false
			})
			if tc.taken {
				b.fd.SetStatus(taskID, "APPROVED")
			}
			b.kill()
			b.fd.SetDelay(0)
			mark := len(b.fd.Calls())

			b.start()
			task := b.waitTask(id, "delivered after the restart", delivered)
			if task["status"] != "approved" {
				t.Fatalf("status %v", task["status"])
			}
			// The deliver job leaves the outbox in the write that marks
			// the task delivered: no call can follow.
			after := b.fdCalls(taskID, mark)
			checkStatusReadFirst(t, taskID, after)
			var puts int
			for _, c := range after {
				if isDecision(c) {
					puts++
					if c.Path != flexdeploytest.Root+"/tasks/approval/approve/"+taskID || fdGen(c) != 2 {
						t.Errorf("PUT %s from generation %d", c.Path, fdGen(c))
					}
				}
			}
			want := 1
			if tc.taken {
				want = 0 // the killed PUT was the one
			}
			if puts != want {
				t.Fatalf("%d decisions sent after the restart, want %d", puts, want)
			}
			b.finalUpdate(taskID, messageTS(task), 2)
		})
	}
}

// TestCrashDuringDeliveryStatusUnreadable: FlexDeploy took the decision
// whose call the kill cut off, and the restarted process's first status
// read fails (FlexDeploy briefly unreachable — likely, when the failure
// that cut the call off was the network). The decision must not be sent a
// second time: the delivery has to wait and ask again.
func TestCrashDuringDeliveryStatusUnreadable(t *testing.T) {
	t.Parallel()
	const taskID = "unreadable1"
	b := newCrashBot(t)
	var (
		mu       sync.Mutex
		toRefuse int // status reads still to refuse
		refused  int
	)
	target, err := url.Parse(b.fd.Server.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{ResponseHeaderTimeout: 2 * time.Minute}
	proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) {
		w.WriteHeader(http.StatusBadGateway) // the killed process's call
	}
	// In front of the fake FlexDeploy, which cannot refuse a status read.
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		refuse := r.Method == http.MethodGet && toRefuse > 0
		if refuse {
			toRefuse--
			refused++
		}
		mu.Unlock()
		if refuse {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"message":"service unavailable"}`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	b.fdBaseURL = front.URL + flexdeploytest.Root

	b.start()
	id := b.submit(taskID)
	b.waitTask(id, "message posted", hasMessage)
	b.fd.SetDelay(time.Minute)
	b.click(b.posts(taskID, 1)[0], "approve", "UALICE", "Alice")
	waitFor(t, "the PUT to reach FlexDeploy", func() bool { return len(b.fd.Decisions()) > 0 })
	b.fd.SetStatus(taskID, "APPROVED")
	b.kill()
	b.fd.SetDelay(0)
	mark := len(b.fd.Calls())
	// Every try of the first status read: the client's own retries
	// (flexdeploy.DefaultRetries) included.
	mu.Lock()
	toRefuse = 1 + flexdeploy.DefaultRetries
	mu.Unlock()

	b.start()
	b.waitTask(id, "delivered after the restart", delivered)
	mu.Lock()
	n := refused
	mu.Unlock()
	if n == 0 {
		t.Fatal("no status read was refused: the test did not test")
	}
	for _, c := range b.fdCalls(taskID, mark) {
		if isDecision(c) {
			t.Fatalf("the decision FlexDeploy had taken was sent again after a failed status read: %s %s", c.Method, c.Path)
		}
	}
}

// TestCrashBeforeMessageUpdate: FlexDeploy accepted the decision, the
// message update failed (Slack 503) and waits in the outbox when the
// process dies. The next start updates the message and leaves FlexDeploy
// alone.
func TestCrashBeforeMessageUpdate(t *testing.T) {
	t.Parallel()
	b := newCrashBot(t)
	b.slack.SetAnswer(func(c slacktest.Call) *slacktest.Answer {
		if c.Method == "chat.update" && slackGen(c) == 1 {
			return &slacktest.Answer{Status: http.StatusServiceUnavailable, Body: "upstream connect error"}
		}
		return nil
	})
	b.start()
	id := b.submit("update1")
	b.waitTask(id, "message posted", hasMessage)
	b.click(b.posts("update1", 1)[0], "reject", "UBOB", "Bob")
	// Delivery and update run in one round whose single write records
	// both: once delivered shows, the update has failed and waits.
	task := b.waitTask(id, "delivered", delivered)
	if len(b.slack.CallsTo("chat.update")) == 0 {
		t.Fatal("no update was tried before the kill")
	}
	b.kill()
	mark := len(b.fd.Calls())

	b.start()
	b.finalUpdate("update1", messageTS(task), 2)
	if calls := b.fdCalls("update1", mark); len(calls) != 0 {
		t.Fatalf("FlexDeploy called again after the restart: %s %s", calls[0].Method, calls[0].Path)
	}
	if n := len(b.fd.Decisions()); n != 1 {
		t.Fatalf("%d FlexDeploy decisions, want 1", n)
	}
}

// crashState is where a task of TestCrashWithTasksInEveryState is when the
// process dies.
type crashState int

const (
	unposted       crashState = iota // Slack refuses its post
	posted                           // message up, nobody clicked
	deliveryFailed                   // decided, FlexDeploy answers 503
	deliveryTaken                    // decided, PUT hangs; FlexDeploy took it
	deliveryLost                     // decided, PUT hangs; FlexDeploy lost it
	updateFailed                     // delivered, Slack refuses the update
)

func (s crashState) decided() bool { return s >= deliveryFailed }

// TestCrashWithTasksInEveryState kills the process with ten tasks in every
// state at once.
func TestCrashWithTasksInEveryState(t *testing.T) {
	t.Parallel()
	tasks := []struct {
		taskID string
		state  crashState
		action string
	}{
		{"s01", unposted, ""},
		{"s02", unposted, ""},
		{"s03", posted, ""},
		{"s04", posted, ""},
		{"s05", deliveryFailed, "approve"},
		{"s06", deliveryFailed, "reject"},
		{"s07", deliveryTaken, "approve"},
		{"s08", deliveryLost, "reject"},
		{"s09", updateFailed, "approve"},
		{"s10", updateFailed, "reject"},
	}
	stateOf := map[string]crashState{}
	for _, tk := range tasks {
		stateOf[tk.taskID] = tk.state
	}
	taskOfPath := func(path string) string { return path[strings.LastIndex(path, "/")+1:] }
	stateOfSlack := func(c slacktest.Call) (crashState, bool) {
		for id, s := range stateOf {
			if isAbout(c, id) {
				return s, true
			}
		}
		return 0, false
	}

	b := newCrashBot(t)
	b.slack.SetAnswer(func(c slacktest.Call) *slacktest.Answer {
		if slackGen(c) != 1 {
			return nil
		}
		s, ok := stateOfSlack(c)
		if ok && ((c.Method == "chat.postMessage" && s == unposted) || (c.Method == "chat.update" && s == updateFailed)) {
			return &slacktest.Answer{Status: http.StatusServiceUnavailable, Body: "upstream connect error"}
		}
		return nil
	})
	var (
		mu        sync.Mutex
		successes = map[string]int{} // PUTs answered 2xx, by task id
		hung      = map[string]bool{}
	)
	release := make(chan struct{})
	t.Cleanup(func() { closeOnce(release) }) // before the fake closes
	b.fd.SetAnswer(func(c flexdeploytest.Call, _ int) (int, string) {
		id := taskOfPath(c.Path)
		if fdGen(c) == 1 {
			switch stateOf[id] {
			case deliveryFailed:
				return http.StatusServiceUnavailable, `{"message":"down for maintenance"}`
			case deliveryTaken, deliveryLost:
				mu.Lock()
				hung[id] = true
				mu.Unlock()
				<-release
				// The process that sent it is dead: nobody reads this.
				return http.StatusServiceUnavailable, `{"message":"gone"}`
			}
		}
		mu.Lock()
		successes[id]++
		mu.Unlock()
		return 0, ""
	})
	b.start()

	ids := map[string]string{}
	for _, tk := range tasks {
		ids[tk.taskID] = b.submit(tk.taskID)
	}
	for _, tk := range tasks {
		if tk.state == unposted {
			waitFor(t, tk.taskID+": a refused post", func() bool { return len(b.posts(tk.taskID, 1)) > 0 })
			continue
		}
		// Awaiting the recorded ts keeps the kill out of the post window
		// the design cannot close (see the file comment).
		b.waitTask(ids[tk.taskID], "message recorded", hasMessage)
	}
	for _, tk := range tasks {
		if tk.state.decided() {
			user, name := "UALICE", "Alice"
			if tk.action == "reject" {
				user, name = "UBOB", "Bob"
			}
			b.click(b.posts(tk.taskID, 1)[0], tk.action, user, name)
		}
	}
	for _, tk := range tasks {
		switch tk.state {
		case deliveryFailed:
			waitFor(t, tk.taskID+": a refused PUT", func() bool { return len(b.fdCalls(tk.taskID, 0)) > 0 })
		case deliveryTaken, deliveryLost:
			waitFor(t, tk.taskID+": the PUT to hang", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return hung[tk.taskID]
			})
			if tk.state == deliveryTaken {
				b.fd.SetStatus(tk.taskID, strings.ToUpper(tk.action)+"D") // APPROVED, REJECTED
			}
		case updateFailed:
			b.waitTask(ids[tk.taskID], "delivered", delivered)
		}
	}
	b.kill()
	closeOnce(release)
	mark := len(b.fd.Calls())

	b.start()
	for _, tk := range tasks {
		id := ids[tk.taskID]
		if !tk.state.decided() {
			task := b.waitTask(id, "message recorded after the restart", hasMessage)
			if task["status"] != "pending" {
				t.Errorf("%s: status %v, want pending", tk.taskID, task["status"])
			}
			continue
		}
		task := b.waitTask(id, "delivered after the restart", delivered)
		if want := map[string]string{"approve": "approved", "reject": "rejected"}[tk.action]; task["status"] != want {
			t.Errorf("%s: status %v, want %s", tk.taskID, task["status"], want)
		}
		b.finalUpdate(tk.taskID, messageTS(task), 2)
	}

	for _, tk := range tasks {
		// Exactly one message: the first process's accepted post, or the
		// second's for the tasks Slack refused before the kill.
		var ok []slacktest.Call
		for _, c := range b.posts(tk.taskID, 0) {
			if slackGen(c) == 2 || tk.state != unposted {
				ok = append(ok, c)
			}
		}
		if len(ok) != 1 {
			t.Errorf("%s: %d messages, want 1", tk.taskID, len(ok))
		} else if ts := messageTS(b.task(ids[tk.taskID])); ts == "" {
			t.Errorf("%s: no message recorded", tk.taskID)
		}
		if !tk.state.decided() {
			if calls := b.fdCalls(tk.taskID, 0); len(calls) != 0 {
				t.Errorf("%s: undecided, yet FlexDeploy was called: %s %s", tk.taskID, calls[0].Method, calls[0].Path)
			}
			continue
		}

		// Exactly one decision took effect at FlexDeploy.
		mu.Lock()
		effective := successes[tk.taskID]
		mu.Unlock()
		if tk.state == deliveryTaken {
			effective++ // the hung PUT the kill cut off
		}
		if effective != 1 {
			t.Errorf("%s: %d decisions took effect at FlexDeploy, want 1", tk.taskID, effective)
		}
		after := b.fdCalls(tk.taskID, mark)
		switch tk.state {
		case updateFailed:
			if len(after) != 0 {
				t.Errorf("%s: delivered before the kill, yet FlexDeploy was called again: %s %s", tk.taskID, after[0].Method, after[0].Path)
			}
		default:
			// Resumed deliveries ask first.
			checkStatusReadFirst(t, tk.taskID, after)
		}
		for _, c := range b.fdCalls(tk.taskID, 0) {
			if isDecision(c) && c.Path != flexdeploytest.Root+"/tasks/approval/"+tk.action+"/"+tk.taskID {
				t.Errorf("%s: wrong decision %s", tk.taskID, c.Path)
			}
		}
	}
}
