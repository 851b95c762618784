package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHealthcheck: the image's HEALTHCHECK succeeds on a running bot's
// /healthz and fails when the answer is not 200, when nothing listens, and
// on a command line mistake.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start()

	unhealthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"not ready"}`, http.StatusServiceUnavailable)
	}))
	t.Cleanup(unhealthy.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/healthz"
	ln.Close()

	for _, tc := range []struct {
		name    string
		args    []string
		wantErr error // nil: success; errUsage; or errAny
		wantOut string
	}{
		{"the bot's /healthz", []string{"healthcheck", "--url", e.url + "/healthz"}, nil, "ok"},
		{"a 503", []string{"healthcheck", "--url", unhealthy.URL + "/healthz"}, errAny, "503"},
		{"nothing listening", []string{"healthcheck", "--url", closed, "--timeout", "2s"}, errAny, "connect"},
		{"an unknown flag", []string{"healthcheck", "--nope"}, errUsage, ""},
		{"an argument", []string{"healthcheck", "extra"}, errUsage, "unexpected argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, &stdout, &stderr)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("healthcheck: %v (%s)", err, stderr.String())
			case tc.wantErr == errAny && (err == nil || errors.Is(err, errUsage)):
				t.Fatalf("healthcheck: %v, want a failure", err)
			case tc.wantErr == errUsage && !errors.Is(err, errUsage):
				t.Fatalf("healthcheck: %v, want a usage error", err)
			}
			got := stdout.String() + stderr.String()
			if err != nil {
				got += err.Error()
			}
			if !strings.Contains(got, tc.wantOut) {
				t.Errorf("output %q, want it to contain %q", got, tc.wantOut)
			}
		})
	}
}

// errAny stands for any error but a usage one.
var errAny = errors.New("any failure")
