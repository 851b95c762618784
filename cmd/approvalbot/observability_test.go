package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/approvalbot/approvalbot/internal/slacktest"
)

// The dashboard and the alert rules, from this package's directory.
const (
	dashboardFile = "../../deploy/grafana/approvalbot.json"
	alertsFile    = "../../deploy/prometheus/alerts.yaml"
)

// promtoolBinary is $PROMTOOL, else promtool on the PATH. Without it the
// test fails rather than skips: CI installs it (make promtool).
func promtoolBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMTOOL"); p != "" {
		return p
	}
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: run `make promtool` (Debian's prometheus package: apt-get install prometheus), or set PROMTOOL")
	}
	return p
}

// promQL is one expression and where it comes from.
type promQL struct{ where, expr string }

// grafanaVars are the variables Grafana replaces in an expression before
// Prometheus sees it, with a value of the same kind.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

func dashboardExprs(t *testing.T) []promQL {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var dash struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var out []promQL
	var walk func([]json.RawMessage)
	walk = func(panels []json.RawMessage) {
		for _, r := range panels {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatalf("%s: %v", dashboardFile, err)
			}
			for _, tg := range p.Targets {
				out = append(out, promQL{fmt.Sprintf("dashboard panel %q target %s", p.Title, tg.RefID), grafanaVars.Replace(tg.Expr)})
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	return out
}

func alertExprs(t *testing.T) []promQL {
	t.Helper()
	raw, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	var out []promQL
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out = append(out, promQL{"alert " + r.Alert, r.Expr})
		}
	}
	return out
}

// parsePromQL has Prometheus' own parser read every expression: promtool
// check rules on a rule file with one recording rule per expression.
func parsePromQL(t *testing.T, promtool string, exprs []promQL) error {
	t.Helper()
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	var index strings.Builder
	for i, e := range exprs {
		rules = append(rules, rule{Record: fmt.Sprintf("check:expr_%d", i), Expr: e.expr})
		fmt.Fprintf(&index, "rule %d: %s\n", i+1, e.where)
	}
	raw, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "expressions", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "expressions.yaml")
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput()
	if err != nil {
		return fmt.Errorf("promtool check rules: %v\n%s\n%s", err, out, index.String())
	}
	return nil
}

var (
	promqlStrings  = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promqlMatchers = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promqlLabels   = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlTokens   = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?|[0-9][0-9a-zA-Z_.]*`)
	promqlKeywords = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan", "atan2", "start", "end"}
)

// metricNames lists the metrics an expression selects. promtool has parsed
// it already; this reads what is left once strings, label matchers, ranges
// and grouping labels are removed: an identifier that is neither a
// function, an aggregation (both followed by "(") nor a keyword.
func metricNames(expr string) []string {
	s := promqlStrings.ReplaceAllString(expr, `""`)
	s = promqlMatchers.ReplaceAllString(s, " ")
	s = promqlLabels.ReplaceAllString(s, " ")
	var names []string
	for _, tok := range promqlTokens.FindAllString(s, -1) {
		if tok[0] >= '0' && tok[0] <= '9' || strings.HasSuffix(tok, "(") || slices.Contains(promqlKeywords, strings.ToLower(tok)) {
			continue
		}
		if !slices.Contains(names, tok) {
			names = append(names, tok)
		}
	}
	return names
}

// exportedNames are the sample names of a Prometheus text exposition.
func exportedNames(text string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			out[line[:i]] = true
		}
	}
	return out
}

// scrapeEveryFamily runs the bot through a task's life (intake, a refused
// click, Slack's 429 to a post, an approval, its delivery), so that every
// labelled family has a series, and returns /metrics.
func scrapeEveryFamily(t *testing.T) string {
	t.Helper()
	e := newEnv(t)
	var once sync.Once
	e.slack.SetAnswer(func(c slacktest.Call) *slacktest.Answer {
		var a *slacktest.Answer
		if c.Method == "chat.postMessage" {
			once.Do(func() {
				a = &slacktest.Answer{Status: http.StatusTooManyRequests, Header: map[string]string{"Retry-After": "1"},
					Body: `{"ok":false,"error":"ratelimited"}`}
			})
		}
		return a
	})
	e.start()
	id := e.submit(`{"taskId":"observed","environment":"PROD"}`)
	msg := e.message("observed")
	e.click(msg, "approve", "UMALLORY", "Mallory")
	e.click(msg, "approve", "UALICE", "Alice")
	e.waitTask(id, "delivered", delivered)

	var text string
	waitFor(t, "every family in /metrics", func() bool {
		res, err := http.Get(e.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		text = string(raw)
		for _, family := range []string{"approvalbot_slack_rate_limited_total{", "approvalbot_decisions_total{", "approvalbot_refusals_total{",
			`approvalbot_outbox_attempts_total{job="deliver"`, `approvalbot_store_operation_seconds_count{op="due"`} {
			if !strings.Contains(text, family) {
				return false
			}
		}
		return true
	})
	return text
}

// TestDashboardAndAlertsReadExportedMetrics: every PromQL expression of the
// Grafana dashboard and of the alert rules parses with Prometheus' own
// parser, and every metric it names is one the bot exports (scraped from a
// running bot).
func TestDashboardAndAlertsReadExportedMetrics(t *testing.T) {
	t.Parallel()
	promtool := promtoolBinary(t)
	exprs := append(dashboardExprs(t), alertExprs(t)...)
	if len(exprs) < 20 {
		t.Fatalf("%d expressions in the dashboard and the rules: the files were not read", len(exprs))
	}
	if err := parsePromQL(t, promtool, exprs); err != nil {
		t.Fatal(err)
	}
	exported := exportedNames(scrapeEveryFamily(t))
	for _, e := range exprs {
		names := metricNames(e.expr)
		if len(names) == 0 {
			t.Errorf("%s: names no metric: %s", e.where, e.expr)
		}
		for _, n := range names {
			if !exported[n] {
				t.Errorf("%s: %s is not exported by the bot: %s", e.where, n, e.expr)
			}
		}
	}
}

// TestPromQLChecksCatchMistakes is the negative control: an expression
// that does not parse is refused by promtool, and a misspelt metric is
// named by metricNames, so the test above would catch either.
func TestPromQLChecksCatchMistakes(t *testing.T) {
	t.Parallel()
	promtool := promtoolBinary(t)
	if err := parsePromQL(t, promtool, []promQL{{"broken", `sum by (job (rate(approvalbot_outbox_attempts_total[5m]))`}}); err == nil {
		t.Error("promtool accepted an expression that does not parse")
	}
	for expr, want := range map[string][]string{
		`sum by (method) (rate(approvalbot_slack_ratelimited_total{method="chat.update"}[5m])) > 0`:               {"approvalbot_slack_ratelimited_total"},
		`histogram_quantile(0.99, sum by (le, op) (rate(approvalbot_store_op_seconds_bucket[$__rate_interval])))`: {"approvalbot_store_op_seconds_bucket"},
		`a_total / on (instance) group_left (version) b_info offset 5m and c{x="by (d)"}`:                         {"a_total", "b_info", "c"},
		`absent(x{op="due"}) or sum(increase(y[10m])) < 1e3`:                                                      {"x", "y"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%s) = %v, want %v", expr, got, want)
		}
	}
}
