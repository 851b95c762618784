// Package dynalitetest runs a package's tests against dynalite, a DynamoDB
// implementation in Node.js installed by `make tools` into
// tools/node_modules. Tests never skip for want of it: a missing dynalite
// fails the run, so CI cannot pass without having tested the store.
package dynalitetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
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
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	ddbstore "github.com/approvalbot/approvalbot/tokens/dynamodb"
)

// EndpointEnv names an already running DynamoDB-compatible endpoint to use
// instead of starting dynalite.
const EndpointEnv = "APPROVALBOT_TEST_DYNAMODB_ENDPOINT"

// Region is the region the test clients claim; dynalite ignores it.
const Region = "us-east-1"

const (
	dynaliteBin  = "tools/node_modules/.bin/dynalite"
	startTimeout = 30 * time.Second
	startTries   = 3
)

// endpoint is set once by Main before any test runs. It is package state
// because testing.M offers no other way to hand a value to the tests.
var endpoint atomic.Pointer[string]

// Main runs a package's tests with a dynalite server: it uses
// $APPROVALBOT_TEST_DYNAMODB_ENDPOINT when set; otherwise it starts
// tools/node_modules/.bin/dynalite (found by walking up from the working
// directory to go.mod) on a free 127.0.0.1 port (in memory), waits until it
// answers, runs m.Run() and stops it (the whole process group, no orphan).
// If dynalite is not installed it fails with exit status 1, telling to run
// `make tools`.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if ep := os.Getenv(EndpointEnv); ep != "" {
		endpoint.Store(&ep)
		return m.Run()
	}
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(os.Stderr, "dynalitetest: %v\n", err)
		return 1
	}
	bin, err := findDynalite(wd)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dynalitetest: %v\n", err)
		return 1
	}
	// The server is killed when the thread that started it ends (see
	// startProcess): keep this goroutine on its thread until it is stopped.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	var srv *server
	for try := 1; ; try++ {
		srv, err = start(bin)
		if err == nil {
			break
		}
		// Another process may have taken the free port between our check
		// and dynalite's listen; a fresh port usually mends it.
		if try == startTries {
			fmt.Fprintf(os.Stderr, "dynalitetest: %v\n", err)
			return 1
		}
	}
	defer srv.stop()
	ep := srv.endpoint
	endpoint.Store(&ep)
	return m.Run()
}

// Endpoint is the URL of the DynamoDB endpoint Main set up ("" before).
func Endpoint() string {
	if ep := endpoint.Load(); ep != nil {
		return *ep
	}
	return ""
}

// NewClient returns a client of the test endpoint with static dummy
// credentials; optFns are applied last (Counter.Option, for example).
func NewClient(t testing.TB, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	t.Helper()
	ep := Endpoint()
	if ep == "" {
		t.Fatal("dynalitetest: no endpoint: the package needs func TestMain(m *testing.M) { dynalitetest.Main(m) }")
	}
	client, err := ddbstore.NewClient(context.Background(), ddbstore.Options{
		Region:      Region,
		Endpoint:    ep,
		Credentials: credentials.NewStaticCredentialsProvider("dynalite", "dynalite", ""),
	}, optFns...)
	if err != nil {
		t.Fatalf("dynalitetest: %v", err)
	}
	return client
}

// NewTable creates a fresh uniquely named table (via tokens/dynamodb
// CreateTable) and returns a client and the table name; the table is
// deleted in t.Cleanup.
func NewTable(t testing.TB) (*dynamodb.Client, string) {
	t.Helper()
	client := NewClient(t)
	table := TableName(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := ddbstore.CreateTable(ctx, client, table); err != nil {
		t.Fatalf("dynalitetest: %v", err)
	}
	t.Cleanup(func() {
		// t's own context is done by now; deletion needs a fresh one.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &table}); err != nil {
			t.Errorf("dynalitetest: delete table %s: %v", table, err)
		}
	})
	return client, table
}

// TableName returns a unique table name that tells which test made it.
func TableName(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
			return r
		}
		return '_'
	}, t.Name())
	const maxPrefix = 200 // table names are at most 255 characters
	if len(name) > maxPrefix {
		name = name[:maxPrefix]
	}
	return "test-" + name + "-" + hex.EncodeToString(b[:])
}

// findDynalite walks up from dir to the module root and returns its
// dynalite binary.
func findDynalite(start string) (string, error) {
	dir := start
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find module root: no go.mod in %s or above", start)
		}
		dir = parent
	}
	bin := filepath.Join(dir, filepath.FromSlash(dynaliteBin))
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("dynalite is not installed (%s is missing): run `make tools` "+
			"(npm ci --prefix tools), or set %s to a running DynamoDB-compatible endpoint", bin, EndpointEnv)
	}
	return bin, nil
}

// server is a running dynalite.
type server struct {
	cmd      *exec.Cmd
	endpoint string
	exited   chan struct{} // closed when the process has ended
	output   *lockedBuffer
}

// start runs dynalite on a free port and waits until it answers.
func start(bin string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	// Tables become active at once: the tests create one per case.
	cmd := exec.Command(bin,
		"--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	srv := &server{
		cmd:      cmd,
		endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		exited:   make(chan struct{}),
		output:   out,
	}
	go func() {
		_ = cmd.Wait()
		close(srv.exited)
	}()
	if err := srv.waitReady(); err != nil {
		srv.stop()
		return nil, fmt.Errorf("dynalite on port %d: %w; its output:\n%s", port, err, out.String())
	}
	return srv, nil
}

// waitReady polls until dynalite answers its health check (a GET).
func (s *server) waitReady() error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := client.Get(s.endpoint)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return errors.New("exited before answering")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %s", startTimeout)
		}
	}
}

// stop kills dynalite's process group and waits for it to end.
func (s *server) stop() {
	killProcessGroup(s.cmd)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		fmt.Fprintf(os.Stderr, "dynalitetest: dynalite (pid %d) did not end after kill\n", s.cmd.Process.Pid)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer collects dynalite's output for error messages; the process
// writes it from exec's copying goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	const keep = 64 << 10 // enough to show why it failed
	if b.buf.Len() > keep {
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
