package config

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/hosts"
	"github.com/approvalbot/approvalbot/tokens"
)

// minAPIKeyChars is the shortest intake API key accepted.
const minAPIKeyChars = 16

// ValidationError lists every problem of a configuration, each naming its key
// path ("policies[1].required_approvals: must be at least 1, got 0"). No
// problem ever quotes a secret.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	if len(e.Problems) == 1 {
		b.WriteString("invalid configuration (1 problem):")
	} else {
		fmt.Fprintf(&b, "invalid configuration (%d problems):", len(e.Problems))
	}
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p)
	}
	return b.String()
}

// problems collects validation messages.
type problems []string

func (p *problems) addf(key, format string, args ...any) {
	*p = append(*p, key+": "+fmt.Sprintf(format, args...))
}

// uniqueName checks that list[i].field is set and names no earlier entry;
// seen maps the names so far to their index.
func (p *problems) uniqueName(seen map[string]int, list string, i int, field, value string) {
	key := fmt.Sprintf("%s[%d].%s", list, i, field)
	if value == "" {
		p.addf(key, "must not be empty")
	} else if j, dup := seen[value]; dup {
		p.addf(key, "%q is also the %s of %s[%d]", value, field, list, j)
	} else {
		seen[value] = i
	}
}

// Validate checks the whole configuration and returns a *ValidationError
// listing every problem at once, or nil.
func (c *Config) Validate() error {
	var p problems
	c.validateServer(&p)
	c.validateStore(&p)
	c.validateTokens(&p)
	c.validateIntake(&p)
	c.validateSlack(&p)
	c.validateFlexDeploy(&p)
	c.validateAzureDevOps(&p)
	c.validateGitHub(&p)
	c.validateWebhook(&p)
	c.validateGitLab(&p)
	c.validateTeams(&p)
	c.validatePolicies(&p)
	c.validateWeb(&p)
	c.validateChanges(&p)
	c.validatePagerDuty(&p)
	if len(p) == 0 {
		return nil
	}
	// Each check is written not to quote a secret; the backstop catches one
	// that would.
	secrets := values(secretFields(c))
	for i := range p {
		p[i] = redact(p[i], secrets)
	}
	return &ValidationError{Problems: p}
}

func (c *Config) validateServer(p *problems) {
	s := c.Server
	if s.Listen == "" {
		p.addf("server.listen", "must not be empty")
	}
	checkURL(p, "server.public_url", s.PublicURL)
	positive(p, "server.max_body_bytes", s.MaxBodyBytes)
	positive(p, "server.max_concurrent_requests", int64(s.MaxConcurrentRequests))
	positive(p, "server.max_outstanding_requests", int64(s.MaxOutstandingRequests))
	if s.MaxConcurrentRequests > 0 && s.MaxOutstandingRequests > 0 && s.MaxOutstandingRequests < s.MaxConcurrentRequests {
		p.addf("server.max_outstanding_requests", "must be at least server.max_concurrent_requests (%d), got %d",
			s.MaxConcurrentRequests, s.MaxOutstandingRequests)
	}
	positiveDuration(p, "server.read_header_timeout", s.ReadHeaderTimeout)
	positiveDuration(p, "server.read_timeout", s.ReadTimeout)
	positiveDuration(p, "server.write_timeout", s.WriteTimeout)
	positiveDuration(p, "server.idle_timeout", s.IdleTimeout)
	positiveDuration(p, "server.shutdown_timeout", s.ShutdownTimeout)

	oneOf(p, "log.level", c.Log.Level, "debug", "info", "warn", "error")
	positiveDuration(p, "outbox.lease", c.Outbox.Lease)
	positiveDuration(p, "sweeper.interval", c.Sweeper.Interval)
	positiveDuration(p, "reconcile.interval", c.Reconcile.Interval)
}

