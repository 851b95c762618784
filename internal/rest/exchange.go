package rest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

// Exchange is how one deployment-tool adapter talks to its API: the one
// piece of code that sends a request and reads its answer, with the timeout,
// the common headers, the bounds on answers, the excerpt an error quotes and
// the redaction of the adapter's secrets. An adapter builds its Requests and
// reads the answers; it never touches an http.Response's body.
//
// An Exchange is safe for concurrent use once built by NewExchange.
type Exchange struct {
	// Service names the other side in errors ("FlexDeploy").
	Service string
	// Timeout bounds each try, answer body included, also when HTTP came
	// from a test.
	Timeout time.Duration
	// HTTP sends the requests; NewExchange builds NewHTTPClient(Timeout)
	// when it is nil.
	HTTP *http.Client
	// Header is sent with every request (Accept, a fixed Authorization).
	// User-Agent is always "approvalbot".
	Header http.Header
	// Redact removes the exchange's own secrets from a text (nil: none).
	// It runs on every error text: excerpts, Location, transport errors.
	Redact func(string) string
	// Message picks what an error quotes out of an answer that is not a
	// success, e.g. a JSON error's "message" (nil, or ""): the whole answer.
	Message func(raw []byte) string
	// Explain adds the adapter's reading of an answer that is not a
	// success: a Hint, whether it says the task is Decided there, and any
	// change to whether (and when) it may mend. nil: none.
	Explain func(resp *http.Response, e *StatusError, f *Failure)
	// Success reports which statuses carry a usable answer (nil: 2xx).
	Success func(code int) bool
	// Retrier retries reads (Read).
	Retrier Retrier
	// Now is the clock of Retry-After dates (nil: time.Now).
	Now func() time.Time
}

// NewExchange fills in x's defaults and returns it.
func NewExchange(x Exchange) *Exchange {
	if x.HTTP == nil {
		x.HTTP = NewHTTPClient(x.Timeout)
	}
	if x.Now == nil {
		x.Now = time.Now
	}
	return &x
}

// Request is one request an adapter sends.
type Request struct {
	Method string
	// URL is the whole address; errors never quote it.
	URL string
	// Header holds this request's own headers (a token that changes).
	Header http.Header
	// Body is sent when not nil, as ContentType (default application/json).
	Body        []byte
	ContentType string
	// Limit is how much of a usable answer is read and returned; a larger
	// one is a final failure. 0: the answer is drained and dropped.
	Limit int64
	// Redact removes this request's secrets (a token) from error texts.
	Redact func(string) string
	// Explain adds to the exchange's Explain for this request (e.g. a 401
	// that drops a cached token and so may mend).
	Explain func(resp *http.Response, e *StatusError, f *Failure)
	// Answered is handed a usable answer's headers (a list's next page).
	Answered func(h http.Header)
}

// Write sends req once (see Once): a write is never tried again here.
func (x *Exchange) Write(ctx context.Context, op string, req Request) ([]byte, error) {
	return Once(op, func() ([]byte, *Failure) { return x.Try(ctx, req) })
}

// Read sends req, a read, and tries again while its failures may mend (see
// Retrier.Do).
func (x *Exchange) Read(ctx context.Context, op string, req Request) ([]byte, error) {
	return x.Retrier.Do(ctx, op, func() ([]byte, *Failure) { return x.Try(ctx, req) })
}

