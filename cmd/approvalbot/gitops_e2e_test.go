package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"cel.dev/cel-go/cel"
	"go.yaml.in/yaml/v3"
)

// The recipes of docs/gitops.md, driven against the running bot with the
// exact request each tool sends. Their conditions are evaluated with CEL
// (cel-go): Argo Rollouts and Kargo evaluate them with expr-lang, and for
// these forms (a field compared with a string, a string in a list of
// strings) the two languages agree.
const (
	argoTemplatePath = "../../testdata/gitops/argo-analysistemplate.yaml"
	kargoStepPath    = "../../testdata/gitops/kargo-step.yaml"
	gitopsDocPath    = "../../docs/gitops.md"
)

// gitopsPolicies: production waits for a click; qa expires at once.
const gitopsPolicies = `
  - name: production
    match: {environment: "prod*"}
    channel: CPROD
    approvers: {users: [UALICE, UBOB]}
  - name: quick
    match: {environment: "qa*"}
    approvers: {users: [UALICE]}
    ttl: 1s
`

// gate is one tool's recipe, ready to measure: send its request to the
// bot, and judge the answer by its conditions.
type gate struct {
	method  string
	path    string // the recipe's URL's path, sent to the bot's origin
	headers map[string]string
	body    []byte
	success cel.Program
	failure cel.Program
	binding string // the conditions' variable: result (Argo), response (Kargo)
}

// outcome is what the tool makes of one answer.
type outcome string

const (
	successful   outcome = "Successful"
	failed       outcome = "Failed"
	inconclusive outcome = "Inconclusive" // Argo measures again; Kargo retries the step
)

// compileCondition compiles one of the recipe's conditions over the
// variable name, holding the answer.
func compileCondition(t *testing.T, name, expr string) cel.Program {
	t.Helper()
	env, err := cel.NewEnv(cel.Variable(name, cel.DynType))
	if err != nil {
		t.Fatal(err)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		t.Fatalf("condition %q: %v", expr, iss.Err())
	}
	prg, err := env.Program(ast)
	if err != nil {
		t.Fatal(err)
	}
	return prg
}

// substitute replaces every placeholder the pattern finds by its value,
// failing on one the test does not know: the recipe must use only what
// the tool really gives.
func substitute(t *testing.T, text string, pattern *regexp.Regexp, values map[string]string) string {
	t.Helper()
	return pattern.ReplaceAllStringFunc(text, func(m string) string {
		name := strings.TrimSpace(pattern.FindStringSubmatch(m)[1])
		v, ok := values[name]
		if !ok {
			t.Fatalf("the recipe uses %s, which the tool does not give", m)
		}
		return v
	})
}

// argoArg is {{args.NAME}}, as Argo Rollouts writes its arguments.
var argoArg = regexp.MustCompile(`\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}`)

