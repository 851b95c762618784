package bot

import (
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/approvalbot/approvalbot/config"
)

// botScopes are the bot token scopes the bot's Web API calls need:
// chat.postMessage, chat.update, chat.postEphemeral (chat:write);
// usergroups.users.list (usergroups:read); users.lookupByEmail
// (users:read.email, which requires users:read); the /approvals slash
// command (commands); direct messages to approvers (im:write). views.open,
// views.publish and auth.test need none.
var botScopes = []string{"chat:write", "usergroups:read", "users:read", "users:read.email", "commands", "im:write"}

// botEvents are the events the bot subscribes to: the App Home is
// published when someone opens it.
var botEvents = []string{"app_home_opened"}

// slashCommand is a slash command of the manifest.
type slashCommand struct {
	Command      string `yaml:"command"`
	URL          string `yaml:"url"`
	Description  string `yaml:"description"`
	UsageHint    string `yaml:"usage_hint"`
	ShouldEscape *bool  `yaml:"should_escape"`
}

// slackManifest is the part of a Slack app manifest the bot depends on.
type slackManifest struct {
	Metadata struct {
		MajorVersion int `yaml:"major_version"`
		MinorVersion int `yaml:"minor_version"`
	} `yaml:"_metadata"`
	DisplayInformation struct {
		Name            string `yaml:"name"`
		Description     string `yaml:"description"`
		LongDescription string `yaml:"long_description"`
		BackgroundColor string `yaml:"background_color"`
	} `yaml:"display_information"`
	Features struct {
		AppHome struct {
			HomeTabEnabled             *bool `yaml:"home_tab_enabled"`
			MessagesTabEnabled         *bool `yaml:"messages_tab_enabled"`
			MessagesTabReadOnlyEnabled *bool `yaml:"messages_tab_read_only_enabled"`
		} `yaml:"app_home"`
		BotUser struct {
			DisplayName  string `yaml:"display_name"`
			AlwaysOnline bool   `yaml:"always_online"`
		} `yaml:"bot_user"`
		SlashCommands []slashCommand `yaml:"slash_commands"`
	} `yaml:"features"`
	OAuthConfig struct {
		Scopes struct {
			Bot  []string `yaml:"bot"`
			User []string `yaml:"user"`
		} `yaml:"scopes"`
	} `yaml:"oauth_config"`
	Settings struct {
		EventSubscriptions *struct {
			RequestURL string   `yaml:"request_url"`
			BotEvents  []string `yaml:"bot_events"`
			UserEvents []string `yaml:"user_events"`
		} `yaml:"event_subscriptions"`
		Interactivity struct {
			IsEnabled  bool   `yaml:"is_enabled"`
			RequestURL string `yaml:"request_url"`
		} `yaml:"interactivity"`
		OrgDeployEnabled     *bool `yaml:"org_deploy_enabled"`
		SocketModeEnabled    *bool `yaml:"socket_mode_enabled"`
		TokenRotationEnabled *bool `yaml:"token_rotation_enabled"`
	} `yaml:"settings"`
}

