package httpfault

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Send sends one request (the Authorization and Content-Type headers set
// when not empty) and returns the status and body of the answer; a nil
// client is one with a timeout of 5s. The error is the client's, when no
// answer came.
func Send(client *http.Client, method, url, authorization, contentType, body string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw), nil
}

// IsTimeout reports whether err is a client's timeout, as a late answer
// ends.
func IsTimeout(err error) bool {
	var netErr interface{ Timeout() bool }
	return errors.As(err, &netErr) && netErr.Timeout()
}

// RefusingURL is the URL (http://127.0.0.1:port, no path) of a port that
// was just listened on and closed: nobody listens there any more, so a
// connection to it is refused.
func RefusingURL() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr, nil
}

// Sleeps stands in for a client's wait between tries: it records the
// waits without waiting, so that tests are fast and can check them. The
// zero value is ready; it is safe for concurrent use.
type Sleeps struct {
	mu    sync.Mutex
	waits []time.Duration
}

// Sleep records d and returns ctx's error.
func (s *Sleeps) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

// Waits returns the waits recorded so far.
func (s *Sleeps) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// CloseReleases checks that closing a server does not wait for an answer
// it holds: send sends a request whose answer the server holds, held
// reports once the server has it, and closeServer closes the server. It
// returns why not, or nil.
func CloseReleases(send func() error, held func() bool, closeServer func()) error {
	done := make(chan error, 1)
	go func() { done <- send() }()
	deadline := time.Now().Add(5 * time.Second)
	for !held() {
		if time.Now().After(deadline) {
			return errors.New("the request was not held within 5s")
		}
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { closeServer(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		return errors.New("closing the server waits for a held answer")
	}
	select {
	case err := <-done:
		if err == nil {
			return errors.New("a held answer came after the server closed")
		}
	case <-time.After(5 * time.Second):
		return errors.New("the client still waits for a held answer after the server closed")
	}
	return nil
}
