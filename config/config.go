// Package config loads approvalbot's configuration from a YAML file and the
// environment, fills in defaults, validates it (reporting every problem at
// once) and watches the file for changes. viper stays inside this package:
// the rest of the program sees only the typed Config.
package config

import "time"

// Config is the whole configuration. Every scalar key can also be set from the
// environment: APPROVALBOT_ + the upper-cased key path with "_" for ".", e.g.
// APPROVALBOT_SLACK_BOT_TOKEN for slack.bot_token.
type Config struct {
	Server     ServerConfig     `mapstructure:"server"`
	Log        LogConfig        `mapstructure:"log"`
	Intake     IntakeConfig     `mapstructure:"intake"`
	Store      StoreConfig      `mapstructure:"store"`
	Tokens     TokensConfig     `mapstructure:"tokens"`
	Slack      SlackConfig      `mapstructure:"slack"`
	FlexDeploy FlexDeployConfig `mapstructure:"flexdeploy"`
	// AzureDevOps enables approvals of Azure Pipelines checks.
	AzureDevOps AzureDevOpsConfig `mapstructure:"azure_devops"`
	Outbox      OutboxConfig      `mapstructure:"outbox"`
	Sweeper     IntervalConfig    `mapstructure:"sweeper"`
	Reconcile   IntervalConfig    `mapstructure:"reconcile"`
	// Policies are tried in order; the first whose match fits a task wins.
	Policies []PolicyConfig `mapstructure:"policies"`
	// Web is the sign-in approval page; Receipts signs every final decision.
	Web      WebConfig      `mapstructure:"web"`
	Receipts ReceiptsConfig `mapstructure:"receipts"`
	// PagerDuty says who is on call (pagerduty.go).
	PagerDuty PagerDutyConfig `mapstructure:"pagerduty"`

	// GitHub enables GitHub Actions deployments (a custom deployment
	// protection rule); Webhook any tool by signed callback.
	GitHub  GitHubConfig  `mapstructure:"github"`
	Webhook WebhookConfig `mapstructure:"webhook"`
	// GitLab enables GitLab deployment approvals (gitlab.go).
	GitLab GitLabConfig `mapstructure:"gitlab"`
	// Teams is the Microsoft Teams chat.
	Teams TeamsConfig `mapstructure:"teams"`

	// The change systems a policy's require_change checks (changes.go).
	ServiceNow ServiceNowConfig `mapstructure:"servicenow"`
	Jira       JiraConfig       `mapstructure:"jira"`
}

// ServerConfig is the HTTP server.
type ServerConfig struct {
	Listen string `mapstructure:"listen"`
	// PublicURL is where Slack and people reach the bot, used in links.
	PublicURL              string        `mapstructure:"public_url"`
	MaxBodyBytes           int64         `mapstructure:"max_body_bytes"`
	MaxConcurrentRequests  int           `mapstructure:"max_concurrent_requests"`
	MaxOutstandingRequests int           `mapstructure:"max_outstanding_requests"`
	ReadHeaderTimeout      time.Duration `mapstructure:"read_header_timeout"`
	ReadTimeout            time.Duration `mapstructure:"read_timeout"`
	WriteTimeout           time.Duration `mapstructure:"write_timeout"`
	IdleTimeout            time.Duration `mapstructure:"idle_timeout"`
	ShutdownTimeout        time.Duration `mapstructure:"shutdown_timeout"`
}

// LogConfig is the logger.
type LogConfig struct {
	// Level is one of debug, info, warn, error.
	Level string `mapstructure:"level"`
}

// IntakeConfig guards /v1.
type IntakeConfig struct {
	// APIKeys are all accepted; several allow rotation without downtime.
	APIKeys []APIKey `mapstructure:"api_keys"`
}

// APIKey is one accepted intake key. Name appears in logs, Key never does.
type APIKey struct {
	Name string `mapstructure:"name"`
	Key  string `mapstructure:"key"`
}

