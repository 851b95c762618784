package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/oidctest"
)

// fakeService is the domain as the page sees it, with func fields.
type fakeService struct {
	mu      sync.Mutex
	tasks   map[string]*approvals.Task
	decided []approvals.DecideRequest
	decide  func(req approvals.DecideRequest, t *approvals.Task) (*approvals.Task, error)
}

func (f *fakeService) Lookup(_ context.Context, id string) (*approvals.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, ok := f.tasks[id]; ok {
		c := *t
		return &c, nil
	}
	return nil, approvals.ErrNotFound
}

func (f *fakeService) Decide(_ context.Context, req approvals.DecideRequest) (*approvals.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.decided = append(f.decided, req)
	for _, t := range f.tasks {
		if t.TokenMatches(req.Token) {
			return f.decide(req, t)
		}
	}
	return nil, approvals.ErrBadToken
}

func (f *fakeService) decisions() []approvals.DecideRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]approvals.DecideRequest(nil), f.decided...)
}

type fakeDirectory map[string]string

func (d fakeDirectory) UserIDByEmail(_ context.Context, email string) (string, error) {
	if id, ok := d[email]; ok {
		return id, nil
	}
	return "", fmt.Errorf("slack: users.lookupByEmail: %w", approvals.ErrNotFound)
}

const (
	clientID     = "approvalbot"
	clientSecret = "web-test-client-secret-0123456789"
	password     = "correct horse battery staple"
)

// testEnv is the page on loopback, a real OpenID Connect provider and a
// fake domain.
type testEnv struct {
	url   string
	idp   *oidctest.Provider
	svc   *fakeService
	token string
	// transport trusts the page's certificate when it is on https.
	transport http.RoundTripper
}

func newTestEnv(t *testing.T) *testEnv { return newTestEnvOn(t, false) }

