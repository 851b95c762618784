package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

const (
	testSecret    = "test-signing-secret-0123456789abcdef-0123"
	testAPIKey    = "test-api-key-0123456789"
	testBotToken  = "xoxb-test-bot-token"
	testSigning   = "test-slack-signing-secret"
	testAppToken  = "xapp-test-app-token"
	testFDPasswd  = "test-flexdeploy-password"
	testURLPasswd = "url-password-in-base-url"
)

// validConfig is a configuration with no problems and no warnings.
func validConfig() *Config {
	c := defaults()
	c.Intake.APIKeys = []APIKey{{Name: "flexdeploy", Key: testAPIKey}}
	c.Tokens.SigningKeys = []SigningKey{{ID: "k1", Secret: testSecret}}
	c.Slack.BotToken = testBotToken
	c.Slack.SigningSecret = testSigning
	c.Slack.Channel = "C0GENERAL"
	c.FlexDeploy.BaseURL = "http://fd.internal:8000/flexdeploy/rest/v1"
	c.FlexDeploy.Username = "approvalbot"
	c.FlexDeploy.Password = testFDPasswd
	c.Policies = []PolicyConfig{
		{
			Name:              "production",
			Match:             map[string]string{"environment": "PROD*"},
			Channel:           "C0PROD",
			Approvers:         ApproversConfig{Users: []string{"U1", "U2"}},
			RequiredApprovals: 2,
			TTL:               4 * time.Hour,
			OnExpiry:          "reject",
			RemindBefore:      time.Hour,
		},
		{
			Name:              "default",
			Approvers:         ApproversConfig{Groups: []string{"S1"}},
			RequiredApprovals: 1,
			OnExpiry:          "ignore",
		},
	}
	return &c
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{name: "valid", mutate: func(*Config) {}},
		{
			name: "server limits and timeouts",
			mutate: func(c *Config) {
				c.Server.Listen = ""
				c.Server.MaxBodyBytes = 0
				c.Server.MaxConcurrentRequests = 0
				c.Server.MaxOutstandingRequests = -1
				c.Server.ReadHeaderTimeout = 0
				c.Server.ShutdownTimeout = -time.Second
			},
			want: []string{
				"server.listen: must not be empty",
				"server.max_body_bytes: must be positive, got 0",
				"server.max_concurrent_requests: must be positive, got 0",
				"server.max_outstanding_requests: must be positive, got -1",
				"server.read_header_timeout: must be positive, got 0s",
				"server.shutdown_timeout: must be positive, got -1s",
			},
		},
		{
			name: "outstanding below concurrent",
			mutate: func(c *Config) {
				c.Server.MaxConcurrentRequests = 100
				c.Server.MaxOutstandingRequests = 50
			},
			want: []string{"server.max_outstanding_requests: must be at least server.max_concurrent_requests (100), got 50"},
		},
		{
			name: "log level and loops",
			mutate: func(c *Config) {
				c.Log.Level = "verbose"
				c.Outbox.Lease = 0
				c.Sweeper.Interval = -time.Second
				c.Reconcile.Interval = 0
			},
			want: []string{
				`log.level: must be one of debug, info, warn, error, got "verbose"`,
				"outbox.lease: must be positive, got 0s",
				"sweeper.interval: must be positive, got -1s",
				"reconcile.interval: must be positive, got 0s",
			},
		},
		{
			name: "azure devops",
			mutate: func(c *Config) {
				c.AzureDevOps.EncryptionKey = "too-short-to-be-a-key"
				c.AzureDevOps.AllowedHosts = []string{"dev.azure.com", "https://evil.example", "", "tfs.internal:8443"}
				c.AzureDevOps.Timeout = 0
			},
			want: []string{
				"azure_devops.timeout: must be positive, got 0s",
				"azure_devops.encryption_key: must be 32 bytes, base64 or hex encoded",
				`azure_devops.allowed_hosts[1]: must be a host name, a glob such as *.visualstudio.com, or host:port, got "https://evil.example"`,
				`azure_devops.allowed_hosts[2]: must be a host name, a glob such as *.visualstudio.com, or host:port, got ""`,
			},
		},
		{
			name: "azure devops key forms",
			mutate: func(c *Config) {
				c.AzureDevOps.EncryptionKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // base64 of 32 bytes
			},
		},
		{
			name:   "negative retention",
			mutate: func(c *Config) { c.Store.Bolt.Retention = -time.Hour },
			want:   []string{"store.bolt.retention: must not be negative (0 keeps tasks forever), got -1h0m0s"},
		},
		{
			name:   "unknown store driver",
			mutate: func(c *Config) { c.Store.Driver = "sqlite" },
			want:   []string{`store.driver: must be one of bolt, dynamodb, got "sqlite"`},
		},
		{
			name:   "bolt without path",
			mutate: func(c *Config) { c.Store.Bolt.Path = "" },
			want:   []string{"store.bolt.path: must not be empty"},
		},
		{
			name: "dynamodb without table, region, good endpoint",
			mutate: func(c *Config) {
				c.Store.Driver = "dynamodb"
				c.Store.Bolt.Path = "" // not used by dynamodb
				c.Store.DynamoDB = DynamoDBConfig{Endpoint: "localhost:8000"}
			},
			want: []string{
				"store.dynamodb.table: must not be empty",
				"store.dynamodb.region: must not be empty",
				"store.dynamodb.endpoint: must be an absolute http or https URL",
			},
		},
		{
			name: "dynamodb valid",
			mutate: func(c *Config) {
				c.Store.Driver = "dynamodb"
				c.Store.DynamoDB.Endpoint = "http://localhost:4567"
			},
		},
		{
			name: "tokens",
			mutate: func(c *Config) {
				c.Tokens.TTL = 0
				c.Tokens.SigningKeys = []SigningKey{
					{ID: "", Secret: "short"},
					{ID: "k1", Secret: testSecret},
					{ID: "k1", Secret: testSecret + "x"},
				}
			},
			want: []string{
				"tokens.ttl: must be positive, got 0s",
				"tokens.signing_keys[0].id: must not be empty",
				"tokens.signing_keys[0].secret: must be at least 32 bytes, got 5",
				`tokens.signing_keys[2].id: "k1" is also the id of tokens.signing_keys[1]`,
			},
		},
		{
			name:   "no signing key",
			mutate: func(c *Config) { c.Tokens.SigningKeys = nil },
			want:   []string{"tokens.signing_keys: at least one signing key is required"},
		},
		{
			name: "api keys",
			mutate: func(c *Config) {
				c.Intake.APIKeys = []APIKey{
					{Name: "", Key: "short"},
					{Name: "a", Key: testAPIKey},
					{Name: "a", Key: testAPIKey},
				}
			},
			want: []string{
				"intake.api_keys[0].name: must not be empty",
				"intake.api_keys[0].key: must be at least 16 characters, got 5",
				`intake.api_keys[2].name: "a" is also the name of intake.api_keys[1]`,
				"intake.api_keys[2].key: same key as intake.api_keys[1]",
			},
		},
		{
			name:   "no api keys is only a warning",
			mutate: func(c *Config) { c.Intake.APIKeys = nil },
		},
		{
			name:   "unknown slack mode",
			mutate: func(c *Config) { c.Slack.Mode = "websocket" },
			want:   []string{`slack.mode: must be one of http, socket, got "websocket"`},
		},
		{
			name:   "socket mode without app token",
			mutate: func(c *Config) { c.Slack.Mode = "socket" },
			want:   []string{`slack.app_token: required in socket mode (an app-level token, "xapp-…")`},
		},
		{
			name: "wrong kinds of tokens",
			mutate: func(c *Config) {
				c.Slack.Mode = "socket"
				c.Slack.AppToken = "xoxb-not-an-app-token"
				c.Slack.BotToken = "xoxp-a-user-token"
			},
			want: []string{
				`slack.app_token: must start with "xapp-" (an app-level token)`,
				`slack.bot_token: must start with "xoxb-" (a bot token)`,
			},
		},
		{
			name: "socket mode needs no signing secret",
			mutate: func(c *Config) {
				c.Slack.Mode = "socket"
				c.Slack.AppToken = testAppToken
				c.Slack.SigningSecret = ""
			},
		},
		{
			name:   "http mode bot token without signing secret",
			mutate: func(c *Config) { c.Slack.SigningSecret = "" },
			want:   []string{"slack.signing_secret: required in http mode when slack.bot_token is set (it verifies Slack's requests)"},
		},
		{
			name: "no slack at all",
			mutate: func(c *Config) {
				c.Slack.BotToken = ""
				c.Slack.SigningSecret = ""
			},
		},
		{
			name: "urls",
			mutate: func(c *Config) {
				c.Server.PublicURL = "ftp://approvalbot.example.com"
				c.Slack.APIURL = "/api/"
				c.FlexDeploy.BaseURL = "http://"
				c.FlexDeploy.Username = ""
			},
			want: []string{
				"server.public_url: must be an absolute http or https URL",
				"slack.api_url: must be an absolute http or https URL",
				"flexdeploy.base_url: must be an absolute http or https URL",
				"flexdeploy.username: required when flexdeploy.base_url is set",
			},
		},
		{
			name: "client durations",
			mutate: func(c *Config) {
				c.Slack.GroupCacheTTL = 0
				c.FlexDeploy.Timeout = 0
			},
			want: []string{
				"slack.group_cache_ttl: must be positive, got 0s",
				"flexdeploy.timeout: must be positive, got 0s",
			},
		},
		{
			name: "policy names",
			mutate: func(c *Config) {
				c.Policies[0].Name = ""
				c.Policies = append(c.Policies, c.Policies[1])
			},
			want: []string{
				"policies[0].name: must not be empty",
				`policies[2].name: "default" is also the name of policies[1]`,
			},
		},
		{
			name: "policy match",
			mutate: func(c *Config) {
				c.Policies[0].Match = map[string]string{"env": "PROD*", "release": "[v2", "project": "shop-*"}
			},
			want: []string{
				`policies[0].match: unknown key "env", must be one of environment, project, release, pipeline, stage, source or when`,
				`policies[0].match.release: invalid pattern "[v2": syntax error in pattern`,
			},
		},
		{
			name: "policy numbers",
			mutate: func(c *Config) {
				c.Policies[1].RequiredApprovals = 0
				c.Policies[1].OnExpiry = "later"
				c.Policies[1].TTL = -time.Hour
				c.Policies[1].RemindBefore = -time.Minute
			},
			want: []string{
				"policies[1].required_approvals: must be at least 1, got 0",
				`policies[1].on_expiry: must be one of ignore, reject, got "later"`,
				"policies[1].ttl: must not be negative, got -1h0m0s",
				"policies[1].remind_before: must not be negative, got -1m0s",
			},
		},
		{
			name:   "remind_before not before the policy's ttl",
			mutate: func(c *Config) { c.Policies[0].RemindBefore = 4 * time.Hour },
			want:   []string{"policies[0].remind_before: must be less than the policy's ttl (4h0m0s), got 4h0m0s"},
		},
		{
			name:   "remind_before not before tokens.ttl",
			mutate: func(c *Config) { c.Policies[1].RemindBefore = 25 * time.Hour },
			want:   []string{"policies[1].remind_before: must be less than the policy's ttl (24h0m0s), got 25h0m0s"},
		},
		{
			name:   "policy naming nobody",
			mutate: func(c *Config) { c.Policies[1].Approvers = ApproversConfig{Users: []string{}} },
			want:   []string{"policies[1].approvers: names nobody: give users, groups, emails or pagerduty.schedules (to let nobody decide tasks from Slack, leave them to no policy)"},
		},
		{
			name: "bad approver entries",
			mutate: func(c *Config) {
				c.Policies[1].Approvers = ApproversConfig{Users: []string{"U1", " "}, Emails: []string{"lead.example.com"}, Groups: []string{"S1"}}
			},
			want: []string{
				"policies[1].approvers.users[1]: must not be empty",
				`policies[1].approvers.emails[0]: "lead.example.com" is not an email address`,
			},
		},
		{
			name: "quorum larger than the people named",
			mutate: func(c *Config) {
				c.Policies[0].Approvers = ApproversConfig{Users: []string{"U1", "U1"}, Emails: []string{"a@example.com"}}
				c.Policies[0].RequiredApprovals = 3
			},
			want: []string{"policies[0].required_approvals: 3 approvals needed but at most 2 people are named in approvers"},
		},
		{
			name: "quorum with a group cannot be checked",
			mutate: func(c *Config) {
				c.Policies[0].Approvers = ApproversConfig{Users: []string{"U1"}, Groups: []string{"S1"}}
				c.Policies[0].RequiredApprovals = 5
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.mutate(c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want a *ValidationError", err)
			}
			if !reflect.DeepEqual(ve.Problems, tt.want) {
				t.Errorf("problems:\n got %q\nwant %q", ve.Problems, tt.want)
			}
			lines := strings.Split(ve.Error(), "\n")
			if len(lines) != len(tt.want)+1 {
				t.Errorf("Error() has %d lines, want a header and one per problem:\n%s", len(lines), ve.Error())
			}
			for _, w := range tt.want {
				if !strings.Contains(ve.Error(), "\n  "+w) {
					t.Errorf("Error() lacks the line %q:\n%s", w, ve.Error())
				}
			}
		})
	}
}

