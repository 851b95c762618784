// Package dynalite runs dynalite, a DynamoDB implementation in Node.js that
// `make tools` installs into tools/node_modules, as a child process on a
// free 127.0.0.1 port, in memory. The tests (through internal/dynalitetest)
// and the load command (cmd/approvalbench) use it; nothing in the shipped
// bot does.
package dynalite

import (
	"bytes"
	"context"
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
	"sync"
	"time"
)

// Bin is where `make tools` installs dynalite, relative to the module root.
const Bin = "tools/node_modules/.bin/dynalite"

// ErrNotInstalled is returned by Find and Start when dynalite is missing.
var ErrNotInstalled = errors.New("dynalite is not installed")

const (
	startTimeout = 30 * time.Second
	startTries   = 3
	stopTimeout  = 10 * time.Second
)

// Start finds dynalite from the working directory (see Find), runs it on a
// free port and waits until it answers. ctx bounds the start only; the
// server runs until stop is called (stop waits for it to end and may be
// called more than once). Should this process die without calling stop, the
// kernel kills dynalite on Linux.
func Start(ctx context.Context) (endpoint string, stop func(), err error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", nil, fmt.Errorf("dynalite: %w", err)
	}
	bin, err := Find(wd)
	if err != nil {
		return "", nil, err
	}
	for try := 1; ; try++ {
		srv, err := StartBinary(ctx, bin)
		if err == nil {
			return srv.Endpoint, srv.Stop, nil
		}
		// Another process may have taken the free port between our check
		// and dynalite's listen; a fresh port usually mends it.
		if try == startTries || ctx.Err() != nil {
			return "", nil, err
		}
	}
}

// Find walks up from dir to the module root (the first directory with a
// go.mod) and returns its dynalite binary. An error wrapping
// ErrNotInstalled says to run `make tools`.
func Find(dir string) (string, error) {
	root := dir
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			return "", fmt.Errorf("find module root: no go.mod in %s or above", dir)
		}
		root = parent
	}
	bin := filepath.Join(root, filepath.FromSlash(Bin))
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%w (%s is missing): run `make tools` (npm ci --prefix tools)", ErrNotInstalled, bin)
	}
	return bin, nil
}

// Server is a running dynalite.
type Server struct {
	// Endpoint is its URL, http://127.0.0.1:PORT.
	Endpoint string

	cmd      *exec.Cmd
	exited   chan struct{} // closed when the process has ended
	output   *lockedBuffer
	killOnce sync.Once
}

// StartBinary runs the dynalite at bin once on a free port and waits until
// it answers (at most 30s, or until ctx is done).
func StartBinary(ctx context.Context, bin string) (*Server, error) {
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
	srv := &Server{
		Endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		cmd:      cmd,
		exited:   make(chan struct{}),
		output:   out,
	}
	started := make(chan error, 1)
	go func() {
		// The kernel's parent-death signal (see setProcessGroup) fires
		// when the thread that started the process ends, not the
		// process: this goroutine keeps its thread, locked, until the
		// child has ended. It never unlocks, so the runtime retires the
		// thread afterwards instead of reusing it.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(srv.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("dynalite: start %s: %w", bin, err)
	}
	if err := srv.waitReady(ctx); err != nil {
		srv.Stop()
		return nil, fmt.Errorf("dynalite on port %d: %w; its output:\n%s", port, err, out.String())
	}
	return srv, nil
}

// Exited is closed once the process has ended.
func (s *Server) Exited() <-chan struct{} { return s.exited }

// Output is what dynalite printed so far (its first 64 KiB).
func (s *Server) Output() string { return s.output.String() }

// waitReady polls until dynalite answers its health check (a GET).
func (s *Server) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
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
		case <-ctx.Done():
			return fmt.Errorf("no answer within %s: %w", startTimeout, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop kills dynalite's process group and waits for it to end. Only the
// first call kills: a later one must not signal a process group whose id
// the system may have handed out again.
func (s *Server) Stop() {
	s.killOnce.Do(func() { killProcessGroup(s.cmd) })
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		fmt.Fprintf(os.Stderr, "dynalite: dynalite (pid %d) did not end after kill\n", s.cmd.Process.Pid)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("dynalite: find a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
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
