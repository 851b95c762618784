package githubtest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/approvalbot/approvalbot/internal/httpfault"
)

func appJWT(t *testing.T, key *rsa.PrivateKey, iss string, iat, exp time.Time) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
		Issuer: iss, IssuedAt: jwt.NewNumericDate(iat), ExpiresAt: jwt.NewNumericDate(exp),
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type request struct {
	method, url, auth, body string
	headers                 map[string]string
}

func (f *Server) do(t *testing.T, r request) (int, string) {
	t.Helper()
	req, err := http.NewRequest(r.method, r.url, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", MediaType)
	req.Header.Set("X-GitHub-Api-Version", APIVersion)
	req.Header.Set("User-Agent", "test")
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.auth != "" {
		req.Header.Set("Authorization", r.auth)
	}
	for k, v := range r.headers {
		req.Header.Set(k, v) // "": sent empty (a User-Agent: not at all)
	}
	res, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(raw)
}

// token mints an installation token for the run's installation.
func (f *Server) token(t *testing.T, r Run) string {
	t.Helper()
	now := time.Now()
	code, body := f.do(t, request{method: "POST", url: f.URL() + "/app/installations/" + strconv.FormatInt(r.Installation, 10) + "/access_tokens",
		auth: "Bearer " + appJWT(t, f.key, AppID, now.Add(-time.Minute), now.Add(9*time.Minute))})
	var got struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(body), &got); code != http.StatusCreated || err != nil || !strings.HasPrefix(got.Token, "ghs_") {
		t.Fatalf("access token: %d %s", code, body)
	}
	if exp, err := time.Parse(time.RFC3339, got.ExpiresAt); err != nil || exp.Before(now.Add(59*time.Minute)) {
		t.Fatalf("expires_at %q", got.ExpiresAt)
	}
	return got.Token
}

func TestAccessTokens(t *testing.T) {
	t.Parallel()
	f := New()
	t.Cleanup(f.Close)
	r := f.NewRun("acme/shop", "production")
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good := appJWT(t, f.key, AppID, now.Add(-time.Minute), now.Add(9*time.Minute))
	tokens := f.URL() + "/app/installations/" + strconv.FormatInt(r.Installation, 10) + "/access_tokens"
	for _, tc := range []struct {
		name string
		req  request
		want int
	}{
		{"the App's JWT", request{method: "POST", url: tokens, auth: "Bearer " + good}, 201},
		{"the permissions the bot asks for", request{method: "POST", url: tokens, auth: "Bearer " + good, body: `{"permissions":{"actions":"read","deployments":"write"}}`}, 201},
		{"more than granted", request{method: "POST", url: tokens, auth: "Bearer " + good, body: `{"permissions":{"actions":"write"}}`}, 422},
		{"an unknown permission", request{method: "POST", url: tokens, auth: "Bearer " + good, body: `{"permissions":{"contents":"write"}}`}, 422},
		{"an unknown field", request{method: "POST", url: tokens, auth: "Bearer " + good, body: `{"scope":"all"}`}, 422},
		{"another App's key", request{method: "POST", url: tokens, auth: "Bearer " + appJWT(t, other, AppID, now.Add(-time.Minute), now.Add(9*time.Minute))}, 401},
		{"another iss", request{method: "POST", url: tokens, auth: "Bearer " + appJWT(t, f.key, "1", now.Add(-time.Minute), now.Add(9*time.Minute))}, 401},
		{"exp too far", request{method: "POST", url: tokens, auth: "Bearer " + appJWT(t, f.key, AppID, now.Add(-time.Minute), now.Add(11*time.Minute))}, 401},
		{"expired", request{method: "POST", url: tokens, auth: "Bearer " + appJWT(t, f.key, AppID, now.Add(-11*time.Minute), now.Add(-time.Minute))}, 401},
		{"iat in the future", request{method: "POST", url: tokens, auth: "Bearer " + appJWT(t, f.key, AppID, now.Add(time.Minute), now.Add(9*time.Minute))}, 401},
		{"no JWT", request{method: "POST", url: tokens}, 401},
		{"an unknown installation", request{method: "POST", url: f.URL() + "/app/installations/1/access_tokens", auth: "Bearer " + good}, 404},
		{"GET", request{method: "GET", url: tokens, auth: "Bearer " + good}, 404},
		{"no Accept", request{method: "POST", url: tokens, auth: "Bearer " + good, headers: map[string]string{"Accept": "application/json"}}, 415},
		{"no API version", request{method: "POST", url: tokens, auth: "Bearer " + good, headers: map[string]string{"X-GitHub-Api-Version": ""}}, 400},
		{"no User-Agent", request{method: "POST", url: tokens, auth: "Bearer " + good, headers: map[string]string{"User-Agent": ""}}, 403},
	} {
		if code, body := f.do(t, tc.req); code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
		}
	}
	if n := len(f.IssuedTokens()); n != 2 {
		t.Errorf("%d tokens issued, want 2", n)
	}
}

