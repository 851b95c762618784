package web

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWebPostsOnlyFromThePage: a signed-in browser's form with a valid
// CSRF token is still refused (403, nothing decided) unless the browser
// says it comes from the public URL's origin: Origin, else Referer, else
// Sec-Fetch-Site: same-origin.
func TestWebPostsOnlyFromThePage(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := browser(t)
	_, page := e.signIn(t, c, "alice@example.com")
	csrf := csrfField.FindStringSubmatch(page)[1]
	form := url.Values{"t": {e.token}, "csrf": {csrf}, "action": {"approve"}}
	for _, tc := range []struct {
		name   string
		header map[string]string
	}{
		{"no origin at all", nil},
		{"another origin", map[string]string{"Origin": "https://evil.example"}},
		{"another port", map[string]string{"Origin": strings.Replace(e.url, "127.0.0.1:", "127.0.0.1:1", 1)}},
		{"https for http", map[string]string{"Origin": strings.Replace(e.url, "http:", "https:", 1)}},
		{"a subdomain-like host", map[string]string{"Origin": e.url + ".evil.example"}},
		{"null origin, no referer", map[string]string{"Origin": "null"}},
		{"another origin, same-origin claimed", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"}},
		{"another referer", map[string]string{"Referer": "https://evil.example/approve/acme-1"}},
		{"referer with our URL in its path", map[string]string{"Referer": "https://evil.example/" + e.url}},
		{"cross-site fetch", map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"same-site fetch", map[string]string{"Sec-Fetch-Site": "same-site"}},
	} {
		res, page := e.postWith(t, c, form, tc.header)
		if res.StatusCode != http.StatusForbidden || !strings.Contains(page, "nothing was decided") {
			t.Errorf("%s: %d\n%s", tc.name, res.StatusCode, page)
		}
	}
	if n := len(e.svc.decisions()); n != 0 {
		t.Fatalf("%d decisions were asked for, want none", n)
	}
	for _, tc := range []struct {
		name   string
		header map[string]string
	}{
		{"origin", map[string]string{"Origin": e.url}},
		{"origin in upper case", map[string]string{"Origin": strings.ToUpper(e.url)}},
		{"referer without origin", map[string]string{"Referer": e.url + "/approve/acme-1?t=x"}},
		{"null origin (no-referrer page), same-origin fetch", map[string]string{"Origin": "null", "Sec-Fetch-Site": "same-origin"}},
		{"same-origin fetch alone", map[string]string{"Sec-Fetch-Site": "same-origin"}},
	} {
		res, page := e.postWith(t, c, form, tc.header)
		if res.StatusCode != http.StatusOK || !strings.Contains(page, "Approved.") {
			t.Errorf("%s: %d\n%s", tc.name, res.StatusCode, page)
		}
	}
	if n := len(e.svc.decisions()); n != 5 {
		t.Errorf("%d decisions, want 5", n)
	}
}

func TestOriginOf(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://Approvals.Example.com":          "https://approvals.example.com",
		"https://approvals.example.com:443/x?y":  "https://approvals.example.com",
		"https://approvals.example.com:8443":     "https://approvals.example.com:8443",
		"http://127.0.0.1:80":                    "http://127.0.0.1",
		"http://[::1]:8080/approve/":             "http://[::1]:8080",
		"https://user@approvals.example.com":     "",
		"null":                                   "",
		"javascript://approvals.example.com/":    "",
		"//approvals.example.com":                "",
		"https://approvals.example.com\x00.evil": "",
	} {
		if got := originOf(in); got != want {
			t.Errorf("originOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// setCookies records every Set-Cookie header the page answers with.
type setCookies struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen []string
}

func (s *setCookies) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := s.next.RoundTrip(r)
	if err == nil && r.URL.Scheme == "https" {
		s.mu.Lock()
		s.seen = append(s.seen, res.Header.Values("Set-Cookie")...)
		s.mu.Unlock()
	}
	return res, err
}

// TestWebCookiesOverHTTPS: with an https public URL every cookie the page
// sets is __Host- prefixed with Path=/ and Secure, and the sign-in cookie
// holds the one-time link token in no readable form; the sign-in and a
// decision work with them.
func TestWebCookiesOverHTTPS(t *testing.T) {
	t.Parallel()
	e := newTestEnvOn(t, true)
	rec := &setCookies{next: e.transport}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: rec}
	res, page := e.signIn(t, c, "alice@example.com")
	if res.StatusCode != http.StatusOK || !strings.Contains(page, `id="approve"`) {
		t.Fatalf("after sign-in over https: %d\n%s", res.StatusCode, page)
	}
	names := map[string]bool{}
	for _, sc := range rec.seen {
		ck, err := http.ParseSetCookie(sc)
		if err != nil {
			t.Fatal(err)
		}
		names[ck.Name] = true
		if !strings.HasPrefix(ck.Name, "__Host-") || ck.Path != "/" || !ck.Secure || ck.Domain != "" || !ck.HttpOnly {
			t.Errorf("cookie set over https: %s", sc)
		}
		if ck.Value == "" {
			continue
		}
		for _, readable := range readings(ck.Value) {
			if bytes.Contains(readable, []byte(e.token)) || bytes.Contains(readable, []byte("alice@example.com")) || bytes.Contains(readable, []byte("/approve/")) {
				t.Errorf("cookie %s holds the link token, the email or the return path readable: %q", ck.Name, readable)
			}
		}
	}
	if !names["__Host-"+flowCookie] || !names["__Host-"+sessionCookie] {
		t.Fatalf("cookies set: %v", names)
	}
	csrf := csrfField.FindStringSubmatch(page)[1]
	res, page = e.post(t, c, url.Values{"t": {e.token}, "csrf": {csrf}, "action": {"approve"}})
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "Approved.") {
		t.Fatalf("approve over https: %d\n%s", res.StatusCode, page)
	}
}

// readings are a cookie value as bytes, and each of its dot-separated
// parts decoded from every base64 alphabet that takes it.
func readings(v string) [][]byte {
	out := [][]byte{[]byte(v)}
	if u, err := url.QueryUnescape(v); err == nil {
		out = append(out, []byte(u))
	}
	for _, part := range append(strings.Split(v, "."), v) {
		for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
			if b, err := enc.DecodeString(part); err == nil {
				out = append(out, b)
			}
		}
	}
	return out
}
