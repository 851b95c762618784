package gitlab

import (
	"cmp"
	"context"
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

// Defaults of Config.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultRetries      = 3
	DefaultMinBackoff   = 200 * time.Millisecond
	DefaultMaxBackoff   = 5 * time.Second
	DefaultPollInterval = 30 * time.Second
)

const (
	// maxAnswer bounds a read's answer: a deployment, a page of them.
	maxAnswer = 4 << 20
	// perPage is the page size of the blocked-deployments list.
	perPage = 100
	// maxPages bounds one project's pages in one poll.
	maxPages = 50
	// maxCommentRunes bounds an approval's comment.
	maxCommentRunes = 1000
)

// Keys of a task's Extra.
const (
	ExtraProjectID    = "projectId"
	ExtraDeploymentID = "deploymentId"
)

// Config configures a Client. Zero values take the defaults.
type Config struct {
	// APIURL is GitLab's REST root, e.g. https://gitlab.example.com/api/v4.
	APIURL string
	// Token is the bot user's token (PRIVATE-TOKEN), allowed to approve.
	Token string
	// WebhookToken is the webhook's secret token ("" : no webhook intake).
	WebhookToken string
	// Projects are polled for blocked deployments: numeric ids or
	// group/path.
	Projects []string
	// PollInterval is how often they are polled (default 30s).
	PollInterval time.Duration
	// Users maps GitLab usernames (case-insensitive) to chat user ids or
	// emails, for the self-approval check.
	Users map[string]string
	// RepresentedAs is the approval rule the bot's approval counts toward.
	RepresentedAs string
	// Timeout bounds each request (default 10s).
	Timeout time.Duration
	// Retries of a read (default 3; negative: never); MinBackoff and
	// MaxBackoff bound the waits between its tries.
	Retries    int
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// HTTPClient replaces the client New builds (tests).
	HTTPClient *http.Client
	// Sleep waits between a read's tries (tests).
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock of Retry-After dates.
	Now func() time.Time
}

// Client approves GitLab deployments, reads them and finds the blocked
// ones. It is safe for concurrent use.
type Client struct {
	api           string // the REST root, no trailing slash
	token         string
	webhookToken  string
	projects      []string
	pollInterval  time.Duration
	users         map[string]string
	representedAs string
	exchange      *rest.Exchange
}

// New checks cfg and returns a client. Its errors never quote a token.
func New(cfg Config) (*Client, error) {
	api, err := parseAPIURL(cfg.APIURL)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.Token) == "" {
		return nil, errors.New("gitlab: a token is required (gitlab.token)")
	}
	if strings.ContainsFunc(cfg.Token, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return nil, errors.New("gitlab: the token holds characters a header cannot carry")
	}
	if cfg.Timeout < 0 || cfg.MinBackoff < 0 || cfg.MaxBackoff < 0 || cfg.PollInterval < 0 {
		return nil, errors.New("gitlab: timeout, poll interval and backoffs must not be negative")
	}
	minBackoff, maxBackoff := cmp.Or(cfg.MinBackoff, DefaultMinBackoff), cmp.Or(cfg.MaxBackoff, DefaultMaxBackoff)
	if maxBackoff < minBackoff {
		return nil, errors.New("gitlab: max backoff must not be less than min backoff")
	}
	c := &Client{
		api: api, token: cfg.Token, webhookToken: cfg.WebhookToken,
		pollInterval:  cmp.Or(cfg.PollInterval, DefaultPollInterval),
		users:         map[string]string{},
		representedAs: strings.TrimSpace(cfg.RepresentedAs),
	}
	for _, p := range cfg.Projects {
		if p = strings.Trim(strings.TrimSpace(p), "/"); p != "" {
			c.projects = append(c.projects, p)
		}
	}
	for name, to := range cfg.Users {
		if name, to = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(to); name != "" && to != "" {
			c.users[name] = to
		}
	}
	token := cfg.Token
	c.exchange = rest.NewExchange(rest.Exchange{
		Service: "GitLab",
		Timeout: cmp.Or(cfg.Timeout, DefaultTimeout),
		// It follows no redirect: the token goes to api_url's host only.
		HTTP:    cfg.HTTPClient,
		Header:  http.Header{"Private-Token": {token}, "Accept": {"application/json"}},
		Redact:  func(s string) string { return rest.Redact(s, token, url.QueryEscape(token)) },
		Message: message,
		Explain: explain,
		Retrier: rest.Retrier{Retries: rest.RetryCount(cfg.Retries, DefaultRetries), MinBackoff: minBackoff, MaxBackoff: maxBackoff, Sleep: cfg.Sleep},
		Now:     cfg.Now,
	})
	return c, nil
}

// String says what the client is without its tokens.
func (c *Client) String() string { return "gitlab.Client{" + c.api + "}" }

// GoString keeps the tokens out of %#v too.
func (c *Client) GoString() string { return c.String() }

// parseAPIURL accepts an absolute http(s) URL without credentials, query
// or fragment. Its errors never quote it.
func parseAPIURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return "", errors.New("gitlab: the API URL is required (gitlab.api_url)")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return "", errors.New("gitlab: the API URL must be an absolute http(s) URL, such as https://gitlab.example.com/api/v4")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return "", errors.New("gitlab: the API URL must not have credentials, a query or a fragment")
	}
	return strings.TrimRight(raw, "/"), nil
}

// deployment is where a task's deployment is in GitLab.
type deployment struct{ project, id string }

