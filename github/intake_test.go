package github

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/githubtest"
)

const testWebhookSecret = "github-webhook-secret-0123456789"

var testKeyPEM = sync.OnceValue(func() []byte {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
})

func intakeClient(t *testing.T, apiURL string, users map[string]string) *Client {
	t.Helper()
	c, err := New(Config{AppID: "424242", PrivateKey: testKeyPEM(), WebhookSecret: testWebhookSecret, APIURL: apiURL, Users: users})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// headerFunc reads headers as the server hands them to an intake.
func headerFunc(h map[string]string) func(string) string {
	hh := http.Header{}
	for k, v := range h {
		hh.Set(k, v)
	}
	return func(name string) string { return strings.Join(hh.Values(name), ", ") }
}

func run(repo string) githubtest.Run {
	return githubtest.Run{ID: 7000000017, Repo: repo, Installation: 40000001, APIURL: DefaultAPIURL}
}

func TestParseRequested(t *testing.T) {
	t.Parallel()
	c := intakeClient(t, "", map[string]string{"OctoCat": "U0OCTO", "hubot": "lead@example.com"})
	r := run("acme/shop")
	for _, tc := range []struct {
		creator, requestedBy, unmapped string
	}{
		{"octocat", "U0OCTO", ""},
		{"hubot", "lead@example.com", ""},
		{"mallory", "", "mallory"},
	} {
		body := r.Payload(githubtest.Event{Environment: "Production", Creator: tc.creator, Ref: "main", SHA: "1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d"})
		sub, err := c.Parse(headerFunc(githubtest.Headers(testWebhookSecret, "deployment_protection_rule", "d-1", body)), body)
		if err != nil {
			t.Fatalf("%s: %v", tc.creator, err)
		}
		if sub.Source != Source || sub.TaskID != "7000000017-production" || sub.Environment != "Production" || sub.Project != "acme/shop" ||
			sub.Release != "main (1a2b3c4)" || sub.URL != "https://github.com/acme/shop/actions/runs/7000000017" ||
			sub.RequestedBy != tc.requestedBy || sub.RequestedByUnmapped != tc.unmapped {
			t.Errorf("%s: submission %+v", tc.creator, sub)
		}
		if a := sub.Artifact; a == nil || a.Name != "acme/shop" || a.Digest != "gitCommit:1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d" {
			t.Errorf("%s: artifact %+v, want acme/shop at the deployment's commit", tc.creator, a)
		}
		if tc.unmapped != "" && !strings.Contains(sub.Description, "not mapped to a Slack user (github.users)") {
			t.Errorf("%s: the description does not say the requester is unmapped: %q", tc.creator, sub.Description)
		}
		want := map[string]string{
			ExtraCallbackURL: r.CallbackURL(), ExtraInstallationID: "40000001", ExtraRepository: "acme/shop",
			ExtraRunID: "7000000017", ExtraEnvironment: "Production", ExtraDeliveryID: "d-1",
		}
		for k, v := range want {
			if sub.Extra[k] != v {
				t.Errorf("%s: extra %s = %q, want %q", tc.creator, k, sub.Extra[k], v)
			}
		}
	}
	// The same run and environment, in another case and delivery, is the
	// same task.
	body := r.Payload(githubtest.Event{Environment: "PRODUCTION", Creator: "octocat"})
	sub, err := c.Parse(headerFunc(githubtest.Headers(testWebhookSecret, "deployment_protection_rule", "d-2", body)), body)
	if err != nil || approvals.TaskRecordID(sub.Source, sub.TaskID) != "github-7000000017-production" {
		t.Fatalf("repeat: %+v, %v", sub, err)
	}
	// An environment name that is not URL-safe gets a hashed id.
	body = r.Payload(githubtest.Event{Environment: "EU / prod", Creator: "octocat"})
	if sub, err = c.Parse(headerFunc(githubtest.Headers(testWebhookSecret, "deployment_protection_rule", "d-3", body)), body); err != nil ||
		!strings.HasPrefix(approvals.TaskRecordID(sub.Source, sub.TaskID), "github-~") {
		t.Fatalf("environment with spaces: %+v, %v", sub, err)
	}
}

func TestParseSignature(t *testing.T) {
	t.Parallel()
	c := intakeClient(t, "", nil)
	body := run("acme/shop").Payload(githubtest.Event{Environment: "prod", Creator: "octocat"})
	good := githubtest.Headers(testWebhookSecret, "deployment_protection_rule", "d-1", body)
	for name, sig := range map[string]string{
		"missing":        "",
		"sha1":           "sha1=" + strings.TrimPrefix(good["X-Hub-Signature-256"], "sha256=")[:40],
		"not hex":        "sha256=zz",
		"another secret": githubtest.Signature("another-secret", body),
		"another body":   githubtest.Signature(testWebhookSecret, append([]byte(" "), body...)),
		"given twice":    good["X-Hub-Signature-256"] + ", " + good["X-Hub-Signature-256"],
	} {
		h := githubtest.Headers(testWebhookSecret, "deployment_protection_rule", "d-1", body)
		h["X-Hub-Signature-256"] = sig
		_, err := c.Parse(headerFunc(h), body)
		if !errors.Is(err, approvals.ErrUnauthenticated) {
			t.Errorf("%s: error %v, want ErrUnauthenticated", name, err)
		}
		if err != nil && strings.Contains(err.Error(), testWebhookSecret) {
			t.Errorf("%s: the error quotes the secret", name)
		}
	}
	// Checked before anything is parsed: a ping or garbage unsigned is 401
	// too.
	for _, b := range [][]byte{githubtest.Ping(), []byte("not json")} {
		h := githubtest.Headers("wrong", "ping", "d", b)
		if _, err := c.Parse(headerFunc(h), b); !errors.Is(err, approvals.ErrUnauthenticated) {
			t.Errorf("unsigned %q: %v", b, err)
		}
	}
}

func TestParseNoTask(t *testing.T) {
	t.Parallel()
	c := intakeClient(t, "", nil)
	r := run("acme/shop")
	for _, tc := range []struct {
		event string
		body  []byte
	}{
		{"ping", githubtest.Ping()},
		{"installation", []byte(`{"action":"created"}`)},
		{"deployment_protection_rule", r.Payload(githubtest.Event{Environment: "prod", Action: "completed"})},
	} {
		_, err := c.Parse(headerFunc(githubtest.Headers(testWebhookSecret, tc.event, "d", tc.body)), tc.body)
		if !errors.Is(err, approvals.ErrNoTask) {
			t.Errorf("%s: %v, want ErrNoTask", tc.event, err)
		}
	}
}

func TestParseRefusesCallbackElsewhere(t *testing.T) {
	t.Parallel()
	c := intakeClient(t, "", nil)
	ghes := intakeClient(t, "https://ghe.example.com/api/v3", nil)
	r := run("acme/shop")
	for _, tc := range []struct {
		name, callback string
		client         *Client
		ok             bool
	}{
		{"the run's", "https://api.github.com/repos/acme/shop/actions/runs/7000000017/deployment_protection_rule", c, true},
		{"port given", "https://api.github.com:443/repos/acme/shop/actions/runs/7000000017/deployment_protection_rule", c, true},
		{"case of the repository", "https://api.github.com/repos/Acme/Shop/actions/runs/7000000017/deployment_protection_rule", c, true},
		{"GHES", "https://ghe.example.com/api/v3/repos/acme/shop/actions/runs/7000000017/deployment_protection_rule", ghes, true},
		{"GHES without its prefix", "https://ghe.example.com/repos/acme/shop/actions/runs/7000000017/deployment_protection_rule", ghes, false},
		{"another host", "https://evil.example.com/repos/acme/shop/actions/runs/7000000017/deployment_protection_rule", c, false},
		{"a lookalike host", "https://api.github.com.evil.example.com/repos/acme/shop/actions/runs/7000000017/deployment_protection_rule", c, false},
		{"another port", "https://api.github.com:8443/repos/acme/shop/actions/runs/7000000017/deployment_protection_rule", c, false},
		{"http", "http://api.github.com/repos/acme/shop/actions/runs/7000000017/deployment_protection_rule", c, false},
		{"another repository", "https://api.github.com/repos/evil/shop/actions/runs/7000000017/deployment_protection_rule", c, false},
		{"another resource", "https://api.github.com/repos/acme/shop/actions/runs/7000000017/approve", c, false},
		{"no run id", "https://api.github.com/repos/acme/shop/actions/runs/x/deployment_protection_rule", c, false},
		{"a query", "https://api.github.com/repos/acme/shop/actions/runs/7000000017/deployment_protection_rule?x=1", c, false},
		{"credentials", "https://u:p@api.github.com/repos/acme/shop/actions/runs/7000000017/deployment_protection_rule", c, false},
		{"dot segments", "https://api.github.com/repos/acme/shop/actions/runs/7000000017/../../../../../x/deployment_protection_rule", c, false},
		{"escaped", "https://api.github.com/repos/acme/shop/actions/runs/7000000017%2F/deployment_protection_rule", c, false},
		{"missing", "", c, false},
	} {
		body := r.Payload(githubtest.Event{Environment: "prod", Creator: "octocat", CallbackURL: tc.callback})
		if tc.callback == "" {
			body = []byte(strings.Replace(string(body), r.CallbackURL(), "", 1))
		}
		sub, err := tc.client.Parse(headerFunc(githubtest.Headers(testWebhookSecret, "deployment_protection_rule", "d", body)), body)
		if tc.ok {
			if err != nil || sub.Extra[ExtraCallbackURL] == "" {
				t.Errorf("%s: refused: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, approvals.ErrInvalid) || !strings.Contains(err.Error(), "deployment_callback_url") {
			t.Errorf("%s: error %v, want ErrInvalid about deployment_callback_url", tc.name, err)
		}
	}
}

func TestParseRefusesMalformed(t *testing.T) {
	t.Parallel()
	c := intakeClient(t, "", nil)
	r := run("acme/shop")
	good := string(r.Payload(githubtest.Event{Environment: "prod", Creator: "octocat"}))
	for name, body := range map[string]string{
		"not JSON":          "{",
		"no environment":    strings.Replace(good, `"environment":"prod","event"`, `"environment":"","event"`, 1),
		"no installation":   strings.Replace(good, `"installation":{"id":40000001`, `"installation":{"id":0`, 1),
		"no repository":     strings.Replace(good, `"full_name":"acme/shop"`, `"full_name":"acme"`, 1),
		"control character": strings.Replace(good, `"environment":"prod","event"`, `"environment":"pr\u0000od","event"`, 1),
	} {
		_, err := c.Parse(headerFunc(githubtest.Headers(testWebhookSecret, "deployment_protection_rule", "d", []byte(body))), []byte(body))
		if !errors.Is(err, approvals.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func TestRelease(t *testing.T) {
	t.Parallel()
	const sha = "1A2B3C4D5E6F7A8B9C0D1A2B3C4D5E6F7A8B9C0D"
	for _, tc := range []struct{ ref, sha, want string }{
		{"main", sha, "main (1a2b3c4)"},
		{"", sha, "1a2b3c4"},
		{strings.ToLower(sha), sha, "1a2b3c4"},
		{"v2.3", "not-a-sha", "v2.3"},
		{"refs/tags/v2.3\n", "", "refs/tags/v2.3"},
	} {
		if got := release(tc.ref, tc.sha); got != tc.want {
			t.Errorf("release(%q, %q) = %q, want %q", tc.ref, tc.sha, got, tc.want)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	key := testKeyPEM()
	for name, cfg := range map[string]Config{
		"no app id":       {PrivateKey: key, WebhookSecret: testWebhookSecret},
		"no key":          {AppID: "1", WebhookSecret: testWebhookSecret},
		"not a key":       {AppID: "1", PrivateKey: []byte("-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0\n-----END RSA PRIVATE KEY-----\n"), WebhookSecret: testWebhookSecret},
		"no secret":       {AppID: "1", PrivateKey: key},
		"http api":        {AppID: "1", PrivateKey: key, WebhookSecret: testWebhookSecret, APIURL: "http://api.github.com"},
		"api with query":  {AppID: "1", PrivateKey: key, WebhookSecret: testWebhookSecret, APIURL: "https://api.github.com/?x=1"},
		"relative api":    {AppID: "1", PrivateKey: key, WebhookSecret: testWebhookSecret, APIURL: "api.github.com"},
		"api credentials": {AppID: "1", PrivateKey: key, WebhookSecret: testWebhookSecret, APIURL: "https://u:p@api.github.com"},
	} {
		_, err := New(cfg)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), "c2VjcmV0") || strings.Contains(err.Error(), testWebhookSecret) || strings.Contains(err.Error(), string(key[40:60])) {
			t.Errorf("%s: the error quotes a secret: %v", name, err)
		}
	}
	if _, err := New(Config{AppID: "1", PrivateKey: key, WebhookSecret: testWebhookSecret, APIURL: "http://127.0.0.1:8080"}); err != nil {
		t.Errorf("plain http to a loopback host refused: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	r := run("acme/shop")
	f.Add([]byte(r.Payload(githubtest.Event{Environment: "prod", Creator: "octocat"})), "deployment_protection_rule")
	f.Add(githubtest.Ping(), "ping")
	f.Add([]byte(`{"action":"requested","environment":"x","deployment_callback_url":"https://api.github.com/repos/a/b/actions/runs/1/deployment_protection_rule","repository":{"full_name":"a/b"},"installation":{"id":1}}`), "deployment_protection_rule")
	f.Add([]byte(`{"action":"requested"}`), "deployment_protection_rule")
	c, err := New(Config{AppID: "1", PrivateKey: testKeyPEM(), WebhookSecret: testWebhookSecret})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, event string) {
		sub, err := c.Parse(headerFunc(map[string]string{"X-GitHub-Event": event, "X-Hub-Signature-256": githubtest.Signature(testWebhookSecret, body)}), body)
		if err != nil {
			if !errors.Is(err, approvals.ErrInvalid) && !errors.Is(err, approvals.ErrNoTask) {
				t.Fatalf("error %v is neither ErrInvalid nor ErrNoTask", err)
			}
			return
		}
		if _, _, err := c.api.checkCallback(sub.Extra[ExtraCallbackURL], sub.Extra[ExtraRepository]); err != nil || sub.TaskID == "" {
			t.Fatalf("accepted %+v: %v", sub, err)
		}
	})
}

func TestCommitArtifact(t *testing.T) {
	t.Parallel()
	const sha = "1A2B3C4D5E6F7A8B9C0D1A2B3C4D5E6F7A8B9C0D"
	if a := commitArtifact("acme/shop", sha); a == nil || a.Digest != "gitCommit:"+strings.ToLower(sha) {
		t.Errorf("commitArtifact(40 hex) = %+v", a)
	}
	for _, bad := range []string{"", "not-a-sha", strings.Repeat("a", 64)} {
		if a := commitArtifact("acme/shop", bad); a != nil {
			t.Errorf("commitArtifact(%q) = %+v, want none", bad, a)
		}
	}
}