// StoreConfig chooses and configures the task store.
type StoreConfig struct {
	// Driver is bolt (embedded, one process) or dynamodb (shared).
	Driver   string         `mapstructure:"driver"`
	Bolt     BoltConfig     `mapstructure:"bolt"`
	DynamoDB DynamoDBConfig `mapstructure:"dynamodb"`
}

// BoltConfig is the embedded store.
type BoltConfig struct {
	Path string `mapstructure:"path"`
	// Retention is how long a decided or expired task stays in the file
	// once it needs nothing more; 0 keeps tasks forever.
	Retention time.Duration `mapstructure:"retention"`
}

// DynamoDBConfig is the shared store.
type DynamoDBConfig struct {
	Table  string `mapstructure:"table"`
	Region string `mapstructure:"region"`
	// Endpoint overrides the AWS endpoint (dynalite, DynamoDB Local).
	Endpoint string `mapstructure:"endpoint"`
}

// TokensConfig configures the one-time tokens on the buttons.
type TokensConfig struct {
	TTL time.Duration `mapstructure:"ttl"`
	// SigningKeys: the first signs new tokens, all verify (rotation).
	SigningKeys []SigningKey `mapstructure:"signing_keys"`
}

// SigningKey is one HMAC key for tokens.
type SigningKey struct {
	ID     string `mapstructure:"id"`
	Secret string `mapstructure:"secret"`
}

// SlackConfig is the Slack app.
type SlackConfig struct {
	BotToken      string `mapstructure:"bot_token"`
	SigningSecret string `mapstructure:"signing_secret"`
	AppToken      string `mapstructure:"app_token"`
	// Mode is http (Slack calls /slack/interactions) or socket (Socket Mode).
	Mode string `mapstructure:"mode"`
	// APIURL overrides Slack's Web API root, for tests.
	APIURL string `mapstructure:"api_url"`
	// Channel receives tasks whose policy names no channel, and tasks no
	// policy matches.
	Channel       string        `mapstructure:"channel"`
	GroupCacheTTL time.Duration `mapstructure:"group_cache_ttl"`
}

// FlexDeployConfig is FlexDeploy's REST API.
type FlexDeployConfig struct {
	BaseURL  string        `mapstructure:"base_url"`
	Username string        `mapstructure:"username"`
	Password string        `mapstructure:"password"`
	Timeout  time.Duration `mapstructure:"timeout"`
	// Enrich fills missing task fields from FlexDeploy's task details.
	Enrich bool `mapstructure:"enrich"`
}

// AzureDevOpsConfig is the Azure DevOps "Invoke REST API" check endpoint.
type AzureDevOpsConfig struct {
	// EncryptionKey seals each check's job token at rest (AES-256-GCM): 32
	// bytes, base64 or hex. Without it the endpoint is off.
	EncryptionKey string `mapstructure:"encryption_key"`
	// AllowedHosts are the hosts (globs) a check's PlanUrl may name: the
	// job token is sent there, so nowhere else. Empty means Azure DevOps'
	// own: dev.azure.com and *.visualstudio.com.
	AllowedHosts []string      `mapstructure:"allowed_hosts"`
	Timeout      time.Duration `mapstructure:"timeout"`
}

// OutboxConfig is the durable side-effect queue.
type OutboxConfig struct {
	// Lease is how long one process owns a task's outbox work.
	Lease time.Duration `mapstructure:"lease"`
}

// IntervalConfig is a periodic loop.
type IntervalConfig struct {
	Interval time.Duration `mapstructure:"interval"`
}

// PolicyTeamsConfig is a policy's target in Microsoft Teams.
type PolicyTeamsConfig struct {
	// Channel is a channel conversation id ("19:…@thread.tacv2"); empty:
	// teams.channel.
	Channel string `mapstructure:"channel"`
}

