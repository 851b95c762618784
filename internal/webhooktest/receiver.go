// Package webhooktest is a receiver of Standard Webhooks
// (standardwebhooks.com) for tests: a real HTTP server that verifies each
// delivery with the specification's algorithm, written here apart from the
// bot's signer so that a mistake in one is not repeated in the other, and
// that dedupes on webhook-id as receivers are told to. Its faults model a
// receiver that is down for a while (SetFailFirst), slow (SetLateAnswers),
// crashing (SetDroppedAnswers) or answering what a test scripts
// (SetAnswer).
package webhooktest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/approvalbot/approvalbot/internal/httpfault"
)

// Tolerance is how far a webhook-timestamp may be from now.
const Tolerance = 5 * time.Minute

// Errors of Verify.
var (
	ErrMissingHeaders = errors.New("webhook-id, webhook-timestamp or webhook-signature is missing")
	ErrTimestamp      = errors.New("webhook-timestamp is not Unix seconds within the tolerance")
	ErrSignature      = errors.New("no webhook-signature matches")
	ErrSecret         = errors.New("the secret is not whsec_ and base64")
)

// Verify checks a message as the specification says: the secret is the
// base64 after whsec_, the signed content is id "." timestamp "." body,
// the signature header is a space-separated list of "v1,<base64
// HMAC-SHA256>" (other versions are skipped), any one of which may match
// (compared in constant time), and the timestamp must be within tolerance
// of now.
func Verify(secret, id, timestamp, signatures string, body []byte, now time.Time, tolerance time.Duration) error {
	if id == "" || timestamp == "" || signatures == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrTimestamp
	}
	key, err := secretKey(secret)
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(signatures) {
		version, value, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(value)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrSignature
}

// Signature is the v1 signature of a message, for tests that make one.
func Signature(secret, id, timestamp string, body []byte) (string, error) {
	key, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

func secretKey(secret string) ([]byte, error) {
	rest, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, ErrSecret
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, ErrSecret
	}
	return key, nil
}

// Delivery is one request the receiver got.
type Delivery struct {
	Path, Query                    string
	ID, Timestamp, Signature, Body string
	ContentType                    string
	At                             time.Time
	// Verified reports whether the signature and timestamp checked out;
	// VerifyError says why not.
	Verified    bool
	VerifyError string
	// Duplicate marks a verified delivery of an id taken before.
	Duplicate bool
	// Code is the status answered; 0 when no answer was given.
	Code int
}

// Event is a decision's body.
type Event struct {
	Type      string         `json:"type"`
	Timestamp string         `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

// Event decodes the delivery's body.
func (d Delivery) Event() (Event, error) {
	var e Event
	err := json.Unmarshal([]byte(d.Body), &e)
	return e, err
}

// Answer is a scripted answer: a Status of 0 is 200.
type Answer = httpfault.Answer

// Receiver is a Standard Webhooks receiver on a real HTTP server. It
// answers 401 to a delivery that does not verify, 503 while SetFailFirst
// lasts, and 200 otherwise (also to a duplicate, which it does not take
// twice).
type Receiver struct {
	Server *httptest.Server
	secret string

	mu         sync.Mutex
	now        func() time.Time
	deliveries []Delivery
	taken      map[string]bool
	order      []string
	answer     func(d Delivery) *Answer
	faults     httpfault.Faults
}

// New starts a receiver verifying with secret (whsec_…); Close it when
// done.
func New(secret string) *Receiver {
	r := &Receiver{secret: secret, now: time.Now, taken: map[string]bool{}}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

// URL is the receiver's root URL (http://127.0.0.1:port); any path
// receives.
func (r *Receiver) URL() string { return r.Server.URL }

// Close stops the server; held answers are let go first.
func (r *Receiver) Close() {
	r.faults.Close()
	r.Server.Close()
}

// SetNow replaces the clock the timestamp is checked against.
func (r *Receiver) SetNow(now func() time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now = now
}

// SetFailFirst makes the next n verified deliveries answered 503 and not
// taken.
func (r *Receiver) SetFailFirst(n int) { r.faults.SetFailFirst(n) }

// SetLateAnswers makes the next n deliveries taken and then answered too
// late for the sender.
func (r *Receiver) SetLateAnswers(n int) { r.faults.SetLate(n) }

// SetDroppedAnswers makes the next n deliveries taken and then left
// without an answer (the connection closed).
func (r *Receiver) SetDroppedAnswers(n int) { r.faults.SetDropped(n) }

// SetAnswer scripts the answer to verified deliveries; a nil *Answer
// answers as usual. A scripted answer takes nothing.
func (r *Receiver) SetAnswer(fn func(d Delivery) *Answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answer = fn
}

// Deliveries returns every request so far.
func (r *Receiver) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.deliveries...)
}

// Taken returns the ids taken, each once, in the order they were first
// taken (whether or not the sender got the answer).
func (r *Receiver) Taken() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.order...)
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	d := Delivery{
		Path: req.URL.Path, Query: req.URL.RawQuery, Body: string(body), ContentType: req.Header.Get("Content-Type"),
		ID: req.Header.Get("webhook-id"), Timestamp: req.Header.Get("webhook-timestamp"), Signature: req.Header.Get("webhook-signature"),
	}
	r.mu.Lock()
	d.At = r.now()
	if err := Verify(r.secret, d.ID, d.Timestamp, d.Signature, body, d.At, Tolerance); err != nil {
		d.VerifyError = err.Error()
	} else {
		d.Verified = true
	}
	if req.Method != http.MethodPost {
		d.Verified, d.VerifyError = false, "method "+req.Method
	}
	index := len(r.deliveries)
	r.deliveries = append(r.deliveries, d)
	answer := r.answer
	r.mu.Unlock()

	record := func(code int, duplicate bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.deliveries[index].Code, r.deliveries[index].Duplicate = code, duplicate
	}
	if !d.Verified {
		http.Error(w, "signature: "+d.VerifyError, http.StatusUnauthorized)
		record(http.StatusUnauthorized, false)
		return
	}
	if answer != nil {
		if a := answer(d); a != nil {
			record(a.Write(w), false)
			return
		}
	}
	if r.faults.Refuse() {
		http.Error(w, "receiver down", http.StatusServiceUnavailable)
		record(http.StatusServiceUnavailable, false)
		return
	}
	r.mu.Lock()
	duplicate := r.taken[d.ID]
	if !duplicate {
		r.taken[d.ID] = true
		r.order = append(r.order, d.ID)
	}
	r.mu.Unlock()
	if fault := r.faults.Take(); fault != httpfault.Answered {
		record(0, duplicate)
		r.faults.Lose(w, req, fault)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprintln(w, `{"ok":true}`)
	record(http.StatusOK, duplicate)
}
