package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/approvalbot/approvalbot/internal/rest"
)

const (
	// jwtBackdate is how far the App's JWT's iat lies in the past, for
	// clocks that drift (GitHub's advice).
	jwtBackdate = 60 * time.Second
	// jwtLifetime is how long after iat the JWT expires: its exp is then
	// 9 minutes from now, within GitHub's limit of 10.
	jwtLifetime = 10 * time.Minute
	// tokenMargin is how long before its expires_at a cached installation
	// token is replaced: a call made with it must not outlive it.
	tokenMargin = time.Minute
	// maxTokenLife bounds how long a token is cached whatever expires_at
	// says (GitHub's tokens live an hour).
	maxTokenLife = time.Hour
	// maxTokenBytes bounds a token GitHub hands out (ghs_ and 36 characters
	// today).
	maxTokenBytes = 1024
)

// tokenPermissions are what an installation token is asked for: exactly
// what the bot does (read runs and their pending deployments, review the
// rule), however much more the App may have been granted.
const tokenPermissions = `{"permissions":{"actions":"read","deployments":"write"}}`

// tokenCache keeps installation tokens in memory only, never at rest, one
// per installation, until a minute before they expire.
type tokenCache struct {
	mu      sync.Mutex
	entries map[string]*tokenEntry
}

// tokenEntry is one installation's token. sem is held to read or replace
// it, so that callers who need a new one at the same time wait for a
// single mint.
type tokenEntry struct {
	sem   chan struct{}
	token string
	until time.Time
}

func (tc *tokenCache) entry(installation string) *tokenEntry {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.entries == nil {
		tc.entries = map[string]*tokenEntry{}
	}
	e, ok := tc.entries[installation]
	if !ok {
		e = &tokenEntry{sem: make(chan struct{}, 1)}
		tc.entries[installation] = e
	}
	return e
}

// forget drops the installation's token if it is still token (GitHub did
// not take it).
func (tc *tokenCache) forget(installation, token string) {
	e := tc.entry(installation)
	e.sem <- struct{}{}
	defer func() { <-e.sem }()
	if e.token == token {
		e.token, e.until = "", time.Time{}
	}
}

// installationToken returns a token of the installation: the cached one
// while it has more than a minute to live, else a new one, minted with
// one request (POST {api}/app/installations/{id}/access_tokens with the
// App's JWT). Minting is safe to repeat (it only makes another token), so
// a read that retries mints again; a review never does within an attempt.
func (c *Client) installationToken(ctx context.Context, installation string) (string, *rest.Failure) {
	e := c.tokens.entry(installation)
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return "", &rest.Failure{Err: fmt.Errorf("installation token: %w", ctx.Err()), Retryable: true}
	}
	defer func() { <-e.sem }()
	if e.token != "" && c.now().Before(e.until) {
		return e.token, nil
	}
	token, until, f := c.mint(ctx, installation)
	if f != nil {
		return "", f
	}
	e.token, e.until = token, until
	return token, nil
}

// mint asks GitHub for a new installation token and says until when it
// may be used.
func (c *Client) mint(ctx context.Context, installation string) (string, time.Time, *rest.Failure) {
	fail := func(f *rest.Failure) (string, time.Time, *rest.Failure) {
		f.Err = fmt.Errorf("installation token: %w", f.Err)
		return "", time.Time{}, f
	}
	if id, err := strconv.ParseInt(installation, 10, 64); err != nil || id <= 0 {
		return fail(&rest.Failure{Err: errors.New("the installation id is not a number")})
	}
	now := c.now()
	signed, err := c.appJWT(now)
	if err != nil {
		return fail(&rest.Failure{Err: errors.New("cannot sign the App's JWT with its private key")})
	}
	answer, f := c.try(ctx, http.MethodPost, c.api.base+"/app/installations/"+installation+"/access_tokens",
		"Bearer "+signed, []byte(tokenPermissions), maxAnswer, nil)
	if f != nil {
		return fail(f)
	}
	var got struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expires_at"`
	}
	if err := json.Unmarshal(answer, &got); err != nil || !validToken(got.Token) {
		// A proxy's page: worth another try.
		return fail(&rest.Failure{Err: errors.New("GitHub's answer holds no installation token"), Retryable: true})
	}
	until := now // used for this call only, unless GitHub says how long it lives
	if exp, err := time.Parse(time.RFC3339, got.ExpiresAt); err == nil {
		until = exp.Add(-tokenMargin)
		if longest := now.Add(maxTokenLife); until.After(longest) {
			until = longest
		}
	}
	return got.Token, until, nil
}

// appJWT is the GitHub App's JWT: RS256 with its private key, iss its id,
// iat a minute in the past and exp ten minutes after iat.
func (c *Client) appJWT(now time.Time) (string, error) {
	iat := now.Add(-jwtBackdate)
	claims := jwt.RegisteredClaims{
		Issuer:    c.appID,
		IssuedAt:  jwt.NewNumericDate(iat),
		ExpiresAt: jwt.NewNumericDate(iat.Add(jwtLifetime)),
	}
	return jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(c.key)
}

// validToken accepts a token that can be sent in an Authorization header.
func validToken(token string) bool {
	if token == "" || len(token) > maxTokenBytes {
		return false
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}
