package config

import (
	"strings"
	"testing"
)

// TestTeamsValidation: config check names every Teams problem, and never
// quotes the app password.
func TestTeamsValidation(t *testing.T) {
	t.Parallel()
	good := func() *Config {
		c := defaults()
		c.Server.PublicURL = "https://approvals.example.com"
		c.Teams.AppID = "9f1c1f7e-1111-4222-8333-123456789abc"
		c.Teams.AppPassword = "very-secret-app-password"
		c.Teams.TenantID = "0b6a1f7e-1111-4222-8333-123456789abc"
		c.Teams.Channel = "19:abc@thread.tacv2"
		return &c
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   []string // keys with a problem; none for a good config
	}{
		{"good", func(*Config) {}, nil},
		{"off", func(c *Config) { c.Teams = defaultTeams() }, nil},
		{"password without app id", func(c *Config) { c.Teams.AppID = "" }, []string{"teams.app_id"}},
		{"app id not a GUID", func(c *Config) { c.Teams.AppID = "my-bot" }, []string{"teams.app_id"}},
		{"no password, no tenant", func(c *Config) { c.Teams.AppPassword, c.Teams.TenantID = "", "" }, []string{"teams.app_password", "teams.tenant_id"}},
		{"plain http connector", func(c *Config) { c.Teams.ServiceURL = "http://smba.example.com/" }, []string{"teams.service_url"}},
		{"loopback http is fine (tests)", func(c *Config) { c.Teams.ServiceURL = "http://127.0.0.1:9999/" }, nil},
		{"not a channel id", func(c *Config) { c.Teams.Channel = "general" }, []string{"teams.channel"}},
		{"no public url", func(c *Config) { c.Server.PublicURL = "" }, []string{"server.public_url"}},
		{"bad override", func(c *Config) { c.Teams.TokenURL = "ftp://x" }, []string{"teams.token_url"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := good()
			tc.mutate(c)
			var p problems
			c.validateTeams(&p)
			got := strings.Join(p, "\n")
			if len(tc.want) == 0 && got != "" {
				t.Errorf("problems %s, want none", got)
			}
			for _, key := range tc.want {
				if !strings.Contains(got, key) {
					t.Errorf("problems %q do not name %s", got, key)
				}
			}
			if strings.Contains(got, "very-secret-app-password") {
				t.Error("a problem quotes the app password")
			}
		})
	}
}
