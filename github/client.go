package github

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/rest"
)

// Defaults of Config.
const (
	DefaultAPIURL     = "https://api.github.com"
	DefaultTimeout    = 10 * time.Second
	DefaultRetries    = 3
	DefaultMinBackoff = 200 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
)

// GitHub's REST API wants these with every call.
const (
	mediaType  = "application/vnd.github+json"
	apiVersion = "2022-11-28"
)

const (
	// maxAnswer bounds a read's answer: a run, its pending deployments, a
	// token.
	maxAnswer = 4 << 20
	// maxCommentRunes bounds the comment of a review or status report.
	maxCommentRunes = 1024
)

// Config configures a Client. Zero values take the defaults.
type Config struct {
	// AppID is the GitHub App's id (or client id): the iss of its JWT.
	AppID string
	// PrivateKey is the App's private key, PEM (PKCS #1 as GitHub hands it
	// out, or PKCS #8).
	PrivateKey []byte
	// WebhookSecret verifies the App's webhook deliveries.
	WebhookSecret string
	// APIURL is the REST root (default https://api.github.com; GitHub
	// Enterprise Server: https://HOST/api/v3). Installation tokens, and
	// the JWT that mints them, are sent there and nowhere else.
	APIURL string
	// Users maps GitHub logins (case-insensitive) to Slack user ids or
	// emails, for the self-approval check.
	Users map[string]string
	// Timeout bounds each request, answer included (default 10s).
	Timeout time.Duration
	// Retries is how often a read (pending deployments, the run, a new
	// installation token) is retried after a 5xx, a 429, a timeout or a
	// connection error (default 3; negative: never). A review and a status
	// report are never retried here.
	Retries int
	// MinBackoff and MaxBackoff bound the waits between a read's tries.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// HTTPClient replaces the client New builds (tests).
	HTTPClient *http.Client
	// Sleep waits between tries (tests); default a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock of the JWT, the token cache and Retry-After.
	Now func() time.Time
}

// Client is the GitHub App: it verifies and reads its webhook, reviews its
// rule on runs, reads their pending deployments and writes status reports.
// It is safe for concurrent use; Tool makes it the approvals.Tool of
// GitHub.
type Client struct {
	appID      string
	key        *rsa.PrivateKey
	secret     []byte
	api        apiRoot
	users      map[string]string
	timeout    time.Duration
	retries    int
	minBackoff time.Duration
	maxBackoff time.Duration
	http       *http.Client
	sleep      func(ctx context.Context, d time.Duration) error
	now        func() time.Time
	tokens     tokenCache
}