// Try makes one request and returns the usable answer (up to req.Limit
// bytes), or the failure: a *StatusError for an answer that is not a
// success, a transport error (retryable) when none came.
func (x *Exchange) Try(ctx context.Context, req Request) ([]byte, *Failure) {
	ctx, cancel := context.WithTimeout(ctx, x.Timeout)
	defer cancel()
	redact := x.redactor(req)

	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, req.URL, body)
	if err != nil {
		// Never quote the URL: it may carry a secret.
		return nil, &Failure{Err: errors.New("build request: invalid URL")}
	}
	for _, h := range []http.Header{x.Header, req.Header} {
		for name, values := range h {
			hr.Header[http.CanonicalHeaderKey(name)] = values
		}
	}
	hr.Header.Set("User-Agent", "approvalbot")
	if req.Body != nil {
		ct := req.ContentType
		if ct == "" {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	}

	resp, err := x.HTTP.Do(hr)
	if err != nil {
		return nil, &Failure{Err: TransportError(ctx, x.Service, x.Timeout, redactedFunc{err, redact}), Retryable: true}
	}
	defer func() { _ = resp.Body.Close() }()

	if x.success(resp.StatusCode) {
		if req.Answered != nil {
			req.Answered(resp.Header)
		}
		if req.Limit <= 0 {
			// Drained so that the connection can be reused.
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxErrorBody))
			return nil, nil
		}
		answer, err := io.ReadAll(io.LimitReader(resp.Body, req.Limit+1))
		if err != nil {
			return nil, &Failure{Err: TransportError(ctx, x.Service, x.Timeout, redactedFunc{err, redact}), Retryable: true}
		}
		if int64(len(answer)) > req.Limit {
			return nil, &Failure{Err: fmt.Errorf("%s answered more than %d bytes", x.Service, req.Limit)}
		}
		return answer, nil
	}

	raw, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
	text := string(raw)
	if x.Message != nil {
		if m := x.Message(raw); m != "" {
			text = m
		}
	}
	serr := &StatusError{Service: x.Service, StatusCode: resp.StatusCode, Excerpt: Excerpt(text, redact)}
	if code := resp.StatusCode; code >= 300 && code < 400 {
		// Redacted before it is cut: a cut secret would escape.
		serr.Location = approvals.CapRunes(redact(resp.Header.Get("Location")), ExcerptRunes)
	}
	f := StatusFailure(serr, resp, x.Now)
	for _, explain := range []func(*http.Response, *StatusError, *Failure){x.Explain, req.Explain} {
		if explain != nil {
			explain(resp, serr, f)
		}
	}
	return nil, f
}

func (x *Exchange) success(code int) bool {
	if x.Success != nil {
		return x.Success(code)
	}
	return code >= 200 && code < 300
}

// redactor removes the exchange's and the request's secrets.
func (x *Exchange) redactor(req Request) func(string) string {
	return func(s string) string {
		if x.Redact != nil {
			s = x.Redact(s)
		}
		if req.Redact != nil {
			s = req.Redact(s)
		}
		return s
	}
}

// StatusError is an answer other than a success, from any tool's API.
// errors.Is(err, approvals.ErrNotFound) holds for a 404, and errors.Is(err,
// approvals.ErrToolDecided) when the adapter read the answer as "decided
// there already".
type StatusError struct {
	// Service names the tool ("FlexDeploy").
	Service    string
	StatusCode int
	// Excerpt is the start of the answer (or the message in it), secrets
	// removed.
	Excerpt string
	// Location is where a 3xx pointed, secrets removed.
	Location string
	// Hint says in plain words what the answer usually means.
	Hint string
	// Decided: the tool says it has the task decided already.
	Decided bool
}

func (e *StatusError) Error() string {
	msg := e.Service + " answered " + StatusText(e.StatusCode)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	if e.Excerpt != "" {
		msg += ": " + e.Excerpt
	}
	return msg
}

// Is makes a 404 match approvals.ErrNotFound, and a Decided answer
// approvals.ErrToolDecided.
func (e *StatusError) Is(target error) bool {
	switch target {
	case approvals.ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case approvals.ErrToolDecided:
		return e.Decided
	}
	return false
}

// redactedFunc is an error whose text went through hide; errors.Is still
// sees what it wraps (context.Canceled, a net.Error).
type redactedFunc struct {
	err  error
	hide func(string) string
}

func (e redactedFunc) Error() string { return e.hide(e.err.Error()) }
func (e redactedFunc) Unwrap() error { return e.err }
