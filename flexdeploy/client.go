package flexdeploy

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/rest"
)

// Defaults of Config.
const (
	DefaultTimeout    = 10 * time.Second
	DefaultRetries    = 4
	DefaultMinBackoff = 200 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
)

// maxDetailsBody bounds a task's details; they are a few hundred bytes.
const maxDetailsBody = 1 << 20

// Config configures a Client. Zero values take the defaults.
type Config struct {
	// BaseURL is FlexDeploy's REST root, e.g.
	// http://fd.internal:8000/flexdeploy/rest/v1.
	BaseURL string
	// Username and Password authenticate with HTTP Basic; Password may be a
	// FlexDeploy API token.
	Username string
	Password string
	// Timeout bounds each request, answer body included (default 10s).
	Timeout time.Duration
	// Retries is how many times a read (a task's details or status) is
	// retried after a 5xx, a 429, a timeout or a connection error (default
	// 4; negative: never). A decision is never retried here: it is sent once
	// per outbox attempt, and the outbox reads the status before the next.
	Retries int
	// MinBackoff and MaxBackoff bound the wait between a read's tries
	// (defaults 200ms and 5s), drawn by approvals.Backoff.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// HTTPClient replaces the client New builds (for tests). Timeout still
	// bounds every request through its context.
	HTTPClient *http.Client
	// Sleep waits between tries (for tests); it must return early with
	// ctx.Err() when ctx ends. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock for Retry-After dates (default time.Now).
	Now func() time.Time
}

// String keeps the password out of logs that print the config.
func (c Config) String() string {
	return fmt.Sprintf("flexdeploy.Config{BaseURL: %q, Username: %q, Password: [redacted], Timeout: %s, Retries: %d}",
		c.BaseURL, c.Username, c.Timeout, c.Retries)
}

// GoString keeps the password out of %#v too.
func (c Config) GoString() string { return c.String() }

// Client talks to FlexDeploy's REST API (v1 approval tasks). It is safe for
// concurrent use. Tool makes it the approvals.Tool of FlexDeploy.
type Client struct {
	base       string
	username   string
	password   string
	authHeader string
	timeout    time.Duration
	retries    int
	minBackoff time.Duration
	maxBackoff time.Duration
	http       *http.Client
	sleep      func(ctx context.Context, d time.Duration) error
	now        func() time.Time
}