// New checks cfg and returns a client. Its errors never quote the key or
// the secret.
func New(cfg Config) (*Client, error) {
	appID := strings.TrimSpace(cfg.AppID)
	if appID == "" {
		return nil, errors.New("github: the App's id is required (github.app_id)")
	}
	if len(cfg.PrivateKey) == 0 {
		return nil, errors.New("github: the App's private key is required (github.private_key or github.private_key_file)")
	}
	key, err := jwt.ParseRSAPrivateKeyFromPEM(cfg.PrivateKey)
	if err != nil {
		return nil, errors.New("github: the App's private key is not an RSA private key in PEM")
	}
	if cfg.WebhookSecret == "" {
		return nil, errors.New("github: the webhook secret is required (github.webhook_secret)")
	}
	if cfg.Timeout < 0 || cfg.MinBackoff < 0 || cfg.MaxBackoff < 0 {
		return nil, errors.New("github: timeout and backoffs must not be negative")
	}
	api, err := parseAPIRoot(cmp.Or(cfg.APIURL, DefaultAPIURL))
	if err != nil {
		return nil, err
	}
	users := make(map[string]string, len(cfg.Users))
	for login, to := range cfg.Users {
		if login, to = strings.ToLower(strings.TrimSpace(login)), strings.TrimSpace(to); login != "" && to != "" {
			users[login] = to
		}
	}
	c := &Client{
		appID:      appID,
		key:        key,
		secret:     []byte(cfg.WebhookSecret),
		api:        api,
		users:      users,
		timeout:    cmp.Or(cfg.Timeout, DefaultTimeout),
		retries:    rest.RetryCount(cfg.Retries, DefaultRetries),
		minBackoff: cmp.Or(cfg.MinBackoff, DefaultMinBackoff),
		maxBackoff: cmp.Or(cfg.MaxBackoff, DefaultMaxBackoff),
		http:       cfg.HTTPClient,
		sleep:      cfg.Sleep,
		now:        cfg.Now,
	}
	if c.maxBackoff < c.minBackoff {
		return nil, errors.New("github: max backoff must not be less than min backoff")
	}
	if c.http == nil {
		// It follows no redirect: a token goes to the API root only.
		c.http = rest.NewHTTPClient(c.timeout)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// String says what the client is without its key or secret.
func (c *Client) String() string { return "github.Client{app " + c.appID + ", " + c.api.base + "}" }

// GoString keeps the key out of %#v too.
func (c *Client) GoString() string { return c.String() }

// rule is where a task's rule waits in GitHub.
type rule struct {
	callback, installation, repo, runID, environment string
}

// rule reads the task's routing fields. Whatever is missing or wrong cannot
// mend by retrying: the errors are permanent. The callback URL is checked
// again against github.api_url, so that a changed configuration holds for
// tasks taken in before it.
func (c *Client) rule(t *approvals.Task, op string) (*rule, error) {
	fail := func(err error) (*rule, error) {
		return nil, approvals.Permanent(fmt.Errorf("github: %s: %w", op, err))
	}
	if t == nil {
		return fail(approvals.Invalidf("no task"))
	}
	r := &rule{
		installation: t.Extra[ExtraInstallationID],
		repo:         t.Extra[ExtraRepository],
		environment:  t.Extra[ExtraEnvironment],
	}
	if id, err := strconv.ParseInt(r.installation, 10, 64); err != nil || id <= 0 || !fullNamePattern.MatchString(r.repo) || r.environment == "" {
		return fail(approvals.Invalidf("task has no installation, repository or environment (it did not come through the GitHub webhook)"))
	}
	callback, runID, err := c.api.checkCallback(t.Extra[ExtraCallbackURL], r.repo)
	if err != nil {
		return fail(err)
	}
	r.callback, r.runID = callback, runID
	return r, nil
}

// runURL is the address of one of the run's resources ("" for the run).
func (c *Client) runURL(r *rule, resource string) string {
	u := c.api.base + "/repos/" + r.repo + "/actions/runs/" + r.runID
	if resource != "" {
		u += "/" + resource
	}
	return u
}

// Decide reviews the rule: state approved or rejected, with the notes
// (who decided in Slack, when, why) as the comment. The review is sent once
// and never repeated here: after a timeout or a dropped connection GitHub
// may have taken it, and only the status read (the outbox's, before its
// next attempt) can tell. A 2xx (204) is success; 422, GitHub's answer to a
// review of a rule that no longer waits, is approvals.ErrToolDecided; any
// other 4xx is final (approvals.PermanentError); 5xx, 429, a rate limit,
// timeouts and connection errors may mend (an approvals.RetryAfterError
// when GitHub said when). A 401 drops the cached installation token, so
// that the next attempt mints a new one.
//
// On an attempt after the first (the task's delivery has attempts), a 422
// saying the rule "has already been reviewed" is the answer to this App's
// earlier review, the only one it makes of the task: it is delivered.
func (c *Client) Decide(ctx context.Context, t *approvals.Task, action approvals.Action, notes string) error {
	err := c.review(ctx, t, action, notes)
	if err != nil && t != nil && t.Delivery.Attempts > 0 && alreadyReviewed(err) {
		return nil
	}
	return err
}

// alreadyReviewed reports whether err is GitHub's 422 to a second review of
// the rule by this App.
func alreadyReviewed(err error) bool {
	var serr *StatusError
	return errors.As(err, &serr) && serr.StatusCode == http.StatusUnprocessableEntity &&
		strings.Contains(strings.ToLower(serr.Message), "already been reviewed")
}

// review makes the one review call of Decide.
func (c *Client) review(ctx context.Context, t *approvals.Task, action approvals.Action, notes string) error {
	const op = "review deployment protection rule"
	var state string
	switch action {
	case approvals.ActionApprove:
		state = "approved"
	case approvals.ActionReject:
		state = "rejected"
	default:
		return approvals.Permanent(fmt.Errorf("github: %s: unknown action %q", op, action))
	}
	r, err := c.rule(t, op)
	if err != nil {
		return err
	}
	body, err := json.Marshal(struct {
		Environment string `json:"environment_name"`
		State       string `json:"state"`
		Comment     string `json:"comment,omitempty"`
	}{r.environment, state, comment(notes)})
	if err != nil {
		return approvals.Permanent(fmt.Errorf("github: %s: encode: %w", op, err))
	}
	return c.write(ctx, r, op, body)
}

// Announce writes a status report on the run ("Waiting for approval in
// Slack channel …"): the review address with only environment_name and
// comment, which decides nothing. A report is made once per call; the
// outbox retries a failed one (a second report is harmless). Nothing is
// announced for a task that is no longer pending.
func (c *Client) Announce(ctx context.Context, t *approvals.Task) (map[string]string, error) {
	if t == nil || t.Status != approvals.StatusPending {
		return nil, nil
	}
	const op = "write status report"
	r, err := c.rule(t, op)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(struct {
		Environment string `json:"environment_name"`
		Comment     string `json:"comment"`
	}{r.environment, comment(waitingLine(t))})
	if err != nil {
		return nil, approvals.Permanent(fmt.Errorf("github: %s: encode: %w", op, err))
	}
	return nil, c.write(ctx, r, op, body)
}

// Status reads whether the rule still waits in GitHub (see the package's
// documentation for why this read and what it can tell): the run's pending
// deployments, and when the task's environment is no longer among them
// while the bot has no outcome to deliver, the run itself. Being reads,
// they are retried with backoff.
func (c *Client) Status(ctx context.Context, t *approvals.Task) (approvals.Status, error) {
	const op = "read pending deployments"
	r, err := c.rule(t, op)
	if err != nil {
		return "", err
	}
	answer, err := c.read(ctx, r, op, c.runURL(r, "pending_deployments"))
	if err != nil {
		return "", err
	}
	var pending []struct {
		Environment struct {
			Name string `json:"name"`
		} `json:"environment"`
	}
	if err := json.Unmarshal(answer, &pending); err != nil {
		// A proxy's page: worth another try later, not final.
		return "", fmt.Errorf("github: %s: GitHub's answer is not a list of pending deployments", op)
	}
	for _, p := range pending {
		if strings.EqualFold(p.Environment.Name, r.environment) {
			return approvals.StatusPending, nil
		}
	}
	if action, ok := t.Outcome(); ok {
		// GitHub waits no more: a review can change nothing now, and the
		// review that ended the wait was this App's, the only one it makes.
		if action == approvals.ActionApprove {
			return approvals.StatusApproved, nil
		}
		return approvals.StatusRejected, nil
	}
	const runOp = "read workflow run"
	answer, err = c.read(ctx, r, runOp, c.runURL(r, ""))
	if err != nil {
		return "", err
	}
	var run struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(answer, &run); err != nil {
		return "", fmt.Errorf("github: %s: GitHub's answer is not a workflow run", runOp)
	}
	if run.Status == "completed" {
		// Cancelled, failed by another rule or reviewer, or timed out:
		// ended without a decision from Slack.
		return approvals.StatusExpired, nil
	}
	return approvals.StatusPending, nil
}

// waitingLine is the status report, e.g.
//
//	Waiting for approval in Slack channel C0PROD (policy production, expires 2026-11-22T18:00:00Z)
func waitingLine(t *approvals.Task) string {
	var b strings.Builder
	b.WriteString("Waiting for approval in Slack")
	if ch := strings.TrimSpace(t.Message.Channel); ch != "" {
		b.WriteString(" channel ")
		b.WriteString(ch)
	}
	b.WriteString(" (")
	if t.Policy != "" {
		b.WriteString("policy ")
		b.WriteString(t.Policy)
		if t.RequiredApprovals > 1 {
			b.WriteString(", " + strconv.Itoa(t.RequiredApprovals) + " approvals needed")
		}
	} else {
		b.WriteString("no policy names approvers, so nobody can approve it from Slack")
	}
	if !t.ExpiresAt.IsZero() {
		b.WriteString(", expires ")
		b.WriteString(t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	b.WriteString(")")
	return b.String()
}

// comment is text as a review's comment: on one line, bounded.
func comment(text string) string {
	text = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(text, "\uFFFD"))
	if capped := approvals.CapRunes(text, maxCommentRunes-1); capped != text {
		text = capped + "…"
	}
	return text
}

// StatusError is GitHub's answer other than a usable 2xx.
// errors.Is(err, approvals.ErrNotFound) holds for a 404, and
// errors.Is(err, approvals.ErrToolDecided) for a 422 (the rule no longer
// waits).
type StatusError struct {
	StatusCode int
	// Message is GitHub's message (and those of its errors), tokens removed.
	Message string
}

func (e *StatusError) Error() string {
	msg := "GitHub answered " + rest.StatusText(e.StatusCode)
	if hint := e.hint(); hint != "" {
		msg += " (" + hint + ")"
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

func (e *StatusError) hint() string {
	switch code := e.StatusCode; {
	case code == http.StatusUnauthorized:
		return "the App's JWT or installation token was not accepted: check github.app_id and the private key"
	case code == http.StatusForbidden:
		return "the App lacks a permission (Actions: read, Deployments: read and write), or a rate limit"
	case code == http.StatusNotFound:
		return "the run, the repository or the installation is gone, or the App is not installed there"
	case code == http.StatusUnprocessableEntity:
		return "the rule no longer waits on this run: decided already, or the run ended"
	case code >= 300 && code < 400:
		return "a redirect: github.api_url must be the REST root"
	}
	return ""
}

// Is makes a 404 match approvals.ErrNotFound and a 422 ErrToolDecided.
func (e *StatusError) Is(target error) bool {
	switch target {
	case approvals.ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case approvals.ErrToolDecided:
		return e.StatusCode == http.StatusUnprocessableEntity
	}
	return false
}

// write makes a POST to the rule's review address, once (rest.Once), with
// the installation's token (minted first when none is cached: if that
// fails, nothing was sent).
func (c *Client) write(ctx context.Context, r *rule, op string, body []byte) error {
	_, err := rest.Once("github: "+op, func() ([]byte, *rest.Failure) {
		token, f := c.installationToken(ctx, r.installation)
		if f != nil {
			return nil, f
		}
		return c.try(ctx, http.MethodPost, r.callback, "Bearer "+token, body, 0, func() { c.tokens.forget(r.installation, token) })
	})
	return err
}

// read makes a GET with the installation's token, retrying what may mend
// (minting the token included: a new token after a 401).
func (c *Client) read(ctx context.Context, r *rule, op, target string) ([]byte, error) {
	retrier := rest.Retrier{Retries: c.retries, MinBackoff: c.minBackoff, MaxBackoff: c.maxBackoff, Sleep: c.sleep}
	return retrier.Do(ctx, "github: "+op, func() ([]byte, *rest.Failure) {
		token, f := c.installationToken(ctx, r.installation)
		if f != nil {
			return nil, f
		}
		return c.try(ctx, http.MethodGet, target, "Bearer "+token, nil, maxAnswer, func() { c.tokens.forget(r.installation, token) })
	})
}

// try makes one request to the API root and returns the 2xx answer's body
// (up to limit bytes; 0 discards it). Its own timeout bounds the whole
// exchange. unauthorized is called on a 401, which then may mend (with a
// new token).
func (c *Client) try(ctx context.Context, method, target, authorization string, body []byte, limit int64, unauthorized func()) ([]byte, *rest.Failure) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	secret := strings.TrimPrefix(authorization, "Bearer ")

	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return nil, &rest.Failure{Err: errors.New("build request: invalid URL")}
	}
	req.Header.Set("Authorization", authorization)
	req.Header.Set("Accept", mediaType)
	req.Header.Set("X-GitHub-Api-Version", apiVersion)
	req.Header.Set("User-Agent", "approvalbot")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &rest.Failure{Err: rest.TransportError(ctx, "GitHub", c.timeout, rest.RedactError(err, secret)), Retryable: true}
	}
	defer func() { _ = resp.Body.Close() }()

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if limit <= 0 {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, rest.MaxErrorBody))
			return nil, nil
		}
		answer, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return nil, &rest.Failure{Err: rest.TransportError(ctx, "GitHub", c.timeout, rest.RedactError(err, secret)), Retryable: true}
		}
		if int64(len(answer)) > limit {
			return nil, &rest.Failure{Err: fmt.Errorf("GitHub's answer is larger than %d bytes", limit)}
		}
		return answer, nil
	}

	raw, _ := io.ReadAll(io.LimitReader(resp.Body, rest.MaxErrorBody))
	serr := &StatusError{StatusCode: resp.StatusCode, Message: message(raw, secret)}
	f := rest.StatusFailure(serr, resp, c.now)
	switch {
	case resp.StatusCode == http.StatusUnauthorized && unauthorized != nil:
		// The token was revoked or expired early: a new one may do.
		unauthorized()
		f.Retryable = true
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests:
		// GitHub's rate limits answer 403 or 429, with Retry-After or
		// with the time the limit resets.
		if wait, ok := rateLimitWait(resp, c.now()); ok {
			f.Retryable, f.RetryAfter, f.HasAfter = true, wait, true
		}
	}
	return nil, f
}

