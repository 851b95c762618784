// Package oidctest runs a real OpenID Connect provider on loopback for the
// tests: zitadel/oidc's example provider (its op package, in-memory
// storage and username-and-password login page), in process, with the
// users and the client a test names. It speaks the whole protocol as a
// production provider does: discovery, the authorization code flow with
// PKCE (S256), nonce, signed ID tokens (RS256, keys at jwks_uri), client
// authentication at the token endpoint and the userinfo endpoint. Nothing
// in it fakes a token.
package oidctest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/text/language"
)

// User is a person who can sign in at the provider.
type User struct {
	// Username and Password are what the login page asks for; Username is
	// Email when empty.
	Username, Password string
	Email              string
	EmailVerified      bool
	// Name is the display name (the profile scope's name claim).
	Name string
}

// Config is the provider's users and its one registered client.
type Config struct {
	ClientID, ClientSecret string
	// RedirectURIs are the client's registered redirect URIs (exact).
	RedirectURIs []string
	Users        []User
}

// Provider is a running OpenID Connect provider.
type Provider struct {
	server *httptest.Server
	issuer string
}

// New starts a provider on 127.0.0.1 with a free port.
func New(cfg Config) (*Provider, error) {
	if cfg.ClientID == "" || len(cfg.RedirectURIs) == 0 {
		return nil, errors.New("oidctest: a client id and a redirect URI are required")
	}
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	users := userStore{}
	for i, u := range cfg.Users {
		if u.Username == "" {
			u.Username = u.Email
		}
		first, last, _ := strings.Cut(u.Name, " ")
		id := fmt.Sprintf("user-%d", i+1)
		users[id] = &storage.User{
			ID: id, Username: u.Username, Password: u.Password,
			FirstName: first, LastName: last,
			Email: u.Email, EmailVerified: u.EmailVerified,
			PreferredLanguage: language.English,
		}
	}
	clients := map[string]*storage.Client{
		cfg.ClientID: storage.WebClient(cfg.ClientID, cfg.ClientSecret, cfg.RedirectURIs...),
	}
	// No logger: the example would make it the process's default.
	srv.Config.Handler = exampleop.SetupServer(issuer, storage.NewStorageWithClients(users, clients), nil, false)
	srv.Start()
	return &Provider{server: srv, issuer: issuer}, nil
}

// Issuer is the provider's issuer URL (no trailing slash).
func (p *Provider) Issuer() string { return p.issuer }

// Close stops the provider.
func (p *Provider) Close() { p.server.Close() }

// userStore is the example storage's user look-up over the test's users.
type userStore map[string]*storage.User

func (u userStore) GetUserByID(id string) *storage.User { return u[id] }

func (u userStore) GetUserByUsername(username string) *storage.User {
	for _, user := range u {
		if user.Username == username {
			return user
		}
	}
	return nil
}

func (u userStore) ExampleClientID() string { return storage.ServiceUserID }

// LoginPath is the path of the provider's login page.
const LoginPath = "/login/username"

// authRequestID finds the hidden auth request id in the login page.
var authRequestID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// SignIn fills in the provider's login page the way a person's browser
// would: given a client with a cookie jar and the answer that brought it
// to the login page (after following the redirects from the relying
// party), it posts the username and password and follows the redirects
// back to the relying party, whose answer it returns.
func SignIn(ctx context.Context, c *http.Client, loginPage *http.Response, username, password string) (*http.Response, error) {
	if loginPage.Request == nil || loginPage.Request.URL.Path != LoginPath {
		return nil, fmt.Errorf("oidctest: not the login page (%d)", loginPage.StatusCode)
	}
	body, err := io.ReadAll(loginPage.Body)
	_ = loginPage.Body.Close()
	if err != nil {
		return nil, err
	}
	m := authRequestID.FindSubmatch(body)
	if m == nil {
		return nil, errors.New("oidctest: the login page has no auth request id")
	}
	form := url.Values{"id": {string(m[1])}, "username": {username}, "password": {password}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, loginPage.Request.URL.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.Do(req)
}
