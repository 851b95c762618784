package config

import (
	"maps"
	"slices"
	"strings"

	"github.com/approvalbot/approvalbot/approvals"
)

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
			Name:     p.Name,
			Match:    maps.Clone(p.Match),
			Channels: policyChannels(p),
			Approvers: approvals.Approvers{
				Users:  slices.Clone(p.Approvers.Users),
				Groups: slices.Clone(p.Approvers.Groups),
				Emails: slices.Clone(p.Approvers.Emails),

				OnCallSchedules: onCallSchedules(p.Approvers.PagerDuty),
			},
			RequiredApprovals:   max(p.RequiredApprovals, 1),
			AllowSelfApproval:   p.AllowSelfApproval,
			RequireRejectReason: p.RequireRejectReason,
			TTL:                 c.policyTTL(p),
			OnExpiry:            onExpiry,
			RemindBefore:        p.RemindBefore,
		}
		policyWhen(&out[i])
		policyRules(&out[i], p)
		policySurfaces(&out[i], p)
		policyChange(&out[i], p)
	}
	return out
}

// policyChannels names the policy's channel in each chat by the chat's
// name (as the chats register themselves): channel is Slack's, teams.channel
// Microsoft Teams'.
func policyChannels(p PolicyConfig) map[string]string {
	var channels map[string]string
	for chat, channel := range map[string]string{"slack": p.Channel, "teams": p.Teams.Channel} {
		if channel = strings.TrimSpace(channel); channel != "" {
			if channels == nil {
				channels = map[string]string{}
			}
			channels[chat] = channel
		}
	}
	return channels
}
