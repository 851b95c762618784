// Package web is approvalbot's second surface beside Slack: a task's page
// on the web, where people sign in with the company's OpenID Connect
// provider and approve or reject. A policy with require_sso is decided
// only here; people without Slack can be sent the same link.
//
//	GET  /approve/{id}?t=TOKEN  the task, and the form to decide it (signs in first)
//	POST /approve/{id}          approve or reject (session and CSRF token checked)
//	GET  /sso/callback          the provider's redirect back (state, PKCE, nonce)
//
// The page is rendered on the server (html/template, no script). The
// person is the chat user their verified email maps to in the chat
// directory, and decides through the same Service.Decide as a click, with
// SignedIn set: the same policies, the same refusals (approvals.Reply).
// The link's token is never logged: the access log shows paths only, and
// no error carries it.
package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/rs/zerolog/hlog"
	"golang.org/x/oauth2"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/hosts"
)

// CallbackPath is the redirect URI's path: register
// {public_url}/sso/callback at the provider.
const CallbackPath = "/sso/callback"

// SessionTTL is how long a sign-in lasts: long enough to read a task and
// decide, short enough that a browser left open is not a standing pass.
const SessionTTL = 15 * time.Minute

// Service is what the page needs of the domain.
type Service interface {
	Lookup(ctx context.Context, id string) (*approvals.Task, error)
	Decide(ctx context.Context, req approvals.DecideRequest) (*approvals.Task, error)
}

// Directory maps a verified email to a chat user (the Slack directory).
type Directory interface {
	// UserIDByEmail returns the user id, or an error wrapping
	// approvals.ErrNotFound when no user has the email.
	UserIDByEmail(ctx context.Context, email string) (string, error)
}

// Config wires a Handler.
type Config struct {
	// PublicURL is where people reach the bot (server.public_url); the
	// redirect URI is built from it, and its scheme says whether cookies
	// are Secure.
	PublicURL string
	// Issuer, ClientID, ClientSecret and Scopes are the OpenID Connect
	// client (web.oidc). The provider is discovered at the first sign-in,
	// so that the bot starts while the provider is away.
	Issuer, ClientID, ClientSecret string
	Scopes                         []string
	// SessionKey signs the cookies (web.session_key).
	SessionKey []byte

	Service   Service
	Directory Directory
	// Chat is the display name of the chat whose user ids Directory gives
	// (people signed in act with those ids); texts name it.
	Chat string
	// Policies returns the policies in force (for the page; the domain
	// decides with its own).
	Policies func() []approvals.Policy
	// Tools names the deployment tools on the page and in replies.
	Tools *approvals.Tools
	// HTTPClient calls the provider; a client with a 10 s timeout if nil.
	HTTPClient   *http.Client
	MaxBodyBytes int64
	// Clock is the domain's clock, for what the page says about windows
	// and freezes; time.Now if nil. Sessions run on the wall clock, as
	// the provider's tokens do.
	Clock approvals.Clock
}

// Handler serves the page.
type Handler struct {
	cfg      Config
	sign     signer
	secure   bool
	origin   string // the public URL's origin, as a browser writes it
	redirect string
	page     *pages

	mu     sync.Mutex
	client *oidcClient // discovered at the first sign-in
}

// oidcClient is the discovered provider and the client configured for it.
type oidcClient struct {
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
}

