package config

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var testGitHubKey = sync.OnceValue(func() string {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
})

const testWebhookSecret = "github-webhook-secret-0123456789"

func withGitHub(c *Config) *Config {
	c.GitHub.AppID = "123456"
	c.GitHub.PrivateKey = testGitHubKey()
	c.GitHub.WebhookSecret = testWebhookSecret
	c.GitHub.Users = map[string]string{"octocat": "U0OCTO", "hubot": "lead@example.com"}
	c.Server.MaxBodyBytes = 1 << 20
	return c
}

func TestValidateGitHub(t *testing.T) {
	t.Parallel()
	if err := withGitHub(validConfig()).Validate(); err != nil {
		t.Fatalf("a valid GitHub configuration: %v", err)
	}
	pkcs8 := func() string {
		key, _ := rsa.GenerateKey(rand.Reader, 2048)
		der, _ := x509.MarshalPKCS8PrivateKey(key)
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}()
	file := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(file, []byte(testGitHubKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"a client id", func(c *Config) { c.GitHub.AppID = "Iv23liABCDEF" }, nil},
		{"a PKCS #8 key", func(c *Config) { c.GitHub.PrivateKey = pkcs8 }, nil},
		{"a key file", func(c *Config) { c.GitHub.PrivateKey, c.GitHub.PrivateKeyFile = "", file }, nil},
		{"GHES", func(c *Config) { c.GitHub.APIURL = "https://ghe.example.com/api/v3" }, nil},
		{"loopback http", func(c *Config) { c.GitHub.APIURL = "http://127.0.0.1:8080" }, nil},
		{"only a secret", func(c *Config) {
			c.GitHub = GitHubConfig{WebhookSecret: testWebhookSecret, APIURL: "https://api.github.com", Timeout: 1}
		}, []string{
			"github.app_id: required when GitHub is configured",
			"github.private_key: required when GitHub is configured",
		}},
		{"everything wrong at once", func(c *Config) {
			c.GitHub.AppID = "app-12"
			c.GitHub.PrivateKey = "-----BEGIN RSA PRIVATE KEY-----\nbm90LWEta2V5LXNlY3JldA==\n-----END RSA PRIVATE KEY-----\n"
			c.GitHub.WebhookSecret = "short-s3cret"
			c.GitHub.APIURL = "http://api.github.com"
			c.GitHub.Timeout = 0
			c.GitHub.Users = map[string]string{"octocat": "octocat", "bad login!": "U0X"}
		}, []string{
			`github.app_id: must be the App's numeric id or its client id (Iv…), got "app-12"`,
			"github.private_key: is not an RSA private key in PEM",
			"github.webhook_secret: must be at least 16 characters, got 12",
			"github.api_url: must be https (plain http only to a loopback host)",
			"github.timeout: must be positive, got 0s",
			`github.users.octocat: must be a Slack user id (U…) or an email, got "octocat"`,
			"github.users.bad login!: is not a GitHub login",
		}},
		{"both keys", func(c *Config) { c.GitHub.PrivateKeyFile = file }, []string{"github.private_key: give github.private_key or github.private_key_file, not both"}},
		{"a missing key file", func(c *Config) { c.GitHub.PrivateKey, c.GitHub.PrivateKeyFile = "", file+".missing" }, []string{"github.private_key_file: cannot be read: no such file or directory"}},
		{"an api url with a query", func(c *Config) { c.GitHub.APIURL = "https://api.github.com/?token=x" }, []string{"github.api_url: must not have credentials, a query or a fragment"}},
	} {
		c := withGitHub(validConfig())
		tc.mutate(c)
		err := c.Validate()
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no problems", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), "\n  "+w) {
				t.Errorf("%s: lacks %q:\n%v", tc.name, w, err)
			}
		}
		for _, secret := range []string{"bm90LWEta2V5LXNlY3JldA", "short-s3cret", testWebhookSecret, testGitHubKey()[40:80]} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: a problem quotes a secret:\n%v", tc.name, err)
			}
		}
	}
}

func TestGitHubPrivateKeyPEM(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(file, []byte(testGitHubKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, g := range []GitHubConfig{{PrivateKey: testGitHubKey()}, {PrivateKeyFile: file}} {
		if got, err := g.PrivateKeyPEM(); err != nil || string(got) != testGitHubKey() {
			t.Errorf("PrivateKeyPEM(%+v) = %v", g.PrivateKeyFile, err)
		}
	}
	if _, err := (GitHubConfig{}).PrivateKeyPEM(); err == nil {
		t.Error("no key: no error")
	}
}

func TestGitHubWarnings(t *testing.T) {
	t.Parallel()
	has := func(ws []string, part string) bool {
		for _, w := range ws {
			if strings.Contains(w, part) {
				return true
			}
		}
		return false
	}
	if w := withGitHub(validConfig()).Warnings(); has(w, "github") || has(w, "max_body_bytes") {
		t.Errorf("a complete GitHub configuration warns: %v", w)
	}
	c := withGitHub(validConfig())
	c.GitHub.Users = nil
	c.Server.MaxBodyBytes = 64 << 10
	c.Policies = append(c.Policies, PolicyConfig{Name: "flexdeploy-only", Match: map[string]string{"source": "flexdeploy"}, Approvers: ApproversConfig{Users: []string{"U1"}}, RequiredApprovals: 1, OnExpiry: "ignore"},
		PolicyConfig{Name: "trusting", Match: map[string]string{"source": "git*"}, AllowSelfApproval: true, Approvers: ApproversConfig{Users: []string{"U1"}}, RequiredApprovals: 1, OnExpiry: "ignore"})
	w := c.Warnings()
	if !has(w, "github.users: empty: GitHub requesters cannot be matched to Slack users, so nobody can approve GitHub tasks under policies[0] (production), policies[1] (default) (allow_self_approval: false)") {
		t.Errorf("no users warning naming exactly the policies that can match GitHub tasks: %v", w)
	}
	if !has(w, "server.max_body_bytes: 65536 may be too small for GitHub's webhook payloads") {
		t.Errorf("no body size warning: %v", w)
	}
	off := validConfig()
	off.GitHub.Users = map[string]string{"octocat": "U1"}
	if w := off.Warnings(); !has(w, "github.users: ignored: GitHub is not configured") {
		t.Errorf("users without GitHub: %v", w)
	}
}

func TestLoadGitHub(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "approvalbot.yaml")
	body := "github:\n  app_id: 123456\n  webhook_secret: from-the-file-0123456789\n  users: {OctoCat: U0OCTO, hubot: lead@example.com}\nwebhook:\n  signing_secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n  allowed_hosts: [jenkins.internal, \"*.argo.example.com\"]\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("APPROVALBOT_GITHUB_PRIVATE_KEY", testGitHubKey())
	t.Setenv("APPROVALBOT_GITHUB_API_URL", "https://ghe.example.com/api/v3")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	g := c.GitHub
	if g.AppID != "123456" || g.PrivateKey != testGitHubKey() || g.APIURL != "https://ghe.example.com/api/v3" || g.WebhookSecret != "from-the-file-0123456789" ||
		g.Users["octocat"] != "U0OCTO" || g.Users["hubot"] != "lead@example.com" || !g.Enabled() {
		t.Errorf("github %+v", g)
	}
	if w := c.Webhook; w.SigningSecret != "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" || len(w.AllowedHosts) != 2 || !w.Enabled() {
		t.Errorf("webhook %+v", w)
	}
}
