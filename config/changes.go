package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/hosts"
)

// ServiceNowConfig is the ServiceNow instance whose change requests a
// policy's require_change: {servicenow: true} checks. Without instance_url
// it is off.
type ServiceNowConfig struct {
	InstanceURL string        `mapstructure:"instance_url"`
	Username    string        `mapstructure:"username"`
	Password    string        `mapstructure:"password"`
	Timeout     time.Duration `mapstructure:"timeout"`
}

// JiraConfig is the Jira site whose issues a policy's require_change:
// {jira: true} checks. Without base_url it is off.
type JiraConfig struct {
	BaseURL  string `mapstructure:"base_url"`
	Email    string `mapstructure:"email"`
	APIToken string `mapstructure:"api_token"`
	// ApprovedStatuses are the issue statuses that allow approving; empty
	// means DefaultJiraApprovedStatuses.
	ApprovedStatuses []string      `mapstructure:"approved_statuses"`
	Timeout          time.Duration `mapstructure:"timeout"`
}

// RequireChangeConfig is a policy's require_change: which system's record
// the task's change field must name, approved (at most one).
type RequireChangeConfig struct {
	ServiceNow bool `mapstructure:"servicenow"`
	Jira       bool `mapstructure:"jira"`
}

// Change systems' names, as approvals.ChangeSystems and the policies know them.
const (
	ChangeServiceNow = "servicenow"
	ChangeJira       = "jira"
)

// DefaultJiraApprovedStatuses is jira.approved_statuses when empty.
var DefaultJiraApprovedStatuses = []string{"Approved"}

// Enabled reports whether ServiceNow is configured.
func (s ServiceNowConfig) Enabled() bool { return s.InstanceURL != "" }

// Enabled reports whether Jira is configured.
func (j JiraConfig) Enabled() bool { return j.BaseURL != "" }

// Statuses are the approved statuses in force.
func (j JiraConfig) Statuses() []string {
	if len(j.ApprovedStatuses) == 0 {
		return DefaultJiraApprovedStatuses
	}
	return j.ApprovedStatuses
}

// system is the change system the policy requires ("" for none).
func (r RequireChangeConfig) system() string {
	switch {
	case r.ServiceNow:
		return ChangeServiceNow
	case r.Jira:
		return ChangeJira
	}
	return ""
}

// policyChange gives the domain's policy its require_change.
func policyChange(out *approvals.Policy, p PolicyConfig) {
	out.RequireChange = p.RequireChange.system()
}

// validateChanges checks the change systems and every policy's
// require_change: a system a policy requires must be configured, whole.
// Secrets (password, api_token) are never quoted.
func (c *Config) validateChanges(p *problems) {
	s, j := c.ServiceNow, c.Jira
	if s.Enabled() || s.Username != "" || s.Password != "" {
		checkChangeURL(p, "servicenow.instance_url", s.InstanceURL)
		if s.Username == "" {
			p.addf("servicenow.username", "required when ServiceNow is configured")
		}
		if s.Password == "" {
			p.addf("servicenow.password", "required when ServiceNow is configured")
		}
	}
	positiveDuration(p, "servicenow.timeout", s.Timeout)
	if j.Enabled() || j.Email != "" || j.APIToken != "" {
		checkChangeURL(p, "jira.base_url", j.BaseURL)
		if strings.Count(j.Email, "@") != 1 {
			p.addf("jira.email", "required when Jira is configured: the email of the account whose API token is jira.api_token")
		}
		if j.APIToken == "" {
			p.addf("jira.api_token", "required when Jira is configured")
		}
	}
	for i, st := range j.ApprovedStatuses {
		if strings.TrimSpace(st) == "" {
			p.addf(fmt.Sprintf("jira.approved_statuses[%d]", i), "must not be empty")
		}
	}
	positiveDuration(p, "jira.timeout", j.Timeout)
	for i, pol := range c.Policies {
		key := fmt.Sprintf("policies[%d].require_change", i)
		r := pol.RequireChange
		switch {
		case r.ServiceNow && r.Jira:
			p.addf(key, "name one change system, servicenow or jira, not both")
		case r.ServiceNow && !s.Enabled():
			p.addf(key, "requires a ServiceNow change, but servicenow.instance_url is not set")
		case r.Jira && !j.Enabled():
			p.addf(key, "requires a Jira issue, but jira.base_url is not set")
		}
	}
}

// checkChangeURL accepts an absolute https URL (plain http only to a
// loopback host) without credentials, query or fragment: the credentials
// are sent there.
func checkChangeURL(p *problems, key, s string) {
	u, err := url.Parse(s)
	switch {
	case s == "":
		p.addf(key, "required when its credentials are set")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		p.addf(key, "must be an absolute https URL")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		p.addf(key, "must not have credentials, a query or a fragment")
	case u.Scheme == "http" && !hosts.IsLoopback(u.Hostname()):
		p.addf(key, "must be https (plain http only to a loopback host): credentials are sent there")
	}
}
