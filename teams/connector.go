package teams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/pace"
	"github.com/approvalbot/approvalbot/internal/rest"
)

// Bot Framework's outgoing facts (reference: "Bot Connector REST API").
const (
	// DefaultTokenURL is Entra's token endpoint; {tenant} is teams.tenant_id.
	DefaultTokenURL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
	// connectorScope is what the bot's token is for.
	connectorScope = "https://api.botframework.com/.default"
	// tokenMargin: a token is fetched anew this long before it expires.
	tokenMargin = time.Minute
	// DefaultTimeout bounds one call to the connector or Entra.
	DefaultTimeout = 10 * time.Second
)

// Connector calls the Bot Connector API with the bot's token from Entra.
// Every call goes through the Pacer.
type Connector struct {
	appID, password string
	tokenURL        string
	client          *http.Client
	timeout         time.Duration
	now             func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

// ConnectorConfig configures a Connector.
type ConnectorConfig struct {
	AppID, AppPassword, TenantID string
	// TokenURL overrides DefaultTokenURL (tests).
	TokenURL string
	Timeout  time.Duration
	// Pacer paces the calls (NewPacer); nil makes one with Teams' limits.
	Pacer *pace.Pacer
	Now   func() time.Time
}

// NewConnector returns a Connector.
func NewConnector(cfg ConnectorConfig) *Connector {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tokenURL := cfg.TokenURL
	if tokenURL == "" {
		tokenURL = strings.ReplaceAll(DefaultTokenURL, "{tenant}", url.PathEscape(cfg.TenantID))
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	pacer := cfg.Pacer
	if pacer == nil {
		pacer = NewPacer(pace.Config{})
	}
	client := rest.NewHTTPClient(timeout)
	client.Transport = pacer.Transport(client.Transport)
	return &Connector{appID: cfg.AppID, password: cfg.AppPassword, tokenURL: tokenURL, client: client, timeout: timeout, now: now}
}

// NewPacer returns a Pacer of Teams' calls; zero values of cfg take Teams'
// limits ("Optimize your bot with rate limiting"): per bot and
// conversation 7 messages a second, 60 in 30 s and 1,800 an hour, so a
// conversation's posts and replies leave in intake order at one per 2 s
// after a burst of 7; the member look-up a click waits on fails fast.
func NewPacer(cfg pace.Config) *pace.Pacer {
	if cfg.Channel == (pace.Limit{}) {
		cfg.Channel = pace.PerWindow(1800, time.Hour, 7)
	}
	if cfg.Methods == nil {
		cfg.Methods = map[string]pace.Limit{
			"send":   {Every: 20 * time.Millisecond, Burst: 50},
			"reply":  {Every: 20 * time.Millisecond, Burst: 50},
			"update": {Every: 20 * time.Millisecond, Burst: 50},
		}
	}
	if cfg.Classify == nil {
		cfg.Classify = teamsCall
	}
	if cfg.RateLimitedBody == "" {
		cfg.RateLimitedBody = `{"error":{"code":"Throttled","message":"paced by approvalbot"}}`
	}
	return pace.New(cfg)
}

// teamsCall names a connector call for the Pacer: a send or a reply waits
// in its conversation's queue.
func teamsCall(req *http.Request) pace.Call {
	path := req.URL.EscapedPath()
	i := strings.Index(path, "/v3/conversations/")
	if i < 0 {
		return pace.Call{Method: "token"}
	}
	parts := strings.Split(path[i+len("/v3/conversations/"):], "/")
	conv, _ := url.PathUnescape(parts[0])
	switch {
	case len(parts) == 2 && parts[1] == "activities" && req.Method == http.MethodPost:
		return pace.Call{Method: "send", Queue: conv}
	case len(parts) == 3 && parts[1] == "activities" && req.Method == http.MethodPost:
		return pace.Call{Method: "reply", Queue: conv}
	case len(parts) == 3 && parts[1] == "activities" && req.Method == http.MethodPut:
		return pace.Call{Method: "update"}
	case len(parts) == 3 && parts[1] == "members":
		return pace.Call{Method: "member", Click: true}
	}
	return pace.Call{Method: "other"}
}

// Activity payloads the bot sends.
type outActivity struct {
	Type        string       `json:"type"`
	Text        string       `json:"text,omitempty"`
	TextFormat  string       `json:"textFormat,omitempty"`
	Summary     string       `json:"summary,omitempty"`
	Attachments []attachment `json:"attachments,omitempty"`
	ReplyToID   string       `json:"replyToId,omitempty"`
}

type attachment struct {
	ContentType string `json:"contentType"`
	Content     Card   `json:"content"`
}

func cardActivity(card Card, summary string) outActivity {
	return outActivity{Type: "message", Summary: summary, Attachments: []attachment{{ContentType: cardContentType, Content: card}}}
}

// Member is what a member look-up answers.
type Member struct {
	ID                string `json:"id"`
	Name              string `json:"name"`
	AADObjectID       string `json:"aadObjectId"`
	Email             string `json:"email"`
	UserPrincipalName string `json:"userPrincipalName"`
	TenantID          string `json:"tenantId"`
}

// Send posts an activity into a conversation and returns its id.
func (c *Connector) Send(ctx context.Context, serviceURL, conversation string, a outActivity) (string, error) {
	var answer struct {
		ID string `json:"id"`
	}
	err := c.do(ctx, "send activity", http.MethodPost, activitiesURL(serviceURL, conversation, ""), a, &answer)
	if err == nil && answer.ID == "" {
		return "", approvals.Permanent(errors.New("teams: send activity: the connector answered no id"))
	}
	return answer.ID, err
}

// Update replaces an activity.
func (c *Connector) Update(ctx context.Context, serviceURL, conversation, id string, a outActivity) error {
	return c.do(ctx, "update activity", http.MethodPut, activitiesURL(serviceURL, conversation, id), a, nil)
}

// Reply posts an activity in reply to another (in its thread).
func (c *Connector) Reply(ctx context.Context, serviceURL, conversation, id string, a outActivity) (string, error) {
	var answer struct {
		ID string `json:"id"`
	}
	a.ReplyToID = id
	err := c.do(ctx, "reply to activity", http.MethodPost, activitiesURL(serviceURL, conversation, id), a, &answer)
	return answer.ID, err
}

// Member looks one member of a conversation up.
func (c *Connector) Member(ctx context.Context, serviceURL, conversation, member string) (Member, error) {
	var m Member
	u := strings.TrimSuffix(serviceURL, "/") + "/v3/conversations/" + url.PathEscape(conversation) + "/members/" + url.PathEscape(member)
	err := c.do(ctx, "look up member", http.MethodGet, u, nil, &m)
	return m, err
}

func activitiesURL(serviceURL, conversation, id string) string {
	u := strings.TrimSuffix(serviceURL, "/") + "/v3/conversations/" + url.PathEscape(conversation) + "/activities"
	if id != "" {
		u += "/" + url.PathEscape(id)
	}
	return u
}

// do makes one call: a write is sent once (the outbox owns retries). A 429
// is an approvals.RetryAfterError (a turn when the Pacer kept the task's
// place); other 4xx are permanent, except 401/403, after which the token is
// fetched anew on the next try.
func (c *Connector) do(ctx context.Context, op, method, u string, body, into any) error {
	token, err := c.bearer(ctx)
	if err != nil {
		return err
	}
	var payload io.Reader
	var raw []byte
	if body != nil {
		if raw, err = json.Marshal(body); err != nil {
			return approvals.Permanent(fmt.Errorf("teams: %s: %w", op, err))
		}
		payload = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, payload)
	if err != nil {
		return approvals.Permanent(fmt.Errorf("teams: %s: %w", op, err))
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("teams: %s: %w", op, rest.RedactError(rest.TransportError(ctx, "the Bot Connector", c.timeout, err), token))
	}
	defer func() { _ = resp.Body.Close() }()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, rest.MaxErrorBody))
	if resp.StatusCode/100 == 2 {
		if into != nil && len(bytes.TrimSpace(answer)) > 0 {
			if err := json.Unmarshal(answer, into); err != nil {
				return fmt.Errorf("teams: %s: unreadable answer", op)
			}
		}
		return nil
	}
	failure := fmt.Errorf("teams: %s: %s: %s", op, rest.StatusText(resp.StatusCode), rest.Excerpt(string(answer), func(s string) string { return rest.Redact(s, token, c.password) }))
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		after := time.Second
		if d, ok := rest.ParseRetryAfter(resp.Header.Get("Retry-After"), c.now()); ok {
			after = d
		}
		return &approvals.RetryAfterError{Err: failure, After: after, Turn: pace.SentAwayForTurn(ctx)}
	case http.StatusUnauthorized, http.StatusForbidden:
		c.forget(token)
		return failure
	case http.StatusRequestTimeout:
		return failure
	}
	if resp.StatusCode >= 500 {
		return failure
	}
	return approvals.Permanent(failure)
}

