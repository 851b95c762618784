package web

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/rs/zerolog/hlog"
	"golang.org/x/oauth2"

	"github.com/approvalbot/approvalbot/approvals"
)

// errSignIn is a sign-in that cannot be completed; its text is for people.
type errSignIn struct {
	status int
	text   string
}

func (e *errSignIn) Error() string { return e.text }

func signInError(status int, format string, args ...any) error {
	return &errSignIn{status: status, text: fmt.Sprintf(format, args...)}
}

// discover returns the provider's client, discovering the provider at the
// first call that reaches it.
func (h *Handler) discover(ctx context.Context) (*oidcClient, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.client != nil {
		return h.client, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, h.cfg.HTTPClient), h.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("web: discover the OpenID Connect provider: %w", err)
	}
	h.client = &oidcClient{
		provider: p,
		// The key set is fetched with the client given to discovery.
		verifier: p.Verifier(&oidc.Config{ClientID: h.cfg.ClientID}),
		oauth: oauth2.Config{
			ClientID: h.cfg.ClientID, ClientSecret: h.cfg.ClientSecret,
			Endpoint: p.Endpoint(), RedirectURL: h.redirect, Scopes: h.cfg.Scopes,
		},
	}
	return h.client, nil
}

// startSignIn sends the person to the provider: authorization code flow
// with PKCE (S256), a state and a nonce, all kept in a signed cookie for
// the callback, with the page to return to.
func (h *Handler) startSignIn(w http.ResponseWriter, r *http.Request, returnTo string) {
	c, err := h.discover(r.Context())
	if err != nil {
		hlog.FromRequest(r).Warn().Err(err).Msg("web: sign-in unavailable")
		h.render(w, http.StatusServiceUnavailable, pageView{Title: "Sign-in is unavailable",
			Notice: "approvalbot cannot reach the sign-in provider right now; nothing was decided. Try again in a minute.", Refused: true})
		return
	}
	f := flow{State: random(32), Nonce: random(32), Verifier: oauth2.GenerateVerifier(), Return: returnTo,
		Expires: time.Now().Add(flowTTL).Unix()}
	http.SetCookie(w, h.cookie(flowCookie, seal(h.sign.flow, flowCookie, f), flowTTL))
	target := c.oauth.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier))
	h.headers(w)
	http.Redirect(w, r, target, http.StatusFound)
}

// callback completes the sign-in: the state must be the cookie's, the code
// is exchanged with the PKCE verifier, the ID token is verified (issuer,
// audience, expiry, signature) and must carry the cookie's nonce, and the
// email must be verified by the provider. The person is the chat user of
// that email. Nothing is decided here.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	f, ok := h.readFlow(r)
	// One sign-in, one callback: the cookie goes whatever happens.
	http.SetCookie(w, h.cookie(flowCookie, "", 0))
	if !ok {
		h.signInFailed(w, r, signInError(http.StatusBadRequest,
			"This sign-in was not started here or took too long, so nothing was done. Open the link again."))
		return
	}
	sess, err := h.signIn(r, f)
	if err != nil {
		h.signInFailed(w, r, err)
		return
	}
	http.SetCookie(w, h.cookie(sessionCookie, seal(h.sign.session, sessionCookie, sess), SessionTTL))
	hlog.FromRequest(r).Info().Str("user", sess.User).Msg("web: signed in")
	h.headers(w)
	http.Redirect(w, r, f.Return, http.StatusSeeOther)
}

