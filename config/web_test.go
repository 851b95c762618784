package config

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const (
	testClientSecret = "oidc-client-secret-0123456789abcdef"
	testSessionKey   = "web-session-key-0123456789abcdefghijklmnop"
	// 32 bytes, standard base64.
	testReceiptSeed = "cmVjZWlwdC1zaWduaW5nLXNlZWQtMDEyMzQ1Njc4OTA="
)

func webConfig() *Config {
	c := validConfig()
	c.Server.PublicURL = "https://approvals.example.com"
	c.Web = WebConfig{
		OIDC:       OIDCConfig{Issuer: "https://login.example.com", ClientID: "approvalbot", ClientSecret: testClientSecret},
		SessionKey: testSessionKey,
	}
	c.Receipts.SigningKey = testReceiptSeed
	return c
}

func TestWebValidate(t *testing.T) {
	t.Parallel()
	if err := webConfig().Validate(); err != nil {
		t.Fatalf("valid web configuration: %v", err)
	}
	if w := webConfig().Warnings(); slices.ContainsFunc(w, func(s string) bool { return strings.HasPrefix(s, "web.") || strings.HasPrefix(s, "receipts.") }) {
		t.Errorf("warnings for a complete web configuration: %q", w)
	}
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string
	}{
		{"loopback http is for tests", func(c *Config) {
			c.Server.PublicURL, c.Web.OIDC.Issuer = "http://127.0.0.1:8080", "http://localhost:9998"
		}, nil},
		{"no issuer but a client", func(c *Config) { c.Web.OIDC.Issuer = "" }, []string{"web.oidc.issuer: required when other web.oidc keys are set"}},
		{"plain http issuer", func(c *Config) { c.Web.OIDC.Issuer = "http://login.example.com" }, []string{"web.oidc.issuer: must be an absolute https URL"}},
		{"not a URL", func(c *Config) { c.Web.OIDC.Issuer = "login.example.com" }, []string{"web.oidc.issuer: must be an absolute https URL"}},
		{"no client id", func(c *Config) { c.Web.OIDC.ClientID = "" }, []string{"web.oidc.client_id: required"}},
		{"bad scope", func(c *Config) { c.Web.OIDC.Scopes = []string{"openid", "email profile"} }, []string{"web.oidc.scopes[1]: must be one scope name"}},
		{"no session key", func(c *Config) { c.Web.SessionKey = "" }, []string{"web.session_key: required"}},
		{"short session key", func(c *Config) { c.Web.SessionKey = "short-session-key" }, []string{"web.session_key: must be at least 32 bytes, got 17"}},
		{"no public URL", func(c *Config) { c.Server.PublicURL = "" }, []string{"server.public_url: required when web.oidc.issuer is set"}},
		{"plain http public URL", func(c *Config) { c.Server.PublicURL = "http://approvals.example.com" }, []string{"server.public_url: must be an https URL"}},
		{"receipt key not base64", func(c *Config) { c.Receipts.SigningKey = "not base64!" }, []string{"receipts.signing_key: must be an Ed25519 seed of 32 bytes, base64 encoded; it is not base64"}},
		{"receipt key too short", func(c *Config) { c.Receipts.SigningKey = "c2hvcnQ=" }, []string{"receipts.signing_key: must be an Ed25519 seed of 32 bytes, base64 encoded; it decodes to 5 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := webConfig()
			tt.mutate(c)
			err := c.Validate()
			var ve *ValidationError
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if !errors.As(err, &ve) || len(ve.Problems) != len(tt.want) {
				t.Fatalf("Validate() = %v, want %d problems %q", err, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(ve.Problems[i], w) {
					t.Errorf("problem %q, want %q…", ve.Problems[i], w)
				}
			}
			for _, secret := range []string{testClientSecret, testSessionKey, "short-session-key", "not base64!", "c2hvcnQ=", testReceiptSeed} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("a secret is quoted: %v", err)
				}
			}
		})
	}
}

func TestWebWarnings(t *testing.T) {
	t.Parallel()
	c := webConfig()
	c.Web.OIDC.ClientSecret = ""
	c.Web.OIDC.Scopes = []string{"openid", "profile"}
	c.Receipts.SigningKey = ""
	want := []string{
		"web.oidc.client_secret: not set: the provider must accept approvalbot as a public client (PKCE without a secret)",
		"web.oidc.scopes: no email scope: most providers then send no email, and nobody can be mapped to a Slack user",
		"receipts.signing_key: not set: decisions made on the web get no signed receipt",
	}
	if got := c.webWarnings(); !reflect.DeepEqual(got, want) {
		t.Errorf("webWarnings():\n got %q\nwant %q", got, want)
	}
	c = validConfig()
	c.Policies[0].RequireSSO = true
	if got := c.webWarnings(); len(got) != 1 || !strings.HasPrefix(got[0], "policies[0].require_sso: web.oidc is not configured") {
		t.Errorf("require_sso without web.oidc: %q", got)
	}
	if got := validConfig().webWarnings(); got != nil {
		t.Errorf("no web configuration, warnings %q", got)
	}
}

func TestOIDCScopes(t *testing.T) {
	t.Parallel()
	if got := (OIDCConfig{}).ScopesOrDefault(); !reflect.DeepEqual(got, []string{"openid", "email", "profile"}) {
		t.Errorf("default scopes %q", got)
	}
	if got := (OIDCConfig{Scopes: []string{"email", "groups", "email"}}).ScopesOrDefault(); !reflect.DeepEqual(got, []string{"openid", "email", "groups"}) {
		t.Errorf("scopes %q", got)
	}
}

func TestReceiptKey(t *testing.T) {
	t.Parallel()
	seed, _ := base64.StdEncoding.DecodeString(testReceiptSeed)
	want := ed25519.NewKeyFromSeed(seed)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		key, err := ParseReceiptKey(" " + enc.EncodeToString(seed) + "\n")
		if err != nil || !key.Equal(want) {
			t.Errorf("%v: %v", enc, err)
		}
	}
	if key, err := (ReceiptsConfig{}).ReceiptKey(); key != nil || err != nil {
		t.Errorf("no key: %v %v", key, err)
	}
}

// TestWebKeysLoad: the web and receipts keys load from a file and from
// the environment, and their values never reach a load error.
func TestWebKeysLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "approvalbot.yaml")
	data := `
web:
  oidc: {issuer: "https://login.example.com", client_id: approvalbot, scopes: [openid, email]}
  session_key: "` + testSessionKey + `"
receipts: {signing_key: "` + testReceiptSeed + `"}
`
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("APPROVALBOT_WEB_OIDC_CLIENT_SECRET", testClientSecret)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := WebConfig{OIDC: OIDCConfig{Issuer: "https://login.example.com", ClientID: "approvalbot", ClientSecret: testClientSecret,
		Scopes: []string{"openid", "email"}}, SessionKey: testSessionKey}
	if !reflect.DeepEqual(c.Web, want) || c.Receipts.SigningKey != testReceiptSeed {
		t.Errorf("loaded %+v %+v", c.Web, c.Receipts)
	}
	if err := os.WriteFile(path, []byte("web: {session_key: [\""+testSessionKey+"\"]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || strings.Contains(err.Error(), testSessionKey) {
		t.Errorf("a session key given as a list: %v", err)
	}
}
