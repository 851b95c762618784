package config

import (
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/approvalbot/approvalbot/internal/hosts"
)

// TeamsConfig is the Microsoft Teams chat: an Azure Bot whose messaging
// endpoint is {server.public_url}/teams/messages. Without app_id it is off.
type TeamsConfig struct {
	// AppID is the Azure Bot's Microsoft App ID (a GUID): the audience of
	// the channel's tokens and the client id of the bot's own.
	AppID string `mapstructure:"app_id"`
	// AppPassword is its client secret.
	AppPassword string `mapstructure:"app_password"`
	// TenantID is the only tenant whose activities are acted on, and where
	// the bot's tokens come from (single-tenant bot).
	TenantID string `mapstructure:"tenant_id"`
	// ServiceURL is the Bot Connector the bot posts to.
	ServiceURL string `mapstructure:"service_url"`
	// Channel is the default conversation ("19:…@thread.tacv2").
	Channel string `mapstructure:"channel"`
	// OpenIDMetadata and TokenURL override Microsoft's, for tests.
	OpenIDMetadata string        `mapstructure:"openid_metadata"`
	TokenURL       string        `mapstructure:"token_url"`
	Timeout        time.Duration `mapstructure:"timeout"`
}

func defaultTeams() TeamsConfig {
	return TeamsConfig{ServiceURL: "https://smba.trafficmanager.net/teams/", Timeout: 10 * time.Second}
}

// Enabled reports whether the Teams chat is configured.
func (t TeamsConfig) Enabled() bool { return t.AppID != "" }

var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (c *Config) validateTeams(p *problems) {
	t := c.Teams
	positiveDuration(p, "teams.timeout", t.Timeout)
	checkURL(p, "teams.openid_metadata", t.OpenIDMetadata)
	checkURL(p, "teams.token_url", t.TokenURL)
	if !t.Enabled() {
		if t.AppPassword != "" || t.TenantID != "" {
			p.addf("teams.app_id", "required when teams.app_password or teams.tenant_id is set")
		}
		return
	}
	if !guidPattern.MatchString(t.AppID) {
		p.addf("teams.app_id", "must be the Azure Bot's Microsoft App ID, a GUID")
	}
	if t.AppPassword == "" {
		p.addf("teams.app_password", "required when teams.app_id is set (the bot's client secret)")
	}
	if !guidPattern.MatchString(t.TenantID) {
		p.addf("teams.tenant_id", "required when teams.app_id is set: the Entra tenant id (a GUID) of the single tenant the bot serves")
	}
	if u, err := url.Parse(t.ServiceURL); err != nil || u.Host == "" || (u.Scheme != "https" && !hosts.IsLoopback(u.Hostname())) {
		p.addf("teams.service_url", "must be an https URL (the bot's token is sent there)")
	}
	if t.Channel != "" && !strings.HasPrefix(t.Channel, "19:") {
		p.addf("teams.channel", `must be a Teams conversation id ("19:…@thread.tacv2")`)
	}
	if c.Server.PublicURL == "" {
		p.addf("server.public_url", "required when teams.app_id is set: Teams reaches the bot at {public_url}/teams/messages")
	}
}
