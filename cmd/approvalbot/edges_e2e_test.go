package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/approvalbot/approvalbot/internal/oidctest"
)

// TestRequesterInChatMarkup: a requester written as Slack's email link or
// as a lower-case mention is read as the person it names, so their own
// approve is refused as a self-approval and another approver decides; a
// requester written as a user group names nobody, so every approve is
// refused and nothing is decided. (Before, all three were "names", and the
// requester's own click approved.)
func TestRequesterInChatMarkup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.slack.Emails["dev@example.com"] = "UALICE" // Alice asked for these deployments
	e.start()
	for i, by := range []string{`<mailto:dev@example.com|dev@example.com>`, `<@ualice>`} {
		taskID := []string{"markup1", "markup2"}[i]
		id := e.submit(`{"taskid":"` + taskID + `","environment":"PROD","requestedBy":"` + by + `"}`)
		msg := e.message(taskID)
		e.click(msg, "approve", "UALICE", "Alice")
		waitFor(t, "Alice refused as the requester of "+by, func() bool {
			return countEphemeral(e, "UALICE", "You requested this deployment") == i+1
		})
		if _, task := e.task(id); task["status"] != "pending" || len(task["approvals"].([]any)) != 0 {
			t.Fatalf("requestedBy %s: the requester's click changed the task: %v", by, task)
		}
		e.click(msg, "approve", "UBOB", "Bob")
		task := e.waitTask(id, "approved by Bob", func(task map[string]any) bool { return task["status"] == "approved" })
		if by := task["decidedBy"].(map[string]any)["user"]; by != "UBOB" {
			t.Errorf("decided by %v, want UBOB", by)
		}
	}

	id := e.submit(`{"taskid":"markup3","environment":"PROD","requestedBy":"<!subteam^S1|@deployers>"}`)
	msg := e.message("markup3")
	for _, u := range []string{"UALICE", "UBOB"} {
		e.click(msg, "approve", u, u)
		waitFor(t, u+" refused: requester unreadable", func() bool { return ephemeralTo(e, u, "cannot read") })
	}
	if _, task := e.task(id); task["status"] != "pending" || len(task["approvals"].([]any)) != 0 {
		t.Fatalf("a requester that names nobody: the task changed: %v", task)
	}
	e.click(msg, "reject", "UBOB", "Bob")
	e.waitTask(id, "rejected by Bob", func(task map[string]any) bool { return task["status"] == "rejected" })
}

func countEphemeral(e *env, user, contains string) int {
	n := 0
	for _, c := range e.slack.CallsTo("chat.postEphemeral") {
		if c.Form.Get("user") == user && strings.Contains(strings.ToLower(c.Form.Get("text")), strings.ToLower(contains)) {
			n++
		}
	}
	return n
}

// TestReceiptVerifyRefusesAmbiguousJSON: the built binary's `receipt
// verify` takes the genuine receipt of a real decision (exit 0) and
// refuses it (exit 1, INVALID) with a duplicate key placed first, which
// encoding/json let through as the genuine value came last, with an
// unknown field, and with data after it.
func TestReceiptVerifyRefusesAmbiguousJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.extra = "receipts: {signing_key: " + testReceiptSeed + "}\n"
	e.start()
	id := e.submit(`{"taskid":"rcptdup","environment":"PROD","requestedBy":"dev@example.com"}`)
	e.click(e.message("rcptdup"), "approve", "UALICE", "Alice")
	e.waitTask(id, "delivered", delivered)
	status, raw := e.receiptOf(id)
	if status != http.StatusOK {
		t.Fatalf("receipt: %d %s", status, raw)
	}
	key := receiptKeyPublic(t)
	verify := func(data string) (int, string) {
		t.Helper()
		out, err := exec.Command(approvalbotBinary(t), "receipt", "verify", writeFile(t, []byte(data)), "--public-key", key).CombinedOutput()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return 0, string(out)
		case errors.As(err, &exit):
			return exit.ExitCode(), string(out)
		}
		t.Fatal(err)
		return 0, ""
	}
	genuine := string(raw)
	if code, out := verify(genuine); code != 0 || !strings.HasPrefix(out, "valid: "+id+" approved") {
		t.Fatalf("the genuine receipt: exit %d\n%s", code, out)
	}
	for name, data := range map[string]string{
		"a duplicate key placed first": `{"status":"rejected",` + genuine[1:],
		"a duplicate key in the trail": strings.Replace(genuine, `"audit":[{`, `"audit":[{"event":"rejected",`, 1),
		"an unknown field":             `{"verdict":"rejected",` + genuine[1:],
		"trailing data":                genuine + `{"status":"rejected"}`,
		"a trailing brace":             genuine + `}`,
	} {
		if code, out := verify(data); code != 1 || !strings.HasPrefix(out, "INVALID: ") {
			t.Errorf("%s: exit %d, want 1 and INVALID\n%s", name, code, out)
		}
	}
}

