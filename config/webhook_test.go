package config

import (
	"strings"
	"testing"
)

const testWhsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func withWebhook(c *Config) *Config {
	c.Webhook.SigningSecret = testWhsec
	c.Webhook.AllowedHosts = []string{"jenkins.internal", "*.argo.example.com", "ci.example.com:8443"}
	for i := range c.Policies {
		c.Policies[i].OnExpiry = "reject"
	}
	return c
}

func TestValidateWebhook(t *testing.T) {
	t.Parallel()
	if err := withWebhook(validConfig()).Validate(); err != nil {
		t.Fatalf("a valid webhook configuration: %v", err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"no prefix", func(c *Config) { c.Webhook.SigningSecret = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }, []string{"webhook.signing_secret: must be whsec_ followed by base64"}},
		{"too short", func(c *Config) { c.Webhook.SigningSecret = "whsec_c2hvcnQtczNjcmV0" }, []string{"webhook.signing_secret: must hold 24 to 64 bytes after whsec_, got 12"}},
		{"no hosts", func(c *Config) { c.Webhook.AllowedHosts = nil }, []string{"webhook.allowed_hosts: required when webhook.signing_secret is set"}},
		{"bad hosts, timeout", func(c *Config) {
			c.Webhook.AllowedHosts = []string{"https://jenkins.internal/", "[", " "}
			c.Webhook.Timeout = 0
		}, []string{
			`webhook.allowed_hosts[0]: must be a host name, a glob such as *.example.com, or host:port, got "https://jenkins.internal/"`,
			`webhook.allowed_hosts[1]: must be a host name`,
			`webhook.allowed_hosts[2]: must be a host name`,
			"webhook.timeout: must be positive, got 0s",
		}},
	} {
		c := withWebhook(validConfig())
		tc.mutate(c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: no problems", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), "\n  "+w) {
				t.Errorf("%s: lacks %q:\n%v", tc.name, w, err)
			}
		}
		for _, secret := range []string{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "c2hvcnQtczNjcmV0"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: a problem quotes the secret:\n%v", tc.name, err)
			}
		}
	}
}

func TestWebhookWarnings(t *testing.T) {
	t.Parallel()
	if w := withWebhook(validConfig()).Warnings(); strings.Contains(strings.Join(w, "\n"), "webhook") {
		t.Errorf("a complete webhook configuration warns: %v", w)
	}
	c := withWebhook(validConfig())
	c.Policies[1].OnExpiry = "ignore"
	if w := strings.Join(c.Warnings(), "\n"); !strings.Contains(w, "webhook: a webhook task that expires under policies[1] (default) (on_expiry: ignore) is never POSTed") {
		t.Errorf("no expiry warning: %s", w)
	}
	off := validConfig()
	off.Webhook.AllowedHosts = []string{"jenkins.internal"}
	if w := strings.Join(off.Warnings(), "\n"); !strings.Contains(w, "webhook.allowed_hosts: ignored") {
		t.Errorf("hosts without a secret: %s", w)
	}
}