// deploymentOf reads the task's routing fields; what is missing cannot
// mend by retrying.
func deploymentOf(t *approvals.Task, op string) (deployment, error) {
	if t == nil {
		return deployment{}, approvals.Permanent(fmt.Errorf("gitlab: %s: %w", op, approvals.Invalidf("no task")))
	}
	d := deployment{project: t.Extra[ExtraProjectID], id: t.Extra[ExtraDeploymentID]}
	if !isID(d.project) || !isID(d.id) {
		return deployment{}, approvals.Permanent(fmt.Errorf("gitlab: %s: %w", op, approvals.Invalidf("task has no GitLab project and deployment id")))
	}
	return d, nil
}

// isID reports whether s is a GitLab id: a positive whole number.
func isID(s string) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && n > 0 && strconv.FormatInt(n, 10) == s
}

func (c *Client) deploymentURL(d deployment) string {
	return c.api + "/projects/" + d.project + "/deployments/" + d.id
}

// Decide approves or rejects the deployment, once, with the notes as the
// comment. 201 is delivered. A 400 or 403 is read against the
// deployment's status: not blocked any more, it is approvals.ErrToolDecided
// (decided there, or an earlier attempt of ours went through); still
// blocked, it is GitLab's refusal (the bot user may not approve), final.
func (c *Client) Decide(ctx context.Context, t *approvals.Task, action approvals.Action, notes string, _ bool) error {
	const op = "approve deployment"
	var status string
	switch action {
	case approvals.ActionApprove:
		status = "approved"
	case approvals.ActionReject:
		status = "rejected"
	default:
		return approvals.Permanent(fmt.Errorf("gitlab: %s: unknown action %q", op, action))
	}
	d, err := deploymentOf(t, op)
	if err != nil {
		return err
	}
	body, err := json.Marshal(struct {
		Status        string `json:"status"`
		Comment       string `json:"comment,omitempty"`
		RepresentedAs string `json:"represented_as,omitempty"`
	}{status, approvals.CapRunes(notes, maxCommentRunes), c.representedAs})
	if err != nil {
		return approvals.Permanent(fmt.Errorf("gitlab: %s: encode: %w", op, err))
	}
	_, err = c.exchange.Write(ctx, "gitlab: "+op, rest.Request{Method: http.MethodPost, URL: c.deploymentURL(d) + "/approval", Body: body})
	var serr *rest.StatusError
	if err == nil || !errors.As(err, &serr) || (serr.StatusCode != http.StatusBadRequest && serr.StatusCode != http.StatusForbidden) {
		return err
	}
	remote, rerr := c.status(ctx, d)
	switch {
	case rerr != nil:
		// Cannot tell a refusal from "decided there": ask again later.
		return fmt.Errorf("gitlab: %s: %s; reading the deployment: %w", op, serr, rerr)
	case remote != "blocked":
		return fmt.Errorf("%w (the deployment is %s): %w", approvals.ErrToolDecided, remote, err)
	}
	return err
}

// Status reads the deployment: blocked is pending; running, success and
// created are approved there; canceled and failed rejected there.
// Anything else counts as pending, so that nothing unknown decides a task.
func (c *Client) Status(ctx context.Context, t *approvals.Task) (approvals.Status, error) {
	d, err := deploymentOf(t, "read deployment")
	if err != nil {
		return "", err
	}
	remote, err := c.status(ctx, d)
	if err != nil {
		return "", err
	}
	return mapStatus(remote), nil
}

func mapStatus(remote string) approvals.Status {
	switch remote {
	case "running", "success", "created":
		return approvals.StatusApproved
	case "canceled", "failed":
		return approvals.StatusRejected
	}
	return approvals.StatusPending
}

// status is the deployment's status as GitLab names it.
func (c *Client) status(ctx context.Context, d deployment) (string, error) {
	const op = "gitlab: read deployment"
	answer, err := c.exchange.Read(ctx, op, rest.Request{Method: http.MethodGet, URL: c.deploymentURL(d), Limit: maxAnswer})
	if err != nil {
		return "", err
	}
	var got struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(answer, &got) != nil || got.Status == "" {
		// A proxy's page: worth another try later, not final.
		return "", fmt.Errorf("%s: GitLab's answer is not a deployment", op)
	}
	return got.Status, nil
}

// MapUser is the chat user (id or email) gitlab.users maps a GitLab
// username to, if any; usernames compare without case.
func (c *Client) MapUser(name string) (string, bool) {
	mapped := c.users[strings.ToLower(strings.TrimSpace(name))]
	return mapped, mapped != ""
}

// explain says what GitLab's answer usually means.
func explain(_ *http.Response, e *rest.StatusError, _ *rest.Failure) {
	switch code := e.StatusCode; {
	case code == http.StatusUnauthorized:
		e.Hint = "the token was not accepted: check gitlab.token"
	case code == http.StatusForbidden:
		e.Hint = "the bot user may not approve this deployment, or it is not blocked"
	case code == http.StatusNotFound:
		e.Hint = "the project or deployment is gone, or the token cannot see it"
	case code >= 300 && code < 400:
		e.Hint = "a redirect: gitlab.api_url must be the REST root, such as https://gitlab.example.com/api/v4"
	}
}

// message is GitLab's error message: "message" (a string, or an object of
// field errors) or "error".
func message(raw []byte) string {
	var answer struct {
		Message json.RawMessage `json:"message"`
		Error   string          `json:"error"`
	}
	if json.Unmarshal(raw, &answer) != nil {
		return ""
	}
	var text string
	if json.Unmarshal(answer.Message, &text) == nil && text != "" {
		return text
	}
	if len(answer.Message) > 0 && answer.Message[0] == '{' {
		return string(answer.Message)
	}
	return answer.Error
}
