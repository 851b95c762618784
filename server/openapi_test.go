package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/attestation"
	"github.com/approvalbot/approvalbot/azuredevops"
	"github.com/approvalbot/approvalbot/bot"
	"github.com/approvalbot/approvalbot/flexdeploy"
	"github.com/approvalbot/approvalbot/github"
	"github.com/approvalbot/approvalbot/gitlab"
	"github.com/approvalbot/approvalbot/internal/githubtest"
	"github.com/approvalbot/approvalbot/internal/teamstest"
	"github.com/approvalbot/approvalbot/teams"
	"github.com/approvalbot/approvalbot/webhook"
)

// The tests in this file hold api/openapi.yaml and the server to each
// other: every documented status of every operation is provoked and its
// answer checked against the documented headers and body schema, every
// answer the tests provoke must be documented, and every route the server
// answers must be in the spec. The server is built from the spec's paths,
// with the real intake parsers, the real Slack interactions, events and
// slash command handlers and the real web pages (openapi_surfaces_test.go),
// so that drift in either direction fails.

const specPath = "../api/openapi.yaml"

// unexercisable lists documented answers this package cannot provoke, and
// why. An entry whose answer is no longer documented fails too.
var unexercisable = map[string]string{
	"POST /github/webhook 429": "a signed intake is shed from the webhooks' own pool, and this test fills only the API's",
	"POST /github/webhook 500": "a GitHub task's id is its run id and environment, and the fake store fails only the ids boom and down",
	"POST /github/webhook 503": "a GitHub task's id is its run id and environment, and the fake store fails only the ids boom and down",
	"POST /gitlab/webhook 429": "a signed intake is shed from the webhooks' own pool, and this test fills only the API's",
	"POST /gitlab/webhook 500": "a GitLab task's id is its project and deployment ids, and the fake store fails only the ids boom and down",
	"POST /gitlab/webhook 503": "a GitLab task's id is its project and deployment ids, and the fake store fails only the ids boom and down",
}

// teamsAuth is a JSON request's headers with the channel's token.
func teamsAuth(bearer string) map[string]string {
	return map[string]string{"Content-Type": "application/json", "Authorization": bearer}
}

// refusingDecider refuses every click as a wrong token: the spec test
// needs the invoke answer's shape, not a decision.
type refusingDecider struct{}

func (refusingDecider) Decide(context.Context, approvals.DecideRequest) (*approvals.Task, error) {
	return nil, approvals.ErrBadToken
}

// builtinRoutes are registered by New itself; the others come from
// Config.Intake and Config.Routes.
var builtinRoutes = []string{"GET /healthz", "GET /readyz", "GET /v1/tasks/{id}", "GET /v1/tasks/{id}/receipt", "GET /v1/tasks/{id}/attestation"}

const slackSigningSecret = "openapi-test-signing-secret"

// Secrets of the GitHub and webhook intakes.
const (
	githubWebhookSecret  = "openapi-test-github-webhook-secret"
	gitlabWebhookToken   = "openapi-test-gitlab-webhook-token"
	webhookSigningSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// --- the spec ---------------------------------------------------------------

type spec struct {
	doc map[string]any
	kin *kinSpec // the same document, read by kin-openapi
}

type specOp struct {
	key, method, path string
	op                map[string]any
}

func loadSpec(t *testing.T) *spec {
	t.Helper()
	raw, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", specPath, err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("%s: openapi %q, want 3.x", specPath, v)
	}
	return &spec{doc: doc, kin: loadKinSpec(t)}
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

// resolve follows a local $ref ("#/components/…") until a node without one.
func (s *spec) resolve(t *testing.T, node map[string]any) map[string]any {
	t.Helper()
	for i := 0; node != nil && node["$ref"] != nil; i++ {
		ref, _ := node["$ref"].(string)
		if !strings.HasPrefix(ref, "#/") || i > 10 {
			t.Fatalf("unsupported $ref %q", ref)
		}
		var cur any = s.doc
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cur = asMap(cur)[part]
		}
		if cur == nil {
			t.Fatalf("$ref %q points nowhere", ref)
		}
		node = asMap(cur)
	}
	return node
}

var httpMethods = []string{"get", "put", "post", "delete", "patch", "head", "options"}

func (s *spec) operations() []specOp {
	var ops []specOp
	for path, item := range asMap(s.doc["paths"]) {
		for _, m := range httpMethods {
			if op := asMap(asMap(item)[m]); op != nil {
				method := strings.ToUpper(m)
				ops = append(ops, specOp{key: method + " " + path, method: method, path: path, op: op})
			}
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].key < ops[j].key })
	return ops
}

func (s *spec) operation(key string) (specOp, bool) {
	for _, op := range s.operations() {
		if op.key == key {
			return op, true
		}
	}
	return specOp{}, false
}

// response is the operation's documented answer for status, or nil.
func (s *spec) response(t *testing.T, op specOp, status int) map[string]any {
	t.Helper()
	return s.resolve(t, asMap(asMap(op.op["responses"])[strconv.Itoa(status)]))
}

