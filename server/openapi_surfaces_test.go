package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/bot"
	"github.com/approvalbot/approvalbot/flexdeploy"
	"github.com/approvalbot/approvalbot/internal/oidctest"
	"github.com/approvalbot/approvalbot/internal/slacktest"
	"github.com/approvalbot/approvalbot/web"
)

// The surfaces beside the API, for openapi_test.go: Slack's Events API
// and slash command endpoints, and the web pages with their OpenID Connect
// sign-in. Each is its real handler (bot.NewEvents and bot.NewCommands as
// the Slack runtime builds them, the runtime itself while Slack is not
// configured, web.Handler's routes), and people sign in at a real OpenID
// Connect provider on loopback, as a browser would.

// The web pages' client at the provider, and its people.
const (
	webClientID     = "approvalbot-openapi-test"
	webClientSecret = "openapi-test-oidc-client-secret-0123456789"
	webSessionKey   = "openapi-test-web-session-key-0123456789abcdef"
	idpPassword     = "openapi test correct horse battery staple"

	// approverEmail signs in as surfaceApprover; unreachableEmail signs in
	// too, but Slack's directory fails to say whose it is.
	approverEmail    = "alice@example.com"
	unreachableEmail = "dora@example.com"
	// surfaceApprover is the Slack user the policy names (the spec's
	// examples' user_id).
	surfaceApprover = "U0123ABCD"
)

// The page's cookies, as the spec names them.
const (
	sessionCookie = "approvalbot_session"
	signInCookie  = "approvalbot_signin"
)

// linkToken is a surface task's one-time token.
func linkToken(id string) string { return "openapi-test-token-" + id }

// pageLink is a task's page with its token, as the Slack message links it.
func pageLink(id string) string { return web.ReviewURL("", id, linkToken(id)) }

// surfaceTasks is the domain as the web pages and the slash command see
// it: a pending task to decide, pending tasks whose decision fails as
// refusals says, a decided and an expired one, and the ids boom and down
// that the store fails on.
type surfaceTasks struct {
	tasks    map[string]*approvals.Task // read only
	refusals map[string]error
}

var (
	_ web.Service        = (*surfaceTasks)(nil)
	_ bot.SurfaceService = (*surfaceTasks)(nil)
)

func newSurfaceTasks() *surfaceTasks {
	s := &surfaceTasks{tasks: map[string]*approvals.Task{}, refusals: map[string]error{
		"flexdeploy-voted":   approvals.ErrAlreadyVoted,
		"flexdeploy-late":    approvals.ErrExpired,
		"flexdeploy-broken":  errors.New("fake service: disk on fire"),
		"flexdeploy-stalled": fmt.Errorf("fake service: %w", approvals.ErrUnavailable),
	}}
	for id, status := range map[string]approvals.Status{
		"flexdeploy-8900":    approvals.StatusPending,
		"flexdeploy-voted":   approvals.StatusPending,
		"flexdeploy-late":    approvals.StatusPending,
		"flexdeploy-broken":  approvals.StatusPending,
		"flexdeploy-stalled": approvals.StatusPending,
		"flexdeploy-done":    approvals.StatusApproved,
		"flexdeploy-gone":    approvals.StatusExpired,
	} {
		t := fullTask(id, status)
		t.TokenHash = approvals.HashToken(linkToken(id))
		s.tasks[id] = t
	}
	return s
}

func (s *surfaceTasks) Lookup(_ context.Context, id string) (*approvals.Task, error) {
	switch id {
	case "down":
		return nil, fmt.Errorf("fake store: %w", approvals.ErrUnavailable)
	case "boom":
		return nil, errors.New("fake store: disk on fire")
	}
	t, ok := s.tasks[id]
	if !ok {
		return nil, approvals.ErrNotFound
	}
	c := *t
	return &c, nil
}

