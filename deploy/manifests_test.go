// Package deploy holds no code: its tests keep the Kubernetes manifests and
// the Docker build context beside them true to what they claim. (The
// Deployments' probes, security context and ConfigMaps are checked in
// bot/manifest_test.go.)
package deploy

import (
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/approvalbot/approvalbot/config"
)

// manifest is one document of a deploy/**/*.yaml file.
type manifest struct {
	file string // relative to deploy/
	doc  map[string]any
}

func (m manifest) kind() string { s, _ := m.doc["kind"].(string); return s }

func (m manifest) name() string { s, _ := dig(m.doc, "metadata", "name").(string); return s }

// dig follows keys (string) and indexes (int) into decoded YAML.
func dig(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func list(v any) []any { l, _ := v.([]any); return l }

// nonManifestDirs hold YAML that is not a manifest to apply: the chart's
// templates and values (helm_test.go renders them) and the alert rules.
var nonManifestDirs = map[string]bool{"helm": true, "prometheus": true, "grafana": true}

func readManifests(t *testing.T) []manifest {
	t.Helper()
	var out []manifest
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && nonManifestDirs[p] {
			return filepath.SkipDir
		}
		if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		dec := yaml.NewDecoder(f)
		for {
			var doc map[string]any
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if doc != nil {
				out = append(out, manifest{file: p, doc: doc})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func byKind(ms []manifest, kind string) []manifest {
	var out []manifest
	for _, m := range ms {
		if m.kind() == kind {
			out = append(out, m)
		}
	}
	return out
}

// TestNetworkPolicyLimitsIngress: one policy selects the pods of both
// Deployments, and each of its rules lets named peers, never everyone,
// reach the bot's HTTP port and nothing else.
func TestNetworkPolicyLimitsIngress(t *testing.T) {
	t.Parallel()
	ms := readManifests(t)
	policies := byKind(ms, "NetworkPolicy")
	if len(policies) != 1 || policies[0].file != "networkpolicy.yaml" {
		t.Fatalf("want one NetworkPolicy, in networkpolicy.yaml (it serves deploy/ and deploy/bolt/); got %d", len(policies))
	}
	np := policies[0]
	selector, _ := dig(np.doc, "spec", "podSelector", "matchLabels").(map[string]any)
	if len(selector) == 0 {
		t.Fatal("networkpolicy.yaml: podSelector.matchLabels is empty: it would select every pod of the namespace")
	}
	deployments := byKind(ms, "Deployment")
	if len(deployments) != 2 {
		t.Fatalf("%d Deployments, want 2 (deploy/ and deploy/bolt/)", len(deployments))
	}
	ports := map[string]bool{}
	for _, d := range deployments {
		labels, _ := dig(d.doc, "spec", "template", "metadata", "labels").(map[string]any)
		for k, v := range selector {
			if labels[k] != v {
				t.Errorf("the NetworkPolicy does not select the pods of %s (label %s)", d.file, k)
			}
		}
		for _, p := range list(dig(d.doc, "spec", "template", "spec", "containers", 0, "ports")) {
			if dig(p, "name") == "http" {
				ports["http"] = true
				ports[strconv.Itoa(dig(p, "containerPort").(int))] = true
			}
		}
	}
	if !slices.Contains(stringsOf(list(dig(np.doc, "spec", "policyTypes"))), "Ingress") {
		t.Error("networkpolicy.yaml: policyTypes lacks Ingress: it would restrict nothing coming in")
	}
	rules := list(dig(np.doc, "spec", "ingress"))
	if len(rules) == 0 {
		t.Fatal("networkpolicy.yaml: no ingress rule: the bot would be unreachable, probes aside")
	}
	for i, r := range rules {
		peers := list(dig(r, "from"))
		if len(peers) == 0 {
			t.Errorf("ingress[%d]: no from: every source may connect", i)
		}
		for j, peer := range peers {
			if err := checkPeer(peer); err != "" {
				t.Errorf("ingress[%d].from[%d]: %s", i, j, err)
			}
		}
		rulePorts := list(dig(r, "ports"))
		if len(rulePorts) == 0 {
			t.Errorf("ingress[%d]: no ports: every port is open to its peers", i)
		}
		for j, p := range rulePorts {
			port := toString(dig(p, "port"))
			if !ports[port] || (dig(p, "protocol") != nil && dig(p, "protocol") != "TCP") || dig(p, "endPort") != nil {
				t.Errorf("ingress[%d].ports[%d]: %v, want only the container's http port over TCP", i, j, p)
			}
		}
	}
}

// checkPeer returns what is wrong with a NetworkPolicy peer that would let
// too much in, or "".
func checkPeer(peer any) string {
	m, _ := peer.(map[string]any)
	if len(m) == 0 {
		return "an empty peer lets every source in"
	}
	if cidr, ok := dig(m, "ipBlock", "cidr").(string); ok && strings.HasSuffix(cidr, "/0") {
		return "ipBlock " + cidr + " is everyone"
	}
	for _, sel := range []string{"namespaceSelector", "podSelector"} {
		if s, ok := m[sel]; ok {
			sm, _ := s.(map[string]any)
			if len(sm) == 0 || (dig(sm, "matchLabels") == nil && dig(sm, "matchExpressions") == nil) {
				return "an empty " + sel + " selects every " + strings.TrimSuffix(sel, "Selector")
			}
		}
	}
	if _, ok := m["namespaceSelector"]; !ok && m["ipBlock"] == nil {
		return "a podSelector without namespaceSelector: name the peers' namespace"
	}
	return ""
}

// TestIngressRoutesOnlySlack: with one port for everything, the Ingress's
// paths are what keeps /v1 and /metrics off the internet.
func TestIngressRoutesOnlySlack(t *testing.T) {
	t.Parallel()
	ingresses := byKind(readManifests(t), "Ingress")
	if len(ingresses) == 0 {
		t.Fatal("no Ingress: HTTP mode needs /slack/interactions reachable, and the docs point at ingress.yaml")
	}
	for _, ing := range ingresses {
		if dig(ing.doc, "spec", "defaultBackend") != nil {
			t.Errorf("%s: a defaultBackend routes every path, /v1 included", ing.file)
		}
		slack := false
		for i, rule := range list(dig(ing.doc, "spec", "rules")) {
			for j, p := range list(dig(rule, "http", "paths")) {
				at := ing.file + ": rules[" + strconv.Itoa(i) + "].paths[" + strconv.Itoa(j) + "]"
				route, kind := toString(dig(p, "path")), toString(dig(p, "pathType"))
				switch {
				case (route == "/slack/" || route == "/slack") && kind == "Prefix":
					slack = true
				case route == "/healthz" && kind == "Exact":
				default:
					t.Errorf("%s: %s %s: only /slack/ (Prefix) and /healthz (Exact) may be routed from outside", at, kind, route)
				}
				if svc := dig(p, "backend", "service", "name"); svc != "approvalbot" {
					t.Errorf("%s: backend %v, want Service approvalbot", at, svc)
				}
			}
		}
		if !slack {
			t.Errorf("%s: Slack's /slack/interactions is not routed", ing.file)
		}
	}
}

// TestGOMEMLIMITBelowMemoryLimit: the Go runtime's soft limit leaves the
// container headroom for memory it does not count, so that it collects
// before the kernel kills.
func TestGOMEMLIMITBelowMemoryLimit(t *testing.T) {
	t.Parallel()
	for _, d := range byKind(readManifests(t), "Deployment") {
		c := dig(d.doc, "spec", "template", "spec", "containers", 0)
		limit, err := quantityBytes(toString(dig(c, "resources", "limits", "memory")))
		if err != nil {
			t.Errorf("%s: limits.memory: %v", d.file, err)
			continue
		}
		var env any
		for _, e := range list(dig(c, "env")) {
			if dig(e, "name") == "GOMEMLIMIT" {
				env = e
			}
		}
		if env == nil {
			t.Errorf("%s: no GOMEMLIMIT", d.file)
			continue
		}
		if dig(env, "valueFrom") != nil {
			t.Errorf("%s: GOMEMLIMIT from valueFrom is the limit itself (resourceFieldRef cannot take a fraction): no headroom", d.file)
			continue
		}
		soft, err := goMemLimitBytes(toString(dig(env, "value")))
		if err != nil {
			t.Errorf("%s: GOMEMLIMIT: %v", d.file, err)
			continue
		}
		if soft > limit*9/10 || soft < limit/2 {
			t.Errorf("%s: GOMEMLIMIT %d bytes is %.0f%% of limits.memory (%d bytes), want 50–90%%", d.file, soft, 100*float64(soft)/float64(limit), limit)
		}
	}
}

// quantityBytes reads a Kubernetes memory quantity: 128Mi, 1G, 134217728.
func quantityBytes(q string) (int64, error) {
	suffixes := []struct {
		s string
		m int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}}
	mult := int64(1)
	for _, s := range suffixes {
		if strings.HasSuffix(q, s.s) {
			q, mult = strings.TrimSuffix(q, s.s), s.m
			break
		}
	}
	n, err := strconv.ParseFloat(q, 64)
	if err != nil || n <= 0 || math.IsInf(n, 0) {
		return 0, errors.New("not a positive quantity")
	}
	return int64(n * float64(mult)), nil
}

// goMemLimitBytes reads GOMEMLIMIT as the Go runtime does: a number of
// bytes with an optional B, KiB, MiB, GiB or TiB.
func goMemLimitBytes(s string) (int64, error) {
	m := regexp.MustCompile(`^([0-9]+)(B|KiB|MiB|GiB|TiB)?$`).FindStringSubmatch(s)
	if m == nil {
		return 0, errors.New("not a size such as 100MiB")
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, err
	}
	shift := map[string]uint{"": 0, "B": 0, "KiB": 10, "MiB": 20, "GiB": 30, "TiB": 40}[m[2]]
	return n << shift, nil
}

// secretKeys maps each variable of the Secret template to the key it sets.
var secretKeys = map[string]string{
	"APPROVALBOT_SLACK_BOT_TOKEN":      "slack.bot_token",
	"APPROVALBOT_SLACK_SIGNING_SECRET": "slack.signing_secret",
	"APPROVALBOT_FLEXDEPLOY_PASSWORD":  "flexdeploy.password",
	"APPROVALBOT_INTAKE_API_KEYS":      "intake.api_keys[0].key",
	"APPROVALBOT_TOKENS_SIGNING_KEYS":  "tokens.signing_keys[0].secret",
}

// TestSecretTemplateIsCaught holds secret.yaml to what it says: with its
// placeholders the configuration does not validate, naming the bot token,
// the API key and the signing key, and config check warns about every
// placeholder, naming its key; no message shows a value. It sets the
// environment, so it cannot run in parallel.
func TestSecretTemplateIsCaught(t *testing.T) {
	ms := readManifests(t)
	var secret, cm *manifest
	for i := range ms {
		switch {
		case ms[i].file == "secret.yaml" && ms[i].kind() == "Secret":
			secret = &ms[i]
		case ms[i].file == "configmap.yaml" && ms[i].kind() == "ConfigMap":
			cm = &ms[i]
		}
	}
	if secret == nil || cm == nil {
		t.Fatal("want the Secret in secret.yaml and the ConfigMap in configmap.yaml")
	}
	data, _ := dig(secret.doc, "stringData").(map[string]any)
	if len(data) != len(secretKeys) {
		t.Errorf("the Secret has %d variables, this test knows %d: keep secretKeys in step", len(data), len(secretKeys))
	}
	file := filepath.Join(t.TempDir(), "approvalbot.yaml")
	if err := os.WriteFile(file, []byte(toString(dig(cm.doc, "data", "approvalbot.yaml"))), 0o600); err != nil {
		t.Fatal(err)
	}
	var values []string
	for env := range secretKeys {
		v := toString(data[env])
		t.Setenv(env, v)
		if _, after, ok := strings.Cut(v, ":"); ok && strings.Contains(env, "_KEYS") {
			v = after
		}
		values = append(values, v)
	}
	c, err := config.Load(file)
	if err != nil {
		t.Fatalf("the ConfigMap with the Secret's placeholders does not load: %v", err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("the Secret's placeholders validate: secret.yaml says the bot does not start with them")
	}
	for _, key := range []string{"slack.bot_token", "intake.api_keys[0].key", "tokens.signing_keys[0].secret"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("the problems do not name %s, as secret.yaml says:\n%v", key, err)
		}
	}
	warnings := strings.Join(c.Warnings(), "\n")
	for env, key := range secretKeys {
		if !strings.Contains(warnings, key+": looks like a placeholder") {
			t.Errorf("no placeholder warning names %s (%s):\n%s", key, env, warnings)
		}
	}
	for _, v := range values {
		if strings.Contains(warnings, v) || strings.Contains(err.Error(), v) {
			t.Errorf("a message shows the value %q", v)
		}
	}
}

// TestDockerignoreKeepsLocalFilesOut reads ../.dockerignore as Docker does
// and checks that local configurations (real secrets) and store files stay
// out of the build context, while everything the build needs goes in.
func TestDockerignoreKeepsLocalFilesOut(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	patterns := dockerignore(t, string(raw))
	for _, p := range []string{
		"approvalbot.yaml", "config/approvalbot.yaml", "prod.local.yaml", "deploy/dev.local.yaml",
		"approvalbot.db", "data/approvalbot.db", "cmd/approvalbot/approvalbot.db",
		".git/config", "tools/node_modules/dynalite/package.json", "bin/approvalbot",
	} {
		if !ignored(patterns, p) {
			t.Errorf("%s is in the Docker build context", p)
		}
	}
	needed := []string{"go.mod", "go.sum", "approvalbot.example.yaml"}
	err = filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, ".."+string(filepath.Separator)))
		if d.IsDir() && (rel == ".git" || rel == "tools/node_modules" || rel == "bin") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go") {
			needed = append(needed, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range needed {
		if ignored(patterns, p) {
			t.Errorf("%s is needed by the build but left out of its context", p)
		}
	}
}

type ignorePattern struct {
	re     *regexp.Regexp
	negate bool
}

// dockerignore parses .dockerignore: one pattern a line, # comments, a
// leading ! re-includes, paths are relative to the context root, * and ?
// stay within a directory and ** spans directories.
func dockerignore(t *testing.T, s string) []ignorePattern {
	t.Helper()
	var out []ignorePattern
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := ignorePattern{}
		if strings.HasPrefix(line, "!") {
			p.negate, line = true, line[1:]
		}
		line = strings.TrimPrefix(path.Clean("/"+line), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case strings.HasPrefix(line[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(line[i:], "**"):
				re.WriteString(".*")
				i++
			case c == '*':
				re.WriteString("[^/]*")
			case c == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString("$")
		var err error
		if p.re, err = regexp.Compile(re.String()); err != nil {
			t.Fatalf(".dockerignore: %q: %v", line, err)
		}
		out = append(out, p)
	}
	return out
}

// ignored reports whether p, or a directory above it, is left out; the
// last pattern that matches decides.
func ignored(patterns []ignorePattern, p string) bool {
	out := false
	for _, pat := range patterns {
		for q := p; q != "." && q != "/"; q = path.Dir(q) {
			if pat.re.MatchString(q) {
				out = !pat.negate
				break
			}
		}
	}
	return out
}

func toString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	}
	return ""
}

func stringsOf(l []any) []string {
	var out []string
	for _, v := range l {
		out = append(out, toString(v))
	}
	return out
}
