// Package jira reads Jira issues for the change gate
// (approvals.ChangeLookup): a policy with require_change: {jira: true}
// lets a task be approved only while its issue is in one of
// jira.approved_statuses.
package jira

import (
	"context"
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

// Config is the site, the account and the statuses that approve.
type Config struct {
	BaseURL          string // https://acme.atlassian.net
	Email            string
	APIToken         string
	ApprovedStatuses []string
	Timeout          time.Duration
}

// Client looks issues up.
type Client struct {
	base     string
	email    string
	token    string
	approved []string
	timeout  time.Duration
	http     *http.Client
}

var _ approvals.ChangeLookup = (*Client)(nil)

// New builds a client.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" || cfg.Email == "" || cfg.APIToken == "" || len(cfg.ApprovedStatuses) == 0 {
		return nil, errors.New("jira: base_url, email, api_token and approved statuses are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	return &Client{base: strings.TrimRight(cfg.BaseURL, "/"), email: cfg.Email, token: cfg.APIToken,
		approved: cfg.ApprovedStatuses, timeout: cfg.Timeout, http: rest.NewHTTPClient(cfg.Timeout)}, nil
}

type issue struct {
	Key    string `json:"key"`
	Fields struct {
		Status struct {
			Name string `json:"name"`
		} `json:"status"`
	} `json:"fields"`
}

// LookupChange reads the issue key.
func (c *Client) LookupChange(ctx context.Context, key string) (approvals.ChangeRecord, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/rest/api/3/issue/"+url.PathEscape(key)+"?fields=status,summary", nil)
	if err != nil {
		return approvals.ChangeRecord{}, fmt.Errorf("jira: issue %s: %w", key, err)
	}
	req.SetBasicAuth(c.email, c.token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return approvals.ChangeRecord{}, fmt.Errorf("jira: issue %s: %w", key,
			rest.TransportError(ctx, "Jira", c.timeout, rest.RedactError(err, c.token)))
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, rest.MaxErrorBody))
	if err != nil {
		return approvals.ChangeRecord{}, fmt.Errorf("jira: issue %s: reading the answer: %w", key, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return approvals.ChangeRecord{}, fmt.Errorf("jira: issue %s: %w", key, approvals.ErrNotFound)
	case resp.StatusCode != http.StatusOK:
		return approvals.ChangeRecord{}, fmt.Errorf("jira: issue %s: %s: %s", key, rest.StatusText(resp.StatusCode),
			rest.Excerpt(string(body), func(s string) string { return rest.Redact(s, c.token) }))
	}
	var is issue
	if err := json.Unmarshal(body, &is); err != nil || is.Fields.Status.Name == "" {
		return approvals.ChangeRecord{}, fmt.Errorf("jira: issue %s: the answer has no fields.status.name", key)
	}
	status := is.Fields.Status.Name
	rec := approvals.ChangeRecord{Number: key, State: status, URL: c.base + "/browse/" + url.PathEscape(key)}
	for _, ok := range c.approved {
		if strings.EqualFold(strings.TrimSpace(ok), status) {
			rec.Approved = true
		}
	}
	if !rec.Approved {
		rec.NotApproved = fmt.Sprintf("status %s, not %s", status, strings.Join(c.approved, " or "))
	}
	return rec, nil
}