// New checks the wiring.
func New(cfg Config) (*Handler, error) {
	switch {
	case cfg.Service == nil || cfg.Directory == nil:
		return nil, errors.New("web: a service and a directory are required")
	case cfg.Issuer == "" || cfg.ClientID == "":
		return nil, errors.New("web: the OpenID Connect issuer and client id are required")
	case len(cfg.SessionKey) < 32:
		return nil, errors.New("web: the session key must be at least 32 bytes")
	}
	pub, err := url.Parse(strings.TrimSuffix(cfg.PublicURL, "/"))
	if err != nil || pub.Host == "" || (pub.Scheme != "https" && pub.Scheme != "http") {
		return nil, errors.New("web: the public URL must be an absolute http(s) URL")
	}
	loopback := pub.Scheme == "http" && hosts.IsLoopback(pub.Hostname())
	if pub.Scheme == "http" && !loopback {
		return nil, errors.New("web: the public URL must be https (http only on localhost or 127.0.0.1)")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Policies == nil {
		cfg.Policies = func() []approvals.Policy { return nil }
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	pub.Path, pub.RawQuery, pub.Fragment = strings.TrimSuffix(pub.Path, "/"), "", ""
	return &Handler{
		cfg:  cfg,
		sign: newSigner(cfg.SessionKey),
		// A browser sends no Secure cookie back over plain http, so only a
		// loopback test or trial goes without.
		secure:   !loopback,
		origin:   originOf(pub.String()),
		redirect: pub.String() + CallbackPath,
		page:     newPages(),
	}, nil
}

// Routes are the page's routes by pattern, for the server's routes of the
// surfaces people wait on (server.Config.Webhooks).
func (h *Handler) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /approve/{id}":   http.HandlerFunc(h.show),
		"POST /approve/{id}":  http.HandlerFunc(h.decide),
		"GET " + CallbackPath: http.HandlerFunc(h.callback),
	}
}

// ReviewURL is a task's page: what the button of a require_sso message
// opens, and the link to send people without Slack.
func ReviewURL(publicURL, taskID, token string) string {
	return strings.TrimSuffix(publicURL, "/") + pagePath(taskID) + "?" + url.Values{"t": {token}}.Encode()
}

func pagePath(taskID string) string { return "/approve/" + url.PathEscape(taskID) }

// show renders a task's page. The link must carry the task's token; a
// decided or expired task's link is refused at once, before any sign-in,
// and so is a link with a token of another task or none. A pending task's
// page signs the person in first.
func (h *Handler) show(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("t")
	t, ok := h.task(w, r, r.PathValue("id"), token)
	if !ok {
		return
	}
	sess, signedIn := h.readSession(r)
	if !signedIn {
		h.startSignIn(w, r, pagePath(t.ID)+"?"+url.Values{"t": {token}}.Encode())
		return
	}
	v := h.view(t, sess, token)
	if t.HasVoted(sess.User, sess.email()) {
		v.Notice = approvals.Reply(approvals.ErrAlreadyVoted, v.Tool, h.cfg.Chat)
	}
	h.render(w, http.StatusOK, v)
}

// task looks the link's task up and refuses a link that cannot decide it;
// on a refusal it has answered.
func (h *Handler) task(w http.ResponseWriter, r *http.Request, id, token string) (*approvals.Task, bool) {
	t, err := h.cfg.Service.Lookup(r.Context(), id)
	switch {
	case errors.Is(err, approvals.ErrNotFound):
		h.refuse(w, nil, approvals.ErrBadToken)
		return nil, false
	case err != nil:
		h.fail(w, r, nil, err)
		return nil, false
	}
	if err := approvals.CheckOpen(t, token, h.cfg.Clock()); err != nil {
		if errors.Is(err, approvals.ErrBadToken) {
			t = nil // a wrong link learns nothing of the task
		}
		h.refuse(w, t, err)
		return nil, false
	}
	return t, true
}

