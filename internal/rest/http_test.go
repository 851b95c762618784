package rest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestNewHTTPClient(t *testing.T) {
	t.Parallel()
	c := NewHTTPClient(7 * time.Second)
	if c == http.DefaultClient || c.Timeout != 7*time.Second {
		t.Errorf("client timeout = %v, want an own client with 7s", c.Timeout)
	}
	tr, ok := c.Transport.(*http.Transport)
	if !ok || tr == http.DefaultTransport {
		t.Fatalf("transport = %T, want an own *http.Transport", c.Transport)
	}
	if tr.ResponseHeaderTimeout != 7*time.Second || tr.TLSHandshakeTimeout == 0 || tr.DialContext == nil ||
		tr.IdleConnTimeout == 0 || tr.TLSClientConfig == nil || tr.TLSClientConfig.MinVersion == 0 {
		t.Errorf("transport lacks a timeout or TLS floor: %+v", tr)
	}
}

func TestNewHTTPClientRefusesRedirects(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(target.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/login", http.StatusFound)
	}))
	t.Cleanup(srv.Close)

	req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{"notes":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer secret")
	resp, err := NewHTTPClient(5 * time.Second).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != target.URL+"/login" {
		t.Errorf("answer = %d to %q, want the 302 itself", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
}

// timeoutError is a net.Error that timed out, as a dialer's would.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestTransportError(t *testing.T) {
	t.Parallel()
	expired, cancelExpired := context.WithDeadline(context.Background(), time.Unix(0, 0))
	t.Cleanup(cancelExpired)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want string
	}{
		{name: "the try's deadline", ctx: expired, err: context.DeadlineExceeded,
			want: "FlexDeploy did not answer within 50ms: context deadline exceeded"},
		{name: "a net timeout", ctx: context.Background(), err: timeoutError{},
			want: "FlexDeploy did not answer within 50ms: i/o timeout"},
		{name: "the caller gave up", ctx: cancelled, err: context.DeadlineExceeded,
			want: "cannot reach FlexDeploy: context deadline exceeded"},
		{name: "refused", ctx: context.Background(), err: refused,
			want: "cannot reach FlexDeploy: dial tcp: connection refused"},
		{name: "closed without an answer", ctx: context.Background(), err: fmt.Errorf("Put %q: %w", "http://fd/x", io.EOF),
			want: `FlexDeploy closed the connection without answering: Put "http://fd/x": EOF`},
		{name: "reset", ctx: context.Background(), err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET},
			want: "FlexDeploy closed the connection without answering: read tcp: connection reset by peer"},
		{name: "closed while the caller gave up", ctx: cancelled, err: io.EOF,
			want: "cannot reach FlexDeploy: EOF"},
	}
	for _, tc := range tests {
		got := TransportError(tc.ctx, "FlexDeploy", 50*time.Millisecond, tc.err)
		if got.Error() != tc.want {
			t.Errorf("%s: error = %q\nwant    %q", tc.name, got, tc.want)
		}
		if !errors.Is(got, tc.err) {
			t.Errorf("%s: error %v does not wrap %v", tc.name, got, tc.err)
		}
	}
}

// TestTransportErrorOfARealTimeout hangs a server past the client's timeout.
func TestTransportErrorOfARealTimeout(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewHTTPClient(time.Minute).Do(req)
	if err == nil {
		t.Fatal("a hung server answered")
	}
	got := TransportError(ctx, "Azure DevOps", 30*time.Millisecond, err)
	if !strings.HasPrefix(got.Error(), "Azure DevOps did not answer within 30ms: ") {
		t.Errorf("error = %q", got)
	}
}

func TestStatusText(t *testing.T) {
	t.Parallel()
	for code, want := range map[int]string{
		404: "404 Not Found", 203: "203 Non-Authoritative Information", 599: "599", 0: "0",
	} {
		if got := StatusText(code); got != want {
			t.Errorf("StatusText(%d) = %q, want %q", code, got, want)
		}
	}
}

// TestTransportErrorOfADroppedConnection closes the connection after the
// request has arrived, as a crashing server or a proxy may.
func TestTransportErrorOfADroppedConnection(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, srv.URL, strings.NewReader(`{"notes":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewHTTPClient(5 * time.Second).Do(req)
	if err == nil {
		t.Fatal("a dropped connection answered")
	}
	got := TransportError(ctx, "FlexDeploy", 5*time.Second, err)
	if !strings.HasPrefix(got.Error(), "FlexDeploy closed the connection without answering: ") {
		t.Errorf("error = %q", got)
	}
}
