package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/approvalbot/approvalbot/internal/oidctest"
	"github.com/approvalbot/approvalbot/web"
)

// Secrets of the web configuration; the web tests look for each in the logs.
const (
	testOIDCClientID     = "approvalbot-e2e"
	testOIDCClientSecret = "e2e-oidc-client-secret-0123456789"
	testSessionKey       = "e2e-web-session-key-0123456789abcdefghij"
	// testReceiptSeed is 32 bytes of standard base64: an Ed25519 seed.
	testReceiptSeed = "ZTJlLXJlY2VpcHQtc2lnbmluZy1zZWVkLTAxMjM0NTY="
	testIdPPassword = "e2e correct horse battery staple"
)

// The people at the provider. Their Slack users are set in newWebEnv.
var idpUsers = []oidctest.User{
	{Email: "alice@example.com", Name: "Alice Approver", EmailVerified: true},
	{Email: "eve@example.com", Name: "Eve Outsider", EmailVerified: true},
	{Email: "una@example.com", Name: "Una Unverified", EmailVerified: false},
}

// ssoPolicies: production needs single sign-on; qa is decided in Slack.
const ssoPolicies = `
  - name: production
    match: {environment: "PROD*"}
    channel: CPROD
    approvers: {users: [UALICE]}
    require_sso: true
  - name: qa
    match: {environment: "QA"}
    channel: CQA
    approvers: {users: [UALICE]}
`

// webEnv is an end-to-end set-up with the web page on: the bot on a port
// known before it starts (the provider must know the redirect URI), and
// a real OpenID Connect provider on loopback.
type webEnv struct {
	*env
	idp       *oidctest.Provider
	publicURL string
}

func newWebEnv(t *testing.T) *webEnv { return newWebEnvScheme(t, "http") }

// newWebEnvScheme is newWebEnv with a public URL of the scheme: "https"
// stands for a proxy in front of the bot that ends TLS (the bot itself
// still listens on plain http).
func newWebEnvScheme(t *testing.T, scheme string) *webEnv {
	t.Helper()
	e := newEnv(t)
	e.policies = ssoPolicies
	e.slack.Emails["alice@example.com"] = "UALICE"
	e.slack.Emails["eve@example.com"] = "UEVE"
	e.slack.Emails["una@example.com"] = "UUNA"
	port := freePort(t)
	publicURL := fmt.Sprintf("%s://127.0.0.1:%d", scheme, port)
	users := make([]oidctest.User, len(idpUsers))
	for i, u := range idpUsers {
		u.Password = testIdPPassword
		users[i] = u
	}
	idp, err := oidctest.New(oidctest.Config{ClientID: testOIDCClientID, ClientSecret: testOIDCClientSecret,
		RedirectURIs: []string{publicURL + web.CallbackPath}, Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	e.serverCfg = fmt.Sprintf(`{listen: "127.0.0.1:%d", public_url: %q, shutdown_timeout: 5s}`, port, publicURL)
	e.extra = fmt.Sprintf(`
web:
  oidc: {issuer: %q, client_id: %q, client_secret: %q}
  session_key: %q
receipts: {signing_key: %q}
`, idp.Issuer(), testOIDCClientID, testOIDCClientSecret, testSessionKey, testReceiptSeed)
	w := &webEnv{env: e, idp: idp, publicURL: publicURL}
	t.Cleanup(w.assertNoWebSecretsInLogs)
	return w
}

// freePort finds a loopback port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// reviewLink is the link a require_sso task's Slack message offers: the
// message's own link to the page if it has one, else the page's address
// built from the token the message carries (the same token).
func (w *webEnv) reviewLink(taskID string) (link, token string) {
	w.t.Helper()
	msg := w.message(taskID)
	raw, _ := json.Marshal(msg.Blocks())
	for _, part := range strings.Split(string(raw), `"`) {
		if strings.HasPrefix(part, w.publicURL+"/approve/") {
			u, err := url.Parse(strings.ReplaceAll(part, `\u0026`, "&"))
			if err != nil {
				w.t.Fatalf("the message's link: %v", err)
			}
			w.tokens = append(w.tokens, u.Query().Get("t"))
			return u.String(), u.Query().Get("t")
		}
	}
	for _, b := range msg.Buttons() {
		if b.ActionID == "approve" && b.Value != "" {
			return web.ReviewURL(w.publicURL, "flexdeploy-"+taskID, b.Value), b.Value
		}
	}
	w.t.Fatalf("the message of task %s has neither a link to the page nor a token", taskID)
	return "", ""
}

// assertNoWebSecretsInLogs: neither the web's secrets nor what the
// sign-in carries in its URLs (code, state) reach a log line.
func (w *webEnv) assertNoWebSecretsInLogs() {
	logs := w.logs.String()
	for _, secret := range []string{testOIDCClientSecret, testSessionKey, testReceiptSeed, testIdPPassword} {
		if strings.Contains(logs, secret) {
			w.t.Errorf("a web secret reached the logs: %.12s…", secret)
		}
	}
	for _, s := range []string{"code=", "state=", "?t=", "&t="} {
		if strings.Contains(logs, s) {
			w.t.Errorf("a URL's query (%s) reached the logs", s)
		}
	}
}

// --- the browser ------------------------------------------------------------

// chromiumPaths are where Debian and others install Chromium.
var chromiumPaths = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// startBrowser starts one headless Chromium for a test and its subtests
// (each of which opens its own browser context: cookies apart). A machine
// without Chromium fails the test, saying how to install it.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range chromiumPaths {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("Chromium is not installed, and the web tests drive a real browser: run .ci/web-deps (apt-get install -y chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(390, 844))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("Chromium (%s) did not start: %v", path, err)
	}
	return ctx
}