// New checks cfg and returns a client.
func New(cfg Config) (*Client, error) {
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.Username == "" || cfg.Password == "" {
		return nil, errors.New("flexdeploy: username and password are required")
	}
	if cfg.Timeout < 0 || cfg.MinBackoff < 0 || cfg.MaxBackoff < 0 {
		return nil, errors.New("flexdeploy: timeout and backoffs must not be negative")
	}
	c := &Client{
		base:       base,
		username:   cfg.Username,
		password:   cfg.Password,
		authHeader: "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.Username+":"+cfg.Password)),
		timeout:    cmp.Or(cfg.Timeout, DefaultTimeout),
		retries:    rest.RetryCount(cfg.Retries, DefaultRetries),
		minBackoff: cmp.Or(cfg.MinBackoff, DefaultMinBackoff),
		maxBackoff: cmp.Or(cfg.MaxBackoff, DefaultMaxBackoff),
		http:       cfg.HTTPClient,
		sleep:      cfg.Sleep,
		now:        cfg.Now,
	}
	if c.maxBackoff < c.minBackoff {
		return nil, errors.New("flexdeploy: max backoff must not be less than min backoff")
	}
	if c.http == nil {
		c.http = rest.NewHTTPClient(c.timeout)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// String keeps the credentials out of logs that print the client.
func (c *Client) String() string { return "flexdeploy.Client{" + c.base + "}" }

// parseBaseURL accepts an absolute http(s) URL without credentials, query or
// fragment, and drops trailing slashes. Its errors never quote the URL, which
// might hold a password.
func parseBaseURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", errors.New("flexdeploy: base URL is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("flexdeploy: base URL is not a valid URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errors.New("flexdeploy: base URL must start with http:// or https://")
	case u.Host == "":
		return "", errors.New("flexdeploy: base URL has no host")
	case u.User != nil:
		return "", errors.New("flexdeploy: base URL must not contain credentials; set username and password instead")
	case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(raw, "?") || strings.HasSuffix(raw, "#"):
		return "", errors.New("flexdeploy: base URL must not have a query or fragment")
	}
	return strings.TrimRight(raw, "/"), nil
}

// Decide approves or rejects the task in FlexDeploy with notes, in one PUT
// that is never repeated here: after a timeout or a dropped connection the
// decision may have been taken, and only a status read (the outbox's, before
// its next attempt) can tell. A 2xx is success. A 4xx other than 408 and 429
// is final and comes back as an approvals.PermanentError; FlexDeploy's "Task
// is not in PENDING status" also matches approvals.ErrToolDecided. 5xx,
// 408, 429, timeouts and connection errors come back as a plain error for
// the outbox to retry, as an approvals.RetryAfterError when FlexDeploy said
// when.
func (c *Client) Decide(ctx context.Context, t *approvals.Task, action approvals.Action, notes string) error {
	if t == nil || t.TaskID == "" {
		return approvals.Permanent(fmt.Errorf("flexdeploy: %s: %w", action, approvals.Invalidf("task has no FlexDeploy task id")))
	}
	op := fmt.Sprintf("%s task %s", action, t.TaskID)
	if action != approvals.ActionApprove && action != approvals.ActionReject {
		return approvals.Permanent(fmt.Errorf("flexdeploy: %s: unknown action %q", op, action))
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false) // notes are text, not HTML; keep them readable in FlexDeploy
	if err := enc.Encode(struct {
		Notes string `json:"notes"`
	}{notes}); err != nil {
		return approvals.Permanent(fmt.Errorf("flexdeploy: %s: encode notes: %w", op, err))
	}
	path := "/tasks/approval/" + string(action) + "/" + url.PathEscape(t.TaskID)
	_, err := rest.Once("flexdeploy: "+op, func() ([]byte, *rest.Failure) {
		return c.try(ctx, http.MethodPut, path, bytes.TrimSpace(body.Bytes()), 0)
	})
	return err
}

// Details is what FlexDeploy tells about an approval task.
type Details struct {
	TaskID          string `json:"taskId"`
	Status          string `json:"status"`
	EnvironmentName string `json:"environmentName"`
	ReleaseName     string `json:"releaseName"`
	PipelineName    string `json:"pipelineName"`
	ProjectName     string `json:"projectName"`
	Notes           string `json:"notes"`
	GateName        string `json:"gateName"`
	RequestType     string `json:"requestType"`
}

// UnmarshalJSON accepts the task id as a JSON string or number.
func (d *Details) UnmarshalJSON(data []byte) error {
	type plain Details
	var aux struct {
		plain
		TaskID json.RawMessage `json:"taskId"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*d = Details(aux.plain)
	d.TaskID = ""
	switch c := firstByte(aux.TaskID); {
	case c == '"':
		if err := json.Unmarshal(aux.TaskID, &d.TaskID); err != nil {
			return err
		}
	case c == '-' || (c >= '0' && c <= '9'):
		d.TaskID = string(bytes.TrimSpace(aux.TaskID))
	case c == 0 || c == 'n':
	default:
		return errors.New("taskId is neither a string nor a number")
	}
	return nil
}

// Details reads the approval task from FlexDeploy. A 404 comes back as an
// approvals.PermanentError that also matches approvals.ErrNotFound.
func (c *Client) Details(ctx context.Context, taskID string) (Details, error) {
	op := "get task " + taskID
	if taskID == "" {
		return Details{}, approvals.Permanent(fmt.Errorf("flexdeploy: get task: %w", approvals.Invalidf("no task id")))
	}
	body, err := c.read(ctx, op, "/tasks/approval/"+url.PathEscape(taskID), maxDetailsBody)
	if err != nil {
		return Details{}, err
	}
	var d Details
	if err := json.Unmarshal(body, &d); err != nil {
		// A 2xx that is not a task is usually a proxy or login page in
		// front of FlexDeploy: worth another try later, not final.
		return Details{}, fmt.Errorf("flexdeploy: %s: FlexDeploy's answer is not a JSON task: %s", op, c.excerpt(body))
	}
	return d, nil
}

// Status reads the task's status in FlexDeploy: decided there (in its own
// UI, or by an earlier Decide whose answer was lost) or still pending.
// Statuses it does not know count as pending, so that a new FlexDeploy status
// never decides a task in the bot. Being a read, it is retried with backoff.
func (c *Client) Status(ctx context.Context, t *approvals.Task) (approvals.Status, error) {
	if t == nil {
		return "", approvals.Permanent(errors.New("flexdeploy: get task: no task"))
	}
	d, err := c.Details(ctx, t.TaskID)
	if err != nil {
		return "", err
	}
	return mapStatus(d.Status), nil
}

func mapStatus(status string) approvals.Status {
	switch strings.ToUpper(strings.TrimSpace(status)) {
	case "APPROVED":
		return approvals.StatusApproved
	case "REJECTED":
		return approvals.StatusRejected
	default: // PENDING, SUBMITTED, and whatever else FlexDeploy may add
		return approvals.StatusPending
	}
}

// StatusError is FlexDeploy's answer other than 2xx. errors.Is(err,
// approvals.ErrNotFound) holds for a 404, and errors.Is(err,
// approvals.ErrToolDecided) for a 400 saying the task is no longer pending.
type StatusError struct {
	StatusCode int
	// Excerpt is the start of FlexDeploy's answer, secrets removed.
	Excerpt string
	// Location is where a 3xx pointed.
	Location string
}

func (e *StatusError) Error() string {
	msg := "FlexDeploy answered " + rest.StatusText(e.StatusCode)
	if e.Location != "" {
		msg += " (a redirect to " + e.Location + "; check the base URL)"
	}
	if e.Excerpt != "" {
		msg += ": " + e.Excerpt
	}
	return msg
}

// Is makes a 404 match approvals.ErrNotFound, and FlexDeploy's refusal of a
// decision on a task that is no longer pending approvals.ErrToolDecided.
func (e *StatusError) Is(target error) bool {
	switch target {
	case approvals.ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case approvals.ErrToolDecided:
		return e.StatusCode == http.StatusBadRequest && strings.Contains(strings.ToUpper(e.Excerpt), notPending)
	}
	return false
}

// notPending is what FlexDeploy answers (upper-cased here) to a decision on
// a task decided already: "Task is not in PENDING status".
const notPending = "NOT IN PENDING STATUS"

// read makes a GET, retrying what may mend, and returns the body of the 2xx
// answer (read up to limit bytes). Errors are wrapped with "flexdeploy: op".
func (c *Client) read(ctx context.Context, op, path string, limit int64) ([]byte, error) {
	r := rest.Retrier{Retries: c.retries, MinBackoff: c.minBackoff, MaxBackoff: c.maxBackoff, Sleep: c.sleep}
	return r.Do(ctx, "flexdeploy: "+op, func() ([]byte, *rest.Failure) {
		return c.try(ctx, http.MethodGet, path, nil, limit)
	})
}

// try makes one request. Its own timeout bounds the whole exchange, answer
// body included, also when the HTTP client came from the config.
func (c *Client) try(ctx context.Context, method, path string, body []byte, limit int64) ([]byte, *rest.Failure) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, reader)
	if err != nil {
		return nil, &rest.Failure{Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Authorization", c.authHeader)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "approvalbot")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &rest.Failure{Err: rest.TransportError(ctx, "FlexDeploy", c.timeout, err), Retryable: true}
	}
	defer func() { _ = resp.Body.Close() }()

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if limit <= 0 {
			// Drained so that the connection can be reused.
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, rest.MaxErrorBody))
			return nil, nil
		}
		answer, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return nil, &rest.Failure{Err: rest.TransportError(ctx, "FlexDeploy", c.timeout, err), Retryable: true}
		}
		if int64(len(answer)) > limit {
			return nil, &rest.Failure{Err: fmt.Errorf("FlexDeploy's answer is larger than %d bytes", limit)}
		}
		return answer, nil
	}

	raw, _ := io.ReadAll(io.LimitReader(resp.Body, rest.MaxErrorBody))
	serr := &StatusError{StatusCode: resp.StatusCode, Excerpt: c.excerpt(raw)}
	if code := resp.StatusCode; code >= 300 && code < 400 {
		serr.Location = approvals.CapRunes(c.redact(resp.Header.Get("Location")), rest.ExcerptRunes) // redact before cutting: a cut secret would escape
	}
	return nil, rest.StatusFailure(serr, resp, c.now)
}

// excerpt is the start of FlexDeploy's answer for an error message: the
// "message" of a JSON error when there is one, on one line, without the
// credentials (a misbehaving proxy may echo the request), at most
// rest.ExcerptRunes runes.
func (c *Client) excerpt(raw []byte) string {
	text := string(raw)
	var msg struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(raw, &msg) == nil {
		if m := firstNonEmpty(msg.Message, msg.Error); m != "" {
			text = m
		}
	}
	return rest.Excerpt(text, c.redact)
}

// redact removes the password and the Authorization value from s.
func (c *Client) redact(s string) string {
	return rest.Redact(s,
		c.authHeader,
		strings.TrimPrefix(c.authHeader, "Basic "),
		c.password,
		url.QueryEscape(c.password),
		url.PathEscape(c.password),
	)
}
