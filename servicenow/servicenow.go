// Package servicenow reads ServiceNow change requests for the change gate
// (approvals.ChangeLookup): a policy with require_change: {servicenow:
// true} lets a task be approved only while its change request is approved,
// Scheduled or Implement, and inside its planned window.
package servicenow

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

// Fields are what a look-up asks for (sysparm_fields).
const Fields = "number,state,approval,start_date,end_date,short_description"

// Config is the instance and the account that reads change requests.
type Config struct {
	InstanceURL string // https://acme.service-now.com
	Username    string
	Password    string
	Timeout     time.Duration
}

// Client looks change requests up.
type Client struct {
	base string
	api  *rest.Exchange
}

var _ approvals.ChangeLookup = (*Client)(nil)

// New builds a client.
func New(cfg Config) (*Client, error) {
	if cfg.InstanceURL == "" || cfg.Username == "" || cfg.Password == "" {
		return nil, errors.New("servicenow: instance_url, username and password are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	password := cfg.Password
	header := http.Header{}
	header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cfg.Username+":"+password)))
	header.Set("Accept", "application/json")
	return &Client{base: strings.TrimRight(cfg.InstanceURL, "/"),
		api: rest.NewExchange(rest.Exchange{Service: "ServiceNow", Timeout: cfg.Timeout, Header: header,
			Redact: func(s string) string { return rest.Redact(s, password) }})}, nil
}

// states are ServiceNow's change request states (the numbers, with
// sysparm_display_value=false).
var states = map[string]string{
	"-5": "New", "-4": "Assess", "-3": "Authorize", "-2": "Scheduled", "-1": "Implement",
	"0": "Review", "3": "Closed", "4": "Canceled",
}

type answer struct {
	Result []struct {
		Number    string `json:"number"`
		State     string `json:"state"`
		Approval  string `json:"approval"`
		StartDate string `json:"start_date"`
		EndDate   string `json:"end_date"`
	} `json:"result"`
}

// LookupChange reads the change request number. A read is safe to
// repeat, but one look-up is one try: the click that asked waits on it,
// and the next click asks again.
func (c *Client) LookupChange(ctx context.Context, number string) (approvals.ChangeRecord, error) {
	q := url.Values{}
	q.Set("sysparm_query", "number="+number)
	q.Set("sysparm_fields", Fields)
	q.Set("sysparm_display_value", "false")
	q.Set("sysparm_limit", "1")
	body, err := rest.Once("servicenow: change "+number, func() ([]byte, *rest.Failure) {
		return c.api.Try(ctx, rest.Request{Method: http.MethodGet, Limit: rest.MaxErrorBody,
			URL: c.base + "/api/now/table/change_request?" + q.Encode()})
	})
	if err != nil {
		return approvals.ChangeRecord{}, err
	}
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		return approvals.ChangeRecord{}, fmt.Errorf("servicenow: change %s: the answer is not a table API result", number)
	}
	if len(a.Result) == 0 || a.Result[0].Number != number {
		return approvals.ChangeRecord{}, fmt.Errorf("servicenow: change %s: %w", number, approvals.ErrNotFound)
	}
	r := a.Result[0]
	state := states[r.State]
	if state == "" {
		state = "state " + r.State
	}
	rec := approvals.ChangeRecord{Number: r.Number, State: state, URL: c.recordURL(number)}
	rec.Start, rec.End = parseTime(r.StartDate), parseTime(r.EndDate)
	switch {
	case r.Approval != "approved":
		rec.NotApproved = fmt.Sprintf("approval %s, state %s", orNone(r.Approval), state)
	case r.State != "-2" && r.State != "-1":
		rec.NotApproved = fmt.Sprintf("state %s, not Scheduled or Implement", state)
	case rec.Start == nil || rec.End == nil:
		rec.NotApproved = "it has no planned start and end dates"
	default:
		rec.Approved = true
	}
	return rec, nil
}

// recordURL links to the change request in the instance's UI.
func (c *Client) recordURL(number string) string {
	return c.base + "/change_request.do?sysparm_query=" + url.QueryEscape("number="+number)
}

// parseTime reads a date as the table API gives it without display
// values: "2026-06-01 09:00:00", UTC.
func parseTime(s string) *time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", strings.TrimSpace(s), time.UTC)
	if err != nil {
		return nil
	}
	return &t
}

func orNone(s string) string {
	if s == "" {
		return "not requested"
	}
	return s
}