func (c *Config) validateStore(p *problems) {
	s := c.Store
	if !oneOf(p, "store.driver", s.Driver, "bolt", "dynamodb") {
		return
	}
	switch s.Driver {
	case "bolt":
		if s.Bolt.Path == "" {
			p.addf("store.bolt.path", "must not be empty")
		}
		if s.Bolt.Retention < 0 {
			p.addf("store.bolt.retention", "must not be negative (0 keeps tasks forever), got %s", s.Bolt.Retention)
		}
	case "dynamodb":
		if s.DynamoDB.Table == "" {
			p.addf("store.dynamodb.table", "must not be empty")
		}
		if s.DynamoDB.Region == "" {
			p.addf("store.dynamodb.region", "must not be empty")
		}
		checkURL(p, "store.dynamodb.endpoint", s.DynamoDB.Endpoint)
	}
}

func (c *Config) validateTokens(p *problems) {
	positiveDuration(p, "tokens.ttl", c.Tokens.TTL)
	if len(c.Tokens.SigningKeys) == 0 {
		p.addf("tokens.signing_keys", "at least one signing key is required")
	}
	seen := map[string]int{}
	for i, k := range c.Tokens.SigningKeys {
		key := fmt.Sprintf("tokens.signing_keys[%d]", i)
		p.uniqueName(seen, "tokens.signing_keys", i, "id", k.ID)
		if len(k.Secret) < tokens.MinSecretLen {
			p.addf(key+".secret", "must be at least %d bytes, got %d", tokens.MinSecretLen, len(k.Secret))
		}
	}
}

func (c *Config) validateIntake(p *problems) {
	names := map[string]int{}
	keys := map[string]int{}
	for i, k := range c.Intake.APIKeys {
		key := fmt.Sprintf("intake.api_keys[%d]", i)
		p.uniqueName(names, "intake.api_keys", i, "name", k.Name)
		if n := utf8.RuneCountInString(k.Key); n < minAPIKeyChars {
			p.addf(key+".key", "must be at least %d characters, got %d", minAPIKeyChars, n)
		} else if j, dup := keys[k.Key]; dup {
			p.addf(key+".key", "same key as intake.api_keys[%d]", j)
		} else {
			keys[k.Key] = i
		}
	}
}

func (c *Config) validateSlack(p *problems) {
	s := c.Slack
	if oneOf(p, "slack.mode", s.Mode, "http", "socket") && s.Mode == "socket" {
		switch {
		case s.AppToken == "":
			p.addf("slack.app_token", `required in socket mode (an app-level token, "xapp-…")`)
		case !strings.HasPrefix(s.AppToken, "xapp-"):
			p.addf("slack.app_token", `must start with "xapp-" (an app-level token)`)
		}
	}
	if s.BotToken != "" {
		if !strings.HasPrefix(s.BotToken, "xoxb-") {
			p.addf("slack.bot_token", `must start with "xoxb-" (a bot token)`)
		}
		if s.Mode == "http" && s.SigningSecret == "" {
			p.addf("slack.signing_secret", "required in http mode when slack.bot_token is set (it verifies Slack's requests)")
		}
	}
	checkURL(p, "slack.api_url", s.APIURL)
	positiveDuration(p, "slack.group_cache_ttl", s.GroupCacheTTL)
}

func (c *Config) validateFlexDeploy(p *problems) {
	f := c.FlexDeploy
	checkURL(p, "flexdeploy.base_url", f.BaseURL)
	if f.BaseURL != "" && f.Username == "" {
		p.addf("flexdeploy.username", "required when flexdeploy.base_url is set")
	}
	positiveDuration(p, "flexdeploy.timeout", f.Timeout)
}

func (c *Config) validateAzureDevOps(p *problems) {
	a := c.AzureDevOps
	positiveDuration(p, "azure_devops.timeout", a.Timeout)
	if a.EncryptionKey != "" && !is32ByteKey(a.EncryptionKey) {
		p.addf("azure_devops.encryption_key", "must be 32 bytes, base64 or hex encoded")
	}
	for i, h := range a.AllowedHosts {
		if hosts.Validate([]string{h}, "azure devops") != nil {
			p.addf(fmt.Sprintf("azure_devops.allowed_hosts[%d]", i), "must be a host name, a glob such as *.visualstudio.com, or host:port, got %q", h)
		}
	}
}