// Decide checks as Service.Decide does, in its order, under a policy that
// asks for a reason to reject.
func (s *surfaceTasks) Decide(_ context.Context, req approvals.DecideRequest) (*approvals.Task, error) {
	if req.Action != approvals.ActionApprove && req.Action != approvals.ActionReject {
		return nil, approvals.Invalidf("unknown action %q", req.Action)
	}
	var t *approvals.Task
	for _, c := range s.tasks {
		if c.TokenMatches(req.Token) {
			t = c
		}
	}
	if t == nil {
		return nil, approvals.ErrBadToken
	}
	if req.Action == approvals.ActionReject && strings.TrimSpace(req.Reason) == "" {
		return t, approvals.ErrReasonRequired
	}
	if err := s.refusals[t.ID]; err != nil {
		if approvals.IsRefusal(err) {
			return t, err
		}
		return nil, err
	}
	decided := *t
	decided.Status, decided.Reason = approvals.StatusApproved, req.Reason
	if req.Action == approvals.ActionReject {
		decided.Status = approvals.StatusRejected
	}
	at := fixedTime(5)
	decided.DecidedBy, decided.DecidedAt = &req.User, &at
	return &decided, nil
}

func (s *surfaceTasks) Waiting(_ context.Context, user string) ([]*approvals.Task, error) {
	if user != surfaceApprover {
		return nil, nil
	}
	return []*approvals.Task{s.tasks["flexdeploy-8900"]}, nil
}

func (s *surfaceTasks) RecentlyDecided(context.Context, string, int) ([]*approvals.Task, error) {
	return nil, nil
}

func (s *surfaceTasks) Token(t *approvals.Task) (string, error) { return linkToken(t.ID), nil }

func (s *surfaceTasks) MayDecide(_ context.Context, _ *approvals.Task, user string) (bool, error) {
	return user == surfaceApprover, nil
}

// surfaceDirectory is Slack's directory as the sign-in sees it: emails to
// users; unreachableEmail's look-up fails.
type surfaceDirectory map[string]string

func (d surfaceDirectory) UserIDByEmail(_ context.Context, email string) (string, error) {
	if email == unreachableEmail {
		return "", errors.New("fake slack: users.lookupByEmail: connection reset")
	}
	if id, ok := d[email]; ok {
		return id, nil
	}
	return "", fmt.Errorf("fake slack: users.lookupByEmail: %w", approvals.ErrNotFound)
}

