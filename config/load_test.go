package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load("")
	if err != nil {
		t.Fatalf("Load(\"\"): %v", err)
	}
	// Spelled out rather than taken from defaults(), so that a changed
	// default fails here and is noticed (docs/configuration.md lists them).
	want := &Config{
		Server: ServerConfig{
			Listen:                 ":8080",
			MaxBodyBytes:           65536,
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
		Tokens:      TokensConfig{TTL: 24 * time.Hour},
		Slack:       SlackConfig{Mode: "http", GroupCacheTTL: time.Minute},
		FlexDeploy:  FlexDeployConfig{Timeout: 10 * time.Second, Enrich: true},
		AzureDevOps: AzureDevOpsConfig{Timeout: 10 * time.Second},
		GitHub:      GitHubConfig{APIURL: "https://api.github.com", Timeout: 10 * time.Second},
		Webhook:     WebhookConfig{Timeout: 10 * time.Second},
		GitLab:      GitLabConfig{APIURL: "https://gitlab.com/api/v4", PollInterval: 30 * time.Second, Timeout: 10 * time.Second},
		Teams:       TeamsConfig{ServiceURL: "https://smba.trafficmanager.net/teams/", Timeout: 10 * time.Second},
		ServiceNow:  ServiceNowConfig{Timeout: 10 * time.Second},
		Jira:        JiraConfig{Timeout: 10 * time.Second},
		PagerDuty:   PagerDutyConfig{APIURL: "https://api.pagerduty.com"},
		Outbox:      OutboxConfig{Lease: 15 * time.Second},
		Sweeper:     IntervalConfig{Interval: 15 * time.Second},
		Reconcile:   IntervalConfig{Interval: time.Minute},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
}

func TestLoadFile(t *testing.T) {
	t.Parallel()
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"server.listen", c.Server.Listen, "127.0.0.1:9090"},
		{"server.max_body_bytes", c.Server.MaxBodyBytes, int64(1 << 20)},
		{"server.shutdown_timeout", c.Server.ShutdownTimeout, 6 * time.Second},
		{"log.level", c.Log.Level, "debug"},
		{"intake.api_keys", c.Intake.APIKeys, []APIKey{
			{Name: "flexdeploy", Key: "file-api-key-0123456789abcdef"},
			{Name: "scripts", Key: "file-api-key-second-0123456789"},
		}},
		{"store.driver", c.Store.Driver, "dynamodb"},
		{"store.dynamodb", c.Store.DynamoDB, DynamoDBConfig{Table: "approvals-test", Region: "eu-west-1", Endpoint: "http://localhost:4567"}},
		{"tokens.ttl", c.Tokens.TTL, 12 * time.Hour},
		{"tokens.signing_keys[0].id", c.Tokens.SigningKeys[0].ID, "k2"},
		{"slack.bot_token", c.Slack.BotToken, "xoxb-file-bot-token"},
		{"slack.group_cache_ttl", c.Slack.GroupCacheTTL, 30 * time.Second},
		{"flexdeploy.enrich", c.FlexDeploy.Enrich, false},
		{"flexdeploy.timeout", c.FlexDeploy.Timeout, 7 * time.Second},
		{"reconcile.interval", c.Reconcile.Interval, 2 * time.Minute},
		{"policies[0]", c.Policies[0], PolicyConfig{
			Name:                "production",
			Match:               map[string]string{"environment": "PROD*", "project": "shop-*"},
			Channel:             "C0PROD",
			Approvers:           ApproversConfig{Users: []string{"U1", "U2"}, Groups: []string{"S1"}, Emails: []string{"lead@example.com"}},
			RequiredApprovals:   2,
			AllowSelfApproval:   true,
			RequireRejectReason: true,
			TTL:                 4 * time.Hour,
			OnExpiry:            "reject",
			Notify:              NotifyConfig{Requester: true},
			RemindBefore:        time.Hour,
		}},
		// Keys the file leaves out get their defaults.
		{"policies[1]", c.Policies[1], PolicyConfig{
			Name:              "default",
			Approvers:         ApproversConfig{Users: []string{"U3", "U4"}},
			RequiredApprovals: 1,
			OnExpiry:          "ignore",
			Notify:            NotifyConfig{Requester: true},
		}},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("testdata/full.yaml should be valid: %v", err)
	}
}

