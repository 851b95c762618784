package rest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// MaxErrorBody is how much of an answer is read to quote from it, or to
// drain it so that the connection can be reused.
const MaxErrorBody = 64 << 10

// NewHTTPClient builds a client with its own transport so that a hung dial,
// TLS handshake or silent server cannot hold an outbox worker; timeout
// bounds the whole exchange. It refuses redirects: Go would turn a
// redirected PUT or POST into a GET and drop its body, and the credentials
// must go nowhere but the host they are meant for.
func NewHTTPClient(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// TransportError says in plain words why service (e.g. "FlexDeploy") gave
// no answer: it took longer than timeout, it closed the connection without
// answering (so a write may have gone through), or it could not be reached.
// ctx is the try's; when the caller's own context ended first, that is no
// timeout of the service's. err is wrapped as it is, so a caller whose
// secret may show in it passes it redacted.
func TransportError(ctx context.Context, service string, timeout time.Duration, err error) error {
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()) {
		if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%s did not answer within %s: %w", service, timeout, err)
		}
	}
	if ctx.Err() == nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)) {
		return fmt.Errorf("%s closed the connection without answering: %w", service, err)
	}
	return fmt.Errorf("cannot reach %s: %w", service, err)
}

// StatusText is an HTTP status as errors quote it: "404 Not Found", or
// just the number when Go has no name for it.
func StatusText(code int) string {
	if text := http.StatusText(code); text != "" {
		return strconv.Itoa(code) + " " + text
	}
	return strconv.Itoa(code)
}
