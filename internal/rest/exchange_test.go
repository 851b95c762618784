package rest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

// TestExchangeTry: headers from the exchange and the request, the body
// and its type, answers bounded, and the adapter's reading of a failure.
func TestExchangeTry(t *testing.T) {
	t.Parallel()
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(context.Background())
		switch r.URL.Path {
		case "/big":
			_, _ = w.Write([]byte(strings.Repeat("x", 11)))
		case "/refused":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"message":"token tok-123 is not blocked"}`))
		default:
			_, _ = w.Write([]byte("ok"))
		}
	}))
	t.Cleanup(srv.Close)
	x := NewExchange(Exchange{
		Service: "Acme", Timeout: 2 * time.Second,
		Header:  http.Header{"Accept": {"application/json"}},
		Redact:  func(s string) string { return Redact(s, "tok-123") },
		Message: func(raw []byte) string { return strings.TrimPrefix(string(raw), `{"message":"`) },
		Explain: func(_ *http.Response, e *StatusError, _ *Failure) {
			e.Decided = strings.Contains(e.Excerpt, "not blocked")
		},
	})

	answer, f := x.Try(context.Background(), Request{Method: http.MethodPost, URL: srv.URL + "/ok", Body: []byte(`{}`),
		Header: http.Header{"PRIVATE-TOKEN": {"tok-123"}}, Limit: 10})
	if f != nil || string(answer) != "ok" {
		t.Fatalf("Try = %q, %v", answer, f)
	}
	if got.Header.Get("Private-Token") != "tok-123" || got.Header.Get("Accept") != "application/json" ||
		got.Header.Get("User-Agent") != "approvalbot" || got.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", got.Header)
	}

	if _, f := x.Try(context.Background(), Request{Method: http.MethodGet, URL: srv.URL + "/big", Limit: 10}); f == nil || f.Retryable ||
		f.Err.Error() != "Acme answered more than 10 bytes" {
		t.Errorf("a large answer: %+v", f)
	}
	if got.Header.Get("Content-Type") != "" {
		t.Errorf("a GET without a body has a Content-Type %q", got.Header.Get("Content-Type"))
	}

	_, err := x.Write(context.Background(), "acme: decide", Request{Method: http.MethodPost, URL: srv.URL + "/refused", Body: []byte(`{}`)})
	if want := `acme: decide: Acme answered 400 Bad Request: token [redacted] is not blocked"}`; err == nil || err.Error() != want {
		t.Errorf("error %q\nwant  %q", err, want)
	}
	if !approvals.IsPermanent(err) || !errors.Is(err, approvals.ErrToolDecided) || errors.Is(err, approvals.ErrNotFound) {
		t.Errorf("error %v: want final and ErrToolDecided", err)
	}

	if _, f := x.Try(context.Background(), Request{Method: "GET", URL: "http://a b/\x7f"}); f == nil || f.Err.Error() != "build request: invalid URL" {
		t.Errorf("a bad URL: %+v", f)
	}
}

// TestExchangeSuccess: an exchange may count other answers as success
// (a receiver's 409) or refuse a 2xx (a sign-in page's 203).
func TestExchangeSuccess(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusConflict)
	}))
	t.Cleanup(srv.Close)
	x := NewExchange(Exchange{Service: "Acme", Timeout: time.Second, Success: func(code int) bool { return code == http.StatusConflict }})
	if _, err := x.Write(context.Background(), "acme", Request{Method: http.MethodPost, URL: srv.URL}); err != nil {
		t.Errorf("409 counted as success: %v", err)
	}
	y := NewExchange(Exchange{Service: "Acme", Timeout: time.Second})
	_, err := y.Write(context.Background(), "acme", Request{Method: http.MethodPost, URL: srv.URL})
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusConflict || !approvals.IsPermanent(err) {
		t.Errorf("409 by default: %v", err)
	}
}
