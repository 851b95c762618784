package web

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/approvalbot/approvalbot/approvals"
)

// tokenProvider is an OpenID Connect provider that answers every code with
// an ID token for audience: what a provider shared with another
// application (or an attacker's replay of a token minted for it) would
// hand over. Discovery, keys and token endpoint are real; no login page is
// needed, since the test goes to the callback itself with the state and
// nonce the page's redirect named.
func tokenProvider(t *testing.T, audience *string, nonce *string) *httptest.Server {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var srv *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": srv.URL, "authorization_endpoint": srv.URL + "/auth", "token_endpoint": srv.URL + "/token",
			"jwks_uri": srv.URL + "/keys", "id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		b64 := base64.RawURLEncoding.EncodeToString
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]any{
			"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
			"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
		}}})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"iss": srv.URL, "sub": "user-1", "aud": *audience, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
			"nonce": *nonce, "email": "alice@example.com", "email_verified": true, "name": "Alice Approver",
		})
		tok.Header["kid"] = "k1"
		idToken, err := tok.SignedString(key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": idToken})
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// An ID token made for another client (another audience) does not sign
// anyone in: the page refuses it and decides nothing; the same token made
// for approvalbot's client does sign Alice in.
func TestWebSignInRefusesAnotherAudience(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		audience string
		signedIn bool
	}{
		{audience: "another-application", signedIn: false},
		{audience: clientID, signedIn: true},
	} {
		t.Run(tc.audience, func(t *testing.T) {
			t.Parallel()
			audience, nonce := tc.audience, ""
			idp := tokenProvider(t, &audience, &nonce)
			page := httptest.NewUnstartedServer(nil)
			publicURL := "http://" + page.Listener.Addr().String()
			token := "link-token-audience"
			svc := &fakeService{tasks: map[string]*approvals.Task{
				"acme-1": {ID: "acme-1", Source: "acme", TaskID: "1", Status: approvals.StatusPending, RequiredApprovals: 1,
					Policy: "production", ExpiresAt: time.Now().Add(time.Hour), TokenHash: approvals.HashToken(token)},
			}}
			tools, _ := approvals.NewTools(approvals.Tool{Name: "acme"})
			h, err := New(Config{
				PublicURL: publicURL, Issuer: idp.URL, ClientID: clientID, ClientSecret: clientSecret,
				SessionKey: []byte("web-test-session-key-0123456789abcdef"), Service: svc,
				Directory: fakeDirectory{"alice@example.com": "UALICE"},
				Policies: func() []approvals.Policy {
					return []approvals.Policy{{Name: "production", Approvers: approvals.Approvers{Users: []string{"UALICE"}}}}
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
			page.Start()
			t.Cleanup(page.Close)

			c := browser(t)
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			res, err := c.Get(ReviewURL(publicURL, "acme-1", token))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			to, err := url.Parse(res.Header.Get("Location"))
			if err != nil || !strings.HasPrefix(to.String(), idp.URL+"/auth") {
				t.Fatalf("the page sent the browser to %q, want the provider", res.Header.Get("Location"))
			}
			nonce = to.Query().Get("nonce")
			res, err = c.Get(publicURL + CallbackPath + "?" + url.Values{"code": {"code-1"}, "state": {to.Query().Get("state")}}.Encode())
			if err != nil {
				t.Fatal(err)
			}
			body := read(t, res)
			signedIn := res.StatusCode == http.StatusSeeOther && strings.HasPrefix(res.Header.Get("Location"), "/approve/acme-1")
			if signedIn != tc.signedIn {
				t.Fatalf("audience %q: callback answered %d (Location %q), signed in %v; want %v\n%s",
					tc.audience, res.StatusCode, res.Header.Get("Location"), signedIn, tc.signedIn, body)
			}
			if !tc.signedIn && len(svc.decisions()) != 0 {
				t.Errorf("something was decided after a refused sign-in")
			}
		})
	}
}
