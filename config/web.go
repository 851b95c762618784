package config

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// WebConfig is the web approval page: people sign in with the company's
// OpenID Connect provider and decide there (policies with require_sso,
// people without Slack).
type WebConfig struct {
	OIDC OIDCConfig `mapstructure:"oidc"`
	// SessionKey signs the page's cookies (HMAC-SHA256); at least
	// MinSessionKeyLen bytes. Changing it signs everyone out.
	SessionKey string `mapstructure:"session_key"`
}

// OIDCConfig is the OpenID Connect client approvalbot is registered as
// at the provider. Its redirect URI is {server.public_url}/sso/callback.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL, as its discovery document
	// (/.well-known/openid-configuration) names it.
	Issuer       string `mapstructure:"issuer"`
	ClientID     string `mapstructure:"client_id"`
	ClientSecret string `mapstructure:"client_secret"`
	// Scopes asked for; empty asks for openid, email and profile.
	// openid is always asked for.
	Scopes []string `mapstructure:"scopes"`
}

// ReceiptsConfig signs a receipt of every final decision.
type ReceiptsConfig struct {
	// SigningKey is an Ed25519 seed (32 bytes), standard base64; empty
	// signs no receipts. `approvalbot receipt public-key` prints its
	// public key.
	SigningKey string `mapstructure:"signing_key"`
}

// MinSessionKeyLen is the shortest web.session_key accepted, in bytes.
const MinSessionKeyLen = 32

// DefaultOIDCScopes are asked for when web.oidc.scopes is empty.
var DefaultOIDCScopes = []string{"openid", "email", "profile"}

// Enabled reports whether the web page is configured (web.oidc.issuer).
func (w WebConfig) Enabled() bool { return w.OIDC.Issuer != "" }

// ScopesOrDefault are the scopes to ask for: the configured ones with
// openid first, or DefaultOIDCScopes.
func (o OIDCConfig) ScopesOrDefault() []string {
	if len(o.Scopes) == 0 {
		return slices.Clone(DefaultOIDCScopes)
	}
	out := []string{"openid"}
	for _, s := range o.Scopes {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// ReceiptKey is the receipts' signing key, or nil when none is configured.
func (r ReceiptsConfig) ReceiptKey() (ed25519.PrivateKey, error) {
	if r.SigningKey == "" {
		return nil, nil
	}
	return ParseReceiptKey(r.SigningKey)
}

// ParseReceiptKey reads an Ed25519 seed written in base64 (standard or
// URL-safe, padded or not). Its errors never quote the key.
func ParseReceiptKey(s string) (ed25519.PrivateKey, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		seed, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("must be an Ed25519 seed of %d bytes, base64 encoded; it decodes to %d bytes", ed25519.SeedSize, len(seed))
		}
		return ed25519.NewKeyFromSeed(seed), nil
	}
	return nil, errors.New("must be an Ed25519 seed of 32 bytes, base64 encoded; it is not base64")
}

// validateWeb checks the web page and receipts keys. The web page needs
// the issuer, the client id, a session key and the public URL its
// redirect URI is built from; none of the secrets is ever quoted.
func (c *Config) validateWeb(p *problems) {
	if _, err := c.Receipts.ReceiptKey(); err != nil {
		p.addf("receipts.signing_key", "%v", err)
	}
	w := c.Web
	o := w.OIDC
	if !w.Enabled() {
		if o.ClientID != "" || o.ClientSecret != "" || len(o.Scopes) > 0 {
			p.addf("web.oidc.issuer", "required when other web.oidc keys are set")
		}
		return
	}
	if !secureURL(o.Issuer) {
		p.addf("web.oidc.issuer", "must be an absolute https URL (http only for localhost or 127.0.0.1)")
	}
	if o.ClientID == "" {
		p.addf("web.oidc.client_id", "required when web.oidc.issuer is set")
	}
	for i, s := range o.Scopes {
		if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t") {
			p.addf(fmt.Sprintf("web.oidc.scopes[%d]", i), "must be one scope name, without spaces")
		}
	}
	switch n := len(w.SessionKey); {
	case n == 0:
		p.addf("web.session_key", "required when web.oidc.issuer is set (it signs the sign-in cookies)")
	case n < MinSessionKeyLen:
		p.addf("web.session_key", "must be at least %d bytes, got %d", MinSessionKeyLen, n)
	}
	switch pub := c.Server.PublicURL; {
	case pub == "":
		p.addf("server.public_url", "required when web.oidc.issuer is set: the sign-in redirect URI is {public_url}/sso/callback")
	case !secureURL(pub):
		p.addf("server.public_url", "must be an https URL when web.oidc.issuer is set (http only for localhost or 127.0.0.1): the session cookie is Secure")
	}
}

// webWarnings lists what is allowed but probably not meant in the web
// page's keys.
func (c *Config) webWarnings() []string {
	o := c.Web.OIDC
	if !c.Web.Enabled() {
		var w []string
		for i, pol := range c.Policies {
			if pol.RequireSSO {
				w = append(w, fmt.Sprintf("policies[%d].require_sso: web.oidc is not configured: nobody can sign in to decide its tasks", i))
			}
		}
		return w
	}
	var w []string
	if o.ClientSecret == "" {
		w = append(w, "web.oidc.client_secret: not set: the provider must accept approvalbot as a public client (PKCE without a secret)")
	}
	if len(o.Scopes) > 0 && !slices.Contains(o.ScopesOrDefault(), "email") {
		w = append(w, "web.oidc.scopes: no email scope: most providers then send no email, and nobody can be mapped to a Slack user")
	}
	if c.Receipts.SigningKey == "" {
		w = append(w, "receipts.signing_key: not set: decisions made on the web get no signed receipt")
	}
	return w
}

// secureURL reports whether s is an absolute https URL, or an http URL of
// a loopback host (for tests and local trials).
func secureURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		return IsLoopbackHost(u.Hostname())
	}
	return false
}

// IsLoopbackHost reports whether host is localhost or a loopback address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
