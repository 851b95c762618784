package main

import (
	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/config"
	"github.com/approvalbot/approvalbot/jira"
	"github.com/approvalbot/approvalbot/servicenow"
)

// changeSystems are the change systems configured, by the names the
// policies' require_change uses.
func changeSystems(cfg *config.Config) (approvals.ChangeSystems, error) {
	systems := approvals.ChangeSystems{}
	if s := cfg.ServiceNow; s.Enabled() {
		c, err := servicenow.New(servicenow.Config{InstanceURL: s.InstanceURL, Username: s.Username, Password: s.Password, Timeout: s.Timeout})
		if err != nil {
			return nil, err
		}
		systems[config.ChangeServiceNow] = c
	}
	if j := cfg.Jira; j.Enabled() {
		c, err := jira.New(jira.Config{BaseURL: j.BaseURL, Email: j.Email, APIToken: j.APIToken, ApprovedStatuses: j.Statuses(), Timeout: j.Timeout})
		if err != nil {
			return nil, err
		}
		systems[config.ChangeJira] = c
	}
	return systems, nil
}
