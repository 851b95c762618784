// Package jira reads Jira issues for the change gate
// (approvals.ChangeLookup): a policy with require_change: {jira: true}
// lets a task be approved only while its issue is in one of
// jira.approved_statuses.
package jira

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
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
	approved []string
	api      *rest.Exchange
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
	token := cfg.APIToken
	header := http.Header{}
	header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cfg.Email+":"+token)))
	header.Set("Accept", "application/json")
	return &Client{base: strings.TrimRight(cfg.BaseURL, "/"), approved: cfg.ApprovedStatuses,
		api: rest.NewExchange(rest.Exchange{Service: "Jira", Timeout: cfg.Timeout, Header: header,
			Redact: func(s string) string { return rest.Redact(s, token) }})}, nil
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
	// One look-up is one try: the click that asked waits on it, and the
	// next click asks again.
	body, err := rest.Once("jira: issue "+key, func() ([]byte, *rest.Failure) {
		return c.api.Try(ctx, rest.Request{Method: http.MethodGet, Limit: rest.MaxErrorBody,
			URL: c.base + "/rest/api/3/issue/" + url.PathEscape(key) + "?fields=status,summary"})
	})
	if err != nil {
		return approvals.ChangeRecord{}, err
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