func TestSlackAppManifests(t *testing.T) {
	t.Parallel()
	const host = "https://approvalbot.example.com"
	cases := []struct {
		file       string
		socketMode bool
		// The request URLs: none in Socket Mode, where everything comes
		// over the socket.
		requestURL, eventsURL, commandURL string
	}{
		{"slack-app-manifest.yaml", false, host + "/slack/interactions", host + "/slack/events", host + "/slack/commands"},
		{"slack-app-manifest.socket.yaml", true, "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(filepath.Join("..", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var m slackManifest
			dec := yaml.NewDecoder(strings.NewReader(string(raw)))
			dec.KnownFields(true) // a misspelt key would be silently dropped by Slack's importer too
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("%s: %v", tc.file, err)
			}
			if m.Metadata.MajorVersion != 1 {
				t.Errorf("_metadata.major_version %d, want 1", m.Metadata.MajorVersion)
			}
			if m.DisplayInformation.Name != "approvalbot" || m.Features.BotUser.DisplayName != "approvalbot" {
				t.Errorf("names %q / %q, want approvalbot", m.DisplayInformation.Name, m.Features.BotUser.DisplayName)
			}
			// Slack's manifest limits: an import fails beyond them.
			di := m.DisplayInformation
			if n := len([]rune(di.Description)); n > 140 {
				t.Errorf("description has %d characters, Slack allows 140", n)
			}
			if n := len([]rune(di.LongDescription)); di.LongDescription != "" && (n < 174 || n > 4000) {
				t.Errorf("long_description has %d characters, Slack wants 174 to 4000", n)
			}
			if !regexp.MustCompile(`^#[0-9a-fA-F]{6}$`).MatchString(di.BackgroundColor) {
				t.Errorf("background_color %q is not #rrggbb", di.BackgroundColor)
			}
			got := slices.Sorted(slices.Values(m.OAuthConfig.Scopes.Bot))
			if want := slices.Sorted(slices.Values(botScopes)); !slices.Equal(got, want) {
				t.Errorf("bot scopes %q, want exactly %q", got, want)
			}
			if len(m.OAuthConfig.Scopes.User) != 0 {
				t.Errorf("user scopes %q: the bot acts as itself only", m.OAuthConfig.Scopes.User)
			}
			// Exactly the surfaces of "Slack surfaces": /approvals, the
			// App Home with its event, the Messages tab for the DMs.
			if cmds := m.Features.SlashCommands; len(cmds) != 1 {
				t.Errorf("slash commands %+v, want exactly /approvals", cmds)
			} else {
				c := cmds[0]
				if c.Command != "/approvals" || c.URL != tc.commandURL || c.Description == "" || len([]rune(c.Description)) > 100 {
					t.Errorf("slash command %+v, want /approvals at %q with a short description", c, tc.commandURL)
				}
				if c.ShouldEscape == nil || !*c.ShouldEscape {
					t.Error("/approvals should_escape must be true: /approvals delegate @bob needs the mention as a user id (the task id is unescaped)")
				}
			}
			ah := m.Features.AppHome
			checkFeature(t, "app_home.home_tab_enabled", ah.HomeTabEnabled, true)
			checkFeature(t, "app_home.messages_tab_enabled", ah.MessagesTabEnabled, true)
			checkFeature(t, "app_home.messages_tab_read_only_enabled", ah.MessagesTabReadOnlyEnabled, true)
			if es := m.Settings.EventSubscriptions; es == nil {
				t.Error("settings.event_subscriptions is missing: the App Home would never be published")
			} else {
				if got := slices.Sorted(slices.Values(es.BotEvents)); !slices.Equal(got, botEvents) {
					t.Errorf("bot events %q, want exactly %q", got, botEvents)
				}
				if len(es.UserEvents) != 0 {
					t.Errorf("user events %q: the bot subscribes to none", es.UserEvents)
				}
				if es.RequestURL != tc.eventsURL {
					t.Errorf("event_subscriptions.request_url %q, want %q", es.RequestURL, tc.eventsURL)
				}
			}
			s := m.Settings
			if !s.Interactivity.IsEnabled {
				t.Error("interactivity is off: the buttons would do nothing")
			}
			if s.Interactivity.RequestURL != tc.requestURL {
				t.Errorf("request_url %q, want %q", s.Interactivity.RequestURL, tc.requestURL)
			}
			checkFlag(t, "socket_mode_enabled", s.SocketModeEnabled, tc.socketMode)
			checkFlag(t, "org_deploy_enabled", s.OrgDeployEnabled, false)
			checkFlag(t, "token_rotation_enabled", s.TokenRotationEnabled, false)
		})
	}
}

func checkFeature(t *testing.T, name string, got *bool, want bool) {
	t.Helper()
	if got == nil {
		t.Errorf("features.%s is missing", name)
	} else if *got != want {
		t.Errorf("features.%s is %t, want %t", name, *got, want)
	}
}

func checkFlag(t *testing.T, name string, got *bool, want bool) {
	t.Helper()
	if got == nil {
		t.Errorf("settings.%s is missing", name)
	} else if *got != want {
		t.Errorf("settings.%s is %t, want %t", name, *got, want)
	}
}

