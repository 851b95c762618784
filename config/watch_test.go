package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// waitLimit bounds how long a test waits for a reload that must come; it is a
// deadline against hanging, not a measure of speed.
const waitLimit = 15 * time.Second

// watchedConfig is a valid file whose only policy is named name.
func watchedConfig(name string) string {
	return fmt.Sprintf(`tokens:
  signing_keys:
    - id: k1
      secret: %q
policies:
  - name: %s
    approvers: {users: [U1]}
`, testSecret, name)
}

// replaceFile writes content next to path and renames it over path, as
// editors and config-management tools do.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

type watchCalls struct {
	applied  chan *Config
	rejected chan error
	// done is closed when Watch has returned.
	done chan struct{}
}

// startWatch runs Watch in a goroutine and returns once the watch is in
// place (or Watch has given up).
func startWatch(t *testing.T, ctx context.Context, path string) watchCalls {
	t.Helper()
	w := watchCalls{applied: make(chan *Config, 16), rejected: make(chan error, 16), done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(w.done)
		watch(ctx, path,
			func(c *Config) { w.applied <- c },
			func(err error) { w.rejected <- err },
			func() { close(ready) })
	}()
	select {
	case <-ready:
	case <-w.done:
	}
	return w
}

func TestWatchAppliesChange(t *testing.T) {
	t.Parallel()
	writes := []struct {
		name  string
		write func(t *testing.T, path, content string)
	}{
		{"rename over", replaceFile},
		{"write in place", func(t *testing.T, path, content string) {
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range writes {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeTemp(t, watchedConfig("v1"))
			w := startWatch(t, t.Context(), path)

			tt.write(t, path, watchedConfig("v2"))
			deadline := time.After(waitLimit)
			for {
				select {
				case c := <-w.applied:
					if len(c.Policies) == 1 && c.Policies[0].Name == "v2" {
						return
					}
					t.Fatalf("applied policies %+v, want one named v2", c.Policies)
				case <-w.rejected:
					// Writing in place may be seen half done (truncated);
					// the write that completes it follows.
				case <-deadline:
					t.Fatal("apply was not called after the file changed")
				}
			}
		})
	}
}

func TestWatchRejectsBadFileAndKeepsWatching(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		check   func(t *testing.T, err error)
	}{
		{
			name:    "unparsable",
			content: "policies: [\n",
			check: func(t *testing.T, err error) {
				if !strings.Contains(err.Error(), "parse") {
					t.Errorf("reject(%v), want a parse error", err)
				}
			},
		},
		{
			name:    "unknown key",
			content: watchedConfig("v2") + "    required_aprovals: 2\n",
			check: func(t *testing.T, err error) {
				if !strings.Contains(err.Error(), "policies[0].required_aprovals: unknown key") {
					t.Errorf("reject(%v), want the unknown key named", err)
				}
			},
		},
		{
			name:    "invalid",
			content: watchedConfig("v2") + "    required_approvals: 0\n",
			check: func(t *testing.T, err error) {
				var ve *ValidationError
				if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0] != "policies[0].required_approvals: must be at least 1, got 0" {
					t.Errorf("reject(%v), want the one validation problem", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeTemp(t, watchedConfig("v1"))
			w := startWatch(t, t.Context(), path)

			replaceFile(t, path, tt.content)
			select {
			case err := <-w.rejected:
				tt.check(t, err)
			case c := <-w.applied:
				t.Fatalf("apply called with %+v for a bad file", c.Policies)
			case <-time.After(waitLimit):
				t.Fatal("reject was not called after a bad change")
			}

			// Fixing the file applies again.
			replaceFile(t, path, watchedConfig("v3"))
			select {
			case c := <-w.applied:
				if c.Policies[0].Name != "v3" {
					t.Errorf("applied policy %q, want v3", c.Policies[0].Name)
				}
			case err := <-w.rejected:
				t.Fatalf("reject(%v) for the fixed file", err)
			case <-time.After(waitLimit):
				t.Fatal("apply was not called after the file was fixed")
			}
		})
	}
}

func TestWatchFollowsSymlinkSwap(t *testing.T) {
	t.Parallel()
	// Kubernetes mounts a ConfigMap as approvalbot.yaml -> ..data/approvalbot.yaml,
	// ..data -> ..<timestamp>, and updates it by swapping ..data.
	dir := t.TempDir()
	mustWrite := func(p, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(filepath.Join(dir, "..v1", "approvalbot.yaml"), watchedConfig("v1"))
	mustWrite(filepath.Join(dir, "..v2", "approvalbot.yaml"), watchedConfig("v2"))
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "approvalbot.yaml")
	if err := os.Symlink(filepath.Join("..data", "approvalbot.yaml"), path); err != nil {
		t.Fatal(err)
	}
	w := startWatch(t, t.Context(), path)

	if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-w.applied:
		if c.Policies[0].Name != "v2" {
			t.Errorf("applied policy %q, want v2", c.Policies[0].Name)
		}
	case err := <-w.rejected:
		t.Fatalf("reject(%v)", err)
	case <-time.After(waitLimit):
		t.Fatal("apply was not called after the symlink swap")
	}
}

func TestWatchIgnoresUnchangedContentAndOtherFiles(t *testing.T) {
	t.Parallel()
	path := writeTemp(t, watchedConfig("v1"))
	w := startWatch(t, t.Context(), path)

	// Neither rewriting the same content nor touching a neighbour is a change.
	replaceFile(t, path, watchedConfig("v1"))
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), "approvalbot.db"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Let those be reloaded (and, wrongly, applied) before the real change:
	// the sleep gives a broken watch the chance to fail, no speed is measured.
	time.Sleep(5 * debounce)
	// A real change afterwards must be the first call.
	replaceFile(t, path, watchedConfig("v2"))
	select {
	case c := <-w.applied:
		if c.Policies[0].Name != "v2" {
			t.Errorf("first apply has policy %q, want v2 (an unchanged file was applied)", c.Policies[0].Name)
		}
	case err := <-w.rejected:
		t.Fatalf("reject(%v)", err)
	case <-time.After(waitLimit):
		t.Fatal("apply was not called")
	}
}

func TestWatchStopsWithContext(t *testing.T) {
	t.Parallel()
	path := writeTemp(t, watchedConfig("v1"))
	ctx, cancel := context.WithCancel(t.Context())
	w := startWatch(t, ctx, path)
	cancel()
	select {
	case <-w.done:
	case <-time.After(waitLimit):
		t.Fatal("Watch did not return after the context was done")
	}

	replaceFile(t, path, watchedConfig("v2"))
	select {
	case c := <-w.applied:
		t.Fatalf("apply(%+v) after the context was done", c.Policies)
	case err := <-w.rejected:
		t.Fatalf("reject(%v) after the context was done", err)
	default:
	}
}

func TestWatchMissingDirectoryRejects(t *testing.T) {
	t.Parallel()
	var got error
	// Watch returns at once when it cannot watch: no goroutine needed.
	Watch(t.Context(), filepath.Join(t.TempDir(), "no-such-dir", "approvalbot.yaml"),
		func(*Config) { t.Error("apply called") },
		func(err error) { got = err })
	if got == nil || !strings.Contains(got.Error(), "no-such-dir") {
		t.Errorf("reject(%v), want an error naming the path", got)
	}
}

func TestWatchWithoutFileReturns(t *testing.T) {
	t.Parallel()
	Watch(t.Context(), "",
		func(*Config) { t.Error("apply called") },
		func(err error) { t.Errorf("reject(%v)", err) })
}
