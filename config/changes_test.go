package config

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateChanges(t *testing.T) {
	t.Parallel()
	c := validConfig()
	c.Policies[0].RequireChange = RequireChangeConfig{ServiceNow: true, Jira: true}
	c.Policies = append(c.Policies, c.Policies[0])
	c.Policies[1].Name = "jira"
	c.Policies[1].RequireChange = RequireChangeConfig{Jira: true}
	c.ServiceNow = ServiceNowConfig{InstanceURL: "http://snow.example.com", Password: "snow-secret-value", Timeout: 0}
	c.Jira.APIToken = "jira-secret-value"
	c.Jira.ApprovedStatuses = []string{" "}
	err := c.Validate()
	var v *ValidationError
	if !errors.As(err, &v) {
		t.Fatalf("Validate: %v", err)
	}
	all := strings.Join(v.Problems, "\n")
	for _, want := range []string{
		"policies[0].require_change: name one change system",
		"policies[1].require_change: requires a Jira issue, but jira.base_url is not set",
		"servicenow.instance_url: must be https",
		"servicenow.username: required",
		"servicenow.timeout",
		"jira.base_url: required",
		"jira.email: required",
		"jira.approved_statuses[0]: must not be empty",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no problem says %q in:\n%s", want, all)
		}
	}
	if strings.Contains(all, "secret-value") {
		t.Errorf("a problem quotes a secret:\n%s", all)
	}

	ok := validConfig()
	ok.ServiceNow = ServiceNowConfig{InstanceURL: "https://acme.service-now.com", Username: "u", Password: "p", Timeout: 10e9}
	ok.Jira = JiraConfig{BaseURL: "https://acme.atlassian.net", Email: "bot@acme.com", APIToken: "t", Timeout: 10e9}
	ok.Policies[0].RequireChange = RequireChangeConfig{ServiceNow: true}
	if err := ok.Validate(); err != nil {
		t.Fatalf("a valid change configuration: %v", err)
	}
	if got := ok.ApprovalPolicies()[0].RequireChange; got != ChangeServiceNow {
		t.Errorf("the domain's policy requires %q, want servicenow", got)
	}
	if got := ok.Jira.Statuses(); len(got) != 1 || got[0] != "Approved" {
		t.Errorf("default approved statuses %v", got)
	}
}