// is32ByteKey reports whether s encodes 32 bytes in hex or base64.
func is32ByteKey(s string) bool {
	if b, err := hex.DecodeString(s); err == nil {
		return len(b) == 32
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return len(b) == 32
		}
	}
	return false
}

func (c *Config) validatePolicies(p *problems) {
	names := map[string]int{}
	for i, pol := range c.Policies {
		key := fmt.Sprintf("policies[%d]", i)
		p.uniqueName(names, "policies", i, "name", pol.Name)

		for _, mk := range sortedKeys(pol.Match) {
			if mk == whenKey {
				continue // a CEL condition: validateWhen
			}
			if !slices.Contains(approvals.MatchKeys, mk) {
				p.addf(key+".match", "unknown key %q, must be one of %s or when", mk, strings.Join(approvals.MatchKeys, ", "))
				continue
			}
			if err := approvals.ValidGlob(pol.Match[mk]); err != nil {
				p.addf(key+".match."+mk, "invalid pattern %q: %v", pol.Match[mk], err)
			}
		}

		validateWhen(p, key, pol)
		c.validateApprovers(p, key, pol)
		validateRules(p, key, pol)
		validateSurfaces(p, key, pol, c.policyTTL(pol))

		if pol.RequiredApprovals < 1 {
			p.addf(key+".required_approvals", "must be at least 1, got %d", pol.RequiredApprovals)
		}
		oneOf(p, key+".on_expiry", pol.OnExpiry, string(approvals.ExpiryIgnore), string(approvals.ExpiryReject))
		if pol.TTL < 0 {
			p.addf(key+".ttl", "must not be negative, got %s", pol.TTL)
		}
		ttl := c.policyTTL(pol)
		switch {
		case pol.RemindBefore < 0:
			p.addf(key+".remind_before", "must not be negative, got %s", pol.RemindBefore)
		case pol.RemindBefore > 0 && ttl > 0 && pol.RemindBefore >= ttl:
			p.addf(key+".remind_before", "must be less than the policy's ttl (%s), got %s", ttl, pol.RemindBefore)
		}
	}
}

func (c *Config) validateApprovers(p *problems, key string, pol PolicyConfig) {
	a := pol.Approvers
	if len(a.Users) == 0 && len(a.Groups) == 0 && len(a.Emails) == 0 && len(a.PagerDuty.Schedules) == 0 && len(pol.RequireFrom) == 0 {
		p.addf(key+".approvers", "names nobody: give users, groups, emails or pagerduty.schedules (to let nobody decide tasks from Slack, leave them to no policy)")
		return
	}
	lists := []struct {
		name string
		ids  []string
	}{{"users", a.Users}, {"groups", a.Groups}, {"emails", a.Emails}}
	for _, l := range lists {
		for j, id := range l.ids {
			if strings.TrimSpace(id) == "" {
				p.addf(fmt.Sprintf("%s.approvers.%s[%d]", key, l.name, j), "must not be empty")
			} else if l.name == "emails" && !strings.Contains(id, "@") {
				p.addf(fmt.Sprintf("%s.approvers.emails[%d]", key, j), "%q is not an email address", id)
			}
		}
	}
	// Without groups the named people are all there can be: a quorum larger
	// than them could never be reached, and every task would expire.
	// The members of require_from's entries are approvers too.
	if people, groups := namedPeople(pol); !groups && pol.RequiredApprovals > 1 {
		if people < pol.RequiredApprovals {
			p.addf(key+".required_approvals", "%d approvals needed but at most %d people are named in approvers", pol.RequiredApprovals, people)
		}
	}
}