func TestLoadKeepsExplicitZeroRequiredApprovals(t *testing.T) {
	t.Parallel()
	path := writeTemp(t, "policies:\n  - name: p\n    approvers: {users: [U1]}\n    required_approvals: 0\n")
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := c.Policies[0].RequiredApprovals; got != 0 {
		t.Errorf("required_approvals = %d, want the 0 the file says (for Validate to refuse)", got)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		path     string // a testdata file, or "" to write content
		content  string
		want     []string // substrings of the error
		mustNot  []string
		notFound bool
	}{
		{
			name: "missing file",
			path: "testdata/does-not-exist.yaml",
			want: []string{"testdata/does-not-exist.yaml", "no such file"},
		},
		{
			name: "unparsable",
			path: "testdata/broken.yaml",
			want: []string{"testdata/broken.yaml", "parse"},
		},
		{
			name: "unknown keys",
			path: "testdata/unknown_keys.yaml",
			want: []string{
				"testdata/unknown_keys.yaml",
				"server.max_body_byte: unknown key",
				"slack.bot_tokn: unknown key",
				"polices: unknown key",
				"policies[0].aprovers: unknown key",
				"policies[1].approvers.user: unknown key",
			},
			mustNot: []string{"xoxb-secret-value"},
		},
		{
			name:    "not a mapping",
			content: "- a\n- b\n",
			want:    []string{"parse"},
		},
		{
			name:    "duration without unit",
			content: "flexdeploy:\n  timeout: 10\n",
			want:    []string{"flexdeploy.timeout", "unit"},
		},
		{
			name:    "bad duration",
			content: "tokens:\n  ttl: soon\n",
			want:    []string{"tokens.ttl"},
		},
		{
			name:    "section of the wrong shape",
			content: "server: 5\n",
			want:    []string{"server"},
		},
		{
			name:    "secret of the wrong shape",
			content: "slack:\n  bot_token: [xoxb-secret-one, xoxb-secret-two]\n",
			want:    []string{"slack.bot_token"},
			mustNot: []string{"xoxb-secret"},
		},
		{
			name:    "key given twice in different case",
			content: "server:\n  listen: ':1'\n  Listen: ':2'\n",
			want:    []string{"server.listen: given twice"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := tt.path
			if path == "" {
				path = writeTemp(t, tt.content)
			}
			c, err := Load(path)
			if err == nil {
				t.Fatalf("Load(%s) = %+v, want an error", path, c)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			for _, w := range tt.mustNot {
				if strings.Contains(msg, w) {
					t.Errorf("error %q reveals %q", msg, w)
				}
			}
		})
	}
}

// TestLoadEnvEveryScalarKey sets every scalar key from the environment, once
// with no file and once over a file that sets them: the environment must win
// both times. t.Setenv rules out t.Parallel here.
func TestLoadEnvEveryScalarKey(t *testing.T) {
	def := reflect.ValueOf(defaults())
	type setting struct {
		path []int
		want any
	}
	var settings []setting
	var walk func(t reflect.Type, index []int, prefix string)
	walk = func(typ reflect.Type, index []int, prefix string) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			key := prefix + f.Tag.Get("mapstructure")
			idx := append(append([]int{}, index...), i)
			env := "APPROVALBOT_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
			var value string
			var want any
			switch {
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, idx, key+".")
				continue
			case f.Type.Kind() == reflect.Slice, f.Type.Kind() == reflect.Map:
				continue
			case f.Type == reflect.TypeOf(time.Duration(0)):
				value, want = "42s", 42*time.Second
			case f.Type.Kind() == reflect.String:
				value, want = "env-"+key, "env-"+key
			case f.Type.Kind() == reflect.Int:
				value, want = "4242", 4242
			case f.Type.Kind() == reflect.Int64:
				value, want = "4242", int64(4242)
			case f.Type.Kind() == reflect.Bool:
				b := !def.FieldByIndex(idx).Bool()
				value, want = strconv.FormatBool(b), b
			default:
				t.Fatalf("%s: no test value for %s", key, f.Type)
			}
			t.Setenv(env, value)
			settings = append(settings, setting{path: idx, want: want})
		}
	}
	walk(reflect.TypeOf(Config{}), nil, "")
	if len(settings) < 30 {
		t.Fatalf("found only %d scalar keys; the walk is broken", len(settings))
	}

	for _, path := range []string{"", "testdata/full.yaml"} {
		c, err := Load(path)
		if err != nil {
			t.Fatalf("Load(%q): %v", path, err)
		}
		got := reflect.ValueOf(*c)
		for _, s := range settings {
			f := got.FieldByIndex(s.path)
			if !reflect.DeepEqual(f.Interface(), s.want) {
				t.Errorf("Load(%q): %s = %v, want %v from the environment", path, fieldName(s.path), f.Interface(), s.want)
			}
		}
	}
}

