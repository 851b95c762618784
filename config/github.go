package config

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/approvalbot/approvalbot/internal/hosts"
)

// GitHubConfig is the GitHub App that is a custom deployment protection
// rule. Without app_id (and the rest) GitHub is off and /github/webhook
// does not exist.
type GitHubConfig struct {
	// AppID is the App's id (or its client id): the iss of its JWT.
	AppID string `mapstructure:"app_id"`
	// PrivateKey is the App's private key, PEM; or PrivateKeyFile names a
	// file holding it. One of the two.
	PrivateKey     string `mapstructure:"private_key"`
	PrivateKeyFile string `mapstructure:"private_key_file"`
	// WebhookSecret verifies the App's webhook deliveries.
	WebhookSecret string `mapstructure:"webhook_secret"`
	// APIURL is GitHub's REST root; GitHub Enterprise Server's is
	// https://HOST/api/v3. Deployment callback URLs must be on it.
	APIURL  string        `mapstructure:"api_url"`
	Timeout time.Duration `mapstructure:"timeout"`
	// Users maps GitHub logins to Slack user ids or emails, for the
	// self-approval check.
	Users map[string]string `mapstructure:"users"`
}

// defaultGitHub is the GitHub section's defaults.
func defaultGitHub() GitHubConfig {
	return GitHubConfig{APIURL: "https://api.github.com", Timeout: 10 * time.Second}
}

// Enabled reports whether the GitHub App is configured at all (then all of
// it must be).
func (g GitHubConfig) Enabled() bool {
	return g.AppID != "" || g.PrivateKey != "" || g.PrivateKeyFile != "" || g.WebhookSecret != ""
}

// PrivateKeyPEM is the App's private key: private_key, or the content of
// private_key_file. Its errors never quote the key.
func (g GitHubConfig) PrivateKeyPEM() ([]byte, error) {
	if g.PrivateKey != "" {
		return []byte(g.PrivateKey), nil
	}
	if g.PrivateKeyFile == "" {
		return nil, errors.New("github.private_key: required (or github.private_key_file)")
	}
	data, err := os.ReadFile(g.PrivateKeyFile)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("github.private_key_file: cannot be read: %w", err)
	}
	return data, nil
}

var (
	// gitHubAppID is an App's id, or its client id (Iv1.…, Iv23…).
	gitHubAppID = regexp.MustCompile(`^(?:[1-9][0-9]{0,19}|Iv[0-9A-Za-z.]{1,40})$`)
	// gitHubLogin is a GitHub login, a bot's included.
	gitHubLogin = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,38})(?:\[bot\])?$`)
	// slackUserID is a Slack user id.
	slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
)

// minWebhookSecret is the shortest GitHub webhook secret accepted.
const minWebhookSecret = 16

// recommendedBodyBytes is the server.max_body_bytes below which GitHub's
// payloads may be refused.
const recommendedBodyBytes = 1 << 20

func (c *Config) validateGitHub(p *problems) {
	g := c.GitHub
	positiveDuration(p, "github.timeout", g.Timeout)
	checkAPIURL(p, "github.api_url", g.APIURL, "https://api.github.com or https://HOST/api/v3", "installation tokens are sent there")
	for _, login := range sortedKeys(g.Users) {
		key := "github.users." + login
		to := strings.TrimSpace(g.Users[login])
		if !gitHubLogin.MatchString(strings.ToLower(login)) {
			p.addf(key, "is not a GitHub login")
		}
		if !slackUserID.MatchString(to) && (strings.Count(to, "@") != 1 || strings.HasPrefix(to, "@") || strings.HasSuffix(to, "@")) {
			p.addf(key, "must be a Slack user id (U…) or an email, got %q", to)
		}
	}
	if !g.Enabled() {
		return
	}
	if !gitHubAppID.MatchString(g.AppID) {
		if g.AppID == "" {
			p.addf("github.app_id", "required when GitHub is configured (the App's id, under its General settings)")
		} else {
			p.addf("github.app_id", "must be the App's numeric id or its client id (Iv…), got %q", g.AppID)
		}
	}
	switch {
	case g.PrivateKey != "" && g.PrivateKeyFile != "":
		p.addf("github.private_key", "give github.private_key or github.private_key_file, not both")
	case g.PrivateKey == "" && g.PrivateKeyFile == "":
		p.addf("github.private_key", "required when GitHub is configured (or github.private_key_file): the App's private key, PEM")
	default:
		key := "github.private_key"
		if g.PrivateKey == "" {
			key = "github.private_key_file"
		}
		data, err := g.PrivateKeyPEM()
		if err != nil {
			*p = append(*p, err.Error())
		} else if !isRSAPrivateKeyPEM(data) {
			p.addf(key, "is not an RSA private key in PEM (the .pem file GitHub generates for the App)")
		}
	}
	switch n := len(g.WebhookSecret); {
	case n == 0:
		p.addf("github.webhook_secret", "required when GitHub is configured (the App's webhook secret)")
	case n < minWebhookSecret:
		p.addf("github.webhook_secret", "must be at least %d characters, got %d", minWebhookSecret, n)
	}
}

// isRSAPrivateKeyPEM reports whether data is an RSA private key in PEM,
// PKCS #1 or PKCS #8.
func isRSAPrivateKeyPEM(data []byte) bool {
	block, _ := pem.Decode(data)
	if block == nil {
		return false
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return true
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	_, isRSA := key.(*rsa.PrivateKey)
	return err == nil && isRSA
}

// checkAPIURL adds a problem unless s is an absolute https URL (plain http
// only to a loopback host) without credentials, query or fragment: tokens
// are sent there (sent says which). example shows the form; the value is
// never quoted.
func checkAPIURL(p *problems, key, s, example, sent string) {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		p.addf(key, "must be an absolute https URL, such as %s", example)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		p.addf(key, "must not have credentials, a query or a fragment")
	case u.Scheme == "http" && !hosts.IsLoopback(u.Hostname()):
		p.addf(key, "must be https (plain http only to a loopback host): %s", sent)
	}
}

// gitHubWarnings are what is allowed but probably not meant about GitHub.
func (c *Config) gitHubWarnings() []string {
	g := c.GitHub
	if !g.Enabled() {
		if len(g.Users) > 0 {
			return []string{"github.users: ignored: GitHub is not configured (github.app_id)"}
		}
		return nil
	}
	var w []string
	if len(g.Users) == 0 {
		var names []string
		for i, pol := range c.Policies {
			if !pol.AllowSelfApproval && policyCanMatchSource(pol, "github") {
				names = append(names, fmt.Sprintf("policies[%d] (%s)", i, pol.Name))
			}
		}
		if len(names) > 0 {
			w = append(w, "github.users: empty: GitHub requesters cannot be matched to Slack users, so nobody can approve GitHub tasks under "+
				strings.Join(names, ", ")+" (allow_self_approval: false) until their logins are mapped")
		}
	}
	if c.Server.MaxBodyBytes < recommendedBodyBytes {
		w = append(w, fmt.Sprintf("server.max_body_bytes: %d may be too small for GitHub's webhook payloads (they carry the repository and any pull requests); GitHub does not redeliver a payload refused with 413, and its deployment then waits: %d is safer",
			c.Server.MaxBodyBytes, recommendedBodyBytes))
	}
	return w
}

// policyCanMatchSource reports whether a policy can match a task of the
// source: its source pattern, if it has one, fits.
func policyCanMatchSource(pol PolicyConfig, source string) bool {
	pattern, ok := pol.Match["source"]
	if !ok {
		return true
	}
	matched, err := path.Match(strings.ToLower(pattern), source)
	return err == nil && matched
}