func (h *Handler) signIn(r *http.Request, f *flow) (*session, error) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return nil, signInError(http.StatusForbidden, "The sign-in provider did not sign you in (%s), so nothing was done.", firstWord(e))
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 {
		return nil, signInError(http.StatusBadRequest,
			"This sign-in's answer does not belong to the sign-in this browser started (its state differs), so nothing was done. Open the link again.")
	}
	if !strings.HasPrefix(f.Return, "/approve/") {
		return nil, signInError(http.StatusBadRequest, "This sign-in has nowhere to go back to. Open the link again.")
	}
	ctx := oidc.ClientContext(r.Context(), h.cfg.HTTPClient)
	c, err := h.discover(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := c.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return nil, fmt.Errorf("web: exchange the code: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, errors.New("web: the provider answered without an ID token")
	}
	idt, err := c.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("web: verify the ID token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		return nil, signInError(http.StatusBadRequest, "The sign-in provider's answer was not made for this sign-in (its nonce differs), so nothing was done. Open the link again.")
	}
	var claims identityClaims
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("web: read the ID token's claims: %w", err)
	}
	if claims.Email == "" || claims.EmailVerified == nil {
		// Many providers put the email in the userinfo answer only.
		if err := h.userInfo(ctx, c, tok, idt.Subject, &claims); err != nil {
			return nil, err
		}
	}
	email := strings.TrimSpace(claims.Email)
	switch {
	case email == "":
		return nil, signInError(http.StatusForbidden, "The sign-in provider did not say your email address, so approvalbot cannot tell who you are in Slack. Nothing was decided.")
	case claims.EmailVerified == nil || !bool(*claims.EmailVerified):
		return nil, signInError(http.StatusForbidden, "The sign-in provider has not verified your email address (%s), so approvalbot cannot tell who you are in Slack. Nothing was decided.", email)
	}
	uid, err := h.cfg.Directory.UserIDByEmail(r.Context(), email)
	switch {
	case errors.Is(err, approvals.ErrNotFound):
		return nil, signInError(http.StatusForbidden, "No Slack user has your email address (%s), so approvalbot cannot tell who you are. Nothing was decided.", email)
	case err != nil:
		return nil, fmt.Errorf("web: look up the chat user of the signed-in email: %w: %w", approvals.ErrUnavailable, err)
	}
	name := claims.Name
	if name == "" {
		name = claims.PreferredUsername
	}
	if name == "" {
		name = email
	}
	return &session{ID: random(16), User: uid, Name: name, Email: email, Expires: time.Now().Add(SessionTTL).Unix()}, nil
}

// userInfo fills in the claims from the provider's userinfo answer, which
// must be about the ID token's subject.
func (h *Handler) userInfo(ctx context.Context, c *oidcClient, tok *oauth2.Token, subject string, claims *identityClaims) error {
	if c.provider.UserInfoEndpoint() == "" {
		return nil
	}
	ui, err := c.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return fmt.Errorf("web: read userinfo: %w", err)
	}
	if ui.Subject != subject {
		return errors.New("web: the userinfo answer is about another subject than the ID token")
	}
	var more identityClaims
	if err := ui.Claims(&more); err != nil {
		return fmt.Errorf("web: read userinfo claims: %w", err)
	}
	if claims.Email == "" || strings.EqualFold(claims.Email, more.Email) {
		claims.Email, claims.EmailVerified = more.Email, more.EmailVerified
	}
	if claims.Name == "" {
		claims.Name = more.Name
	}
	if claims.PreferredUsername == "" {
		claims.PreferredUsername = more.PreferredUsername
	}
	return nil
}

// identityClaims are the standard claims the page reads.
type identityClaims struct {
	Email             string    `json:"email"`
	EmailVerified     *flexBool `json:"email_verified"`
	Name              string    `json:"name"`
	PreferredUsername string    `json:"preferred_username"`
}

// flexBool reads a JSON boolean, or the string "true" or "false" that
// some providers send instead.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case bool:
		*b = flexBool(v)
	case string:
		*b = flexBool(strings.EqualFold(v, "true"))
	default:
		*b = false
	}
	return nil
}

// signInFailed answers a sign-in that did not complete. The provider's or
// the network's failures are logged (never the code, the state or a
// token); what is refused by rule is said to the person.
func (h *Handler) signInFailed(w http.ResponseWriter, r *http.Request, err error) {
	var e *errSignIn
	if errors.As(err, &e) {
		hlog.FromRequest(r).Info().Int("status", e.status).Msg("web: sign-in refused")
		h.render(w, e.status, pageView{Title: "You are not signed in", Notice: e.text, Refused: true})
		return
	}
	hlog.FromRequest(r).Warn().Err(err).Msg("web: sign-in failed")
	status, text := http.StatusBadGateway, "The sign-in could not be completed with the provider, so nothing was done. Open the link again."
	if errors.Is(err, approvals.ErrUnavailable) {
		status, text = http.StatusServiceUnavailable, "approvalbot could not look you up in Slack just now, so nothing was done. Try again in a minute."
	}
	h.render(w, status, pageView{Title: "You are not signed in", Notice: text, Refused: true})
}

// firstWord keeps an OAuth error code and drops anything after it.
func firstWord(s string) string {
	s, _, _ = strings.Cut(s, " ")
	if len(s) > 40 {
		s = s[:40]
	}
	return s
}
