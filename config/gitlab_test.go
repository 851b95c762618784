package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	testGitLabToken        = "glpat-config-test-token-0123"
	testGitLabWebhookToken = "gitlab-webhook-token-0123456789"
)

func withGitLab(c *Config) *Config {
	c.GitLab.APIURL = "https://gitlab.example.com/api/v4"
	c.GitLab.Token = testGitLabToken
	c.GitLab.WebhookToken = testGitLabWebhookToken
	c.GitLab.Projects = []string{"platform/payments", "42"}
	c.GitLab.Users = map[string]string{"alice": "U0ALICE", "bob.smith": "bob@example.com"}
	return c
}

func TestValidateGitLab(t *testing.T) {
	t.Parallel()
	if err := withGitLab(validConfig()).Validate(); err != nil {
		t.Fatalf("a valid GitLab configuration: %v", err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"webhook only", func(c *Config) { c.GitLab.Projects = nil }, nil},
		{"polling only", func(c *Config) { c.GitLab.WebhookToken = "" }, nil},
		{"subgroups and a loopback API", func(c *Config) {
			c.GitLab.Projects = []string{"acme/platform/payments", "/acme/shop/"}
			c.GitLab.APIURL = "http://127.0.0.1:8929/api/v4"
		}, nil},
		{"only a webhook token", func(c *Config) { c.GitLab.Token, c.GitLab.Projects = "", nil }, []string{
			"gitlab.token: required when GitLab is configured",
		}},
		{"no intake", func(c *Config) { c.GitLab.WebhookToken, c.GitLab.Projects = "", nil }, []string{
			"gitlab.webhook_token: required unless gitlab.projects are polled",
		}},
		{"everything wrong at once", func(c *Config) {
			c.GitLab.APIURL = "http://gitlab.example.com/api/v4"
			c.GitLab.Token = "glpat short s3cret"
			c.GitLab.WebhookToken = "short-s3cret"
			c.GitLab.Projects = []string{"payments", "0", "", "acme/shop", "ACME/shop", "acme/shop?x=1"}
			c.GitLab.PollInterval = 0
			c.GitLab.Timeout = -time.Second
			c.GitLab.Users = map[string]string{"alice": "alice", "bad name!": "U0X"}
			c.GitLab.RepresentedAs = "line\nbreak"
		}, []string{
			"gitlab.api_url: must be https (plain http only to a loopback host): the token is sent there",
			"gitlab.token: holds spaces or characters a header cannot carry",
			"gitlab.webhook_token: must be at least 16 characters, got 12",
			`gitlab.projects[0]: must be a project id (42) or its full path (group/project), got "payments"`,
			`gitlab.projects[1]: must be a positive project id or a group/project path, got "0"`,
			"gitlab.projects[2]: must not be empty",
			`gitlab.projects[4]: "ACME/shop" is also gitlab.projects[3]`,
			`gitlab.projects[5]: must be a project id (42) or its full path (group/project), got "acme/shop?x=1"`,
			"gitlab.poll_interval: must be positive, got 0s",
			"gitlab.timeout: must be positive, got -1s",
			`gitlab.users.alice: must be a Slack user id (U…) or an email, got "alice"`,
			"gitlab.users.bad name!: is not a GitLab username",
			"gitlab.represented_as: must be on one line",
		}},
		{"an api url with a query", func(c *Config) { c.GitLab.APIURL = "https://gitlab.example.com/api/v4?private_token=x" }, []string{
			"gitlab.api_url: must not have credentials, a query or a fragment",
		}},
		{"not a URL", func(c *Config) { c.GitLab.APIURL = "gitlab.example.com" }, []string{
			"gitlab.api_url: must be an absolute https URL, such as https://gitlab.example.com/api/v4",
		}},
	} {
		c := withGitLab(validConfig())
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
		if n := len(err.(*ValidationError).Problems); n != len(tc.want) {
			t.Errorf("%s: %d problems, want %d:\n%v", tc.name, n, len(tc.want), err)
		}
		for _, secret := range []string{"short s3cret", "short-s3cret", testGitLabToken, testGitLabWebhookToken} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: a problem quotes a secret:\n%v", tc.name, err)
			}
		}
	}
}

func TestGitLabWarnings(t *testing.T) {
	t.Parallel()
	has := func(ws []string, part string) bool {
		for _, w := range ws {
			if strings.Contains(w, part) {
				return true
			}
		}
		return false
	}
	if w := withGitLab(validConfig()).Warnings(); has(w, "gitlab") {
		t.Errorf("a complete GitLab configuration warns: %v", w)
	}
	c := withGitLab(validConfig())
	c.GitLab.Users = nil
	c.Policies = append(c.Policies, PolicyConfig{Name: "github-only", Match: map[string]string{"source": "github"}, Approvers: ApproversConfig{Users: []string{"U1"}}, RequiredApprovals: 1, OnExpiry: "ignore"})
	if w := c.Warnings(); !has(w, "gitlab.users: empty: a GitLab requester whose email GitLab does not show cannot be matched to a Slack user, so nobody can approve their deployments under policies[0] (production), policies[1] (default) (allow_self_approval: false)") {
		t.Errorf("no users warning naming exactly the policies that can match GitLab tasks: %v", w)
	}
	off := validConfig()
	off.GitLab.Users = map[string]string{"alice": "U1"}
	off.GitLab.RepresentedAs = "release managers"
	if w := off.Warnings(); !has(w, "gitlab.users: ignored: GitLab is not configured") || !has(w, "gitlab.represented_as: ignored") {
		t.Errorf("users without GitLab: %v", w)
	}
}

// TestLoadGitLab reads the section from a file and the environment: ids
// given as numbers arrive as text, and the tokens come from the
// environment, as they would in a deployment.
func TestLoadGitLab(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "approvalbot.yaml")
	body := "gitlab:\n  projects: [platform/payments, 42]\n  poll_interval: 1m\n  users: {Alice: alice@example.com, bob: U0BOB}\n  represented_as: release-managers\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("APPROVALBOT_GITLAB_TOKEN", testGitLabToken)
	t.Setenv("APPROVALBOT_GITLAB_WEBHOOK_TOKEN", testGitLabWebhookToken)
	t.Setenv("APPROVALBOT_GITLAB_API_URL", "https://gitlab.example.com/api/v4")
	t.Setenv("APPROVALBOT_GITLAB_TIMEOUT", "3s")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	g := c.GitLab
	if g.Token != testGitLabToken || g.WebhookToken != testGitLabWebhookToken || g.APIURL != "https://gitlab.example.com/api/v4" ||
		strings.Join(g.Projects, ",") != "platform/payments,42" || g.PollInterval != time.Minute || g.Timeout != 3*time.Second ||
		g.Users["alice"] != "alice@example.com" || g.Users["bob"] != "U0BOB" || g.RepresentedAs != "release-managers" || !g.Enabled() {
		t.Errorf("gitlab %+v", g)
	}
	valid := validConfig()
	valid.GitLab = g
	if err := valid.Validate(); err != nil {
		t.Errorf("loaded GitLab configuration: %v", err)
	}
	keys := map[string]bool{}
	for _, f := range secretFields(c) {
		keys[f.key] = true
	}
	if !keys["gitlab.token"] || !keys["gitlab.webhook_token"] {
		t.Errorf("the GitLab tokens are not treated as secrets: %v", keys)
	}
}
