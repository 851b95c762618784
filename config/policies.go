package config

import (
	"maps"
	"net/url"
	"slices"

	"github.com/approvalbot/approvalbot/approvals"
)

// redacted replaces every non-empty secret in Redacted's copy.
const redacted = "[redacted]"

// ApprovalPolicies converts the policies for the domain, in order, with the
// defaults filled in: ttl 0 is tokens.ttl, on_expiry "" is ignore, required
// approvals below 1 count as 1. The result shares nothing with c.
func (c *Config) ApprovalPolicies() []approvals.Policy {
	out := make([]approvals.Policy, len(c.Policies))
	for i, p := range c.Policies {
		onExpiry := approvals.OnExpiry(p.OnExpiry)
		if onExpiry == "" {
			onExpiry = approvals.ExpiryIgnore
		}
		out[i] = approvals.Policy{
			Name:    p.Name,
			Match:   maps.Clone(p.Match),
			Channel: p.Channel,
			Approvers: approvals.Approvers{
				Users:  slices.Clone(p.Approvers.Users),
				Groups: slices.Clone(p.Approvers.Groups),
				Emails: slices.Clone(p.Approvers.Emails),
			},
			RequiredApprovals:   max(p.RequiredApprovals, 1),
			AllowSelfApproval:   p.AllowSelfApproval,
			RequireRejectReason: p.RequireRejectReason,
			TTL:                 c.policyTTL(p),
			OnExpiry:            onExpiry,
			RemindBefore:        p.RemindBefore,
		}
	}
	return out
}

// Redacted returns a deep copy fit for logging: every non-empty secret (api
// keys, signing secrets, Slack tokens and signing secret, FlexDeploy
// password) is "[redacted]" and passwords inside URLs are masked.
func (c *Config) Redacted() *Config {
	r := c.clone()
	for i := range r.Intake.APIKeys {
		hide(&r.Intake.APIKeys[i].Key)
	}
	for i := range r.Tokens.SigningKeys {
		hide(&r.Tokens.SigningKeys[i].Secret)
	}
	hide(&r.Slack.BotToken)
	hide(&r.Slack.SigningSecret)
	hide(&r.Slack.AppToken)
	hide(&r.FlexDeploy.Password)
	hide(&r.AzureDevOps.EncryptionKey)
	for _, u := range []*string{&r.Server.PublicURL, &r.Slack.APIURL, &r.FlexDeploy.BaseURL, &r.Store.DynamoDB.Endpoint} {
		*u = redactURL(*u)
	}
	return r
}

func hide(s *string) {
	if *s != "" {
		*s = redacted
	}
}

// redactURL masks a password in a URL's user info. An unparsable URL that
// might hold one is hidden whole.
func redactURL(s string) string {
	if s == "" {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return redacted
	}
	return u.Redacted()
}

// clone copies c so that no slice or map is shared.
func (c *Config) clone() *Config {
	r := *c
	r.Intake.APIKeys = slices.Clone(c.Intake.APIKeys)
	r.Tokens.SigningKeys = slices.Clone(c.Tokens.SigningKeys)
	r.Policies = slices.Clone(c.Policies)
	for i := range r.Policies {
		p := &r.Policies[i]
		p.Match = maps.Clone(p.Match)
		p.Approvers.Users = slices.Clone(p.Approvers.Users)
		p.Approvers.Groups = slices.Clone(p.Approvers.Groups)
		p.Approvers.Emails = slices.Clone(p.Approvers.Emails)
	}
	return &r
}
