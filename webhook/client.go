package webhook

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
	key      []byte
	sealer   *sealer
	hosts    hostList
	exchange *rest.Exchange
	now      func() time.Time
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
	c := &Client{key: key, sealer: seal, hosts: hosts, now: cfg.Now}
	if c.now == nil {
		c.now = time.Now
	}
	c.exchange = rest.NewExchange(rest.Exchange{
		Service: "the callback receiver",
		Timeout: cmp.Or(cfg.Timeout, DefaultTimeout),
		// It follows no redirect: decisions go to the allowed hosts only.
		HTTP: cfg.HTTPClient,
		// 409 and 410: the receiver has it (decided, or gone) already.
		Success: func(code int) bool {
			return code >= 200 && code < 300 || code == http.StatusConflict || code == http.StatusGone
		},
		Explain: explain,
		Now:     c.now,
	})
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
func (c *Client) Decide(ctx context.Context, t *approvals.Task, action approvals.Action, _ string, _ bool) error {
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
	_, err = c.exchange.Write(ctx, op, c.request(callback, MessageID(t, action), body))
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

// request is the signed POST of a decision; its timestamp is this
// attempt's.
func (c *Client) request(callback, id string, body []byte) rest.Request {
	ts := c.now().Unix()
	return rest.Request{
		Method: http.MethodPost, URL: callback, Body: body,
		Header: http.Header{
			"Webhook-Id":        {id},
			"Webhook-Timestamp": {strconv.FormatInt(ts, 10)},
			"Webhook-Signature": {Sign(c.key, id, ts, body)},
		},
		Redact: redactor(callback),
	}
}

// StatusError is a receiver's answer that does not deliver the decision
// (rest's one StatusError).
type StatusError = rest.StatusError

// explain says what a refusal usually means.
func explain(_ *http.Response, e *rest.StatusError, _ *rest.Failure) {
	if code := e.StatusCode; code == http.StatusUnauthorized || code == http.StatusForbidden {
		e.Hint = "does it verify with webhook.signing_secret?"
	} else if code >= 300 && code < 400 {
		e.Hint = "a redirect, which is not followed: give the final URL"
	}
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