// tlsProxy is the proxy that ends TLS in front of the bot: requests to
// the https public URL go to the bot's plain http listener. It records
// the Set-Cookie headers the bot answers with.
type tlsProxy struct {
	public, bot string // origins
	mu          sync.Mutex
	setCookies  []string
}

func (p *tlsProxy) RoundTrip(r *http.Request) (*http.Response, error) {
	fromBot := false
	if strings.HasPrefix(r.URL.String(), p.public+"/") {
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host = "http", strings.TrimPrefix(p.bot, "http://")
		fromBot = true
	}
	res, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && fromBot {
		p.mu.Lock()
		p.setCookies = append(p.setCookies, res.Header.Values("Set-Cookie")...)
		p.mu.Unlock()
	}
	return res, err
}

// signedInOverHTTPS starts a bot whose public URL is https, submits a
// require_sso task and signs Alice in through the proxy; it returns her
// browser (cookies kept as a browser keeps them for https) and the task
// page's CSRF token.
func signedInOverHTTPS(t *testing.T, taskID string) (*webEnv, *tlsProxy, *http.Client, string, string) {
	t.Helper()
	w := newWebEnvScheme(t, "https")
	w.start()
	w.submit(prodTask(taskID))
	link, token := w.reviewLink(taskID)
	proxy := &tlsProxy{public: w.publicURL, bot: w.url}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Transport: proxy, Timeout: 30 * time.Second}
	res, err := c.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	res, err = oidctest.SignIn(context.Background(), c, res, "alice@example.com", testIdPPassword)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if res.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("signed in: %d at %s\n%s", res.StatusCode, res.Request.URL, page)
	}
	return w, proxy, c, token, string(m[1])
}

func postForm(t *testing.T, c *http.Client, to string, form url.Values, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, to, strings.NewReader(form.Encode()))
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
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// TestWebPostFromAnotherOrigin: Alice's valid session and CSRF token, sent
// by a page of another origin, decide nothing (403); FlexDeploy hears
// nothing. The same form from the page's origin approves.
func TestWebPostFromAnotherOrigin(t *testing.T) {
	t.Parallel()
	w, _, c, token, csrf := signedInOverHTTPS(t, "origin1")
	form := url.Values{"t": {token}, "csrf": {csrf}, "action": {"approve"}}
	to := w.publicURL + "/approve/flexdeploy-origin1"
	for _, h := range []map[string]string{
		{"Origin": "https://evil.example"},
		{"Referer": "https://evil.example/phish"},
		{"Origin": "null", "Sec-Fetch-Site": "cross-site"},
		{},
	} {
		if status, page := postForm(t, c, to, form, h); status != http.StatusForbidden || !strings.Contains(page, "nothing was decided") {
			t.Fatalf("a form sent with %v: %d\n%s", h, status, page)
		}
	}
	w.assertUndecided(t, "origin1")
	if status, page := postForm(t, c, to, form, map[string]string{"Origin": w.publicURL}); status != http.StatusOK || !strings.Contains(page, "Approved.") {
		t.Fatalf("the page's own form: %d\n%s", status, page)
	}
	w.waitTask("flexdeploy-origin1", "delivered", delivered)
}