func fieldName(index []int) string {
	typ := reflect.TypeOf(Config{})
	var parts []string
	for _, i := range index {
		f := typ.Field(i)
		parts = append(parts, f.Tag.Get("mapstructure"))
		typ = f.Type
	}
	return strings.Join(parts, ".")
}

func TestLoadEnvOverridesFile(t *testing.T) {
	t.Setenv("APPROVALBOT_SLACK_BOT_TOKEN", "xoxb-from-env")
	t.Setenv("APPROVALBOT_SERVER_MAX_BODY_BYTES", "2048")
	t.Setenv("APPROVALBOT_FLEXDEPLOY_ENRICH", "true")
	t.Setenv("APPROVALBOT_TOKENS_TTL", "90m")
	t.Setenv("APPROVALBOT_SLACK_CHANNEL", "") // empty counts as unset
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"slack.bot_token", c.Slack.BotToken, "xoxb-from-env"},
		{"server.max_body_bytes", c.Server.MaxBodyBytes, int64(2048)},
		{"flexdeploy.enrich", c.FlexDeploy.Enrich, true},
		{"tokens.ttl", c.Tokens.TTL, 90 * time.Minute},
		{"slack.channel (empty env)", c.Slack.Channel, "C0GENERAL"},
		{"slack.signing_secret (file)", c.Slack.SigningSecret, "file-signing-secret"},
		{"server.listen (file)", c.Server.Listen, "127.0.0.1:9090"},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
}

func TestLoadEnvLists(t *testing.T) {
	t.Setenv("APPROVALBOT_INTAKE_API_KEYS", "ci:ci-key-0123456789abcdef, ops:ops:key:with:colons ,")
	t.Setenv("APPROVALBOT_TOKENS_SIGNING_KEYS", "k9:env-secret-0123456789abcdef0123456789")
	for _, path := range []string{"", "testdata/full.yaml"} {
		c, err := Load(path)
		if err != nil {
			t.Fatalf("Load(%q): %v", path, err)
		}
		wantKeys := []APIKey{{Name: "ci", Key: "ci-key-0123456789abcdef"}, {Name: "ops", Key: "ops:key:with:colons"}}
		if !reflect.DeepEqual(c.Intake.APIKeys, wantKeys) {
			t.Errorf("Load(%q): api keys = %+v, want %+v (replacing the file's)", path, c.Intake.APIKeys, wantKeys)
		}
		wantSigning := []SigningKey{{ID: "k9", Secret: "env-secret-0123456789abcdef0123456789"}}
		if !reflect.DeepEqual(c.Tokens.SigningKeys, wantSigning) {
			t.Errorf("Load(%q): signing keys = %+v, want %+v", path, c.Tokens.SigningKeys, wantSigning)
		}
	}
}

func TestLoadEnvListMalformed(t *testing.T) {
	t.Setenv("APPROVALBOT_TOKENS_SIGNING_KEYS", "k1:fine-secret-0123456789abcdef0123456789,secret-without-id")
	_, err := Load("")
	if err == nil {
		t.Fatal("Load accepted a signing key entry without a colon")
	}
	if !strings.Contains(err.Error(), "APPROVALBOT_TOKENS_SIGNING_KEYS: entry 2") {
		t.Errorf("error %q does not name the variable and entry", err)
	}
	if strings.Contains(err.Error(), "secret-without-id") || strings.Contains(err.Error(), "fine-secret") {
		t.Errorf("error %q reveals a secret", err)
	}
}

func TestResolvePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("APPROVALBOT_CONFIG", "")

	if got := ResolvePath(""); got != "" {
		t.Errorf("nothing set, no file: ResolvePath = %q, want \"\"", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "approvalbot.yaml"), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := ResolvePath(""); got != "./approvalbot.yaml" {
		t.Errorf("file present: ResolvePath = %q, want ./approvalbot.yaml", got)
	}
	t.Setenv("APPROVALBOT_CONFIG", "/etc/approvalbot/env.yaml")
	if got := ResolvePath(""); got != "/etc/approvalbot/env.yaml" {
		t.Errorf("env set: ResolvePath = %q, want the env's", got)
	}
	if got := ResolvePath("flag.yaml"); got != "flag.yaml" {
		t.Errorf("flag set: ResolvePath = %q, want the flag's", got)
	}
}

// writeTemp writes content to a fresh file and returns its path.
func writeTemp(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "approvalbot.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
