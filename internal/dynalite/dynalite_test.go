package dynalite

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFind(t *testing.T) {
	t.Parallel()
	withTools := t.TempDir()
	writeFile(t, filepath.Join(withTools, "go.mod"), "module example\n")
	bin := filepath.Join(withTools, filepath.FromSlash(Bin))
	writeFile(t, bin, "#!/bin/sh\n")
	nested := filepath.Join(withTools, "a", "b")
	if err := os.MkdirAll(nested, 0o755); err != nil {
		t.Fatal(err)
	}
	withoutTools := t.TempDir()
	writeFile(t, filepath.Join(withoutTools, "go.mod"), "module example\n")

	tests := []struct {
		name         string
		dir          string
		want         string
		wantErr      string
		notInstalled bool
	}{
		{name: "module root", dir: withTools, want: bin},
		{name: "below the module root", dir: nested, want: bin},
		{name: "not installed", dir: withoutTools, wantErr: "make tools", notInstalled: true},
		{name: "no module", dir: t.TempDir(), wantErr: "no go.mod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Find(tt.dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Find(%s) = %q, %v; want an error containing %q", tt.dir, got, err, tt.wantErr)
				}
				if errors.Is(err, ErrNotInstalled) != tt.notInstalled {
					t.Fatalf("Find(%s): errors.Is(%v, ErrNotInstalled) = %t, want %t", tt.dir, err, !tt.notInstalled, tt.notInstalled)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Find(%s) = %q, %v; want %q", tt.dir, got, err, tt.want)
			}
		})
	}
}

// TestStartAndStop starts the real dynalite of this module: it must answer,
// and after stop it must be gone. A missing dynalite fails the test.
func TestStartAndStop(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	endpoint, stop, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(endpoint)
	if err != nil {
		stop()
		t.Fatalf("running server does not answer: %v", err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
		t.Errorf("endpoint %s is not on loopback", endpoint)
	}

	stop()
	stop() // a second stop is harmless
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("server still answers after stop")
	}
}

func TestStartBinaryReportsEarlyExit(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "dynalite")
	writeFile(t, bin, "#!/bin/sh\necho broken install >&2\nexit 3\n")
	_, err := StartBinary(t.Context(), bin)
	if err == nil || !strings.Contains(err.Error(), "exited before answering") || !strings.Contains(err.Error(), "broken install") {
		t.Fatalf("StartBinary of a failing binary: %v; want it to say it exited, with its output", err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}
