package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// GitLabConfig is GitLab's deployment approvals: a deployment to a
// protected environment waits "blocked" until approved. Without token (and
// the rest) GitLab is off and /gitlab/webhook does not exist.
type GitLabConfig struct {
	// APIURL is GitLab's REST root, https://HOST/api/v4. The token is sent
	// there and nowhere else.
	APIURL string `mapstructure:"api_url"`
	// Token is a bot user's personal, group or project access token
	// (PRIVATE-TOKEN), allowed to approve deployments.
	Token string `mapstructure:"token"`
	// WebhookToken is the "Secret token" of the project or group webhook
	// sending deployment events (X-Gitlab-Token).
	WebhookToken string `mapstructure:"webhook_token"`
	// Projects are polled for blocked deployments: numeric ids or
	// group/path.
	Projects     []string      `mapstructure:"projects"`
	PollInterval time.Duration `mapstructure:"poll_interval"`
	// Users maps GitLab usernames to Slack user ids or emails, for the
	// self-approval check of deployments whose user's email GitLab does
	// not give.
	Users map[string]string `mapstructure:"users"`
	// RepresentedAs is the approval rule the bot's approval counts toward.
	RepresentedAs string        `mapstructure:"represented_as"`
	Timeout       time.Duration `mapstructure:"timeout"`
}

// defaultGitLab is the GitLab section's defaults.
func defaultGitLab() GitLabConfig {
	return GitLabConfig{APIURL: "https://gitlab.com/api/v4", PollInterval: 30 * time.Second, Timeout: 10 * time.Second}
}

// Enabled reports whether GitLab is configured at all (then its token must
// be, and an intake).
func (g GitLabConfig) Enabled() bool {
	return g.Token != "" || g.WebhookToken != "" || len(g.Projects) > 0
}

var (
	// gitLabUsername is a GitLab username (viper lower-cases map keys).
	gitLabUsername = regexp.MustCompile(`^[a-z0-9_.][a-z0-9_.-]{0,254}$`)
	// gitLabPath is a project's full path: a group (and subgroups) and the
	// project, as its URL shows it.
	gitLabPath = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*(/[A-Za-z0-9_.][A-Za-z0-9_.-]*)+$`)
)

// minGitLabWebhookToken is the shortest webhook secret token accepted.
const minGitLabWebhookToken = 16

func (c *Config) validateGitLab(p *problems) {
	g := c.GitLab
	positiveDuration(p, "gitlab.timeout", g.Timeout)
	positiveDuration(p, "gitlab.poll_interval", g.PollInterval)
	checkAPIURL(p, "gitlab.api_url", g.APIURL, "https://gitlab.example.com/api/v4", "the token is sent there")
	for _, name := range sortedKeys(g.Users) {
		key := "gitlab.users." + name
		to := strings.TrimSpace(g.Users[name])
		if !gitLabUsername.MatchString(strings.ToLower(name)) {
			p.addf(key, "is not a GitLab username")
		}
		if !slackUserID.MatchString(to) && (strings.Count(to, "@") != 1 || strings.HasPrefix(to, "@") || strings.HasSuffix(to, "@")) {
			p.addf(key, "must be a Slack user id (U…) or an email, got %q", to)
		}
	}
	seen := map[string]int{}
	for i, project := range g.Projects {
		key := fmt.Sprintf("gitlab.projects[%d]", i)
		project = strings.Trim(strings.TrimSpace(project), "/")
		n, err := strconv.ParseInt(project, 10, 64)
		switch {
		case project == "":
			p.addf(key, "must not be empty")
			continue
		case err == nil && n <= 0:
			p.addf(key, "must be a positive project id or a group/project path, got %q", project)
			continue
		case err != nil && !gitLabPath.MatchString(project):
			p.addf(key, "must be a project id (42) or its full path (group/project), got %q", project)
			continue
		}
		if j, dup := seen[strings.ToLower(project)]; dup {
			p.addf(key, "%q is also gitlab.projects[%d]", project, j)
		}
		seen[strings.ToLower(project)] = i
	}
	if strings.ContainsFunc(g.RepresentedAs, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		p.addf("gitlab.represented_as", "must be on one line")
	}
	if !g.Enabled() {
		return
	}
	switch {
	case g.Token == "":
		p.addf("gitlab.token", "required when GitLab is configured (a bot user's access token with the api scope, allowed to approve deployments)")
	case strings.ContainsFunc(g.Token, func(r rune) bool { return r <= ' ' || r > '~' }):
		p.addf("gitlab.token", "holds spaces or characters a header cannot carry")
	}
	switch n := len(g.WebhookToken); {
	case n == 0 && len(g.Projects) == 0:
		p.addf("gitlab.webhook_token", "required unless gitlab.projects are polled: without either, no deployment reaches the bot")
	case n > 0 && n < minGitLabWebhookToken:
		p.addf("gitlab.webhook_token", "must be at least %d characters, got %d", minGitLabWebhookToken, n)
	}
}

// gitLabWarnings are what is allowed but probably not meant about GitLab.
func (c *Config) gitLabWarnings() []string {
	g := c.GitLab
	if !g.Enabled() {
		var w []string
		if len(g.Users) > 0 {
			w = append(w, "gitlab.users: ignored: GitLab is not configured (gitlab.token)")
		}
		if g.RepresentedAs != "" {
			w = append(w, "gitlab.represented_as: ignored: GitLab is not configured (gitlab.token)")
		}
		return w
	}
	if len(g.Users) > 0 {
		return nil
	}
	var names []string
	for i, pol := range c.Policies {
		if !pol.AllowSelfApproval && policyCanMatchSource(pol, "gitlab") {
			names = append(names, fmt.Sprintf("policies[%d] (%s)", i, pol.Name))
		}
	}
	if len(names) == 0 {
		return nil
	}
	return []string{"gitlab.users: empty: a GitLab requester whose email GitLab does not show cannot be matched to a Slack user, so nobody can approve their deployments under " +
		strings.Join(names, ", ") + " (allow_self_approval: false) until their usernames are mapped"}
}