func TestReviews(t *testing.T) {
	t.Parallel()
	f := New()
	t.Cleanup(f.Close)
	r := f.NewRun("acme/shop", "production", "staging")
	elsewhere := f.NewRun("other/repo", "production")
	token := f.token(t, r)
	otherToken := f.token(t, elsewhere)
	cb := r.CallbackURL()
	auth := "Bearer " + token
	for _, tc := range []struct {
		name string
		req  request
		want int
	}{
		{"a status report", request{method: "POST", url: cb, auth: auth, body: `{"environment_name":"production","comment":"Waiting"}`}, 204},
		{"a report without a comment", request{method: "POST", url: cb, auth: auth, body: `{"environment_name":"production"}`}, 422},
		{"an unknown state", request{method: "POST", url: cb, auth: auth, body: `{"environment_name":"production","state":"skipped"}`}, 422},
		{"an unknown field", request{method: "POST", url: cb, auth: auth, body: `{"environment_name":"production","state":"approved","extra":1}`}, 422},
		{"an unknown environment", request{method: "POST", url: cb, auth: auth, body: `{"environment_name":"qa","state":"approved"}`}, 422},
		{"another installation's token", request{method: "POST", url: cb, auth: "Bearer " + otherToken, body: `{"environment_name":"production","state":"approved"}`}, 401},
		{"no token", request{method: "POST", url: cb, body: `{"environment_name":"production","state":"approved"}`}, 401},
		{"the App's JWT is no installation token", request{method: "POST", url: cb, auth: "Bearer " + appJWT(t, f.key, AppID, time.Now().Add(-time.Minute), time.Now().Add(time.Minute)), body: `{"environment_name":"production","state":"approved"}`}, 401},
		{"as text", request{method: "POST", url: cb, auth: auth, body: `{"environment_name":"production","state":"approved"}`, headers: map[string]string{"Content-Type": "text/plain"}}, 415},
		{"another repository's path", request{method: "POST", url: strings.Replace(cb, "acme/shop", "other/repo", 1), auth: auth, body: `{"environment_name":"production","state":"approved"}`}, 404},
		{"a query", request{method: "POST", url: cb + "?x=1", auth: auth, body: `{"environment_name":"production","state":"approved"}`}, 404},
		{"the review", request{method: "POST", url: cb, auth: auth, body: `{"environment_name":"Production","state":"approved","comment":"ok"}`}, 204},
		{"a second review", request{method: "POST", url: cb, auth: auth, body: `{"environment_name":"production","state":"rejected"}`}, 422},
		{"a report once reviewed", request{method: "POST", url: cb, auth: auth, body: `{"environment_name":"production","comment":"x"}`}, 422},
	} {
		if code, body := f.do(t, tc.req); code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
		}
	}
	if g := f.Gate(r.ID, "production"); g.State != GateApproved || g.Comment != "ok" || len(g.Reports) != 1 {
		t.Errorf("gate %+v", g)
	}
	if s, _ := f.RunStatus(r.ID); s != "waiting" {
		t.Errorf("run %s while staging waits", s)
	}
	code, body := f.do(t, request{method: "GET", url: f.URL() + "/repos/acme/shop/actions/runs/" + strconv.FormatInt(r.ID, 10) + "/pending_deployments", auth: auth})
	var pending []struct {
		Environment struct {
			Name string `json:"name"`
		} `json:"environment"`
	}
	if err := json.Unmarshal([]byte(body), &pending); code != 200 || err != nil || len(pending) != 1 || pending[0].Environment.Name != "staging" {
		t.Fatalf("pending deployments: %d %s", code, body)
	}
	if code, _ := f.do(t, request{method: "POST", url: cb, auth: auth, body: `{"environment_name":"staging","state":"rejected"}`}); code != 204 {
		t.Fatalf("rejecting staging: %d", code)
	}
	if s, c := f.RunStatus(r.ID); s != "completed" || c != "failure" {
		t.Errorf("run %s/%s after a rejection", s, c)
	}
	code, body = f.do(t, request{method: "GET", url: f.URL() + "/repos/acme/shop/actions/runs/" + strconv.FormatInt(r.ID, 10), auth: auth})
	if code != 200 || !strings.Contains(body, `"status":"completed"`) || !strings.Contains(body, `"conclusion":"failure"`) {
		t.Errorf("run: %d %s", code, body)
	}
	if n := len(f.Reviews()); n != 12 {
		t.Errorf("%d reviews recorded", n)
	}
}