// tab is one person's browser: a browser context of its own (its own
// cookies) with one tab.
type tab struct {
	t   *testing.T
	ctx context.Context
}

func newTab(t *testing.T, browser context.Context) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	return &tab{t: t, ctx: ctx}
}

// sameBrowser is another tab in the same browser context (same cookies).
func (b *tab) sameBrowser() *tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		b.t.Fatal(err)
	}
	return &tab{t: b.t, ctx: ctx}
}

// do runs the steps, failing the test on an error. Each run has a guard
// against a hang, never an expectation of speed.
func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v (at %s)", what, err, b.location())
	}
}

func (b *tab) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

// text is the page's visible text.
func (b *tab) text() string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		b.t.Fatalf("read the page: %v", err)
	}
	return s
}

// open goes to url and waits for the element sel.
func (b *tab) open(url, sel string) {
	b.t.Helper()
	b.do("open "+sel, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// signIn fills in the provider's login page the tab is on and waits for
// the element sel of the page it comes back to.
func (b *tab) signIn(email, sel string) {
	b.t.Helper()
	if loc := b.location(); !strings.Contains(loc, oidctest.LoginPath) {
		b.t.Fatalf("not at the provider's login page but at %s:\n%s", loc, b.text())
	}
	b.do("sign in as "+email,
		chromedp.SendKeys(chromedp.CSS("#username"), email),
		chromedp.SendKeys(chromedp.CSS("#password"), testIdPPassword),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(sel)),
	)
}

// submit fills in the reason and clicks a button of the task's form, then
// waits for the answer's notice.
func (b *tab) submit(button, reason string) string {
	b.t.Helper()
	steps := []chromedp.Action[chromedp.Void]{}
	if reason != "" {
		steps = append(steps, chromedp.SendKeys(chromedp.CSS("#reason"), reason))
	}
	steps = append(steps, chromedp.Click(chromedp.CSS("#"+button)), chromedp.WaitVisible(chromedp.CSS("#notice")))
	b.do("click "+button, steps...)
	return b.text()
}

// screenshot is the whole page as PNG.
func (b *tab) screenshot() []byte {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	return png
}

// chromedpRemove removes the elements sel selects from the page (a form
// field, to send the form without it).
func chromedpRemove(sel string) chromedp.Action[chromedp.Void] {
	js := `document.querySelectorAll(` + strconv.Quote(sel) + `).forEach(e => e.remove()); true`
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](js)(ctx, t)
		return err
	})
}

// receiptOf fetches a task's receipt as the API answers it, byte for byte.
func (e *env) receiptOf(id string) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.url+"/v1/tasks/"+id+"/receipt", nil)
	req.Header.Set("X-API-Key", testAPIKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res.StatusCode, raw
}

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "receipt.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// receiptKeyPublic is the public key of testReceiptSeed, as `receipt
// public-key` must print it.
func receiptKeyPublic(t *testing.T) string {
	t.Helper()
	out, errOut, err := runCLI(t, "receipt", "public-key", "--config", writeConfig(t, "receipts: {signing_key: "+testReceiptSeed+"}\n"))
	if err != nil {
		t.Fatalf("receipt public-key: %v\n%s", err, errOut)
	}
	key := strings.TrimSpace(out)
	if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) != 32 {
		t.Fatalf("receipt public-key printed %q, not a standard base64 Ed25519 key", out)
	}
	return key
}
