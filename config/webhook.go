package config

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/approvalbot/approvalbot/internal/hosts"
)

// WebhookConfig is the tool of any deployment tool by signed callback:
// POST /v1/webhook/tasks with a callbackUrl, the decision POSTed there
// signed the Standard Webhooks way. Without signing_secret it is off.
type WebhookConfig struct {
	// SigningSecret is whsec_ and base64 of 24 to 64 bytes.
	SigningSecret string `mapstructure:"signing_secret"`
	// AllowedHosts are the hosts (globs; host:port pins a port) a
	// callbackUrl may name.
	AllowedHosts []string      `mapstructure:"allowed_hosts"`
	Timeout      time.Duration `mapstructure:"timeout"`
}

// defaultWebhook is the webhook section's defaults.
func defaultWebhook() WebhookConfig { return WebhookConfig{Timeout: 10 * time.Second} }

// Enabled reports whether POST /v1/webhook/tasks is on.
func (w WebhookConfig) Enabled() bool { return w.SigningSecret != "" }

// Bounds of a Standard Webhooks signing key.
const (
	minWebhookKeyBytes = 24
	maxWebhookKeyBytes = 64
)

func (c *Config) validateWebhook(p *problems) {
	w := c.Webhook
	positiveDuration(p, "webhook.timeout", w.Timeout)
	for i, h := range w.AllowedHosts {
		h = strings.TrimSpace(h)
		if hosts.Validate([]string{h}, "webhook") != nil {
			p.addf(fmt.Sprintf("webhook.allowed_hosts[%d]", i), "must be a host name, a glob such as *.example.com, or host:port, got %q", h)
		}
	}
	if !w.Enabled() {
		return
	}
	if n, ok := webhookKeyBytes(w.SigningSecret); !ok {
		p.addf("webhook.signing_secret", "must be whsec_ followed by base64 of %d to %d random bytes (e.g. whsec_$(openssl rand -base64 32))", minWebhookKeyBytes, maxWebhookKeyBytes)
	} else if n < minWebhookKeyBytes || n > maxWebhookKeyBytes {
		p.addf("webhook.signing_secret", "must hold %d to %d bytes after whsec_, got %d", minWebhookKeyBytes, maxWebhookKeyBytes, n)
	}
	if len(w.AllowedHosts) == 0 {
		p.addf("webhook.allowed_hosts", "required when webhook.signing_secret is set: decisions are POSTed only to these hosts")
	}
}

// webhookKeyBytes is the length of the key a whsec_ secret encodes.
func webhookKeyBytes(s string) (int, bool) {
	rest, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return 0, false
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
		if key, err := enc.DecodeString(rest); err == nil {
			return len(key), true
		}
	}
	return 0, false
}

// webhookWarnings are what is allowed but probably not meant about the
// webhook tool.
func (c *Config) webhookWarnings() []string {
	w := c.Webhook
	if !w.Enabled() {
		if len(w.AllowedHosts) > 0 {
			return []string{"webhook.allowed_hosts: ignored: webhook.signing_secret is not set, so POST /v1/webhook/tasks is off"}
		}
		return nil
	}
	var names []string
	for i, pol := range c.Policies {
		if pol.OnExpiry != "reject" && policyCanMatchSource(pol, "webhook") {
			names = append(names, fmt.Sprintf("policies[%d] (%s)", i, pol.Name))
		}
	}
	if len(names) > 0 {
		return []string{"webhook: a webhook task that expires under " + strings.Join(names, ", ") +
			" (on_expiry: ignore) is never POSTed to its callbackUrl: use on_expiry: reject, or have the caller poll GET /v1/tasks/{id}"}
	}
	return nil
}
