package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	readyTimeout = 15 * time.Second
	stopTimeout  = 10 * time.Second
	// readyPoll is how often /readyz is asked during a start: it bounds the
	// resolution of the start time measurement.
	readyPoll = time.Millisecond
)

// moduleRoot walks up from the working directory to go.mod.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod in %s or above: run the bench from the approvalbot module", wd)
		}
		dir = parent
	}
}

// buildBot builds ./cmd/approvalbot as `make build` does (static, trimmed,
// stripped) into dir, so that the bench measures the binary that ships.
// unpaced links it with Slack pacing off (main.slackPacing), for the runs
// whose fake Slack has no limits and whose subject is not Slack.
func buildBot(ctx context.Context, dir string, unpaced bool) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	name, ldflags := "approvalbot", "-s -w -X main.version=bench"
	if unpaced {
		name, ldflags = "approvalbot-unpaced", ldflags+" -X main.slackPacing=off"
	}
	bin := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", ldflags, "-o", bin, "./cmd/approvalbot")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build approvalbot: %w\n%s", err, out)
	}
	return bin, nil
}

// binaryFacts are what the bench can tell of the binary itself.
type binaryFacts struct {
	Size      int64
	Static    bool
	GoVersion string
}

func inspectBinary(path string) (binaryFacts, error) {
	var facts binaryFacts
	st, err := os.Stat(path)
	if err != nil {
		return facts, err
	}
	facts.Size = st.Size()
	if bi, err := buildinfo.ReadFile(path); err == nil {
		facts.GoVersion = bi.GoVersion
	}
	f, err := elf.Open(path)
	if err != nil {
		return facts, fmt.Errorf("inspect %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	// Static: no program interpreter (ld.so) and no shared library needed.
	facts.Static = true
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			facts.Static = false
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		facts.Static = false
	}
	return facts, nil
}

// secrets of one run, random so that no fixed secret is ever in use.
type secrets struct {
	APIKey, BotToken, SigningSecret, TokenKey, FDPassword string
}

func newSecrets() secrets {
	r := func(prefix string) string {
		b := make([]byte, 24)
		_, _ = rand.Read(b) // crypto/rand.Read never fails
		return prefix + hex.EncodeToString(b)
	}
	return secrets{APIKey: r("bench-"), BotToken: r("xoxb-"), SigningSecret: r(""), TokenKey: r(""), FDPassword: r("")}
}

// Approvers of the bench's policy; clicks come from them.
var approvers = []string{"UBENCH1", "UBENCH2", "UBENCH3"}

// botConfig is what a bot's configuration file says.
type botConfig struct {
	Listen        string // 127.0.0.1:PORT
	Store         string // bolt | dynamodb
	BoltPath      string
	Table         string
	Endpoint      string // dynalite
	SlackAPIURL   string
	FlexDeployURL string
	Secrets       secrets
	// Policies is the YAML list of the policies; "" is one policy that
	// matches every task and posts to CBENCH.
	Policies string
	// Sweep and Reconcile are the loops' intervals; "" is 15s and 1h.
	Sweep, Reconcile string
	// FDUser is the FlexDeploy user name (replicas tell themselves apart
	// by it); "" is approvalbot.
	FDUser string
	// NoEnrich turns FlexDeploy enrichment off: the outbox posts in its
	// first round instead of a round of enrichment first.
	NoEnrich bool
	// Extra is YAML appended to the file (another chat's keys).
	Extra string
	// PublicURL is server.public_url ("" leaves it out).
	PublicURL string
}

// yaml is the configuration file. Log level warn: the bench measures the
// bot, not its access log. Reconcile is hourly unless the run measures it:
// the bench's thousands of pending tasks would otherwise each be asked of
// the fake FlexDeploy every minute, which is no target's concern. The
// webhooks the bench sends are complete, so enrich (on, the default) makes
// no call.
func (c botConfig) yaml() string {
	store := fmt.Sprintf(`{driver: bolt, bolt: {path: %q}}`, c.BoltPath)
	if c.Store == "dynamodb" {
		store = fmt.Sprintf(`{driver: dynamodb, dynamodb: {table: %q, region: us-east-1, endpoint: %q}}`, c.Table, c.Endpoint)
	}
	policies := c.Policies
	if policies == "" {
		policies = benchPolicy("bench", "", "CBENCH")
	}
	sweep, reconcile, fdUser := c.Sweep, c.Reconcile, c.FDUser
	if sweep == "" {
		sweep = "15s"
	}
	if reconcile == "" {
		reconcile = "1h"
	}
	if fdUser == "" {
		fdUser = "approvalbot"
	}
	server := fmt.Sprintf("{listen: %q, shutdown_timeout: 5s}", c.Listen)
	if c.PublicURL != "" {
		server = fmt.Sprintf("{listen: %q, shutdown_timeout: 5s, public_url: %q}", c.Listen, c.PublicURL)
	}
	return fmt.Sprintf(`# approvalbench: generated, secrets random per run
server: %s
log: {level: warn}
intake:
  api_keys: [{name: bench, key: %q}]
store: %s
tokens:
  ttl: 24h
  signing_keys: [{id: k1, secret: %q}]
slack: {bot_token: %q, signing_secret: %q, api_url: %q, channel: CBENCH}
flexdeploy: {base_url: %q, username: %q, password: %q, timeout: 5s, enrich: %v}
sweeper: {interval: %s}
reconcile: {interval: %s}
policies:
%s%s`, server, c.Secrets.APIKey, store, c.Secrets.TokenKey, c.Secrets.BotToken, c.Secrets.SigningSecret,
		c.SlackAPIURL, c.FlexDeployURL, fdUser, c.Secrets.FDPassword, !c.NoEnrich, sweep, reconcile, policies, c.Extra)
}

// benchPolicy is one policy of the bench's approvers: for the tasks of
// project (every task when ""), posted to channel.
func benchPolicy(name, project, channel string) string {
	match := ""
	if project != "" {
		match = fmt.Sprintf("\n    match: {project: %q}", project)
	}
	return fmt.Sprintf("  - name: %s%s\n    channel: %s\n    approvers: {users: [%s]}\n    required_approvals: 1\n",
		name, match, channel, strings.Join(approvers, ", "))
}

func writeConfig(path string, c botConfig) error {
	return os.WriteFile(path, []byte(c.yaml()), 0o600)
}

// freeAddr finds a free loopback port.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}

// childEnv is the bench's environment without any APPROVALBOT_ or AWS_
// variable (the configuration file alone rules), plus dummy credentials
// for dynalite and no instance metadata lookups.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "APPROVALBOT_") || strings.HasPrefix(kv, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"AWS_ACCESS_KEY_ID=dynalite", "AWS_SECRET_ACCESS_KEY=dynalite",
		"AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true")
}

