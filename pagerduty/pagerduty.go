// Package pagerduty asks PagerDuty's REST API who is on call, for policies
// whose approvers (or break-glass) are "whoever is on call on these
// schedules" (approvers.pagerduty.schedules). It implements
// approvals.OnCall.
package pagerduty

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/rest"
)

// DefaultAPIURL is PagerDuty's REST API.
const DefaultAPIURL = "https://api.pagerduty.com"

// CacheTTL is how long an answer is used: a click needs no look-up of its
// own, and a burst of clicks makes one.
const CacheTTL = 60 * time.Second

// Timeout bounds one look-up: a click must be answered within Slack's 3 s.
const Timeout = 2 * time.Second

// pageLimit is the page size asked for; PagerDuty allows up to 100.
const pageLimit = 100

// maxPages bounds one look-up's pages.
const maxPages = 10

// Client answers who is on call, caching answers for CacheTTL.
type Client struct {
	apiURL string
	api    *rest.Exchange
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]entry // sorted schedule ids joined by ","
}

type entry struct {
	emails []string
	at     time.Time
}

var _ approvals.OnCall = (*Client)(nil)

// Config configures a Client.
type Config struct {
	APIURL string // DefaultAPIURL when empty
	Token  string // a REST API key
	// Clock is the time answers are cached by; time.Now when nil.
	Clock func() time.Time
}

// New returns a client.
func New(cfg Config) *Client {
	apiURL := strings.TrimRight(cfg.APIURL, "/")
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	now := cfg.Clock
	if now == nil {
		now = time.Now
	}
	token := cfg.Token
	header := http.Header{}
	header.Set("Authorization", "Token token="+token)
	header.Set("Accept", "application/vnd.pagerduty+json;version=2")
	api := rest.NewExchange(rest.Exchange{Service: "PagerDuty", Timeout: Timeout, Header: header,
		Redact: func(s string) string { return rest.Redact(s, token) }})
	return &Client{apiURL: apiURL, api: api, now: now, cache: map[string]entry{}}
}

// OnCallEmails returns the emails of the people on call now on any of the
// schedules (the first level of each, PagerDuty's earliest=true). A
// failed look-up is an error: the caller refuses rather than guess.
func (c *Client) OnCallEmails(ctx context.Context, schedules []string) ([]string, error) {
	ids := slices.Clone(schedules)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	key := strings.Join(ids, ",")
	now := c.now()
	c.mu.Lock()
	if e, ok := c.cache[key]; ok && now.Sub(e.at) < CacheTTL && !now.Before(e.at) {
		c.mu.Unlock()
		return e.emails, nil
	}
	c.mu.Unlock()
	emails, err := c.lookUp(ctx, ids)
	if err != nil {
		return nil, err // the exchange redacted the token
	}
	c.mu.Lock()
	c.cache[key] = entry{emails: emails, at: now}
	c.mu.Unlock()
	return emails, nil
}

// page is one answer of GET /oncalls.
type page struct {
	OnCalls []struct {
		User struct {
			Email string `json:"email"`
		} `json:"user"`
	} `json:"oncalls"`
	More bool `json:"more"`
}

func (c *Client) lookUp(ctx context.Context, schedules []string) ([]string, error) {
	var emails []string
	for n := range maxPages {
		q := url.Values{}
		for _, id := range schedules {
			q.Add("schedule_ids[]", id)
		}
		q.Set("include[]", "users")
		q.Set("earliest", "true")
		q.Set("limit", strconv.Itoa(pageLimit))
		q.Set("offset", strconv.Itoa(n*pageLimit))
		p, err := c.get(ctx, "/oncalls?"+q.Encode())
		if err != nil {
			return nil, err
		}
		for _, oc := range p.OnCalls {
			if e := strings.TrimSpace(oc.User.Email); e != "" && !slices.Contains(emails, e) {
				emails = append(emails, e)
			}
		}
		if !p.More {
			return emails, nil
		}
	}
	return nil, fmt.Errorf("pagerduty: on call: more than %d pages", maxPages)
}

func (c *Client) get(ctx context.Context, path string) (*page, error) {
	// One try: the click that asked waits on it, and the next click asks
	// again (answers are cached for a minute).
	body, err := rest.Once("pagerduty: on call", func() ([]byte, *rest.Failure) {
		return c.api.Try(ctx, rest.Request{Method: http.MethodGet, URL: c.apiURL + path, Limit: 4 << 20})
	})
	if err != nil {
		return nil, err
	}
	var p page
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("pagerduty: on call: malformed answer: %w", err)
	}
	return &p, nil
}