func (s *spec) statuses(t *testing.T, op specOp) []int {
	t.Helper()
	var out []int
	for code := range asMap(op.op["responses"]) {
		n, err := strconv.Atoi(code)
		if err != nil {
			t.Fatalf("%s: response %q is not a status code", op.key, code)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// requestExamples is examples for a request, which the spec must document.
func (s *spec) requestExamples(t *testing.T, op specOp, mediaType string) map[string]string {
	t.Helper()
	examples := s.examples(t, op, mediaType)
	if len(examples) == 0 {
		t.Errorf("%s documents no request examples", op.key)
	}
	return examples
}

// examples returns the operation's request body examples for a media type.
func (s *spec) examples(t *testing.T, op specOp, mediaType string) map[string]string {
	t.Helper()
	body := s.resolve(t, asMap(op.op["requestBody"]))
	out := map[string]string{}
	for name, ex := range asMap(asMap(asMap(body["content"])[mediaType])["examples"]) {
		raw, err := json.Marshal(asMap(ex)["value"])
		if err != nil {
			t.Fatalf("%s: example %s: %v", op.key, name, err)
		}
		out[name] = string(raw)
	}
	return out
}

type headerParam struct {
	name, example string
	required      bool
}

func (s *spec) headerParams(t *testing.T, op specOp) []headerParam {
	t.Helper()
	var out []headerParam
	for _, p := range asSlice(op.op["parameters"]) {
		p := s.resolve(t, asMap(p))
		if p["in"] != "header" {
			continue
		}
		req, _ := p["required"].(bool)
		out = append(out, headerParam{name: p["name"].(string), example: fmt.Sprint(p["example"]), required: req})
	}
	return out
}

// security is the operation's security requirements: its own `security`
// if it has one (`[]` for none), else the document's.
func (s *spec) security(op specOp) []any {
	if sec, ok := op.op["security"]; ok {
		return asSlice(sec)
	}
	return asSlice(s.doc["security"])
}

// authHeaders returns, per security scheme the operation requires, the
// header that carries key. An operation without security gets none.
func (s *spec) authHeaders(t *testing.T, op specOp, key string) map[string][2]string {
	t.Helper()
	out := map[string][2]string{}
	schemes := asMap(asMap(s.doc["components"])["securitySchemes"])
	for _, req := range s.security(op) {
		for name := range asMap(req) {
			sch := asMap(schemes[name])
			switch {
			case sch["type"] == "http" && sch["scheme"] == "bearer":
				out[name] = [2]string{"Authorization", "Bearer " + key}
			case sch["type"] == "apiKey" && sch["in"] == "header":
				out[name] = [2]string{sch["name"].(string), key}
			default:
				t.Fatalf("%s: security scheme %s is neither bearer nor an apiKey header", op.key, name)
			}
		}
	}
	return out
}

// excerpt is the start of a body, for a failure message.
func excerpt(body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) > 200 {
		return string(body[:200]) + "…"
	}
	return string(body)
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

// --- the server under test --------------------------------------------------

// specEnv is four servers built alike from the spec: main answers
// normally, unready's store does not answer, busy is kept full so that it
// sheds, and unconfigured's Slack endpoints are the Slack runtime's while
// Slack is not configured.
type specEnv struct {
	servers map[string]*httptest.Server
	busy    *Server
	release chan struct{}
	// teams is the fake Bot Framework whose channel tokens the Teams
	// endpoint checks.
	teams *teamstest.Server

	mu       sync.Mutex
	observed map[string]bool
}

func fixedTime(min int) time.Time {
	return time.Date(2026, 11, 22, 14, min, 0, 0, time.UTC)
}

// fullTask fills every field a task can show, so that every documented
// property of Task and its parts is met in some answer.
func fullTask(id string, status approvals.Status) *approvals.Task {
	source, taskID, _ := strings.Cut(id, "-")
	if strings.HasPrefix(id, azuredevops.Source+"-") {
		source, taskID = azuredevops.Source, strings.TrimPrefix(id, azuredevops.Source+"-")
	}
	t := &approvals.Task{
		ID: id, Source: source, TaskID: taskID,
		Context: approvals.Context{
			Description: "v2.3 is about to be deployed to PROD", Environment: "PROD", Project: "payments",
			Release: "2.3", Pipeline: "standard", Stage: "prod", RequestedBy: "bob@example.com",
			URL: "https://fd.internal/flexdeploy/tasks/" + taskID,
		},
		Status:            status,
		RequiredApprovals: 2,
		Approvals:         []approvals.Vote{{Person: approvals.Person{ID: "U1", Name: "alice", Email: "alice@example.com", Chat: "slack"}, At: fixedTime(2)}},
		Delivery:          approvals.Delivery{State: approvals.DeliveryPending},
		CreatedAt:         fixedTime(0),
		ExpiresAt:         fixedTime(0).Add(4 * time.Hour),
		Policy:            "production",
		Messages:          []approvals.MessageRef{{Chat: "slack", Channel: "C0PROD", TS: "1700000000.000100"}},
		Audit: []approvals.AuditRecord{
			{At: fixedTime(0), Event: "created"},
			{At: fixedTime(2), User: "U1", Name: "alice", Event: "approved", Detail: "1 of 2"},
		},
		TokenHash: []byte("hash-must-not-show"),
	}
	if status.Final() {
		decided := fixedTime(3)
		delivered := fixedTime(4)
		t.DecidedBy = &approvals.Person{ID: "U2", Name: "carol", Email: "carol@example.com", Chat: "slack"}
		t.DecidedAt = &decided
		t.Reason = "not during the freeze"
		t.Delivery = approvals.Delivery{State: approvals.DeliveryDelivered, Attempts: 2, LastError: "flexdeploy: 503", DeliveredAt: &delivered}
	}
	return t
}

// boundTask is a full task bound to an artifact and a change record, its
// receipt sealed when final (the attestation needs it).
func boundTask(id string, status approvals.Status) *approvals.Task {
	t := fullTask(id, status)
	t.Artifact = &approvals.Artifact{Name: "registry.example.com/payments", Digest: "sha256:" + strings.Repeat("a", 64)}
	t.Change = "CHG0030001"
	start, end := fixedTime(0), fixedTime(0).Add(2*time.Hour)
	t.ChangeRecord = &approvals.ChangeRecord{System: "servicenow", Number: "CHG0030001", State: "Implement", Approved: true,
		NotApproved: "", Start: &start, End: &end, URL: "https://acme.service-now.com/change_request.do?sysparm_query=number=CHG0030001", CheckedAt: fixedTime(1)}
	if status.Final() {
		audit := t.Audit
		t.Audit = nil
		for _, rec := range audit {
			t.Record(rec)
		}
		t.Seal = &approvals.Seal{Covered: len(t.Audit), Head: t.Audit[len(t.Audit)-1].Hash,
			SignedAt: fixedTime(3), KeyID: "0123456789abcdef", Signature: bytes.Repeat([]byte{1}, 64)}
	}
	return t
}

// sealedReceipt is the receipt of a final task as Service.Receipt gives
// it: the audit chained and a seal over it. (Whether it verifies is the
// domain's test; this one checks its shape.)
func sealedReceipt(t *approvals.Task) (approvals.Receipt, error) {
	if !t.Status.Final() {
		return approvals.Receipt{}, approvals.ErrNoReceipt
	}
	sealed := *t
	sealed.Audit = nil
	for _, rec := range t.Audit {
		sealed.Record(rec)
	}
	sealed.Seal = &approvals.Seal{Covered: len(sealed.Audit), Head: sealed.Audit[len(sealed.Audit)-1].Hash,
		SignedAt: fixedTime(3), KeyID: "0123456789abcdef", Signature: bytes.Repeat([]byte{1}, 64)}
	return approvals.ReceiptOf(&sealed)
}

func newSpecEnv(t *testing.T, sp *spec) *specEnv {
	t.Helper()
	env := &specEnv{servers: map[string]*httptest.Server{}, release: make(chan struct{}), observed: map[string]bool{}}
	t.Cleanup(func() {
		select {
		case <-env.release:
		default:
			close(env.release)
		}
	})

	var mu sync.Mutex
	stored := map[string]*approvals.Task{
		"flexdeploy-done":    fullTask("flexdeploy-done", approvals.StatusRejected),
		"flexdeploy-pending": fullTask("flexdeploy-pending", approvals.StatusPending),
		"webhook-done":       fullTask("webhook-done", approvals.StatusRejected),
		"flexdeploy-bound":   boundTask("flexdeploy-bound", approvals.StatusApproved),
		"flexdeploy-binding": boundTask("flexdeploy-binding", approvals.StatusPending),
		"webhook-bound":      boundTask("webhook-bound", approvals.StatusPending),
	}
	failure := func(taskID string) error {
		switch taskID {
		case "down":
			return fmt.Errorf("fake store: %w", approvals.ErrUnavailable)
		case "boom":
			return errors.New("fake store: disk on fire")
		}
		return nil
	}
	tasks := &fakeTasks{
		submit: func(_ context.Context, sub approvals.Submission) (*approvals.Task, bool, error) {
			if err := failure(sub.TaskID); err != nil {
				return nil, false, err
			}
			mu.Lock()
			defer mu.Unlock()
			id := approvals.TaskRecordID(sub.Source, sub.TaskID)
			if t, ok := stored[id]; ok {
				// As Service.Submit: a repeat naming another build is refused.
				if sub.Artifact != nil && (t.Artifact == nil || t.Artifact.Digest != sub.Artifact.Digest) {
					return nil, false, approvals.ErrArtifactMismatch
				}
				return t, false, nil
			}
			t := fullTask(id, approvals.StatusPending)
			t.Source, t.TaskID, t.Context = sub.Source, sub.TaskID, sub.Context
			stored[id] = t
			return t, true, nil
		},
		get: func(ctx context.Context, id string) (*approvals.Task, error) {
			if id == "block" {
				select {
				case <-env.release:
				case <-ctx.Done():
				}
				return nil, approvals.ErrNotFound
			}
			if err := failure(id); err != nil {
				return nil, err
			}
			mu.Lock()
			defer mu.Unlock()
			if t, ok := stored[id]; ok {
				return t, nil
			}
			// As Service.Lookup: FlexDeploy's tasks by their own ids too.
			if t, ok := stored[approvals.TaskRecordID(flexdeploy.Source, id)]; ok {
				return t, nil
			}
			return nil, approvals.ErrNotFound
		},
	}
	// As Service.Receipt: a final task's receipt, none while pending.
	tasks.receipt = func(ctx context.Context, id string) (approvals.Receipt, error) {
		t, err := tasks.get(ctx, id)
		if err != nil {
			return approvals.Receipt{}, err
		}
		return sealedReceipt(t)
	}

	key := bytes.Repeat([]byte{7}, 32)
	sealer, err := azuredevops.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	// The handlers each documented path needs; a path the spec gains
	// without an entry here fails, as does an entry the spec lost.
	ado, err := azuredevops.New(azuredevops.Config{Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	gh, err := github.New(github.Config{AppID: "1", PrivateKey: []byte(githubtest.GenerateKeyPEM()), WebhookSecret: githubWebhookSecret})
	if err != nil {
		t.Fatal(err)
	}
	wh, err := webhook.New(webhook.Config{SigningSecret: webhookSigningSecret, AllowedHosts: []string{"jenkins.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	gl, err := gitlab.New(gitlab.Config{APIURL: "https://gitlab.example.com/api/v4", Token: "openapi-test-gitlab-token", WebhookToken: gitlabWebhookToken})
	if err != nil {
		t.Fatal(err)
	}
	intakes := map[string]approvals.Intake{}
	for _, tool := range []approvals.Tool{flexdeploy.Tool(nil, false), azuredevops.Tool(ado), github.Tool(gh), webhook.Tool(wh), gitlab.Tool(gl)} {
		for _, in := range tool.Intakes {
			key := "POST /v1/" + in.Path
			if in.Signed {
				key = "POST " + in.Path // a whole path, without the API key
			}
			intakes[key] = in
		}
	}
	// main listens before it serves: the web pages' public URL, which the
	// OpenID Connect provider sends people back to, is its address.
	mainServer := httptest.NewUnstartedServer(nil)
	t.Cleanup(mainServer.Close)
	env.servers["main"] = mainServer
	surfaceRoutes, unconfiguredSlack := newSurfaces(t, "http://"+mainServer.Listener.Addr().String())

	interactions := bot.NewInteractions(bot.InteractionsConfig{
		Verifier:     bot.NewVerifier(slackSigningSecret, nil),
		MaxBodyBytes: 1024,
	})
	t.Cleanup(interactions.Close)
	registry := prometheus.NewRegistry()
	requests := prometheus.NewCounter(prometheus.CounterOpts{Name: "approvalbot_test_requests_total", Help: "Requests."})
	registry.MustRegister(requests)
	requests.Inc()
	env.teams = teamstest.New(t)
	routes := map[string]http.Handler{
		"POST /teams/messages": teams.NewHandler(teams.HandlerConfig{
			Verifier:     teams.NewVerifier(env.teams.OpenIDMetadata(), teamstest.AppID, &http.Client{Timeout: 5 * time.Second}, nil),
			TenantID:     teamstest.Tenant,
			Decider:      refusingDecider{},
			Members:      teams.NewConnector(teams.ConnectorConfig{AppID: teamstest.AppID, AppPassword: teamstest.AppPassword, TenantID: teamstest.Tenant, TokenURL: env.teams.TokenURL()}),
			MaxBodyBytes: 2048,
		}),
		"POST /slack/interactions": interactions,
		"GET /metrics":             promhttp.HandlerFor(registry, promhttp.HandlerOpts{}),
	}
	maps.Copy(routes, surfaceRoutes)

	_, receiptKey, _ := ed25519.GenerateKey(nil)
	cfg := Config{
		MaxBodyBytes: 1024,
		Tasks:        tasks,
		Attest: func(ctx context.Context, t *approvals.Task) ([]byte, error) {
			return attestation.Build(ctx, t, receiptKey)
		},
		APIKeys: func() []APIKey { return []APIKey{{Name: "flexdeploy", Key: testKey}} },
		Routes:  map[string]http.Handler{},
		Logger:  zerolog.Nop(),
		Observe: func(route string, _ int, _ time.Duration) {
			env.mu.Lock()
			env.observed[route] = true
			env.mu.Unlock()
		},
	}
	used := map[string]bool{}
	for _, op := range sp.operations() {
		switch {
		case slices.Contains(builtinRoutes, op.key):
		case intakes[op.key].Parse != nil:
			cfg.Intakes = append(cfg.Intakes, intakes[op.key])
			used[op.key] = true
		case routes[op.key] != nil:
			cfg.Routes[op.key] = routes[op.key]
			used[op.key] = true
		default:
			t.Errorf("the spec documents %s, which this test cannot serve: add its handler", op.key)
		}
	}
	for _, key := range builtinRoutes {
		if _, ok := sp.operation(key); !ok {
			t.Errorf("the server always serves %s, which the spec does not document", key)
		}
	}
	for key := range intakes {
		if !used[key] {
			t.Errorf("the spec does not document %s", key)
		}
	}
	for key := range routes {
		if !used[key] {
			t.Errorf("the spec does not document %s", key)
		}
	}

	build := func(name string, mutate func(*Config)) *Server {
		c := cfg
		if mutate != nil {
			mutate(&c)
		}
		s, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		srv := env.servers[name]
		if srv == nil {
			srv = httptest.NewUnstartedServer(nil)
			t.Cleanup(srv.Close)
			env.servers[name] = srv
		}
		srv.Config.Handler = s.Handler()
		srv.Start()
		return s
	}
	build("main", nil)
	build("unready", func(c *Config) {
		c.Ready = func(context.Context) error { return fmt.Errorf("ping: %w", approvals.ErrUnavailable) }
	})
	env.busy = build("busy", func(c *Config) {
		c.MaxConcurrentRequests = 1
		c.MaxOutstandingRequests = 1
	})
	build("unconfigured", func(c *Config) {
		c.Routes = maps.Clone(c.Routes)
		for pattern, h := range unconfiguredSlack {
			if c.Routes[pattern] != nil {
				c.Routes[pattern] = h
			}
		}
	})
	return env
}

// fill occupies the busy server's only slot until the test ends.
func (env *specEnv) fill(t *testing.T) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest("GET", env.servers["busy"].URL+"/v1/tasks/block", nil)
		req.Header.Set("X-API-Key", testKey)
		if res, err := http.DefaultTransport.RoundTrip(req); err == nil {
			res.Body.Close()
		}
	}()
	t.Cleanup(func() {
		close(env.release)
		<-done
	})
	for deadline := time.Now().Add(10 * time.Second); env.busy.api.outstanding.Load() < 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the blocking request did not arrive")
		}
	}
}

// --- requests ---------------------------------------------------------------

type authMode int

const (
	authNone authMode = iota
	authAPIKey
	authWrong
	authScheme // the header set in call.header by the security loop
)

type call struct {
	what   string
	server string // "main" unless set
	op     string
	path   string // the concrete path; the operation's path if empty
	header map[string]string
	body   string
	auth   authMode
}

type answer struct {
	status  int
	header  http.Header
	body    []byte
	req     *http.Request // what was sent, for the validators
	reqBody []byte
}

func (env *specEnv) send(t *testing.T, c call, method string) answer {
	t.Helper()
	server := c.server
	if server == "" {
		server = "main"
	}
	req, err := http.NewRequest(method, env.servers[server].URL+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	switch c.auth {
	case authAPIKey:
		req.Header.Set("X-API-Key", testKey)
	case authWrong:
		req.Header.Set("Authorization", "Bearer not-a-key-0123456789")
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s: %v", c.what, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s: %v", c.what, err)
	}
	return answer{status: res.StatusCode, header: res.Header, body: body, req: req, reqBody: []byte(c.body)}
}

func signSlack(body string, at time.Time) map[string]string {
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(slackSigningSecret))
	mac.Write([]byte("v0:" + ts + ":" + body))
	return map[string]string{
		"Content-Type":              "application/x-www-form-urlencoded",
		"X-Slack-Request-Timestamp": ts,
		"X-Slack-Signature":         "v0=" + hex.EncodeToString(mac.Sum(nil)),
	}
}

func slackForm(payload any) string {
	raw, _ := json.Marshal(payload)
	return url.Values{"payload": {string(raw)}}.Encode()
}

// provocations returns, per operation and status, requests that provoke
// that answer without any external system. The web pages' need a sign-in,
// which is made now, at env's OpenID Connect provider.
func provocations(t *testing.T, sp *spec, env *specEnv) map[string]map[int][]call {
	t.Helper()
	out := map[string]map[int][]call{}
	add := func(status int, c call) {
		if out[c.op] == nil {
			out[c.op] = map[int][]call{}
		}
		if c.path == "" {
			c.path = strings.SplitN(c.op, " ", 2)[1]
		}
		out[c.op][status] = append(out[c.op][status], c)
	}
	jsonType := map[string]string{"Content-Type": "application/json"}
	big := `{"taskId":"big","description":"` + strings.Repeat("x", 2048) + `"}`

	// POST /v1/tasks: every documented example is a valid request.
	const tasks = "POST /v1/tasks"
	if op, ok := sp.operation(tasks); ok {
		examples := sp.requestExamples(t, op, "application/json")
		for name, body := range examples {
			add(202, call{what: "example " + name, op: tasks, header: jsonType, body: body, auth: authAPIKey})
		}
	}
	add(200, call{what: "repeat of a decided task", op: tasks, header: jsonType, body: `{"taskId":"done"}`, auth: authAPIKey})
	add(202, call{what: "repeat of a pending task", op: tasks, header: jsonType, body: `{"taskId":"pending"}`, auth: authAPIKey})
	add(400, call{what: "truncated JSON", op: tasks, header: jsonType, body: `{"taskId":`, auth: authAPIKey})
	add(400, call{what: "no task id", op: tasks, header: jsonType, body: `{"description":"x"}`, auth: authAPIKey})
	add(400, call{what: "a malformed digest", op: tasks, header: jsonType, body: `{"taskId":"1","artifact":{"name":"app","digest":"sha256:abc"}}`, auth: authAPIKey})
	add(409, call{what: "repeat naming another artifact", op: tasks, header: jsonType, body: `{"taskId":"binding","artifact":{"name":"app","digest":"sha256:` + strings.Repeat("b", 64) + `"}}`, auth: authAPIKey})
	add(401, call{what: "no key", op: tasks, header: jsonType, body: `{"taskId":"1"}`})
	add(401, call{what: "wrong key", op: tasks, header: jsonType, body: `{"taskId":"1"}`, auth: authWrong})
	add(413, call{what: "body too large", op: tasks, header: jsonType, body: big, auth: authAPIKey})
	add(415, call{what: "text/plain", op: tasks, header: map[string]string{"Content-Type": "text/plain"}, body: `{"taskId":"1"}`, auth: authAPIKey})
	add(429, call{what: "over capacity", server: "busy", op: tasks, header: jsonType, body: `{"taskId":"1"}`, auth: authAPIKey})
	add(500, call{what: "internal error", op: tasks, header: jsonType, body: `{"taskId":"boom"}`, auth: authAPIKey})
	add(503, call{what: "store down", op: tasks, header: jsonType, body: `{"taskId":"down"}`, auth: authAPIKey})

	// GET /v1/tasks/{id}
	const get = "GET /v1/tasks/{id}"
	add(200, call{what: "final task", op: get, path: "/v1/tasks/flexdeploy-done", auth: authAPIKey})
	add(202, call{what: "pending task", op: get, path: "/v1/tasks/flexdeploy-pending", auth: authAPIKey})
	add(202, call{what: "by FlexDeploy task id", op: get, path: "/v1/tasks/pending", auth: authAPIKey})
	add(401, call{what: "no key", op: get, path: "/v1/tasks/flexdeploy-done"})
	add(404, call{what: "unknown", op: get, path: "/v1/tasks/nope", auth: authAPIKey})
	add(429, call{what: "over capacity", server: "busy", op: get, path: "/v1/tasks/flexdeploy-done", auth: authAPIKey})
	add(500, call{what: "internal error", op: get, path: "/v1/tasks/boom", auth: authAPIKey})
	add(503, call{what: "store down", op: get, path: "/v1/tasks/down", auth: authAPIKey})

	// GET /v1/tasks/{id}/receipt
	const receipt = "GET /v1/tasks/{id}/receipt"
	add(200, call{what: "final task", op: receipt, path: "/v1/tasks/flexdeploy-done/receipt", auth: authAPIKey})
	add(200, call{what: "by FlexDeploy task id", op: receipt, path: "/v1/tasks/done/receipt", auth: authAPIKey})
	add(401, call{what: "no key", op: receipt, path: "/v1/tasks/flexdeploy-done/receipt"})
	add(404, call{what: "pending task: no receipt yet", op: receipt, path: "/v1/tasks/flexdeploy-pending/receipt", auth: authAPIKey})
	add(404, call{what: "unknown", op: receipt, path: "/v1/tasks/nope/receipt", auth: authAPIKey})
	add(429, call{what: "over capacity", server: "busy", op: receipt, path: "/v1/tasks/flexdeploy-done/receipt", auth: authAPIKey})
	add(500, call{what: "internal error", op: receipt, path: "/v1/tasks/boom/receipt", auth: authAPIKey})
	add(503, call{what: "store down", op: receipt, path: "/v1/tasks/down/receipt", auth: authAPIKey})
	add(200, call{what: "bound to an artifact and a change", op: receipt, path: "/v1/tasks/flexdeploy-bound/receipt", auth: authAPIKey})

	// GET /v1/tasks/{id}/attestation
	const attest = "GET /v1/tasks/{id}/attestation"
	add(200, call{what: "decided, bound to an artifact", op: attest, path: "/v1/tasks/flexdeploy-bound/attestation", auth: authAPIKey})
	add(401, call{what: "no key", op: attest, path: "/v1/tasks/flexdeploy-bound/attestation"})
	add(404, call{what: "no artifact", op: attest, path: "/v1/tasks/flexdeploy-done/attestation", auth: authAPIKey})
	add(404, call{what: "unknown", op: attest, path: "/v1/tasks/nope/attestation", auth: authAPIKey})
	add(409, call{what: "pending", op: attest, path: "/v1/tasks/flexdeploy-binding/attestation", auth: authAPIKey})
	add(429, call{what: "over capacity", server: "busy", op: attest, path: "/v1/tasks/flexdeploy-bound/attestation", auth: authAPIKey})
	add(500, call{what: "internal error", op: attest, path: "/v1/tasks/boom/attestation", auth: authAPIKey})
	add(503, call{what: "store down", op: attest, path: "/v1/tasks/down/attestation", auth: authAPIKey})

	// POST /v1/azure-devops/checks: the documented header examples make a
	// valid check; without a required one it is refused, without an
	// optional one it is not.
	const ado = "POST /v1/azure-devops/checks"
	if op, ok := sp.operation(ado); ok {
		params := sp.headerParams(t, op)
		headers := func(drop, instance string) map[string]string {
			h := map[string]string{"Content-Type": "application/json"}
			for _, p := range params {
				if p.name != drop {
					h[p.name] = p.example
				}
			}
			delete(h, drop)
			if instance != "" {
				h["TaskInstanceId"] = instance
			}
			return h
		}
		examples := sp.requestExamples(t, op, "application/json")
		for name, body := range examples {
			add(200, call{what: "example " + name, op: ado, header: headers("", ""), body: body, auth: authAPIKey})
		}
		add(200, call{what: "no body", op: ado, header: headers("Content-Type", "0c9b0000-0000-4000-8000-000000000001"), auth: authAPIKey})
		for _, p := range params {
			if p.required {
				add(400, call{what: "without " + p.name, op: ado, header: headers(p.name, ""), body: `{}`, auth: authAPIKey})
			} else {
				add(200, call{what: "without optional " + p.name, op: ado, header: headers(p.name, "0c9b0000-0000-4000-8000-000000000002"), body: `{}`, auth: authAPIKey})
			}
		}
		add(401, call{what: "no key", op: ado, header: headers("", ""), body: `{}`})
		add(413, call{what: "body too large", op: ado, header: headers("", ""), body: big, auth: authAPIKey})
		add(415, call{what: "text/plain", op: ado, header: map[string]string{"Content-Type": "text/plain"}, body: `{}`, auth: authAPIKey})
		add(429, call{what: "over capacity", server: "busy", op: ado, header: headers("", ""), body: `{}`, auth: authAPIKey})
		add(500, call{what: "internal error", op: ado, header: headers("", "boom"), body: `{}`, auth: authAPIKey})
		add(503, call{what: "store down", op: ado, header: headers("", "down"), body: `{}`, auth: authAPIKey})
	}

	// POST /v1/webhook/tasks: every documented example is a valid task;
	// a callback elsewhere is refused.
	const wh = "POST /v1/webhook/tasks"
	if op, ok := sp.operation(wh); ok {
		examples := sp.requestExamples(t, op, "application/json")
		for name, body := range examples {
			add(202, call{what: "example " + name, op: wh, header: jsonType, body: body, auth: authAPIKey})
		}
		task := func(id, callback string) string {
			return `{"taskId":"` + id + `","callbackUrl":"` + callback + `"}`
		}
		const cb = "https://jenkins.example.com/hook"
		add(200, call{what: "repeat of a decided task", op: wh, header: jsonType, body: task("done", cb), auth: authAPIKey})
		add(409, call{what: "repeat naming another artifact", op: wh, header: jsonType,
			body: `{"taskId":"bound","callbackUrl":"` + cb + `","artifact":{"name":"app","digest":"sha256:` + strings.Repeat("b", 64) + `"}}`, auth: authAPIKey})
		add(400, call{what: "no taskId", op: wh, header: jsonType, body: `{"callbackUrl":"` + cb + `"}`, auth: authAPIKey})
		add(400, call{what: "callbackUrl elsewhere", op: wh, header: jsonType, body: task("1", "https://evil.example.com/hook"), auth: authAPIKey})
		add(401, call{what: "no key", op: wh, header: jsonType, body: task("1", cb)})
		add(413, call{what: "body too large", op: wh, header: jsonType, body: big, auth: authAPIKey})
		add(415, call{what: "text/plain", op: wh, header: map[string]string{"Content-Type": "text/plain"}, body: task("1", cb), auth: authAPIKey})
		add(429, call{what: "over capacity", server: "busy", op: wh, header: jsonType, body: task("1", cb), auth: authAPIKey})
		add(500, call{what: "internal error", op: wh, header: jsonType, body: task("boom", cb), auth: authAPIKey})
		add(503, call{what: "store down", op: wh, header: jsonType, body: task("down", cb), auth: authAPIKey})
	}

	// POST /github/webhook, with the real parser and signature check: the
	// documented examples, signed, make tasks.
	const ghOp = "POST /github/webhook"
	if op, ok := sp.operation(ghOp); ok {
		signed := func(event, body string) map[string]string {
			mac := hmac.New(sha256.New, []byte(githubWebhookSecret))
			mac.Write([]byte(body))
			return map[string]string{"Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": "d-1",
				"X-Hub-Signature-256": "sha256=" + hex.EncodeToString(mac.Sum(nil))}
		}
		examples := sp.requestExamples(t, op, "application/json")
		var example string
		for name, body := range examples {
			add(200, call{what: "example " + name, op: ghOp, header: signed("deployment_protection_rule", body), body: body})
			example = body
		}
		ping := `{"zen":"Design for failure.","hook_id":1}`
		add(200, call{what: "ping", op: ghOp, header: signed("ping", ping), body: ping})
		add(200, call{what: "another event", op: ghOp, header: signed("push", `{}`), body: `{}`})
		foreign := strings.Replace(example, "https://api.github.com/", "https://evil.example.com/", 1)
		add(400, call{what: "callback elsewhere", op: ghOp, header: signed("deployment_protection_rule", foreign), body: foreign})
		add(401, call{what: "unsigned", op: ghOp, header: map[string]string{"Content-Type": "application/json", "X-GitHub-Event": "ping"}, body: ping})
		wrong := signed("ping", ping)
		wrong["X-Hub-Signature-256"] = "sha256=" + strings.Repeat("0", 64)
		add(401, call{what: "wrong signature", op: ghOp, header: wrong, body: ping})
		add(413, call{what: "body too large", op: ghOp, header: signed("ping", big), body: big})
		textual := signed("ping", ping)
		textual["Content-Type"] = "text/plain"
		add(415, call{what: "text/plain", op: ghOp, header: textual, body: ping})
	}

	// POST /gitlab/webhook, with the real parser and token check: the
	// documented examples make tasks.
	const glOp = "POST /gitlab/webhook"
	if op, ok := sp.operation(glOp); ok {
		token := func(value string) map[string]string {
			return map[string]string{"Content-Type": "application/json", "X-Gitlab-Event": "Deployment Hook", "X-Gitlab-Token": value}
		}
		examples := sp.requestExamples(t, op, "application/json")
		var example string
		for name, body := range examples {
			add(200, call{what: "example " + name, op: glOp, header: token(gitlabWebhookToken), body: body})
			example = body
		}
		running := strings.Replace(example, `"status":"blocked"`, `"status":"running"`, 1)
		if running == example {
			t.Errorf("%s: the examples are not blocked deployments", glOp)
		}
		add(200, call{what: "a running deployment", op: glOp, header: token(gitlabWebhookToken), body: running})
		add(200, call{what: "a push event", op: glOp, header: token(gitlabWebhookToken), body: `{"object_kind":"push"}`})
		add(400, call{what: "not JSON", op: glOp, header: token(gitlabWebhookToken), body: `{"object_kind":`})
		add(400, call{what: "no deployment id", op: glOp, header: token(gitlabWebhookToken), body: `{"object_kind":"deployment","status":"blocked","environment":"production","project":{"id":42}}`})
		add(401, call{what: "no token", op: glOp, header: map[string]string{"Content-Type": "application/json"}, body: example})
		add(401, call{what: "wrong token", op: glOp, header: token("not-the-webhook-token"), body: example})
		add(413, call{what: "body too large", op: glOp, header: token(gitlabWebhookToken), body: big})
		add(415, call{what: "text/plain", op: glOp, header: map[string]string{"Content-Type": "text/plain", "X-Gitlab-Token": gitlabWebhookToken}, body: example})
	}

	// POST /slack/interactions, with the real handler and signature check.
	const slackOp = "POST /slack/interactions"
	now := time.Now()
	click := slackForm(map[string]any{
		"type": "block_actions", "trigger_id": "t1",
		"user":    map[string]any{"id": "U1", "username": "alice"},
		"channel": map[string]any{"id": "C1"},
		"actions": []any{map[string]any{"action_id": "approve", "block_id": "decision", "type": "button", "value": "tok"}},
	})
	emptyReason := slackForm(map[string]any{
		"type": "view_submission",
		"user": map[string]any{"id": "U1", "username": "alice"},
		"view": map[string]any{"id": "V1", "type": "modal", "callback_id": "reject_reason", "private_metadata": "tok",
			"state": map[string]any{"values": map[string]any{"reason": map[string]any{"reason": map[string]any{"type": "plain_text_input", "value": ""}}}}},
	})
	add(200, call{what: "button click", op: slackOp, header: signSlack(click, now), body: click})
	add(200, call{what: "dialog refused", op: slackOp, header: signSlack(emptyReason, now), body: emptyReason})
	add(400, call{what: "no payload", op: slackOp, header: signSlack("team=T1", now), body: "team=T1"})
	add(401, call{what: "unsigned", op: slackOp, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, body: click})
	add(401, call{what: "stale signature", op: slackOp, header: signSlack(click, now.Add(-10*time.Minute)), body: click})
	add(413, call{what: "body too large", op: slackOp, header: signSlack(big, now), body: big})
	add(429, call{what: "over capacity", server: "busy", op: slackOp, header: signSlack(click, now), body: click})
	add(503, call{what: "Slack not configured", server: "unconfigured", op: slackOp, header: signSlack(click, now), body: click})

	// POST /teams/messages, with the real handler and token checks
	// against the fake Bot Framework.
	const teamsOp = "POST /teams/messages"
	if op, ok := sp.operation(teamsOp); ok {
		teamsExamples := sp.requestExamples(t, op, "application/json")
		if len(teamsExamples) == 0 {
			t.Errorf("%s documents no request examples", teamsOp)
		}
		for name, body := range teamsExamples {
			// The example's service URL is Teams' own: the token names it.
			var a struct{ ServiceURL string }
			_ = json.Unmarshal([]byte(body), &a)
			add(200, call{what: "example " + name, op: teamsOp, header: teamsAuth(env.teams.ChannelToken(a.ServiceURL)), body: body})
		}
	}
	member := teamstest.Member{ID: "29:alice", Name: "Alice", AADObjectID: "aad-alice", Email: "alice@example.com"}
	env.teams.AddMember(member)
	teamsClick := string(env.teams.Click(member, "19:prod@thread.tacv2", "approve", map[string]string{"t": "tok"}))
	otherTenant := strings.ReplaceAll(teamsClick, teamstest.Tenant, "00000000-0000-4000-8000-00000000beef")
	teamsMessage := `{"type":"message","channelId":"msteams","serviceUrl":"` + env.teams.ServiceURL() + `","conversation":{"id":"19:prod@thread.tacv2","tenantId":"` + teamstest.Tenant + `"}}`
	signed := teamsAuth(env.teams.ChannelToken(env.teams.ServiceURL()))
	add(200, call{what: "a click, refused to the clicker", op: teamsOp, header: signed, body: teamsClick})
	add(200, call{what: "a message activity, acknowledged", op: teamsOp, header: signed, body: teamsMessage})
	add(400, call{what: "not an activity", op: teamsOp, header: signed, body: `{"type":`})
	add(401, call{what: "no token", op: teamsOp, header: jsonType, body: teamsClick})
	add(401, call{what: "another service URL", op: teamsOp, header: teamsAuth(env.teams.ChannelToken("https://evil.example.com/")), body: teamsClick})
	add(403, call{what: "another tenant", op: teamsOp, header: signed, body: otherTenant})
	add(413, call{what: "body too large", op: teamsOp, header: signed, body: big + strings.Repeat(" ", 2048)})
	add(429, call{what: "over capacity", server: "busy", op: teamsOp, header: signed, body: teamsClick})

	// POST /slack/events, POST /slack/commands and the web pages.
	env.surfaceProvocations(t, sp, add)

	// Health, readiness and metrics: never shed.
	for _, server := range []string{"main", "busy"} {
		add(200, call{what: "on " + server, server: server, op: "GET /healthz"})
		add(200, call{what: "on " + server, server: server, op: "GET /readyz"})
		add(200, call{what: "on " + server, server: server, op: "GET /metrics"})
	}
	add(503, call{what: "store down", server: "unready", op: "GET /readyz"})
	return out
}

// checkAnswer checks an answer against the operation's documented response
// for its status and returns the problems.
func checkAnswer(t *testing.T, sp *spec, d *drift, op specOp, a answer) []string {
	t.Helper()
	resp := sp.response(t, op, a.status)
	if resp == nil {
		return []string{fmt.Sprintf("answered %d, which the spec does not document (%s)", a.status, excerpt(a.body))}
	}
	var problems []string
	for name, h := range asMap(resp["headers"]) {
		h := sp.resolve(t, asMap(h))
		if req, _ := h["required"].(bool); req && a.header.Get(name) == "" {
			problems = append(problems, fmt.Sprintf("%d: documented header %s is missing", a.status, name))
		}
	}
	content := asMap(resp["content"])
	if len(content) == 0 {
		return problems
	}
	if len(a.body) == 0 {
		if optional, _ := resp["x-body-optional"].(bool); !optional {
			problems = append(problems, fmt.Sprintf("%d: empty body, documented %v", a.status, slices.Sorted(maps.Keys(content))))
		}
		return problems
	}
	mt, _, err := mime.ParseMediaType(a.header.Get("Content-Type"))
	if err != nil {
		return append(problems, fmt.Sprintf("%d: Content-Type %q", a.status, a.header.Get("Content-Type")))
	}
	media := asMap(content[mt])
	if media == nil {
		return append(problems, fmt.Sprintf("%d: Content-Type %s, documented %v", a.status, mt, slices.Sorted(maps.Keys(content))))
	}
	if mt != "application/json" {
		return problems
	}
	var v any
	if err := json.Unmarshal(a.body, &v); err != nil {
		return append(problems, fmt.Sprintf("%d: body is not JSON: %q", a.status, a.body))
	}
	// As an answer of op: a 405 answers a method the path does not have.
	req := a.req.Clone(context.Background())
	req.Method = op.method
	problems = append(problems, sp.kin.validateResponse(req, a.reqBody, a)...)
	return append(problems, d.check(sp.kin.responseSchema(req, a.status, mt), v, strconv.Itoa(a.status)+" body")...)
}

// TestOpenAPIStatuses provokes every documented answer of every operation
// and checks it against the spec; then checks that nothing documented was
// left unprovoked, and that every documented property of the task was met.
func TestOpenAPIStatuses(t *testing.T) {
	t.Parallel()
	sp := loadSpec(t)
	env := newSpecEnv(t, sp)
	calls := provocations(t, sp, env)
	d := &drift{seen: map[string]bool{}}
	exercised := map[string]bool{}

	run := func(op specOp, status int, c call) {
		a := env.send(t, c, op.method)
		if a.status != status {
			t.Errorf("%s (%s): answered %d, want %d: %s", op.key, c.what, a.status, status, excerpt(a.body))
			return
		}
		for _, p := range checkAnswer(t, sp, d, op, a) {
			t.Errorf("%s (%s): %s", op.key, c.what, p)
		}
		// A request the server took is one the spec allows.
		if status/100 == 2 {
			for _, p := range sp.kin.validateRequest(a.req, a.reqBody) {
				t.Errorf("%s (%s): the server took a request the spec refuses: %s", op.key, c.what, p)
			}
		}
		exercised[fmt.Sprintf("%s %d", op.key, status)] = true
	}

	// Shed answers first, while the busy server is full; every other call
	// goes to servers that are not.
	env.fill(t)
	for opKey, byStatus := range calls {
		op, ok := sp.operation(opKey)
		if !ok {
			t.Errorf("the test provokes %s, which the spec does not document", opKey)
			continue
		}
		for status, cs := range byStatus {
			for _, c := range cs {
				if c.server == "busy" {
					run(op, status, c)
				}
			}
		}
	}
	for _, op := range sp.operations() {
		byStatus := calls[op.key]
		for _, status := range slices.Sorted(maps.Keys(byStatus)) {
			for _, c := range byStatus[status] {
				if c.server != "busy" {
					run(op, status, c)
				}
			}
		}
		// Each security scheme the operation lists lets its first
		// successful request through.
		var success *call
		for _, status := range []int{200, 202} {
			if cs := byStatus[status]; success == nil && len(cs) > 0 && cs[0].server == "" {
				c := cs[0]
				c.what += " (" + strconv.Itoa(status) + ")"
				success = &c
			}
		}
		if len(sp.security(op)) > 0 && sp.response(t, op, http.StatusUnauthorized) == nil {
			t.Errorf("%s requires a key but documents no 401", op.key)
		}
		for scheme, h := range sp.authHeaders(t, op, testKey) {
			if success == nil {
				t.Errorf("%s: no successful request to try security scheme %s with", op.key, scheme)
				continue
			}
			c := *success
			c.auth = authScheme
			c.header = map[string]string{h[0]: h[1]}
			for k, v := range success.header {
				c.header[k] = v
			}
			if a := env.send(t, c, op.method); a.status/100 != 2 {
				t.Errorf("%s, request %q with security scheme %s (header %s): answered %d", op.key, c.what, scheme, h[0], a.status)
			}
		}
	}

	for _, op := range sp.operations() {
		for _, status := range sp.statuses(t, op) {
			key := fmt.Sprintf("%s %d", op.key, status)
			if status == http.StatusMethodNotAllowed {
				continue // TestOpenAPIRoutes provokes 405s, per path
			}
			if !exercised[key] && unexercisable[key] == "" {
				t.Errorf("documented answer %s is never provoked: add a request to provocations, or a reason to unexercisable", key)
			}
		}
	}
	for key := range unexercisable {
		i := strings.LastIndex(key, " ")
		opKey := key[:i]
		n, _ := strconv.Atoi(key[i+1:])
		if op, ok := sp.operation(opKey); !ok || sp.response(t, op, n) == nil {
			t.Errorf("unexercisable lists %s, which the spec does not document", key)
		}
	}

	// Every documented property of the task's schemas was met in an
	// answer: the spec promises nothing the server never sends.
	for _, name := range []string{"Task", "Vote", "Person", "Delivery", "MessageRef", "AuditRecord", "Receipt", "Error", "SlackChallenge", "SlashCommandReply"} {
		schema := sp.resolve(t, asMap(asMap(asMap(sp.doc["components"])["schemas"])[name]))
		for prop := range asMap(schema["properties"]) {
			if !d.seen[name+"."+prop] {
				t.Errorf("schema %s documents property %q, which no answer carried", name, prop)
			}
		}
	}

	// Every route that answered was a documented operation, and every
	// documented operation answered through its route.
	env.mu.Lock()
	defer env.mu.Unlock()
	for route := range env.observed {
		if _, ok := sp.operation(route); !ok {
			t.Errorf("the server answered through route %q, which the spec does not document", route)
		}
	}
	for _, op := range sp.operations() {
		if !env.observed[op.key] {
			t.Errorf("%s never answered through a route of its own", op.key)
		}
	}
}

// TestOpenAPIRoutes checks the paths both ways: every documented path
// answers its documented methods and refuses others with 405 and an Allow
// that lists exactly the documented methods; paths near the documented ones
// but not in the spec are unknown (404).
func TestOpenAPIRoutes(t *testing.T) {
	t.Parallel()
	sp := loadSpec(t)
	env := newSpecEnv(t, sp)
	d := &drift{seen: map[string]bool{}}
	errorSchema := sp.kin.doc.Components.Schemas["Error"]

	methods := map[string][]string{}
	for _, op := range sp.operations() {
		methods[op.path] = append(methods[op.path], op.method)
	}
	concrete := func(path string) string { return strings.ReplaceAll(path, "{id}", "flexdeploy-done") }
	for path, documented := range methods {
		slices.Sort(documented)
		for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			if slices.Contains(documented, method) {
				continue
			}
			a := env.send(t, call{what: method + " " + path, path: concrete(path), auth: authAPIKey}, method)
			if a.status != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: answered %d, want 405 (the spec documents only %v)", method, path, a.status, documented)
				continue
			}
			var allow []string
			for _, m := range strings.Split(a.header.Get("Allow"), ",") {
				allow = append(allow, strings.TrimSpace(m))
			}
			slices.Sort(allow)
			if !slices.Equal(allow, documented) {
				t.Errorf("%s %s: Allow %v, but the spec documents %v", method, path, allow, documented)
			}
			var v any
			if err := json.Unmarshal(a.body, &v); err != nil {
				t.Errorf("%s %s: 405 body is not JSON: %q", method, path, a.body)
			} else if err := errorSchema.Value.VisitJSON(v); err != nil {
				t.Errorf("%s %s: 405 body: %v", method, path, err)
			}
			// Where an operation of the path documents its 405, the answer
			// must match that documentation.
			for _, op := range sp.operations() {
				if op.path == path && sp.response(t, op, 405) != nil {
					for _, p := range checkAnswer(t, sp, d, op, a) {
						t.Errorf("%s %s: %s", method, path, p)
					}
				}
			}
		}
	}

	undocumented := []string{
		"/", "/v1", "/v1/", "/v1/task", "/v1/tasks/x/y", "/v1/tasks/x/approve", "/v1/azure-devops",
		"/v1/azure-devops/checks/x", "/v1/checks", "/v2/tasks", "/slack", "/slack/event",
		"/slack/events/x", "/slack/commands/x", "/slack/interactions/x", "/healthz/x", "/readyz/x",
		"/metrics/x", "/approve", "/approve/", "/approve/x/y", "/sso", "/sso/callback/x",
		"/debug/pprof/", "/openapi.yaml", "/api/openapi.yaml", "/version",
	}
	for _, path := range undocumented {
		if methods[path] != nil {
			t.Errorf("%s is documented now: take it off this list", path)
			continue
		}
		for _, method := range []string{"GET", "POST"} {
			a := env.send(t, call{what: method + " " + path, path: path, auth: authAPIKey, header: map[string]string{"Content-Type": "application/json"}, body: "{}"}, method)
			if a.status != http.StatusNotFound {
				t.Errorf("%s %s: answered %d; it is not in the spec, so it should be unknown (404)", method, path, a.status)
			}
		}
	}
}

// TestOpenAPIExamples: every example of the spec (request bodies,
// parameters, headers, schemas) is valid against the schema it
// illustrates, as kin-openapi reads them (loadKinSpec validates the
// document with its examples); TestOpenAPIStatuses sends the request
// examples to the server as well. The negative control: the GitHub
// webhook's example with a deployment id that is not a number, and a
// task example with an undeclared status, are refused.
func TestOpenAPIExamples(t *testing.T) {
	t.Parallel()
	sp := loadSpec(t)
	examples := 0
	for _, path := range sp.kin.doc.Paths.InMatchingOrder() {
		for _, op := range sp.kin.doc.Paths.Value(path).Operations() {
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				for _, media := range op.RequestBody.Value.Content {
					examples += len(media.Examples)
					if media.Example != nil {
						examples++
					}
				}
			}
		}
	}
	// The request bodies alone carried 20 examples when this was written:
	// far fewer means the document was not read as it should be.
	if examples < 10 {
		t.Errorf("%d request body examples: the spec was not read", examples)
	}

	raw, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, old, new string }{
		{"the deployment id a string", "                  deployment:\n                    id: 1\n", "                  deployment:\n                    id: \"one\"\n"},
		{"the webhook's deployment not an object", "                  deployment:\n                    id: 1\n                    ref: main\n                    sha: 1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d\n                    environment: production\n                    creator: {login: octocat}\n", "                  deployment: 42\n"},
	} {
		if strings.Count(string(raw), tc.old) != 1 {
			t.Fatalf("%s: the GitHub webhook's example changed; update this negative control", tc.name)
		}
		broken := strings.Replace(string(raw), tc.old, tc.new, 1)
		doc, err := openapi3.NewLoader().LoadFromData([]byte(broken))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err == nil {
			t.Errorf("%s: kin-openapi accepted the broken example", tc.name)
		}
	}
}