// PolicyConfig is one approval policy as written in the file. See
// approvals.Policy for its meaning; ApprovalPolicies converts.
type PolicyConfig struct {
	Name    string            `mapstructure:"name"`
	Match   map[string]string `mapstructure:"match"`
	Channel string            `mapstructure:"channel"`
	// Teams names the policy's channel in Microsoft Teams.
	Teams               PolicyTeamsConfig `mapstructure:"teams"`
	Approvers           ApproversConfig   `mapstructure:"approvers"`
	RequiredApprovals   int               `mapstructure:"required_approvals"`
	AllowSelfApproval   bool              `mapstructure:"allow_self_approval"`
	RequireRejectReason bool              `mapstructure:"require_reject_reason"`
	// TTL 0 means tokens.ttl.
	TTL      time.Duration `mapstructure:"ttl"`
	OnExpiry string        `mapstructure:"on_expiry"`
	// RemindBefore posts a reminder this long before expiry; 0 posts none.
	RemindBefore time.Duration `mapstructure:"remind_before"`

	// The rules of rules.go: approvals from each entry, change windows and
	// freezes, break-glass, type-to-confirm, single sign-on.
	RequireFrom []RequirementConfig `mapstructure:"require_from"`
	Overlap     bool                `mapstructure:"overlap"`
	Windows     []WindowConfig      `mapstructure:"windows"`
	Freezes     []FreezeConfig      `mapstructure:"freezes"`
	BreakGlass  BreakGlassConfig    `mapstructure:"break_glass"`
	Confirm     string              `mapstructure:"confirm"`
	RequireSSO  bool                `mapstructure:"require_sso"`

	// Where approvers already are (surfaces.go): direct messages, and
	// escalation to more approvers.
	Notify   NotifyConfig   `mapstructure:"notify"`
	Escalate EscalateConfig `mapstructure:"escalate"`

	// RequireChange gates approving on the task's change record (changes.go).
	RequireChange RequireChangeConfig `mapstructure:"require_change"`
}

// ApproversConfig names who may decide.
type ApproversConfig struct {
	Users  []string `mapstructure:"users"`
	Groups []string `mapstructure:"groups"`
	Emails []string `mapstructure:"emails"`
	// PagerDuty names whoever is on call on its schedules.
	PagerDuty PagerDutyApproversConfig `mapstructure:"pagerduty"`
}

// Defaults for keys a file may leave out.
const (
	defaultRequiredApprovals = 1
	defaultOnExpiry          = "ignore"
)

// defaults returns the configuration used for every key neither the file nor
// the environment sets. It is the single source of default values: Load
// registers each of its scalar fields with viper.
func defaults() Config {
	return Config{
		Server: ServerConfig{
			Listen:                 ":8080",
			MaxBodyBytes:           64 << 10,
			MaxConcurrentRequests:  100,
			MaxOutstandingRequests: 200,
			ReadHeaderTimeout:      5 * time.Second,
			ReadTimeout:            10 * time.Second,
			WriteTimeout:           15 * time.Second,
			IdleTimeout:            60 * time.Second,
			ShutdownTimeout:        20 * time.Second,
		},
		Log: LogConfig{Level: "info"},
		Store: StoreConfig{
			Driver:   "bolt",
			Bolt:     BoltConfig{Path: "approvalbot.db", Retention: 30 * 24 * time.Hour},
			DynamoDB: DynamoDBConfig{Table: "approvalbot", Region: "us-east-1"},
		},
		Tokens: TokensConfig{TTL: 24 * time.Hour},
		Slack: SlackConfig{
			Mode:          "http",
			GroupCacheTTL: time.Minute,
		},
		FlexDeploy:  FlexDeployConfig{Timeout: 10 * time.Second, Enrich: true},
		AzureDevOps: AzureDevOpsConfig{Timeout: 10 * time.Second},
		GitHub:      defaultGitHub(),
		Webhook:     defaultWebhook(),
		GitLab:      defaultGitLab(),
		Teams:       defaultTeams(),
		ServiceNow:  ServiceNowConfig{Timeout: 10 * time.Second},
		Jira:        JiraConfig{Timeout: 10 * time.Second},
		PagerDuty:   defaultPagerDuty(),
		Outbox:      OutboxConfig{Lease: 15 * time.Second},
		Sweeper:     IntervalConfig{Interval: 15 * time.Second},
		Reconcile:   IntervalConfig{Interval: time.Minute},
	}
}