// TestWebCookiesHostPrefixedAndSealed: with an https public URL the bot's
// cookies are __Host- prefixed with Path=/ and Secure, and none holds the
// one-time link token (or the return path that carries it) readable.
func TestWebCookiesHostPrefixedAndSealed(t *testing.T) {
	t.Parallel()
	_, proxy, _, token, _ := signedInOverHTTPS(t, "cookie1")
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	names := map[string]bool{}
	for _, sc := range proxy.setCookies {
		ck, err := http.ParseSetCookie(sc)
		if err != nil {
			t.Fatal(err)
		}
		names[ck.Name] = true
		if !strings.HasPrefix(ck.Name, "__Host-") || ck.Path != "/" || !ck.Secure || ck.Domain != "" {
			t.Errorf("a cookie without the __Host- prefix, Path=/ and Secure: %s", sc)
		}
		for _, part := range append(strings.Split(ck.Value, "."), ck.Value) {
			for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
				if b, err := enc.DecodeString(part); err == nil && (strings.Contains(string(b), token) || strings.Contains(string(b), "/approve/")) {
					t.Errorf("cookie %s holds the link token readable: %q", ck.Name, b)
				}
			}
		}
		if strings.Contains(ck.Value, token) {
			t.Errorf("cookie %s holds the link token", ck.Name)
		}
	}
	if len(names) < 2 {
		t.Errorf("cookies set: %v, want the sign-in's and the session's", names)
	}
}

// storeCutTo starts the bot, leaves pending tasks in its bolt file, stops
// it and cuts the file to size(its size, the size its pages in use take)
// bytes.
func storeCutTo(t *testing.T, tasks int, size func(file, used int64) int64) (e *env, db string, ids []string) {
	t.Helper()
	e = newEnv(t)
	e.start()
	for i := range tasks {
		ids = append(ids, e.submit(fmt.Sprintf(`{"taskId":"cut%03d","environment":"PROD"}`, i)))
	}
	e.stop()
	db = filepath.Join(e.dir, "approvalbot.db")
	info, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	var used int64
	bdb, err := bbolt.Open(db, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = bdb.View(func(tx *bbolt.Tx) error { used = tx.Size(); return nil }) // the high-water mark
	_ = bdb.Close()
	if err := os.Truncate(db, size(info.Size(), used)); err != nil {
		t.Fatal(err)
	}
	return e, db, ids
}

// TestEmptyStoreFileIsDamage: a store file cut to zero bytes holding
// pending tasks makes the built binary exit 1 naming the file (it started
// as an empty store before, losing every pending task unseen); a missing
// file still starts an empty store.
func TestEmptyStoreFileIsDamage(t *testing.T) {
	t.Parallel()
	e, db, _ := storeCutTo(t, 5, func(int64, int64) int64 { return 0 })
	out, err := serveOnDamagedStore(t, e.config)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("serve on a zero-byte store file: %v, want exit status 1\n%s", err, out)
	}
	if !strings.Contains(string(out), "damaged") || !strings.Contains(string(out), db) || !strings.Contains(string(out), "zero bytes") || strings.Contains(string(out), "panic") {
		t.Errorf("the message does not say which file is damaged and why:\n%s", out)
	}
	if info, err := os.Stat(db); err != nil || info.Size() != 0 {
		t.Errorf("the damaged file was changed: %v %v", info, err)
	}
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	e.start() // a missing file: an empty store
	if status, _ := e.task("flexdeploy-cut000"); status != http.StatusNotFound {
		t.Errorf("a new store has task cut000: %d", status)
	}
}

// TestHalfStoreFileFailsTheStart: a store file cut to half its size makes
// the built binary exit 1 naming the file: the pages past the cut are
// pages the store's buckets reach (its high-water mark lies beyond the
// cut), so tasks would be lost. Starting on it anyway, with whatever
// survived, is what must never happen.
func TestHalfStoreFileFailsTheStart(t *testing.T) {
	t.Parallel()
	e, db, _ := storeCutTo(t, 60, func(size, used int64) int64 {
		if used <= size/2 {
			t.Fatalf("the store's pages in use (%d bytes) fit in half its file (%d bytes): submit more tasks", used, size)
		}
		return size / 2
	})
	out, err := serveOnDamagedStore(t, e.config)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("serve on a store file cut to half: %v, want exit status 1\n%s", err, out)
	}
	if !strings.Contains(string(out), "damaged") || !strings.Contains(string(out), db) || strings.Contains(string(out), "panic") {
		t.Errorf("the message does not say which file is damaged:\n%s", out)
	}
}

// serveOnDamagedStore runs the built binary's serve, which must exit at
// once; one that is still serving after a minute (a guard against a hang,
// not a measure of speed) has started on the damaged file and is stopped.
func serveOnDamagedStore(t *testing.T, config string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, approvalbotBinary(t), "serve", "--config", config).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the bot started on the damaged store file and served:\n%s", out)
	}
	return out, err
}