// rateLimitWait is how long GitHub asks to wait: Retry-After, or, with no
// requests left (x-ratelimit-remaining: 0), until x-ratelimit-reset.
func rateLimitWait(resp *http.Response, now time.Time) (time.Duration, bool) {
	if d, ok := rest.ParseRetryAfter(resp.Header.Get("Retry-After"), now); ok {
		return d, true
	}
	if strings.TrimSpace(resp.Header.Get("X-RateLimit-Remaining")) != "0" {
		return 0, false
	}
	reset, err := strconv.ParseInt(strings.TrimSpace(resp.Header.Get("X-RateLimit-Reset")), 10, 64)
	if err != nil {
		return 0, false
	}
	return min(max(time.Unix(reset, 0).Sub(now), 0), rest.MaxRetryAfter), true
}

// message is GitHub's error message from its JSON answer (message, and
// each error's message), on one line, the secret removed; or the start of
// the answer when it is not GitHub's JSON.
func message(raw []byte, secret string) string {
	text := string(raw)
	var answer struct {
		Message string `json:"message"`
		Errors  []any  `json:"errors"`
	}
	if json.Unmarshal(raw, &answer) == nil && answer.Message != "" {
		parts := []string{answer.Message}
		for _, e := range answer.Errors {
			switch e := e.(type) {
			case string:
				parts = append(parts, e)
			case map[string]any:
				if m, ok := e["message"].(string); ok && m != "" {
					parts = append(parts, m)
				}
			}
		}
		text = strings.Join(parts, "; ")
	}
	return rest.Excerpt(text, func(s string) string { return rest.Redact(s, secret) })
}

// MapLogin is the Slack user (id or email) github.users maps a GitHub
// login to, if any; logins compare without case.
func (c *Client) MapLogin(login string) (string, bool) {
	mapped := c.users[strings.ToLower(strings.TrimSpace(login))]
	return mapped, mapped != ""
}