// bearer is the bot's token, fetched from Entra with the client
// credentials and reused until a minute before it expires.
func (c *Connector) bearer(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.now().Before(c.expires.Add(-tokenMargin)) {
		return c.token, nil
	}
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.appID},
		"client_secret": {c.password},
		"scope":         {connectorScope},
	}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tokenURL, strings.NewReader(form))
	if err != nil {
		return "", approvals.Permanent(fmt.Errorf("teams: token: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("teams: token: %w", rest.RedactError(rest.TransportError(ctx, "Entra", c.timeout, err), c.password))
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, rest.MaxErrorBody))
	if resp.StatusCode != http.StatusOK {
		// Entra's error names the app and the cause (a wrong secret, a
		// wrong tenant), never the secret; it is redacted all the same.
		err := fmt.Errorf("teams: token: Entra answered %s: %s", rest.StatusText(resp.StatusCode), rest.Excerpt(string(raw), func(s string) string { return rest.Redact(s, c.password) }))
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			return "", err
		}
		return "", err // a wrong credential may be mended by a config reload: the outbox tries again later
	}
	var answer struct {
		TokenType   string          `json:"token_type"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
		AccessToken string          `json:"access_token"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil || answer.AccessToken == "" {
		return "", errors.New("teams: token: Entra's answer has no access_token")
	}
	secs, _ := strconv.Atoi(strings.Trim(string(answer.ExpiresIn), `"`))
	if secs <= 0 {
		secs = 3600
	}
	c.token, c.expires = answer.AccessToken, c.now().Add(time.Duration(secs)*time.Second)
	return c.token, nil
}

// forget drops a token the connector refused, so the next call fetches one.
func (c *Connector) forget(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == token {
		c.token = ""
	}
}