// k8sObject is what the tests read of a Kubernetes manifest.
type k8sObject struct {
	file       string
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	StringData map[string]string `yaml:"stringData"`
	Data       map[string]string `yaml:"data"`
	Spec       struct {
		Replicas *int `yaml:"replicas"`
		Strategy struct {
			Type string `yaml:"type"`
		} `yaml:"strategy"`
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	SecurityContext struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    *int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []struct {
		Name    string   `yaml:"name"`
		Image   string   `yaml:"image"`
		Args    []string `yaml:"args"`
		EnvFrom []struct {
			SecretRef *struct {
				Name string `yaml:"name"`
			} `yaml:"secretRef"`
		} `yaml:"envFrom"`
		Ports          []containerPort `yaml:"ports"`
		LivenessProbe  *probe          `yaml:"livenessProbe"`
		ReadinessProbe *probe          `yaml:"readinessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
	} `yaml:"containers"`
	Volumes []volume `yaml:"volumes"`
}

type containerPort struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
}

type volume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name string `yaml:"name"`
	} `yaml:"configMap"`
	PersistentVolumeClaim *struct {
		ClaimName string `yaml:"claimName"`
	} `yaml:"persistentVolumeClaim"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// readDeployManifests decodes every document of every deploy/**/*.yaml,
// keyed by the file's directory under deploy/ ("." or "bolt").
func readDeployManifests(t *testing.T) map[string][]k8sObject {
	t.Helper()
	root := filepath.Join("..", "deploy")
	byDir := map[string][]k8sObject{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		// The chart's templates and the alert rules are not manifests to
		// apply (deploy/helm_test.go renders the chart).
		if err == nil && d.IsDir() && path != root && (d.Name() == "helm" || d.Name() == "prometheus" || d.Name() == "grafana") {
			return filepath.SkipDir
		}
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		rel, _ := filepath.Rel(root, path)
		dec := yaml.NewDecoder(f)
		for n := 1; ; n++ {
			var obj k8sObject
			err := dec.Decode(&obj)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Errorf("%s: document %d: %v", rel, n, err)
				break
			}
			if obj.Kind == "" && obj.APIVersion == "" {
				continue // an empty document between two "---"
			}
			if obj.APIVersion == "" || obj.Kind == "" || obj.Metadata.Name == "" {
				t.Errorf("%s: document %d lacks apiVersion, kind or metadata.name", rel, n)
			}
			obj.file = rel
			byDir[filepath.Dir(rel)] = append(byDir[filepath.Dir(rel)], obj)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(byDir["."]) == 0 || len(byDir["bolt"]) == 0 {
		t.Fatalf("no manifests in deploy/ and deploy/bolt/: %v", byDir)
	}
	return byDir
}

func findObject(objs []k8sObject, kind, name string) *k8sObject {
	for i := range objs {
		if objs[i].Kind == kind && objs[i].Metadata.Name == name {
			return &objs[i]
		}
	}
	return nil
}

func TestDeployManifestsParse(t *testing.T) {
	t.Parallel()
	byDir := readDeployManifests(t)
	top := byDir["."]
	secret := findObject(top, "Secret", "approvalbot")
	if secret == nil {
		t.Fatal("deploy/ has no Secret approvalbot")
	}
	deployments := 0
	for dir, objs := range byDir {
		for _, obj := range objs {
			if obj.Kind != "Deployment" {
				continue
			}
			deployments++
			pod := obj.Spec.Template.Spec
			if len(pod.Containers) != 1 {
				t.Fatalf("%s: %d containers, want 1", obj.file, len(pod.Containers))
			}
			c := pod.Containers[0]
			if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
				t.Errorf("%s: livenessProbe must GET /healthz", obj.file)
			}
			if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("%s: readinessProbe must GET /readyz", obj.file)
			}
			for _, p := range []*probe{c.LivenessProbe, c.ReadinessProbe} {
				if p == nil || p.HTTPGet == nil {
					continue
				}
				if !slices.ContainsFunc(c.Ports, func(port containerPort) bool {
					return port.Name == p.HTTPGet.Port || port.ContainerPort == p.HTTPGet.Port
				}) {
					t.Errorf("%s: probe port %v is not a container port", obj.file, p.HTTPGet.Port)
				}
			}
			if want := []string{"serve", "--config", "/etc/approvalbot/approvalbot.yaml"}; !slices.Equal(c.Args, want) {
				t.Errorf("%s: args %q, want %q", obj.file, c.Args, want)
			}
			if c.Image != "ghcr.io/example/approvalbot:latest" {
				t.Errorf("%s: image %q", obj.file, c.Image)
			}
			if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != secret.Metadata.Name {
				t.Errorf("%s: environment must come from Secret %s", obj.file, secret.Metadata.Name)
			}
			sc := c.SecurityContext
			if !isTrue(sc.ReadOnlyRootFilesystem) || !isTrue(sc.RunAsNonRoot) || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				!slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
				t.Errorf("%s: container securityContext must be non-root, read-only, no escalation, drop ALL", obj.file)
			}
			// The image's user is a name; runAsNonRoot needs a number to check.
			if !isTrue(pod.SecurityContext.RunAsNonRoot) || pod.SecurityContext.RunAsUser == nil || *pod.SecurityContext.RunAsUser == 0 {
				t.Errorf("%s: pod must run as a numeric non-root user", obj.file)
			}
			for _, k := range []string{"cpu", "memory"} {
				if c.Resources.Requests[k] == "" || c.Resources.Limits[k] == "" {
					t.Errorf("%s: resources lack a %s request or limit", obj.file, k)
				}
			}

			// The ConfigMap it mounts must be beside it, and its store
			// must fit the replica count.
			var cm *k8sObject
			for _, v := range pod.Volumes {
				if v.ConfigMap != nil {
					cm = findObject(objs, "ConfigMap", v.ConfigMap.Name)
				}
				if v.PersistentVolumeClaim != nil && findObject(objs, "PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName) == nil {
					t.Errorf("%s: claim %s is not in deploy/%s", obj.file, v.PersistentVolumeClaim.ClaimName, dir)
				}
			}
			if cm == nil || cm.Data["approvalbot.yaml"] == "" {
				t.Fatalf("%s: mounts no ConfigMap with approvalbot.yaml from deploy/%s", obj.file, dir)
			}
			driver := storeDriver(t, cm.Data["approvalbot.yaml"])
			replicas := 1
			if obj.Spec.Replicas != nil {
				replicas = *obj.Spec.Replicas
			}
			switch driver {
			case "bolt":
				if replicas != 1 || obj.Spec.Strategy.Type != "Recreate" {
					t.Errorf("%s: bolt needs replicas 1 and strategy Recreate, got %d and %q", obj.file, replicas, obj.Spec.Strategy.Type)
				}
				hasClaim := slices.ContainsFunc(pod.Volumes, func(v volume) bool { return v.PersistentVolumeClaim != nil })
				if !hasClaim {
					t.Errorf("%s: bolt needs a PersistentVolumeClaim", obj.file)
				}
			case "dynamodb":
				if replicas < 2 {
					t.Errorf("%s: the DynamoDB deployment should run several replicas, got %d", obj.file, replicas)
				}
			default:
				t.Errorf("%s: store.driver %q", obj.file, driver)
			}
		}
	}
	if deployments != 2 {
		t.Errorf("%d Deployments, want 2 (deploy/ and deploy/bolt/)", deployments)
	}
	svc := findObject(top, "Service", "approvalbot")
	if svc == nil {
		t.Error("deploy/ has no Service approvalbot")
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

func storeDriver(t *testing.T, file string) string {
	t.Helper()
	var c struct {
		Store struct {
			Driver string `yaml:"driver"`
		} `yaml:"store"`
	}
	if err := yaml.Unmarshal([]byte(file), &c); err != nil {
		t.Fatalf("approvalbot.yaml in a ConfigMap: %v", err)
	}
	return c.Store.Driver
}

// secretEnv are the variables the Secret template must provide.
var secretEnv = []string{
	"APPROVALBOT_SLACK_BOT_TOKEN",
	"APPROVALBOT_SLACK_SIGNING_SECRET",
	"APPROVALBOT_FLEXDEPLOY_PASSWORD",
	"APPROVALBOT_INTAKE_API_KEYS",
	"APPROVALBOT_TOKENS_SIGNING_KEYS",
}

// TestDeployConfigValidates loads each ConfigMap's configuration as the
// pod would, with the Secret as environment: with real-looking secrets it
// must validate; with the template's placeholders it must not, so that a
// forgotten placeholder stops the pod instead of going live. It sets the
// environment, so it cannot run in parallel.
func TestDeployConfigValidates(t *testing.T) {
	byDir := readDeployManifests(t)
	secret := findObject(byDir["."], "Secret", "approvalbot")
	if secret == nil {
		t.Fatal("deploy/ has no Secret approvalbot")
	}
	if got, want := slices.Sorted(maps.Keys(secret.StringData)), slices.Sorted(slices.Values(secretEnv)); !slices.Equal(got, want) {
		t.Errorf("Secret keys %q, want %q", got, want)
	}
	for k, v := range secret.StringData {
		if !strings.Contains(v, "REPLACE-ME") {
			t.Errorf("Secret %s is not marked as a placeholder: %q", k, v)
		}
	}
	realLooking := map[string]string{
		"APPROVALBOT_SLACK_BOT_TOKEN":      "xoxb-1-2-test",
		"APPROVALBOT_SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5",
		"APPROVALBOT_FLEXDEPLOY_PASSWORD":  "test-password",
		"APPROVALBOT_INTAKE_API_KEYS":      "flexdeploy:0123456789abcdef0123456789abcdef",
		"APPROVALBOT_TOKENS_SIGNING_KEYS":  "k1:0123456789abcdef0123456789abcdef0123456789abcdef",
	}
	for dir, objs := range byDir {
		cm := findObject(objs, "ConfigMap", "approvalbot")
		if cm == nil {
			continue
		}
		path := filepath.Join(t.TempDir(), "approvalbot.yaml")
		if err := os.WriteFile(path, []byte(cm.Data["approvalbot.yaml"]), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, env := range []map[string]string{realLooking, secret.StringData} {
			for _, k := range secretEnv {
				t.Setenv(k, env[k])
			}
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatalf("deploy/%s ConfigMap: %v", dir, err)
			}
			err = cfg.Validate()
			if env["APPROVALBOT_SLACK_BOT_TOKEN"] == realLooking["APPROVALBOT_SLACK_BOT_TOKEN"] {
				if err != nil {
					t.Errorf("deploy/%s ConfigMap does not validate:\n%v", dir, err)
				}
			} else if err == nil {
				t.Errorf("deploy/%s ConfigMap validates with the Secret's placeholders", dir)
			}
		}
	}
}
