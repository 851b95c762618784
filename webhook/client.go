package webhook

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/rest"
)

// DefaultTimeout bounds each callback (answer included).
const DefaultTimeout = 10 * time.Second

// EventType is the type of the decision's event.
const EventType = "approval.decided"

// SecretPrefix starts a Standard Webhooks secret; base64 of the key
// follows it.
const SecretPrefix = "whsec_"

// Bounds of a signing key, as Standard Webhooks has them.
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
)

// ParseSecret decodes a whsec_ secret into the HMAC key. Its errors never
// quote the secret.
func ParseSecret(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), SecretPrefix)
	if !ok {
		return nil, errors.New("webhook: the signing secret must start with " + SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		if key, err = base64.RawStdEncoding.DecodeString(rest); err != nil {
			return nil, errors.New("webhook: the signing secret is not " + SecretPrefix + " followed by base64")
		}
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return nil, fmt.Errorf("webhook: the signing secret must hold %d to %d bytes, got %d", MinSecretBytes, MaxSecretBytes, len(key))
	}
	return key, nil
}

// Sign is the Standard Webhooks signature of a message: "v1," and the
// base64 HMAC-SHA256, under key, of id "." timestamp "." body.
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(timestamp, 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// MessageID is the webhook-id of a task's decision: the same for every
// attempt to deliver it (so that receivers dedupe), another for another
// task or decision.
func MessageID(t *approvals.Task, action approvals.Action) string {
	sum := sha256.Sum256([]byte("approvalbot decision\x00" + t.ID + "\x00" + string(action)))
	return "msg_" + hex.EncodeToString(sum[:16])
}

// Config configures a Client.
type Config struct {
	// SigningSecret is whsec_ and base64 of the HMAC key.
	SigningSecret string
	// AllowedHosts are the hosts (globs, or host:port to pin a port) a
	// callbackUrl may name; checked at intake and again at delivery.
	AllowedHosts []string
	// Timeout bounds each callback (default 10s).
	Timeout time.Duration
	// HTTPClient replaces the client New builds (tests).
	HTTPClient *http.Client
	// Now is the clock of webhook-timestamp and Retry-After.
	Now func() time.Time
}

// Client takes webhook tasks in and POSTs their decisions. It is safe for
// concurrent use.
type Client struct {
	key     []byte
	sealer  *sealer
	hosts   hostList
	timeout time.Duration
	http    *http.Client
	now     func() time.Time
}

// New checks cfg and returns a client.
func New(cfg Config) (*Client, error) {
	key, err := ParseSecret(cfg.SigningSecret)
	if err != nil {
		return nil, err
	}
	if err := ValidateAllowedHosts(cfg.AllowedHosts); err != nil {
		return nil, err
	}
	hosts := newHostList(cfg.AllowedHosts)
	if len(hosts) == 0 {
		return nil, errors.New("webhook: allowed hosts are required (webhook.allowed_hosts): decisions are POSTed only there")
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("webhook: timeout must not be negative")
	}
	seal, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	c := &Client{key: key, sealer: seal, hosts: hosts, timeout: cmp.Or(cfg.Timeout, DefaultTimeout), http: cfg.HTTPClient, now: cfg.Now}
	if c.http == nil {
		// It follows no redirect: decisions go to the allowed hosts only.
		c.http = rest.NewHTTPClient(c.timeout)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// String says what the client is without its key.
func (c *Client) String() string { return "webhook.Client{" + strings.Join(c.hosts, ", ") + "}" }

// GoString keeps the key out of %#v too.
func (c *Client) GoString() string { return c.String() }

// event is the body of a decision.
type event struct {
	Type      string         `json:"type"`
	Timestamp string         `json:"timestamp"`
	Data      approvals.View `json:"data"`
}

// Decide POSTs the decision to the task's callback URL, once:
// {"type": "approval.decided", "timestamp": …, "data": the task as
// GET /v1/tasks/{id} shows it}, signed with webhook-id (MessageID: the same
// on every attempt), webhook-timestamp (this attempt's) and
// webhook-signature. A 2xx, 409 or 410 is delivered; 5xx, 408, 429,
// timeouts and connection errors may mend (the outbox retries, an
// approvals.RetryAfterError when the receiver said when); any other answer
// is final (approvals.PermanentError).
func (c *Client) Decide(ctx context.Context, t *approvals.Task, action approvals.Action, _ string) error {
	const op = "webhook: post decision"
	if action != approvals.ActionApprove && action != approvals.ActionReject {
		return approvals.Permanent(fmt.Errorf("%s: unknown action %q", op, action))
	}
	if t == nil {
		return approvals.Permanent(fmt.Errorf("%s: no task", op))
	}
	if len(t.Secret) == 0 {
		return approvals.Permanent(fmt.Errorf("%s: task %s has no callback URL (it did not come through /v1/webhook/tasks)", op, t.ID))
	}
	callback, err := c.sealer.open(t.Secret, t.ID)
	if err != nil {
		return approvals.Permanent(fmt.Errorf("%s: %w", op, err))
	}
	if err := c.hosts.checkCallback(callback); err != nil {
		// The allowed hosts were narrowed since the task came in.
		return approvals.Permanent(fmt.Errorf("%s: %w", op, err))
	}
	body, err := json.Marshal(event{Type: EventType, Timestamp: eventTime(t, c.now()).Format(time.RFC3339), Data: viewOf(t)})
	if err != nil {
		return approvals.Permanent(fmt.Errorf("%s: encode: %w", op, err))
	}
	_, err = rest.Once(op, func() ([]byte, *rest.Failure) {
		return c.post(ctx, callback, MessageID(t, action), body)
	})
	return err
}

// eventTime is when the decision was made: the decision's time, the
// expiry's, or now.
func eventTime(t *approvals.Task, now time.Time) time.Time {
	switch {
	case t.DecidedAt != nil:
		return t.DecidedAt.UTC()
	case t.Status == approvals.StatusExpired && !t.ExpiresAt.IsZero():
		return t.ExpiresAt.UTC()
	}
	return now.UTC()
}

// post makes one signed POST. Its own timeout bounds the exchange.
func (c *Client) post(ctx context.Context, callback, id string, body []byte) ([]byte, *rest.Failure) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	hide := redactor(callback)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, callback, bytes.NewReader(body))
	if err != nil {
		return nil, &rest.Failure{Err: errors.New("build request: invalid callback URL")}
	}
	ts := c.now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "approvalbot")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(c.key, id, ts, body))

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &rest.Failure{Err: rest.TransportError(ctx, "the callback receiver", c.timeout, redacted{err, hide}), Retryable: true}
	}
	defer func() { _ = resp.Body.Close() }()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300, code == http.StatusConflict, code == http.StatusGone:
		// 409 and 410: the receiver has it (decided, or gone) already.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, rest.MaxErrorBody))
		return nil, nil
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, rest.MaxErrorBody))
	serr := &StatusError{StatusCode: resp.StatusCode, Excerpt: rest.Excerpt(string(raw), hide)}
	return nil, rest.StatusFailure(serr, resp, c.now)
}