func TestStatusReportLimit(t *testing.T) {
	t.Parallel()
	f := New()
	t.Cleanup(f.Close)
	r := f.NewRun("acme/shop", "production")
	auth := "Bearer " + f.token(t, r)
	for i := range MaxStatusReports + 1 {
		want := 204
		if i == MaxStatusReports {
			want = 422
		}
		if code, _ := f.do(t, request{method: "POST", url: r.CallbackURL(), auth: auth, body: `{"environment_name":"production","comment":"x"}`}); code != want {
			t.Fatalf("report %d: %d, want %d", i+1, code, want)
		}
	}
}

func TestReviewFaults(t *testing.T) {
	t.Parallel()
	f := New()
	t.Cleanup(f.Close)
	client := &http.Client{Timeout: 300 * time.Millisecond}
	send := func(r Run, token string) (int, error) {
		req, _ := http.NewRequest("POST", r.CallbackURL(), strings.NewReader(`{"environment_name":"production","state":"approved"}`))
		req.Header.Set("Accept", MediaType)
		req.Header.Set("X-GitHub-Api-Version", APIVersion)
		req.Header.Set("User-Agent", "test")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	r1, r2, r3 := f.NewRun("acme/shop", "production"), f.NewRun("acme/shop", "production"), f.NewRun("acme/shop", "production")
	token := f.token(t, r1)

	f.SetFailFirst(1)
	if code, err := send(r1, token); err != nil || code != 500 || f.Gate(r1.ID, "production").State != GateWaiting {
		t.Fatalf("failing first: %d %v", code, err)
	}
	f.SetLateAnswers(1)
	if _, err := send(r2, token); !httpfault.IsTimeout(err) {
		t.Fatalf("late: %v", err)
	}
	f.SetDroppedAnswers(1)
	if _, err := send(r3, token); err == nil || httpfault.IsTimeout(err) {
		t.Fatalf("dropped: %v", err)
	}
	for _, r := range []Run{r2, r3} {
		if g := f.Gate(r.ID, "production"); g.State != GateApproved {
			t.Errorf("a review whose answer was lost was not taken: %+v", g)
		}
	}
	reviews := f.Reviews()
	if len(reviews) != 3 || reviews[0].Applied || !reviews[1].Applied || reviews[1].Code != 0 || !reviews[2].Applied {
		t.Errorf("reviews %+v", reviews)
	}
	held := func() bool {
		for _, c := range f.Reviews() {
			if c.Applied && c.Code == 0 && strings.Contains(c.Path, strconv.FormatInt(r1.ID, 10)) {
				return true
			}
		}
		return false
	}
	f.SetLateAnswers(1)
	if err := httpfault.CloseReleases(func() error {
		_, err := (&http.Client{Timeout: time.Minute}).Do(func() *http.Request {
			req, _ := http.NewRequest("POST", r1.CallbackURL(), strings.NewReader(`{"environment_name":"production","state":"approved"}`))
			req.Header.Set("Accept", MediaType)
			req.Header.Set("X-GitHub-Api-Version", APIVersion)
			req.Header.Set("User-Agent", "test")
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
			return req
		}())
		if err == nil {
			return errors.New("answered")
		}
		return err
	}, held, f.Close); err != nil {
		t.Error(err)
	}
}

func TestPayloadIsSigned(t *testing.T) {
	t.Parallel()
	r := Run{ID: 1, Repo: "acme/shop", Installation: 2, APIURL: "https://api.github.com"}
	body := r.Payload(Event{Environment: "production", Creator: "octocat"})
	h := Headers("s3cret", "deployment_protection_rule", "d-1", body)
	if h["X-Hub-Signature-256"] != Signature("s3cret", body) || !strings.HasPrefix(h["X-Hub-Signature-256"], "sha256=") {
		t.Errorf("headers %v", h)
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil || p["deployment_callback_url"] != r.CallbackURL() || p["action"] != "requested" {
		t.Errorf("payload %s", body)
	}
}