// newSurfaces returns the routes of the surfaces, the web pages' at
// publicURL, and the Slack endpoints as the Slack runtime answers them
// while Slack is not configured.
func newSurfaces(t *testing.T, publicURL string) (routes, unconfigured map[string]http.Handler) {
	t.Helper()
	tasks := newSurfaceTasks()
	tools, err := approvals.NewTools(flexdeploy.Tool(nil, false))
	if err != nil {
		t.Fatal(err)
	}
	policies := func() []approvals.Policy {
		return []approvals.Policy{{Name: "production", Approvers: approvals.Approvers{Users: []string{surfaceApprover}},
			RequireSSO: true, RequireRejectReason: true}}
	}

	// As the Slack runtime builds them for its settings. The notifier
	// only renders the command's replies; a fake Slack stands behind it
	// all the same, so that nothing reaches the real one.
	slack := slacktest.New()
	t.Cleanup(slack.Close)
	verifier := bot.NewVerifier(slackSigningSecret, nil)
	routes = map[string]http.Handler{
		"POST /slack/events": bot.NewEvents(bot.EventsConfig{Verifier: verifier, MaxBodyBytes: 1024, Seen: bot.NewSeenEvents()}),
		"POST /slack/commands": bot.NewCommands(bot.CommandsConfig{Verifier: verifier, Service: tasks, MaxBodyBytes: 1024,
			View: bot.New(bot.Config{BotToken: "xoxb-openapi-test", APIURL: slack.APIURL(), Policies: policies, Tools: tools})}),
	}

	idp, err := oidctest.New(oidctest.Config{
		ClientID: webClientID, ClientSecret: webClientSecret,
		RedirectURIs: []string{publicURL + web.CallbackPath},
		Users: []oidctest.User{
			{Email: approverEmail, Password: idpPassword, EmailVerified: true, Name: "Alice Approver"},
			{Email: unreachableEmail, Password: idpPassword, EmailVerified: true, Name: "Dora Unreachable"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	pages, err := web.New(web.Config{
		PublicURL: publicURL, Issuer: idp.Issuer(), ClientID: webClientID, ClientSecret: webClientSecret,
		SessionKey: []byte(webSessionKey),
		Service:    tasks, Directory: surfaceDirectory{approverEmail: surfaceApprover},
		Policies: policies, Tools: tools, MaxBodyBytes: 1024, Clock: func() time.Time { return fixedTime(5) },
	})
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(routes, pages.Routes())

	slackRuntime := bot.NewRuntime(bot.RuntimeConfig{}) // no settings applied
	t.Cleanup(slackRuntime.Close)
	unconfigured = map[string]http.Handler{
		"POST /slack/interactions": slackRuntime,
		"POST /slack/events":       slackRuntime.EventsHandler(),
		"POST /slack/commands":     slackRuntime.CommandsHandler(),
	}
	return routes, unconfigured
}

// --- signing in -------------------------------------------------------------

// browser is a person's browser: it keeps cookies and follows redirects,
// except, when stopAtCallback, the provider's back to the bot's callback,
// which the test then sends itself.
func browser(t *testing.T, stopAtCallback bool) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if stopAtCallback && req.URL.Path == web.CallbackPath {
			return http.ErrUseLastResponse
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}}
}

// signIn opens flexdeploy-8900's page on the main server and signs in as
// email at the provider's login page. It returns the browser and the
// answer that brought it back: the page, or, when stopAtCallback, the
// provider's redirect to the callback.
func (env *specEnv) signIn(t *testing.T, email string, stopAtCallback bool) (*http.Client, *http.Response) {
	t.Helper()
	c := browser(t, stopAtCallback)
	res, err := c.Get(env.servers["main"].URL + pageLink("flexdeploy-8900"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Request.URL.Path != oidctest.LoginPath {
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		t.Fatalf("the page did not lead to the provider's login page: %d at %s: %s", res.StatusCode, res.Request.URL.Path, excerpt(body))
	}
	res, err = oidctest.SignIn(context.Background(), c, res, email, idpPassword)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return c, res
}

// cookie is the Cookie header of the browser's cookie name for path on
// the main server.
func (env *specEnv) cookie(t *testing.T, c *http.Client, path, name string) string {
	t.Helper()
	u, err := url.Parse(env.servers["main"].URL + path)
	if err != nil {
		t.Fatal(err)
	}
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Name + "=" + ck.Value
		}
	}
	t.Fatalf("the browser has no cookie %s for %s", name, path)
	return ""
}

// session is the Cookie header of email's sign-in.
func (env *specEnv) session(t *testing.T, email string) string {
	t.Helper()
	c, res := env.signIn(t, email, false)
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/approve/flexdeploy-8900" {
		t.Fatalf("signed in as %s, the browser is at %s with %d, want the task's page", email, res.Request.URL.Path, res.StatusCode)
	}
	return env.cookie(t, c, "/approve/", sessionCookie)
}

// callback is the request the provider sends email's browser back to the
// bot with, not sent yet: its path and query, and the sign-in's cookie.
func (env *specEnv) callback(t *testing.T, email string) (path, cookie string) {
	t.Helper()
	c, res := env.signIn(t, email, true)
	loc, err := res.Location()
	if err != nil || loc.Path != web.CallbackPath {
		t.Fatalf("signed in as %s, the provider answered %d to %v, want a redirect to the callback", email, res.StatusCode, loc)
	}
	return loc.RequestURI(), env.cookie(t, c, web.CallbackPath, signInCookie)
}

// startSignIn opens flexdeploy-8900's page without a sign-in; it returns
// the sign-in cookie the page sets and the state it sends to the provider.
func (env *specEnv) startSignIn(t *testing.T) (cookie, state string) {
	t.Helper()
	a := env.send(t, call{what: "start a sign-in", path: pageLink("flexdeploy-8900")}, http.MethodGet)
	loc, err := url.Parse(a.header.Get("Location"))
	if a.status != http.StatusFound || err != nil {
		t.Fatalf("the page answered %d to %q, want a redirect to the provider", a.status, a.header.Get("Location"))
	}
	for _, ck := range (&http.Response{Header: a.header}).Cookies() {
		if ck.Name == signInCookie {
			return ck.Name + "=" + ck.Value, loc.Query().Get("state")
		}
	}
	t.Fatal("the page set no sign-in cookie")
	return "", ""
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token of the signed-in page of a task.
func (env *specEnv) csrf(t *testing.T, session, id string) string {
	t.Helper()
	a := env.send(t, call{what: "the page of " + id, path: pageLink(id), header: map[string]string{"Cookie": session}}, http.MethodGet)
	m := csrfField.FindSubmatch(a.body)
	if a.status != http.StatusOK || m == nil {
		t.Fatalf("the page of %s answered %d without a form: %s", id, a.status, excerpt(a.body))
	}
	return html.UnescapeString(string(m[1]))
}

// formExamples returns the operation's form request examples, encoded.
func formExamples(t *testing.T, sp *spec, op specOp) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, raw := range sp.examples(t, op, "application/x-www-form-urlencoded") {
		var fields map[string]any
		if err := json.Unmarshal([]byte(raw), &fields); err != nil {
			t.Fatalf("%s: example %s: %v", op.key, name, err)
		}
		form := url.Values{}
		for k, v := range fields {
			form.Set(k, fmt.Sprint(v))
		}
		out[name] = form.Encode()
	}
	return out
}

// --- requests ---------------------------------------------------------------

// surfaceProvocations adds the requests of the Slack events and slash
// command endpoints and of the web pages. The documented examples, signed,
// are valid requests; the web pages' sign-ins are made here, so that the
// requests carry their cookies, codes and CSRF tokens.
func (env *specEnv) surfaceProvocations(t *testing.T, sp *spec, add func(int, call)) {
	t.Helper()
	now := time.Now()
	signJSON := func(body string, at time.Time) map[string]string {
		h := signSlack(body, at)
		h["Content-Type"] = "application/json"
		return h
	}
	formType := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}

	// POST /slack/events
	const events = "POST /slack/events"
	if op, ok := sp.operation(events); ok {
		examples := sp.requestExamples(t, op, "application/json")
		for name, body := range examples {
			add(200, call{what: "example " + name, op: events, header: signJSON(body, now), body: body})
		}
	}
	home := slacktest.AppHomeOpened("EvOPENAPI1", surfaceApprover, "home")
	retry := signJSON(home, now)
	retry["X-Slack-Retry-Num"], retry["X-Slack-Retry-Reason"] = "1", "http_timeout"
	messages := slacktest.AppHomeOpened("EvOPENAPI2", surfaceApprover, "messages")
	bigEvent := `{"type":"event_callback","event_id":"` + strings.Repeat("x", 2048) + `"}`
	add(200, call{what: "app_home_opened", op: events, header: signJSON(home, now), body: home})
	add(200, call{what: "its retry, dropped", op: events, header: retry, body: home})
	add(200, call{what: "the Messages tab, acknowledged", op: events, header: signJSON(messages, now), body: messages})
	add(400, call{what: "not JSON", op: events, header: signJSON(`{"type":`, now), body: `{"type":`})
	add(401, call{what: "unsigned", op: events, header: map[string]string{"Content-Type": "application/json"}, body: home})
	add(401, call{what: "stale signature", op: events, header: signJSON(home, now.Add(-10*time.Minute)), body: home})
	add(413, call{what: "body too large", op: events, header: signJSON(bigEvent, now), body: bigEvent})
	add(429, call{what: "over capacity", server: "busy", op: events, header: signJSON(home, now), body: home})
	add(503, call{what: "Slack not configured", server: "unconfigured", op: events, header: signJSON(home, now), body: home})

	// POST /slack/commands
	const commands = "POST /slack/commands"
	if op, ok := sp.operation(commands); ok {
		examples := formExamples(t, sp, op)
		if len(examples) == 0 {
			t.Errorf("%s documents no request examples", commands)
		}
		for name, body := range examples {
			add(200, call{what: "example " + name, op: commands, header: signSlack(body, now), body: body})
		}
	}
	hidden := slacktest.SlashCommand{Command: "/approvals", Text: "flexdeploy-nope", UserID: surfaceApprover, UserName: "alice", ChannelID: "D1"}.Form().Encode()
	bigCommand := slacktest.SlashCommand{Command: "/approvals", Text: strings.Repeat("x", 2048), UserID: surfaceApprover}.Form().Encode()
	add(200, call{what: "a task the caller may not see", op: commands, header: signSlack(hidden, now), body: hidden})
	add(400, call{what: "not a form", op: commands, header: signSlack("text=%zz", now), body: "text=%zz"})
	add(401, call{what: "unsigned", op: commands, header: formType, body: hidden})
	add(401, call{what: "stale signature", op: commands, header: signSlack(hidden, now.Add(-10*time.Minute)), body: hidden})
	add(413, call{what: "body too large", op: commands, header: signSlack(bigCommand, now), body: bigCommand})
	add(429, call{what: "over capacity", server: "busy", op: commands, header: signSlack(hidden, now), body: hidden})
	add(503, call{what: "Slack not configured", server: "unconfigured", op: commands, header: signSlack(hidden, now), body: hidden})

	// GET /approve/{id}
	const page = "GET /approve/{id}"
	session := env.session(t, approverEmail)
	signedIn := map[string]string{"Cookie": session}
	add(200, call{what: "signed in", op: page, path: pageLink("flexdeploy-8900"), header: signedIn})
	add(302, call{what: "not signed in", op: page, path: pageLink("flexdeploy-8900")})
	add(403, call{what: "no token", op: page, path: "/approve/flexdeploy-8900", header: signedIn})
	add(403, call{what: "another task's token", op: page, path: web.ReviewURL("", "flexdeploy-8900", linkToken("flexdeploy-done"))})
	add(403, call{what: "no such task", op: page, path: web.ReviewURL("", "flexdeploy-nope", linkToken("flexdeploy-8900"))})
	add(409, call{what: "decided task (a replayed link)", op: page, path: pageLink("flexdeploy-done")})
	add(410, call{what: "expired task", op: page, path: pageLink("flexdeploy-gone")})
	add(429, call{what: "over capacity", server: "busy", op: page, path: pageLink("flexdeploy-8900")})
	add(500, call{what: "internal error", op: page, path: pageLink("boom")})
	add(503, call{what: "store down", op: page, path: pageLink("down")})

	// POST /approve/{id}, with the form the signed-in page gives.
	const decide = "POST /approve/{id}"
	// The page's own form comes with the page's origin (without it, or
	// with another, the form is refused before anything else).
	origin := env.servers["main"].URL
	signedForm := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Cookie": session, "Origin": origin}
	form := func(id, token, action, reason string) string {
		return url.Values{"t": {token}, "csrf": {env.csrf(t, session, id)}, "action": {action}, "reason": {reason}}.Encode()
	}
	at := func(id string) string { return "/approve/" + id }
	approve := form("flexdeploy-8900", linkToken("flexdeploy-8900"), "approve", "")
	bigForm := approve + "&reason=" + strings.Repeat("x", 2048)
	add(200, call{what: "approve", op: decide, path: at("flexdeploy-8900"), header: signedForm, body: approve})
	add(200, call{what: "reject with a reason", op: decide, path: at("flexdeploy-8900"), header: signedForm,
		body: form("flexdeploy-8900", linkToken("flexdeploy-8900"), "reject", "not during the freeze")})
	add(400, call{what: "unreadable form", op: decide, path: at("flexdeploy-8900"), header: signedForm, body: "t=%zz"})
	add(400, call{what: "form too large", op: decide, path: at("flexdeploy-8900"), header: signedForm, body: bigForm})
	add(400, call{what: "neither approve nor reject", op: decide, path: at("flexdeploy-8900"), header: signedForm,
		body: form("flexdeploy-8900", linkToken("flexdeploy-8900"), "maybe", "")})
	add(400, call{what: "reject without the reason the policy asks for", op: decide, path: at("flexdeploy-8900"), header: signedForm,
		body: form("flexdeploy-8900", linkToken("flexdeploy-8900"), "reject", "")})
	add(401, call{what: "not signed in", op: decide, path: at("flexdeploy-8900"), header: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": origin}, body: approve})
	add(403, call{what: "from another origin", op: decide, path: at("flexdeploy-8900"), header: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Cookie": session, "Origin": "https://evil.example"}, body: approve})
	add(403, call{what: "forged CSRF token", op: decide, path: at("flexdeploy-8900"), header: signedForm,
		body: url.Values{"t": {linkToken("flexdeploy-8900")}, "csrf": {"forged"}, "action": {"approve"}}.Encode()})
	add(403, call{what: "another task's token", op: decide, path: at("flexdeploy-8900"), header: signedForm,
		body: form("flexdeploy-8900", linkToken("flexdeploy-voted"), "approve", "")})
	for _, d := range []struct {
		status   int
		what, id string
	}{
		{409, "approval counted already", "flexdeploy-voted"},
		{410, "expired meanwhile", "flexdeploy-late"},
		{500, "internal error", "flexdeploy-broken"},
		{503, "store down", "flexdeploy-stalled"},
	} {
		add(d.status, call{what: d.what, op: decide, path: at(d.id), header: signedForm, body: form(d.id, linkToken(d.id), "approve", "")})
	}
	add(429, call{what: "over capacity", server: "busy", op: decide, path: at("flexdeploy-8900"), header: signedForm, body: approve})

	// GET /sso/callback: the provider's redirects back, made at the
	// provider and sent here once each (a code is good for one exchange).
	const callback = "GET " + web.CallbackPath
	path, cookie := env.callback(t, approverEmail)
	add(303, call{what: "signed in at the provider", op: callback, path: path, header: map[string]string{"Cookie": cookie}})
	path, cookie = env.callback(t, unreachableEmail)
	add(503, call{what: "Slack's directory does not answer", op: callback, path: path, header: map[string]string{"Cookie": cookie}})
	cookie, state := env.startSignIn(t)
	withFlow := map[string]string{"Cookie": cookie}
	back := func(query url.Values) string { return web.CallbackPath + "?" + query.Encode() }
	add(400, call{what: "no sign-in under way", op: callback, path: back(url.Values{"code": {"c"}, "state": {state}})})
	add(400, call{what: "another state", op: callback, path: back(url.Values{"code": {"c"}, "state": {"forged"}}), header: withFlow})
	add(403, call{what: "the provider refused", op: callback, path: back(url.Values{"error": {"access_denied"}, "state": {state}}), header: withFlow})
	add(502, call{what: "the provider refuses the code", op: callback, path: back(url.Values{"code": {"not-a-code"}, "state": {state}}), header: withFlow})
	add(429, call{what: "over capacity", server: "busy", op: callback, path: back(url.Values{"code": {"c"}, "state": {state}}), header: withFlow})
}
