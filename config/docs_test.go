package config

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const (
	// docsPath is the configuration reference: every key in a row of one
	// of its tables, with its environment variable and default. Other pages
	// (docs/teams.md, docs/change-management.md …) may repeat a tool's rows
	// next to its set-up; this page is the one complete list.
	docsPath    = "../docs/configuration.md"
	examplePath = "../approvalbot.example.yaml"
	// policiesPath is the page of the policy cookbook.
	policiesPath = "../docs/policies.md"
)

// readDocs is the configuration reference.
func readDocs(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// keyPath is one key of Config as the docs write it.
type keyPath struct {
	path string // "server.listen", "policies[].approvers.users"
	env  bool   // settable as one environment variable
}

// allKeys walks Config's mapstructure tags. It is written apart from the
// package's own walk so that a mistake there cannot hide here.
func allKeys() []keyPath {
	var keys []keyPath
	var walk func(t reflect.Type, prefix string, inList bool)
	walk = func(t reflect.Type, prefix string, inList bool) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("mapstructure")
			p := prefix + tag
			switch {
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, p+".", inList)
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				keys = append(keys, keyPath{path: p})
				walk(f.Type.Elem(), p+"[].", true)
			default:
				scalar := f.Type.Kind() != reflect.Slice && f.Type.Kind() != reflect.Map
				keys = append(keys, keyPath{path: p, env: scalar && !inList})
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "", false)
	return keys
}

func envName(path string) string {
	return "APPROVALBOT_" + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// TestEveryKeyDocumented keeps the configuration reference in step with Config:
// every key, and the environment variable of every scalar key.
func TestEveryKeyDocumented(t *testing.T) {
	t.Parallel()
	doc := string(readDocs(t))
	keys := allKeys()
	if len(keys) < 50 {
		t.Fatalf("found only %d keys; the walk is broken", len(keys))
	}
	for _, k := range keys {
		if !strings.Contains(doc, "| `"+k.path+"` |") {
			t.Errorf("key %s is not in a row of %s", k.path, docsPath)
		}
		if k.env && !strings.Contains(doc, "`"+envName(k.path)+"`") {
			t.Errorf("environment variable %s (key %s) is not in %s", envName(k.path), k.path, docsPath)
		}
	}
	for _, v := range []string{envAPIKeys, envSigningKeys, EnvConfigPath} {
		if !strings.Contains(doc, v) {
			t.Errorf("%s is not in %s", v, docsPath)
		}
	}
}

func TestDocumentedDefaultsMatch(t *testing.T) {
	t.Parallel()
	data := readDocs(t)
	rows := map[string]string{} // key -> default column
	for _, line := range strings.Split(string(data), "\n") {
		cols := strings.Split(line, "|")
		if len(cols) < 5 {
			continue
		}
		key := strings.Trim(strings.TrimSpace(cols[1]), "`")
		rows[key] = strings.Trim(strings.TrimSpace(cols[3]), "`")
	}
	for _, k := range scalarKeys() {
		doc, ok := rows[k.path]
		if !ok {
			t.Errorf("%s has no row", k.path)
			continue
		}
		want := fmt.Sprint(k.def)
		if d, ok := k.def.(time.Duration); ok {
			got, err := time.ParseDuration(doc)
			if err != nil || got != d {
				t.Errorf("%s: documented default %q, want %s", k.path, doc, d)
			}
			continue
		}
		if want == "" {
			want = `""`
		}
		if doc != want {
			t.Errorf("%s: documented default %q, want %q", k.path, doc, want)
		}
	}
}

func TestExampleFileIsValid(t *testing.T) {
	t.Parallel()
	c, err := Load(examplePath)
	if err != nil {
		t.Fatalf("Load(%s): %v", examplePath, err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the example must pass Validate: %v", err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"server.listen", c.Server.Listen, ":8080"},
		{"store.driver", c.Store.Driver, "bolt"},
		{"store.bolt.path", c.Store.Bolt.Path, "approvalbot.db"},
		{"intake.api_keys", c.Intake.APIKeys, []APIKey{{Name: "quickstart", Key: "quickstart-key-change-me-0123456789"}}},
		{"tokens.signing_keys[0].id", c.Tokens.SigningKeys[0].ID, "k1"},
		{"slack.bot_token", c.Slack.BotToken, ""},
		{"slack.mode (default kept under an empty section)", c.Slack.Mode, "http"},
		{"flexdeploy.base_url", c.FlexDeploy.BaseURL, ""},
		{"policy names", []string{c.Policies[0].Name, c.Policies[1].Name}, []string{"production", "default"}},
		{"production match", c.Policies[0].Match, map[string]string{"environment": "PROD*"}},
		{"production quorum", c.Policies[0].RequiredApprovals, 2},
		{"production ttl", c.Policies[0].TTL, 4 * time.Hour},
		{"production on_expiry", c.Policies[0].OnExpiry, "reject"},
		{"default is a catch-all", len(c.Policies[1].Match), 0},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
	if n := len(c.Tokens.SigningKeys[0].Secret); n < 40 {
		t.Errorf("example signing secret has %d bytes, want 40 or more", n)
	}
}

// TestExampleKeysLoad checks that every value written in the example file
// arrives in the loaded Config as written: no key of it is silently ignored.
func TestExampleKeysLoad(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	c, err := Load(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	n := compareLoaded(t, "", raw, reflect.ValueOf(*c))
	if n < 40 {
		t.Errorf("compared only %d values of the example; the walk is broken", n)
	}
}

// compareLoaded checks the YAML value y against the loaded value v and
// returns how many scalars it compared.
func compareLoaded(t *testing.T, path string, y any, v reflect.Value) int {
	t.Helper()
	switch y := y.(type) {
	case nil:
		return 0 // a section left with only comments
	case map[string]any:
		n := 0
		for k, yv := range y {
			p := strings.TrimPrefix(path+"."+k, ".")
			switch v.Kind() {
			case reflect.Struct:
				f, ok := fieldByTag(v.Type(), k)
				if !ok {
					t.Errorf("%s: not a key of Config", p)
					continue
				}
				n += compareLoaded(t, p, yv, v.FieldByIndex(f.Index))
			case reflect.Map:
				mv := v.MapIndex(reflect.ValueOf(k))
				if !mv.IsValid() {
					t.Errorf("%s: missing from the loaded map", p)
					continue
				}
				n += compareLoaded(t, p, yv, mv)
			default:
				t.Errorf("%s: a map in the file, %s in Config", path, v.Type())
			}
		}
		return n
	case []any:
		if v.Kind() != reflect.Slice || v.Len() != len(y) {
			t.Errorf("%s: %d items in the file, loaded %v", path, len(y), v)
			return 0
		}
		n := 0
		for i, yv := range y {
			n += compareLoaded(t, fmt.Sprintf("%s[%d]", path, i), yv, v.Index(i))
		}
		return n
	default:
		if v.Type() == reflect.TypeOf(time.Duration(0)) {
			d, err := time.ParseDuration(fmt.Sprint(y))
			if err != nil || d != time.Duration(v.Int()) {
				t.Errorf("%s: file says %v, loaded %v", path, y, time.Duration(v.Int()))
			}
			return 1
		}
		if fmt.Sprint(y) != fmt.Sprint(v.Interface()) {
			t.Errorf("%s: file says %v, loaded %v", path, y, v.Interface())
		}
		return 1
	}
}