// StatusError is a receiver's answer that does not deliver the decision.
type StatusError struct {
	StatusCode int
	// Excerpt is the start of the answer, the callback's query removed.
	Excerpt string
}

func (e *StatusError) Error() string {
	msg := "the callback receiver answered " + rest.StatusText(e.StatusCode)
	if code := e.StatusCode; code == http.StatusUnauthorized || code == http.StatusForbidden {
		msg += " (does it verify with webhook.signing_secret?)"
	} else if code >= 300 && code < 400 {
		msg += " (a redirect, which is not followed: give the final URL)"
	}
	if e.Excerpt != "" {
		msg += ": " + e.Excerpt
	}
	return msg
}

// redactor removes from a text the callback URL's query (where receivers
// keep their tokens), as it is and as a URL would carry it.
func redactor(callback string) func(string) string {
	u, err := url.Parse(callback)
	if err != nil || u.RawQuery == "" {
		return func(s string) string { return s }
	}
	plain := *u
	plain.RawQuery = ""
	safe := plain.String() + "?…"
	q, _ := url.QueryUnescape(u.RawQuery)
	return func(s string) string {
		s = strings.ReplaceAll(s, callback, safe)
		return rest.Redact(s, u.RawQuery, q)
	}
}

// redacted is an error whose text went through hide; errors.Is still sees
// what it wraps.
type redacted struct {
	err  error
	hide func(string) string
}

func (e redacted) Error() string { return e.hide(e.err.Error()) }
func (e redacted) Unwrap() error { return e.err }