// argoGate reads the AnalysisTemplate: its args resolved as Argo Rollouts
// does (the Rollout's values, then the template's own, then Secrets), its
// one metric's web request and its conditions.
func argoGate(t *testing.T, raw []byte, given map[string]string, secrets map[string]map[string]string) gate {
	t.Helper()
	var tpl struct {
		Kind string `yaml:"kind"`
		Spec struct {
			Args []struct {
				Name      string  `yaml:"name"`
				Value     *string `yaml:"value"`
				ValueFrom *struct {
					SecretKeyRef struct{ Name, Key string } `yaml:"secretKeyRef"`
				} `yaml:"valueFrom"`
			} `yaml:"args"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(raw, &tpl); err != nil || tpl.Kind != "AnalysisTemplate" {
		t.Fatalf("the template: %v (kind %q)", err, tpl.Kind)
	}
	args := map[string]string{}
	for _, a := range tpl.Spec.Args {
		switch v, ok := given[a.Name]; {
		case ok:
			args[a.Name] = v
		case a.Value != nil:
			args[a.Name] = *a.Value
		case a.ValueFrom != nil:
			ref := a.ValueFrom.SecretKeyRef
			s, ok := secrets[ref.Name][ref.Key]
			if !ok {
				t.Fatalf("arg %s: no Secret %s with key %s", a.Name, ref.Name, ref.Key)
			}
			args[a.Name] = s
		default:
			t.Fatalf("arg %s has no value: the Rollout must give it", a.Name)
		}
	}
	var resolved struct {
		Spec struct {
			Metrics []struct {
				Name             string `yaml:"name"`
				SuccessCondition string `yaml:"successCondition"`
				FailureCondition string `yaml:"failureCondition"`
				Provider         struct {
					Web *struct {
						URL     string `yaml:"url"`
						Method  string `yaml:"method"`
						Headers []struct {
							Key   string `yaml:"key"`
							Value string `yaml:"value"`
						} `yaml:"headers"`
						JSONBody map[string]any `yaml:"jsonBody"`
					} `yaml:"web"`
				} `yaml:"provider"`
			} `yaml:"metrics"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal([]byte(substitute(t, string(raw), argoArg, args)), &resolved); err != nil {
		t.Fatal(err)
	}
	if len(resolved.Spec.Metrics) != 1 || resolved.Spec.Metrics[0].Provider.Web == nil {
		t.Fatalf("want one metric with the web provider: %+v", resolved.Spec.Metrics)
	}
	m := resolved.Spec.Metrics[0]
	web := m.Provider.Web
	body, err := json.Marshal(web.JSONBody)
	if err != nil {
		t.Fatal(err)
	}
	g := gate{method: web.Method, path: urlPath(t, web.URL), headers: map[string]string{}, body: body, binding: "result",
		success: compileCondition(t, "result", m.SuccessCondition), failure: compileCondition(t, "result", m.FailureCondition)}
	for _, h := range web.Headers {
		g.headers[h.Key] = h.Value
	}
	return g
}

// kargoExpr is ${{ EXPR }}, Kargo's expressions in a step's config.
var kargoExpr = regexp.MustCompile(`\$\{\{(.*?)\}\}`)

// kargoGate reads the http step: its expressions evaluated with the
// promotion's context (given, by their text), its request and its
// expressions on the answer.
func kargoGate(t *testing.T, raw []byte, given map[string]string) gate {
	t.Helper()
	var steps []struct {
		Uses   string `yaml:"uses"`
		Config struct {
			Method  string `yaml:"method"`
			URL     string `yaml:"url"`
			Headers []struct {
				Name  string `yaml:"name"`
				Value string `yaml:"value"`
			} `yaml:"headers"`
			Body              string `yaml:"body"`
			SuccessExpression string `yaml:"successExpression"`
			FailureExpression string `yaml:"failureExpression"`
		} `yaml:"config"`
	}
	if err := yaml.Unmarshal(raw, &steps); err != nil || len(steps) != 1 || steps[0].Uses != "http" {
		t.Fatalf("want one http step: %v %+v", err, steps)
	}
	c := steps[0].Config
	// Kargo evaluates the expressions of the step's config, not those of
	// the expressions it judges the answer by.
	g := gate{method: c.Method, path: urlPath(t, substitute(t, c.URL, kargoExpr, given)), headers: map[string]string{},
		body: []byte(substitute(t, c.Body, kargoExpr, given)), binding: "response",
		success: compileCondition(t, "response", c.SuccessExpression), failure: compileCondition(t, "response", c.FailureExpression)}
	for _, h := range c.Headers {
		g.headers[h.Name] = substitute(t, h.Value, kargoExpr, given)
	}
	return g
}

func urlPath(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" {
		t.Fatalf("the recipe's URL %q: %v", raw, err)
	}
	return u.Path
}

// measure sends the gate's request to the bot, as the tool would, and
// judges the answer: the status the bot answered, and the outcome.
func (g gate) measure(e *env) (map[string]any, outcome) {
	e.t.Helper()
	req, err := http.NewRequest(g.method, e.url+g.path, bytes.NewReader(g.body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range g.headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var body map[string]any
	if res.StatusCode/100 != 2 || json.Unmarshal(raw, &body) != nil {
		e.t.Fatalf("the bot answered %d %s", res.StatusCode, raw)
	}
	// Argo's result is the JSON body; Kargo's response.body is.
	vars := map[string]any{"result": body}
	if g.binding == "response" {
		vars = map[string]any{"response": map[string]any{"status": res.StatusCode, "body": body}}
	}
	judge := func(p cel.Program) bool {
		v, _, err := p.Eval(vars)
		if err != nil {
			e.t.Fatalf("condition: %v", err)
		}
		b, ok := v.Value().(bool)
		if !ok {
			e.t.Fatalf("condition gave %v, not a bool", v)
		}
		return b
	}
	switch s, f := judge(g.success), judge(g.failure); {
	case s && f:
		e.t.Fatalf("both conditions hold for %v", body)
	case s:
		return body, successful
	case f:
		return body, failed
	}
	return body, inconclusive
}

// untilDecided measures until the outcome is no longer inconclusive, as
// the tool keeps asking.
func (g gate) untilDecided(e *env) (map[string]any, outcome) {
	e.t.Helper()
	var body map[string]any
	var out outcome
	waitFor(e.t, "a conclusive answer", func() bool {
		body, out = g.measure(e)
		return out != inconclusive
	})
	return body, out
}

// driveGate runs the three ways a gate ends: approved in chat, rejected
// in chat, expired. gateFor builds the tool's request for a deployment
// (a revision or freight) to an environment (qa expires, production
// waits).
func driveGate(t *testing.T, gateFor func(revision, environment string) gate) {
	e := newEnv(t)
	e.policies = gitopsPolicies
	// The gate goes to /v1/webhook/tasks with no callbackUrl; FlexDeploy is
	// configured too, and must hear nothing of the gates.
	e.extra = fmt.Sprintf("webhook: {signing_secret: %q, allowed_hosts: [\"127.0.0.1\"]}\n", testWebhookSecret)
	e.start()

	for _, tc := range []struct {
		revision, environment, action, user, name, status string
		want                                              outcome
	}{
		{"7c9f8d6b5", "production", "approve", "UALICE", "Alice", "approved", successful},
		{"5b6d8f9c7", "production", "reject", "UBOB", "Bob", "rejected", failed},
		{"1a2b3c4d5", "qa", "", "", "", "expired", failed},
	} {
		g := gateFor(tc.revision, tc.environment)
		first, out := g.measure(e)
		if out != inconclusive || first["status"] != "pending" {
			t.Fatalf("%s: the first answer %v is %s, want pending and inconclusive", tc.revision, first, out)
		}
		id, taskID := first["id"].(string), first["taskId"].(string)
		if !strings.Contains(taskID, tc.revision) {
			t.Fatalf("task id %q does not name the revision", taskID)
		}
		if tc.action != "" {
			msg := e.messageOf("task " + taskID)
			// Asked again while it waits: the same task, still inconclusive.
			for range 3 {
				if again, out := g.measure(e); out != inconclusive || again["id"] != id {
					t.Fatalf("%s: a repeat answered %v (%s)", tc.revision, again, out)
				}
			}
			e.click(msg, tc.action, tc.user, tc.name)
		}
		final, out := g.untilDecided(e)
		if out != tc.want || final["status"] != tc.status || final["id"] != id {
			t.Fatalf("%s: %s with %v, want %s with status %s", tc.revision, out, final, tc.want, tc.status)
		}
		if n := postsOf(e, "task "+taskID); tc.action != "" && n != 1 {
			t.Fatalf("%s: %d messages for the task, want 1", tc.revision, n)
		}
		// A gate's tool reads the outcome: nothing is delivered.
		if task := e.waitTask(id, "the outcome recorded", func(task map[string]any) bool { return deliveryState(task) != "pending" }); deliveryState(task) != "not_needed" {
			t.Fatalf("%s: delivery %v, want not_needed", tc.revision, task["delivery"])
		}
	}
	if n := len(e.fd.Decisions()); n != 0 {
		t.Fatalf("%d FlexDeploy calls for gates, want none", n)
	}
}

// TestGitOpsArgoRolloutsAnalysisTemplate drives the AnalysisTemplate of
// docs/gitops.md: its web metric's request, its args (the API key from a
// Secret), and its conditions on the bot's answers.
func TestGitOpsArgoRolloutsAnalysisTemplate(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(argoTemplatePath)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]map[string]string{"approvalbot": {"api-key": testAPIKey}}
	driveGate(t, func(revision, environment string) gate {
		args := map[string]string{"rollout": "shop", "revision": revision}
		if environment != "production" { // the template's own default
			args["environment"] = environment
		}
		g := argoGate(t, raw, args, secrets)
		if g.method != http.MethodPost || g.headers["X-API-Key"] != testAPIKey || g.headers["Content-Type"] != "application/json" {
			t.Fatalf("request %s %v", g.method, g.headers)
		}
		return g
	})
}

// TestGitOpsKargoHTTPStep drives the http promotion step of
// docs/gitops.md: its request with the promotion's context and the API
// key from a Secret, and its expressions on the bot's answers.
func TestGitOpsKargoHTTPStep(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(kargoStepPath)
	if err != nil {
		t.Fatal(err)
	}
	driveGate(t, func(freight, stage string) gate {
		g := kargoGate(t, raw, map[string]string{
			"ctx.project": "shop", "ctx.stage": stage, "ctx.targetFreight.name": freight,
			"ctx.promotion": stage + "." + freight, "secret('approvalbot').apiKey": testAPIKey,
		})
		var body map[string]any
		if err := json.Unmarshal(g.body, &body); err != nil {
			t.Fatalf("the step's body is not JSON once evaluated: %v\n%s", err, g.body)
		}
		if g.method != http.MethodPost || g.headers["X-API-Key"] != testAPIKey || body["environment"] != stage {
			t.Fatalf("request %s %v %s", g.method, g.headers, g.body)
		}
		return g
	})
}

// TestGitOpsDocsShowTheTestedYAML: docs/gitops.md shows each recipe as
// the tests drive it, byte for byte.
func TestGitOpsDocsShowTheTestedYAML(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(gitopsDocPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{argoTemplatePath, kargoStepPath} {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(doc, append(append([]byte("```yaml\n"), raw...), "```\n"...)) {
			t.Errorf("%s does not show %s verbatim in a yaml block", gitopsDocPath, path)
		}
	}
}