// newTestEnvOn is newTestEnv, over https when tls is set.
func newTestEnvOn(t *testing.T, tls bool) *testEnv {
	t.Helper()
	page := httptest.NewUnstartedServer(nil)
	publicURL := "http://" + page.Listener.Addr().String()
	if tls {
		publicURL = "https://" + page.Listener.Addr().String()
	}
	idp, err := oidctest.New(oidctest.Config{
		ClientID: clientID, ClientSecret: clientSecret,
		RedirectURIs: []string{publicURL + CallbackPath},
		Users: []oidctest.User{
			{Email: "alice@example.com", Password: password, EmailVerified: true, Name: "Alice Approver"},
			{Email: "mallory@example.com", Password: password, EmailVerified: false, Name: "Mallory Unverified"},
			{Email: "stranger@example.com", Password: password, EmailVerified: true, Name: "Not In Slack"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	token := "link-token-" + t.Name()
	svc := &fakeService{tasks: map[string]*approvals.Task{
		"acme-1": {ID: "acme-1", Source: "acme", TaskID: "1", Status: approvals.StatusPending, RequiredApprovals: 1,
			Context:   approvals.Context{Description: "v2.3 to PROD", Environment: "PROD", RequestedBy: "bob@example.com"},
			Policy:    "production",
			ExpiresAt: time.Now().Add(time.Hour), TokenHash: approvals.HashToken(token)},
		"acme-done": {ID: "acme-done", Source: "acme", TaskID: "done", Status: approvals.StatusApproved, RequiredApprovals: 1,
			TokenHash: approvals.HashToken("done-token")},
		"acme-gone": {ID: "acme-gone", Source: "acme", TaskID: "gone", Status: approvals.StatusExpired, RequiredApprovals: 1,
			TokenHash: approvals.HashToken("gone-token")},
	}}
	svc.decide = func(req approvals.DecideRequest, t *approvals.Task) (*approvals.Task, error) {
		c := *t
		c.Status = approvals.StatusApproved
		c.DecidedBy = &req.User
		return &c, nil
	}
	tools, err := approvals.NewTools(approvals.Tool{Name: "acme", DisplayName: "Acme Deploy"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{
		PublicURL: publicURL, Issuer: idp.Issuer(), ClientID: clientID, ClientSecret: clientSecret,
		SessionKey: []byte("web-test-session-key-0123456789abcdef"),
		Service:    svc,
		Directory:  fakeDirectory{"alice@example.com": "UALICE", "mallory@example.com": "UMALLORY"},
		Policies: func() []approvals.Policy {
			return []approvals.Policy{{Name: "production", Approvers: approvals.Approvers{Users: []string{"UALICE"}}, RequireSSO: true}}
		},
		Tools: tools,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for pattern, handler := range h.Routes() {
		mux.Handle(pattern, handler)
	}
	page.Config.Handler = mux
	env := &testEnv{url: publicURL, idp: idp, svc: svc, token: token}
	if tls {
		page.StartTLS()
		env.transport = page.Client().Transport
	} else {
		page.Start()
	}
	t.Cleanup(page.Close)
	return env
}

// browser is an HTTP client with cookies, as a browser is.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

func (e *testEnv) link(id, token string) string {
	return ReviewURL(e.url, id, token)
}

func read(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// signIn opens the link and signs in at the provider; it returns the
// answer the page gives after the provider's redirect back.
func (e *testEnv) signIn(t *testing.T, c *http.Client, email string) (*http.Response, string) {
	t.Helper()
	res, err := c.Get(e.link("acme-1", e.token))
	if err != nil {
		t.Fatal(err)
	}
	if res.Request.URL.Path != oidctest.LoginPath {
		t.Fatalf("the link did not lead to the provider's login page: %d %s\n%s", res.StatusCode, res.Request.URL.Path, read(t, res))
	}
	res, err = oidctest.SignIn(context.Background(), c, res, email, password)
	if err != nil {
		t.Fatal(err)
	}
	return res, read(t, res)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// post sends the form as the page's own form is sent: with the page's
// origin.
func (e *testEnv) post(t *testing.T, c *http.Client, form url.Values) (*http.Response, string) {
	t.Helper()
	return e.postWith(t, c, form, map[string]string{"Origin": e.url})
}

func (e *testEnv) postWith(t *testing.T, c *http.Client, form url.Values, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+"/approve/acme-1", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res, read(t, res)
}

func TestWebSignInAndApprove(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := browser(t)
	res, page := e.signIn(t, c, "alice@example.com")
	if res.StatusCode != http.StatusOK || !strings.Contains(page, `id="approve"`) || !strings.Contains(page, "v2.3 to PROD") {
		t.Fatalf("after sign-in: %d\n%s", res.StatusCode, page)
	}
	if res.Request.URL.Path != "/approve/acme-1" || res.Request.URL.Query().Get("t") != e.token {
		t.Errorf("back at %s, want the task's page", res.Request.URL.Path)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "Referrer-Policy", "Cache-Control"} {
		if res.Header.Get(h) == "" {
			t.Errorf("the page has no %s header", h)
		}
	}
	if !strings.Contains(page, "Signed in as Alice Approver (alice@example.com), Slack user UALICE") {
		t.Errorf("the page does not say who is signed in:\n%s", page)
	}
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the form:\n%s", page)
	}
	res, page = e.post(t, c, url.Values{"t": {e.token}, "csrf": {m[1]}, "action": {"approve"}, "reason": {"looks good"}})
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "Approved. Acme Deploy is being told.") {
		t.Fatalf("approve: %d\n%s", res.StatusCode, page)
	}
	got := e.svc.decisions()
	if len(got) != 1 {
		t.Fatalf("%d decisions, want 1", len(got))
	}
	want := approvals.DecideRequest{Token: e.token, Action: approvals.ActionApprove, User: approvals.Person{ID: "UALICE", Name: "Alice Approver", Email: "alice@example.com"}, Reason: "looks good", SignedIn: true}
	if got[0] != want {
		t.Errorf("decided %+v, want %+v", got[0], want)
	}
}

func TestWebSessionCookie(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := browser(t)
	e.signIn(t, c, "alice@example.com")
	u, _ := url.Parse(e.url + "/approve/")
	cookies := c.Jar.Cookies(u)
	if len(cookies) != 1 || cookies[0].Name != sessionCookie {
		t.Fatalf("cookies sent to the page: %v", cookies)
	}
	// The jar shows names and values only: the attributes are the
	// handler's.
	h := &Handler{secure: true}
	ck := h.cookie(sessionCookie, "v", SessionTTL)
	if ck.Name != "__Host-"+sessionCookie || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.MaxAge != int(SessionTTL/time.Second) || ck.Path != "/" {
		t.Errorf("session cookie over https %+v", ck)
	}
	h = &Handler{secure: false}
	if ck := h.cookie(sessionCookie, "v", SessionTTL); ck.Name != sessionCookie || ck.Secure || ck.Path != "/approve/" {
		t.Errorf("session cookie over http on loopback %+v", ck)
	}
	for _, tt := range []struct {
		public string
		secure bool
	}{{"https://approvals.example.com", true}, {"http://127.0.0.1:8080", false}, {"http://localhost:8080/", false}} {
		h, err := New(Config{PublicURL: tt.public, Issuer: "https://idp.example.com", ClientID: "x", SessionKey: make([]byte, 32),
			Service: e.svc, Directory: fakeDirectory{}})
		if err != nil {
			t.Fatal(err)
		}
		if h.secure != tt.secure {
			t.Errorf("%s: Secure %v, want %v", tt.public, h.secure, tt.secure)
		}
	}
	// A name that merely starts like a loopback address may resolve
	// anywhere: not loopback, so no plain http.
	for _, public := range []string{"http://approvals.example.com", "http://127.evil.example.com"} {
		if _, err := New(Config{PublicURL: public, Issuer: "https://idp.example.com", ClientID: "x", SessionKey: make([]byte, 32),
			Service: e.svc, Directory: fakeDirectory{}}); err == nil {
			t.Errorf("a plain http public URL off loopback was accepted: %s", public)
		}
	}
}

// TestWebRefusals: every way in that must not decide, decides nothing.
func TestWebRefusals(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)

	get := func(c *http.Client, link string) (*http.Response, string) {
		t.Helper()
		res, err := c.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		return res, read(t, res)
	}
	t.Run("links", func(t *testing.T) {
		for _, tt := range []struct {
			name, link string
			status     int
			says       string
		}{
			{"decided task (replayed link)", e.link("acme-done", "done-token"), http.StatusConflict, "already been decided"},
			{"expired task", e.link("acme-gone", "gone-token"), http.StatusGone, "has expired"},
			{"another task's token", e.link("acme-1", "done-token"), http.StatusForbidden, "no longer valid"},
			{"no token", e.url + "/approve/acme-1", http.StatusForbidden, "no longer valid"},
			{"unknown task", e.link("acme-nope", e.token), http.StatusForbidden, "no longer valid"},
		} {
			res, page := get(browser(t), tt.link)
			if res.StatusCode != tt.status || !strings.Contains(page, tt.says) || res.Request.URL.Path == oidctest.LoginPath {
				t.Errorf("%s: %d at %s, want %d saying %q\n%s", tt.name, res.StatusCode, res.Request.URL.Path, tt.status, tt.says, page)
			}
		}
	})
	t.Run("unverified email", func(t *testing.T) {
		res, page := e.signIn(t, browser(t), "mallory@example.com")
		if res.StatusCode != http.StatusForbidden || !strings.Contains(page, "has not verified your email address") {
			t.Errorf("%d\n%s", res.StatusCode, page)
		}
	})
	t.Run("email of nobody in Slack", func(t *testing.T) {
		res, page := e.signIn(t, browser(t), "stranger@example.com")
		if res.StatusCode != http.StatusForbidden || !strings.Contains(page, "No Slack user has your email address") {
			t.Errorf("%d\n%s", res.StatusCode, page)
		}
	})
	t.Run("forged state", func(t *testing.T) {
		c := browser(t)
		res, _ := get(c, e.link("acme-1", e.token)) // the sign-in starts: its cookie is set
		if res.Request.URL.Path != oidctest.LoginPath {
			t.Fatalf("at %s", res.Request.URL.Path)
		}
		res, page := get(c, e.url+CallbackPath+"?code=whatever&state=forged")
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(page, "its state differs") {
			t.Errorf("%d\n%s", res.StatusCode, page)
		}
	})
	t.Run("callback without a sign-in", func(t *testing.T) {
		res, page := get(browser(t), e.url+CallbackPath+"?code=whatever&state=whatever")
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(page, "not started here") {
			t.Errorf("%d\n%s", res.StatusCode, page)
		}
	})
	t.Run("form without CSRF token, or another's", func(t *testing.T) {
		c := browser(t)
		if res, page := e.signIn(t, c, "alice@example.com"); res.StatusCode != http.StatusOK {
			t.Fatalf("%d\n%s", res.StatusCode, page)
		}
		for _, csrf := range []string{"", "AAAA", b64.EncodeToString([]byte("forged"))} {
			res, page := e.post(t, c, url.Values{"t": {e.token}, "csrf": {csrf}, "action": {"approve"}})
			if res.StatusCode != http.StatusForbidden || !strings.Contains(page, "nothing was decided") {
				t.Errorf("csrf %q: %d\n%s", csrf, res.StatusCode, page)
			}
		}
	})
	t.Run("form without a session", func(t *testing.T) {
		res, page := e.post(t, browser(t), url.Values{"t": {e.token}, "csrf": {"x"}, "action": {"approve"}})
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "nothing was decided") {
			t.Errorf("%d\n%s", res.StatusCode, page)
		}
	})
	if n := len(e.svc.decisions()); n != 0 {
		t.Errorf("%d decisions were asked for, want none", n)
	}
}

// TestWebDomainRefusal: what the domain refuses is shown with its reply,
// and the form goes when asking again would change nothing.
func TestWebDomainRefusal(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.svc.decide = func(req approvals.DecideRequest, t *approvals.Task) (*approvals.Task, error) {
		if req.Action == approvals.ActionReject && req.Reason == "" {
			return t, approvals.ErrReasonRequired
		}
		return t, approvals.ErrNotApprover
	}
	c := browser(t)
	_, page := e.signIn(t, c, "alice@example.com")
	csrf := csrfField.FindStringSubmatch(page)[1]

	res, page := e.post(t, c, url.Values{"t": {e.token}, "csrf": {csrf}, "action": {"reject"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(page, approvals.Reply(approvals.ErrReasonRequired, "", "")) || !strings.Contains(page, `id="reject"`) {
		t.Errorf("reject without a reason: %d\n%s", res.StatusCode, page)
	}
	res, page = e.post(t, c, url.Values{"t": {e.token}, "csrf": {csrf}, "action": {"approve"}})
	if res.StatusCode != http.StatusForbidden || !strings.Contains(page, approvals.Reply(approvals.ErrNotApprover, "", "")) || strings.Contains(page, "<form") {
		t.Errorf("not an approver: %d\n%s", res.StatusCode, page)
	}
}

func TestWebProviderDown(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.idp.Close()
	res, err := browser(t).Get(e.link("acme-1", e.token))
	if err != nil {
		t.Fatal(err)
	}
	if page := read(t, res); res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(page, "cannot reach the sign-in provider") {
		t.Errorf("%d\n%s", res.StatusCode, page)
	}
}

func TestCookieSigning(t *testing.T) {
	t.Parallel()
	s := newSigner([]byte("k"))
	v := seal(s.session, sessionCookie, session{ID: "a", User: "U1"})
	var got session
	if !open(s.session, sessionCookie, v, &got) || got.User != "U1" {
		t.Fatalf("own cookie refused: %+v", got)
	}
	for name, bad := range map[string]string{
		"other purpose": seal(s.flow, sessionCookie, session{ID: "a", User: "U1"}),
		"other name":    seal(s.session, flowCookie, session{ID: "a", User: "U1"}),
		"changed":       strings.Replace(v, v[:4], "AAAA", 1),
		"no MAC":        strings.Split(v, ".")[0],
		"other key":     seal(newSigner([]byte("other")).session, sessionCookie, session{ID: "a", User: "U1"}),
	} {
		if open(s.session, sessionCookie, bad, &session{}) {
			t.Errorf("%s: accepted", name)
		}
	}
	sess := &session{ID: "s1"}
	if tok := s.csrfToken(sess, "acme-1"); !s.checkCSRF(sess, "acme-1", tok) || s.checkCSRF(sess, "acme-2", tok) || s.checkCSRF(&session{ID: "s2"}, "acme-1", tok) {
		t.Error("the CSRF token is not bound to its session and task")
	}
}

func TestReviewURL(t *testing.T) {
	t.Parallel()
	got := ReviewURL("https://approvals.example.com/", "flexdeploy-8900", "a.b+c")
	if want := "https://approvals.example.com/approve/flexdeploy-8900?t=a.b%2Bc"; got != want {
		t.Errorf("ReviewURL = %s, want %s", got, want)
	}
}