// Warnings lists what is allowed but probably not meant. Like every message
// of this package, none quotes a secret.
func (c *Config) Warnings() []string {
	w := c.placeholderWarnings()
	w = append(w, c.ruleWarnings(time.Now())...)
	w = append(w, c.gitHubWarnings()...)
	w = append(w, c.webhookWarnings()...)
	w = append(w, c.gitLabWarnings()...)
	if len(c.Intake.APIKeys) == 0 {
		w = append(w, "intake.api_keys: none configured: /v1 refuses every request")
	}
	if c.Slack.BotToken == "" {
		w = append(w, "slack.bot_token: not set: Slack messages wait in the outbox until it is configured")
	} else if c.Slack.Channel == "" {
		for i, pol := range c.Policies {
			if pol.Channel == "" {
				w = append(w, fmt.Sprintf("policies[%d].channel: not set and slack.channel is empty: its tasks cannot be posted", i))
			}
		}
	}
	if c.Slack.Mode == "http" && c.Slack.AppToken != "" {
		w = append(w, "slack.app_token: ignored in http mode")
	}
	if c.FlexDeploy.BaseURL == "" {
		w = append(w, "flexdeploy.base_url: not set: decisions cannot be handed to FlexDeploy until it is configured")
	}
	catchAll := -1
	for i, pol := range c.Policies {
		if len(pol.Match) == 0 && catchAll < 0 {
			catchAll = i
		}
		for j := range i {
			if !shadows(c.Policies[j].Match, pol.Match) {
				continue
			}
			if len(c.Policies[j].Match) == 0 {
				w = append(w, fmt.Sprintf("policies[%d]: unreachable: policies[%d] (%q) has no match and takes every task first", i, j, c.Policies[j].Name))
			} else {
				w = append(w, fmt.Sprintf("policies[%d]: unreachable: policies[%d] (%q) matches every task it matches, and comes first", i, j, c.Policies[j].Name))
			}
			break
		}
	}
	if catchAll < 0 {
		msg := "policies: no policy without match: tasks no policy matches cannot be decided from Slack"
		if c.Slack.Channel == "" {
			msg += ", and with slack.channel empty they are not posted either"
		}
		w = append(w, msg)
	}
	return append(w, c.webWarnings()...)
}

// policyTTL is how long the policy's tasks stay open.
func (c *Config) policyTTL(pol PolicyConfig) time.Duration {
	if pol.TTL > 0 {
		return pol.TTL
	}
	return c.Tokens.TTL
}

func positive(p *problems, key string, n int64) {
	if n <= 0 {
		p.addf(key, "must be positive, got %d", n)
	}
}

func positiveDuration(p *problems, key string, d time.Duration) {
	if d <= 0 {
		p.addf(key, "must be positive, got %s", d)
	}
}

// oneOf reports whether val is one of allowed, and adds a problem if not.
func oneOf(p *problems, key, val string, allowed ...string) bool {
	if slices.Contains(allowed, val) {
		return true
	}
	p.addf(key, "must be one of %s, got %q", strings.Join(allowed, ", "), val)
	return false
}

// checkURL adds a problem unless s is empty or an absolute http(s) URL. The
// value is never quoted: a URL may carry a password.
func checkURL(p *problems, key, s string) {
	if s == "" {
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.addf(key, "must be an absolute http or https URL")
	}
}

func distinct(list []string) int {
	seen := map[string]bool{}
	for _, s := range list {
		if s = strings.ToLower(strings.TrimSpace(s)); s != "" {
			seen[s] = true
		}
	}
	return len(seen)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// shadows reports whether a policy matching on earlier takes every task a
// later policy matching on later would: each of earlier's patterns is "*"
// or stands, the same, in later.
func shadows(earlier, later map[string]string) bool {
	for key, pattern := range earlier {
		if pattern == "*" {
			continue
		}
		if other, ok := later[key]; !ok || !strings.EqualFold(other, pattern) {
			return false
		}
	}
	return true
}