// decide takes the form: approve or reject, with a reason. It needs the
// session and the CSRF token bound to it and to the task; then the domain
// decides, as it does a click, with SignedIn set.
func (h *Handler) decide(w http.ResponseWriter, r *http.Request) {
	if !h.fromOwnPage(r) {
		h.render(w, http.StatusForbidden, pageView{
			Title:   "Nothing was decided",
			Notice:  "This form did not come from approvalbot's page, so nothing was decided. Open the link again.",
			Refused: true,
		})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		h.refuse(w, nil, approvals.Invalidf("the form could not be read"))
		return
	}
	id, token := r.PathValue("id"), r.PostForm.Get("t")
	sess, signedIn := h.readSession(r)
	if !signedIn {
		h.render(w, http.StatusUnauthorized, pageView{
			Title:   "Sign in again",
			Notice:  "Your sign-in has expired; nothing was decided. Open the link again to sign in.",
			Retry:   pagePath(id) + "?" + url.Values{"t": {token}}.Encode(),
			Refused: true,
		})
		return
	}
	if !h.sign.checkCSRF(sess, id, r.PostForm.Get("csrf")) {
		h.render(w, http.StatusForbidden, pageView{
			Title:   "Nothing was decided",
			Notice:  "This form is out of date or did not come from approvalbot's page, so nothing was decided. Open the link again.",
			Retry:   pagePath(id) + "?" + url.Values{"t": {token}}.Encode(),
			Refused: true,
			Who:     sess,
		})
		return
	}
	t, ok := h.task(w, r, id, token)
	if !ok {
		return
	}
	req := approvals.DecideRequest{
		Token:      token,
		Action:     approvals.Action(r.PostForm.Get("action")),
		User:       approvals.Person{ID: sess.User, Name: sess.Name, Email: sess.Email},
		Reason:     r.PostForm.Get("reason"),
		BreakGlass: r.PostForm.Get("break_glass") != "",
		Confirm:    r.PostForm.Get("confirm"),
		SignedIn:   true,
	}
	updated, err := h.cfg.Service.Decide(r.Context(), req)
	switch {
	case err == nil:
	case approvals.IsRefusal(err):
		if updated == nil {
			updated = t
		}
		v := h.view(updated, sess, token)
		v.Notice, v.Refused = approvals.Reply(err, v.Tool, h.cfg.Chat), true
		v.Reason = req.Reason
		if k := approvals.KindOf(err); !k.Prompt && !errors.Is(err, approvals.ErrApprovingClosed) {
			v.Form = nil // asking again would change nothing
		} else if errors.Is(err, approvals.ErrBreakGlassNeeded) && v.Form != nil {
			v.Form.BreakGlass = true
		}
		h.render(w, approvals.KindOf(err).HTTPStatus, v)
		return
	default:
		h.fail(w, r, sess, err)
		return
	}
	v := h.view(updated, sess, "")
	v.Form = nil
	switch updated.Status {
	case approvals.StatusApproved:
		v.Notice = "Approved. " + v.Tool + " is being told."
	case approvals.StatusRejected:
		v.Notice = "Rejected. " + v.Tool + " is being told."
	default:
		v.Notice = fmt.Sprintf("Your approval is counted: %d of %d.", len(updated.Approvals), updated.RequiredApprovals)
	}
	h.render(w, http.StatusOK, v)
}

// fromOwnPage reports whether a POST was sent by a page of the public
// URL's origin, as the browser says it: the Origin header; without it
// (or "null", as a page with Referrer-Policy: no-referrer sends), the
// Referer; without either, Sec-Fetch-Site must be same-origin. A request
// that says none of these is refused: the CSRF token is not the only
// guard of a decision.
func (h *Handler) fromOwnPage(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		return originOf(o) == h.origin
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		return originOf(ref) == h.origin
	}
	return r.Header.Get("Sec-Fetch-Site") == "same-origin"
}

// originOf is the origin of an absolute URL, scheme://host[:port] in
// lower case without a default port, or "" if it has none.
func originOf(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
		return ""
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port == "" || (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		return scheme + "://" + host
	}
	return scheme + "://" + host + ":" + port
}

// refuse answers with a refusal page: the reply of err's kind and status.
func (h *Handler) refuse(w http.ResponseWriter, t *approvals.Task, err error) {
	tool := ""
	if t != nil {
		tool = h.cfg.Tools.DisplayName(t.Source)
	}
	v := pageView{Title: "This link cannot be used", Notice: approvals.Reply(err, tool, h.cfg.Chat), Refused: true}
	if t != nil {
		v.Task, v.Tool = t, tool
		v.Title = title(t, tool)
		if t.Seal != nil {
			v.Receipt = t.Seal.ShortHash()
		}
	}
	h.render(w, approvals.KindOf(err).HTTPStatus, v)
}

// fail answers a failure of the bot's own (the store unreachable): logged,
// never shown, and nothing was decided.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, sess *session, err error) {
	kind := approvals.KindOf(err)
	ev := hlog.FromRequest(r).Error()
	if kind.HTTPStatus == http.StatusServiceUnavailable {
		ev = hlog.FromRequest(r).Warn()
	}
	ev.Err(err).Str("code", string(kind.Code)).Msg("web: task page failed")
	h.render(w, kind.HTTPStatus, pageView{Title: "Nothing was decided", Notice: approvals.Reply(err, "", h.cfg.Chat), Refused: true, Who: sess})
}