func TestValidateNeverQuotesSecrets(t *testing.T) {
	t.Parallel()
	c := validConfig()
	// Every secret wrong in a way that gets it a problem.
	c.Intake.APIKeys = []APIKey{{Name: "a", Key: "short-api-key"}, {Name: "b", Key: testAPIKey}, {Name: "c", Key: testAPIKey}}
	c.Tokens.SigningKeys = []SigningKey{{ID: "k1", Secret: "short-signing-secret"}}
	c.Slack.BotToken = "xoxp-user-token-secret"
	c.Slack.Mode = "socket"
	c.Slack.AppToken = "xoxb-app-token-secret"
	c.FlexDeploy.BaseURL = "ftp://user:" + testURLPasswd + "@fd"
	c.Slack.APIURL = "http://[::1" + testURLPasswd
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want problems")
	}
	for _, secret := range []string{"short-api-key", testAPIKey, "short-signing-secret", "xoxp-user-token-secret", "xoxb-app-token-secret", testURLPasswd, testFDPasswd} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("a problem reveals %q:\n%v", secret, err)
		}
	}
}

func TestWarnings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{name: "none", mutate: func(*Config) {}},
		{
			name:   "no api key",
			mutate: func(c *Config) { c.Intake.APIKeys = nil },
			want:   []string{"intake.api_keys: none configured: /v1 refuses every request"},
		},
		{
			name:   "no slack",
			mutate: func(c *Config) { c.Slack.BotToken, c.Slack.SigningSecret = "", "" },
			want:   []string{"slack.bot_token: not set: Slack messages wait in the outbox until it is configured"},
		},
		{
			name: "no channel anywhere",
			mutate: func(c *Config) {
				c.Slack.Channel = ""
				c.Policies[1].Channel = ""
			},
			want: []string{"policies[1].channel: not set and slack.channel is empty: its tasks cannot be posted"},
		},
		{
			name:   "app token in http mode",
			mutate: func(c *Config) { c.Slack.AppToken = testAppToken },
			want:   []string{"slack.app_token: ignored in http mode"},
		},
		{
			name:   "no flexdeploy",
			mutate: func(c *Config) { c.FlexDeploy.BaseURL = "" },
			want:   []string{"flexdeploy.base_url: not set: decisions cannot be handed to FlexDeploy until it is configured"},
		},
		{
			name:   "no catch-all",
			mutate: func(c *Config) { c.Policies = c.Policies[:1] },
			want:   []string{"policies: no policy without match: tasks no policy matches cannot be decided from Slack"},
		},
		{
			name:   "no policies and no channel",
			mutate: func(c *Config) { c.Policies, c.Slack.Channel = nil, "" },
			want:   []string{"policies: no policy without match: tasks no policy matches cannot be decided from Slack, and with slack.channel empty they are not posted either"},
		},
		{
			name: "unreachable after catch-all",
			mutate: func(c *Config) {
				c.Policies[0], c.Policies[1] = c.Policies[1], c.Policies[0]
			},
			want: []string{`policies[1]: unreachable: policies[0] ("default") has no match and takes every task first`},
		},
		{
			name: "shadowed by a broader policy",
			mutate: func(c *Config) {
				broad := c.Policies[0]
				broad.Name, broad.Match = "prod-any", map[string]string{"environment": c.Policies[0].Match["environment"], "project": "*"}
				narrow := c.Policies[0]
				narrow.Name, narrow.Match = "prod-api", map[string]string{"environment": strings.ToLower(c.Policies[0].Match["environment"]), "project": "api"}
				c.Policies = append([]PolicyConfig{broad, narrow}, c.Policies[1:]...)
			},
			want: []string{`policies[1]: unreachable: policies[0] ("prod-any") matches every task it matches, and comes first`},
		},
		{
			name: "narrower first is fine",
			mutate: func(c *Config) {
				narrow := c.Policies[0]
				narrow.Name, narrow.Match = "prod-api", map[string]string{"environment": c.Policies[0].Match["environment"], "project": "api"}
				c.Policies = append([]PolicyConfig{narrow}, c.Policies...)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.mutate(c)
			if got := c.Warnings(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Warnings():\n got %q\nwant %q", got, tt.want)
			}
			// Warnings never make a configuration invalid.
			if err := c.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestInvalidFileReportsEveryProblem(t *testing.T) {
	t.Parallel()
	c, err := Load("testdata/invalid.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := []string{
		"server.max_outstanding_requests: must be at least server.max_concurrent_requests (50), got 10",
		"tokens.signing_keys[0].secret: must be at least 32 bytes, got 9",
		`slack.app_token: required in socket mode (an app-level token, "xapp-…")`,
		`policies[0].match: unknown key "env", must be one of environment, project, release, pipeline, stage, source or when`,
		"policies[0].required_approvals: must be at least 1, got 0",
		`policies[1].name: "production" is also the name of policies[0]`,
		"policies[1].approvers: names nobody: give users, groups, emails or pagerduty.schedules (to let nobody decide tasks from Slack, leave them to no policy)",
	}
	var ve *ValidationError
	if err := c.Validate(); !errors.As(err, &ve) {
		t.Fatalf("Validate() = %v, want a *ValidationError", err)
	}
	if !reflect.DeepEqual(ve.Problems, want) {
		t.Errorf("problems:\n got %q\nwant %q", ve.Problems, want)
	}
}

func TestApprovalPolicies(t *testing.T) {
	t.Parallel()
	c := validConfig()
	c.Policies[1].OnExpiry = "" // as a hand-built Config might have it
	got := c.ApprovalPolicies()
	want := []approvals.Policy{
		{
			Name:              "production",
			Match:             map[string]string{"environment": "PROD*"},
			Channels:          map[string]string{"slack": "C0PROD"},
			Approvers:         approvals.Approvers{Users: []string{"U1", "U2"}},
			RequiredApprovals: 2,
			TTL:               4 * time.Hour,
			OnExpiry:          approvals.ExpiryReject,
			RemindBefore:      time.Hour,
		},
		{
			Name:              "default",
			Approvers:         approvals.Approvers{Groups: []string{"S1"}},
			RequiredApprovals: 1,
			TTL:               24 * time.Hour, // tokens.ttl
			OnExpiry:          approvals.ExpiryIgnore,
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ApprovalPolicies():\n got %+v\nwant %+v", got, want)
	}

	// The domain's policies share nothing with the config.
	got[0].Match["environment"] = "changed"
	got[0].Approvers.Users[0] = "changed"
	if c.Policies[0].Match["environment"] != "PROD*" || c.Policies[0].Approvers.Users[0] != "U1" {
		t.Error("changing the converted policies changed the config")
	}

	task := &approvals.Task{Context: approvals.Context{Environment: "prod-eu"}}
	if p := approvals.MatchPolicy(c.ApprovalPolicies(), task); p == nil || p.Name != "production" {
		t.Errorf("MatchPolicy(prod-eu) = %+v, want production", p)
	}
	task.Environment = "test"
	if p := approvals.MatchPolicy(c.ApprovalPolicies(), task); p == nil || p.Name != "default" {
		t.Errorf("MatchPolicy(test) = %+v, want default", p)
	}
}