// bot is the approvalbot child process.
type bot struct {
	bin, config, url string
	env              []string
	boltPath         string // its store file, on bolt

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // of Wait, once exited is closed
	out    *tailBuffer
}

// start runs the bot and returns the time from just before the process
// starts to the first 200 from /readyz.
func (b *bot) start(ctx context.Context) (time.Duration, error) {
	b.out = &tailBuffer{}
	cmd := exec.Command(b.bin, "serve", "--config", b.config)
	cmd.Env = b.env
	cmd.Stdout, cmd.Stderr = b.out, b.out
	setProcAttr(cmd)
	b.cmd, b.exited = cmd, make(chan struct{})
	// Ask before the start too, so that a bot someone else left on the
	// port cannot pass for this one.
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if ready(ctx, client, b.url) {
		return 0, fmt.Errorf("something already answers on %s", b.url)
	}

	began := time.Now()
	if err := startChild(cmd, b.exited, &b.err); err != nil {
		return 0, fmt.Errorf("start %s: %w", b.bin, err)
	}
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	for {
		if ready(ctx, client, b.url) {
			return time.Since(began), nil
		}
		select {
		case <-b.exited:
			return 0, fmt.Errorf("approvalbot exited before it was ready (%v); its output:\n%s", b.err, b.out)
		case <-deadline.C:
			_ = b.stop()
			return 0, fmt.Errorf("approvalbot not ready within %s; its output:\n%s", readyTimeout, b.out)
		case <-ctx.Done():
			_ = b.stop()
			return 0, ctx.Err()
		case <-time.After(readyPoll):
		}
	}
}

func ready(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// startChild starts cmd from a goroutine that keeps its OS thread, locked,
// until the child ends (see setProcAttr), then records Wait's error and
// closes exited.
func startChild(cmd *exec.Cmd, exited chan struct{}, waitErr *error) error {
	started := make(chan error, 1)
	go func() {
		// Never unlocked: the runtime retires the thread afterwards.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(exited)
			return
		}
		started <- nil
		*waitErr = cmd.Wait()
		close(exited)
	}()
	return <-started
}

// pid of the running bot.
func (b *bot) pid() int { return b.cmd.Process.Pid }

// stop asks the bot to shut down (SIGTERM) and kills it if it has not
// within stopTimeout. It reports an unclean exit.
func (b *bot) stop() error {
	if b.cmd == nil || b.cmd.Process == nil {
		return nil
	}
	select {
	case <-b.exited:
	default:
		signalGroup(b.cmd, syscall.SIGTERM)
		select {
		case <-b.exited:
		case <-time.After(stopTimeout):
			signalGroup(b.cmd, syscall.SIGKILL)
			<-b.exited
			return fmt.Errorf("approvalbot did not stop within %s of SIGTERM; killed", stopTimeout)
		}
	}
	if b.err != nil {
		return fmt.Errorf("approvalbot exited with %v; its output:\n%s", b.err, b.out)
	}
	return nil
}

// running reports whether the bot has not exited.
func (b *bot) running() bool {
	select {
	case <-b.exited:
		return false
	default:
		return true
	}
}

// tailBuffer keeps the last 32 KiB the bot printed, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	const keep = 32 << 10
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > keep {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-keep:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.buf))
}

// createTable runs `approvalbot dynamodb create-table` with the config.
func createTable(ctx context.Context, bin, config string, env []string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "dynamodb", "create-table", "--config", config)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("approvalbot dynamodb create-table: %w\n%s", err, out)
	}
	return nil
}

// itoa is strconv.Itoa, short.
func itoa(i int) string { return strconv.Itoa(i) }
