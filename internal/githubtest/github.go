// Package githubtest is a stand-in for the part of GitHub's REST API a
// GitHub App that is a custom deployment protection rule uses, and for the
// App's webhook deliveries. The tests and the load command run it on
// loopback.
//
// It is a real HTTP server that knows an App (its id and RSA key pair, the
// private key handed to the bot), the App's installations, and workflow
// runs whose environments wait for the App's rule (NewRun). It checks
// requests as GitHub does: the App's JWT (RS256 with the App's key, iss the
// App's id, exp at most 10 minutes ahead) to mint installation tokens; an
// installation token of the run's installation for everything else; the
// Accept, X-GitHub-Api-Version and User-Agent headers; the exact paths
// and body shapes. It keeps the runs' state: a review ends the
// environment's wait, so it leaves the run's pending deployments, and a
// second review is refused with 422; a status report decides nothing.
// Its faults model what the bot must survive: reviews refused for a while
// (SetFailFirst), taken but answered too late (SetLateAnswers) or never
// (SetDroppedAnswers), and scripted answers (SetAnswer).
package githubtest

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/approvalbot/approvalbot/internal/httpfault"
)

// What GitHub's REST API wants with every call.
const (
	MediaType  = "application/vnd.github+json"
	APIVersion = "2022-11-28"
)

// AppID is the fake App's id: the iss its JWTs must carry.
const AppID = "424242"

// MaxJWTLifetime is how far ahead a JWT's exp may lie.
const MaxJWTLifetime = 10 * time.Minute

// MaxStatusReports is how many status reports GitHub keeps per run and
// environment.
const MaxStatusReports = 10

// Gate states: an environment of a run waiting for the App's rule, or the
// App's review of it.
const (
	GateWaiting   = "waiting"
	GateApproved  = "approved"
	GateRejected  = "rejected"
	GateCancelled = "cancelled"
)

// Messages of GitHub's 422 answers to a review the rule cannot take.
const (
	MessageNoPending       = "No pending deployment requests to approve or reject"
	MessageAlreadyReviewed = "Deployment protection rule has already been reviewed"
)

// grantedPermissions are what the App is installed with.
var grantedPermissions = map[string]string{"actions": "read", "deployments": "write", "metadata": "read"}

// Answer is a scripted answer to a request: a Status of 0 is 200.
type Answer = httpfault.Answer

// Call is one request the fake GitHub received.
type Call struct {
	Method, Path, Query                                    string
	Auth, Accept, APIVersion, UserAgent, ContentType, Body string
	At                                                     time.Time
	// Code is the status the fake answered with; 0 when it gave no answer
	// (dropped, or the client gave up first).
	Code int
	// Applied reports whether the call changed the fake's state (minted a
	// token, reviewed a rule, wrote a status report).
	Applied bool
}

// Token is the Bearer token (or JWT) the call carried.
func (c Call) Token() string { return strings.TrimPrefix(c.Auth, "Bearer ") }

// Review is the body of a review or a status report.
type Review struct {
	EnvironmentName string `json:"environment_name"`
	State           string `json:"state,omitempty"`
	Comment         string `json:"comment,omitempty"`
}

// Review decodes the call's body as a review.
func (c Call) Review() Review {
	var r Review
	_ = json.Unmarshal([]byte(c.Body), &r)
	return r
}

// Gate is an environment of a run as the fake keeps it.
type Gate struct {
	Environment string
	State       string // waiting, approved, rejected, cancelled
	Comment     string // the review's comment
	Reports     []string
	// OtherRules: the environment waits for other protection rules too
	// (required reviewers), so it stays among the pending deployments
	// after the App's approval.
	OtherRules bool
}

// Run is a workflow run whose environments wait for the App's rule.
type Run struct {
	ID           int64
	Repo         string // owner/name
	Installation int64
	// APIURL is the fake's API root (no trailing slash).
	APIURL string
}

// CallbackURL is the run's deployment_callback_url.
func (r Run) CallbackURL() string {
	return r.APIURL + "/repos/" + r.Repo + "/actions/runs/" + strconv.FormatInt(r.ID, 10) + "/deployment_protection_rule"
}

// HTMLURL is the repository's page.
func (r Run) HTMLURL() string { return "https://github.com/" + r.Repo }

// Event is a deployment_protection_rule webhook of a run.
type Event struct {
	Environment string
	Creator     string // deployment.creator.login; sender too
	Ref, SHA    string // default main and a made-up commit
	Action      string // default requested
	// CallbackURL replaces the run's (a callback URL elsewhere).
	CallbackURL string
}

// Payload is the webhook's body as GitHub sends it (the parts that matter,
// and some that do not).
func (r Run) Payload(e Event) []byte {
	if e.Action == "" {
		e.Action = "requested"
	}
	if e.Ref == "" {
		e.Ref = "main"
	}
	if e.SHA == "" {
		// One run deploys one commit to an environment, whatever case a
		// delivery spells the environment's name in (GitHub's names are not
		// case-sensitive): a redelivery names the same commit.
		sum := sha256.Sum256([]byte(fmt.Sprintf("%d/%s", r.ID, strings.ToLower(e.Environment))))
		e.SHA = hex.EncodeToString(sum[:20])
	}
	if e.CallbackURL == "" {
		e.CallbackURL = r.CallbackURL()
	}
	owner, name, _ := strings.Cut(r.Repo, "/")
	creator := map[string]any{"login": e.Creator, "id": 583231, "type": "User"}
	body, _ := json.Marshal(map[string]any{
		"action":                  e.Action,
		"environment":             e.Environment,
		"event":                   "push",
		"ref":                     e.Ref,
		"sha":                     e.SHA,
		"deployment_callback_url": e.CallbackURL,
		"deployment": map[string]any{
			"url": r.APIURL + "/repos/" + r.Repo + "/deployments/" + strconv.FormatInt(r.ID*10, 10),
			"id":  r.ID * 10, "node_id": "DE_kwDOA", "task": "deploy", "original_environment": e.Environment,
			"environment": e.Environment, "ref": e.Ref, "sha": e.SHA, "creator": creator,
			"created_at": "2026-11-22T14:00:00Z", "updated_at": "2026-11-22T14:00:00Z", "payload": map[string]any{},
		},
		"pull_requests": []any{},
		"repository": map[string]any{
			"id": 1296269, "node_id": "R_kgDOA", "name": name, "full_name": r.Repo, "private": false,
			"owner":    map[string]any{"login": owner, "id": 1, "type": "Organization"},
			"html_url": r.HTMLURL(), "url": r.APIURL + "/repos/" + r.Repo,
		},
		"installation": map[string]any{"id": r.Installation, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u"},
		"sender":       creator,
	})
	return body
}

// Ping is the body of the ping GitHub sends when the webhook is set up.
func Ping() []byte {
	return []byte(`{"zen":"Keep it logically awesome.","hook_id":109948940,"hook":{"type":"App","id":109948940,"active":true,"events":["deployment_protection_rule"]}}`)
}

// Signature is X-Hub-Signature-256 of body under secret.
func Signature(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Headers are the headers of a webhook delivery of event, signed with
// secret.
func Headers(secret, event, delivery string, body []byte) map[string]string {
	return map[string]string{
		"Content-Type":        "application/json",
		"User-Agent":          "GitHub-Hookshot/5a1b3c4",
		"X-GitHub-Event":      event,
		"X-GitHub-Delivery":   delivery,
		"X-GitHub-Hook-ID":    "109948940",
		"X-Hub-Signature-256": Signature(secret, body),
	}
}

// Server is GitHub's REST API on a real HTTP server.
type Server struct {
	Server *httptest.Server

	prefix string
	key    *rsa.PrivateKey
	keyPEM string

	mu            sync.Mutex
	now           func() time.Time
	calls         []Call
	installations map[int64]string // id → owner
	runs          map[int64]*run
	tokens        map[string]issued
	tokenTTL      time.Duration
	nextRun       int64
	answer        func(call Call) *Answer

	faults httpfault.Faults // reviews only
}

type run struct {
	Run
	status, conclusion string
	gates              []*Gate
}

type issued struct {
	installation int64
	expires      time.Time
}

// New starts a fake github.com (API root = URL()); Close it when done.
func New() *Server { return NewWithPrefix("") }

// NewWithPrefix starts a fake whose API root has a path, as GitHub
// Enterprise Server's /api/v3.
func NewWithPrefix(prefix string) *Server {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("githubtest: generate the App's key: " + err.Error())
	}
	f := &Server{
		prefix:        strings.TrimSuffix(prefix, "/"),
		key:           key,
		keyPEM:        string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
		now:           time.Now,
		installations: map[int64]string{},
		runs:          map[int64]*run{},
		tokens:        map[string]issued{},
		tokenTTL:      time.Hour,
		nextRun:       7000000000,
	}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// URL is the API root: github.api_url for the bot.
func (f *Server) URL() string { return f.Server.URL + f.prefix }

// PrivateKeyPEM is the App's private key (PKCS #1 PEM, as GitHub hands it
// out): github.private_key for the bot.
func (f *Server) PrivateKeyPEM() string { return f.keyPEM }

// PublicKey is the App's public key, which its JWTs verify with.
func (f *Server) PublicKey() *rsa.PublicKey { return &f.key.PublicKey }

// Close stops the server; held answers are let go first.
func (f *Server) Close() {
	f.faults.Close()
	f.Server.Close()
}

// SetNow replaces the fake's clock (token expiry, JWT checks).
func (f *Server) SetNow(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// SetTokenTTL sets how long the tokens minted from now on live (default an
// hour, as GitHub's).
func (f *Server) SetTokenTTL(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenTTL = d
}

// NewRun starts a workflow run of repo (owner/name) whose environments
// wait for the App's rule. The App is installed on the owner's account
// (one installation per owner).
func (f *Server) NewRun(repo string, environments ...string) Run {
	f.mu.Lock()
	defer f.mu.Unlock()
	owner, _, _ := strings.Cut(repo, "/")
	var inst int64
	for id, o := range f.installations {
		if strings.EqualFold(o, owner) {
			inst = id
		}
	}
	if inst == 0 {
		inst = int64(40000000 + len(f.installations) + 1)
		f.installations[inst] = owner
	}
	f.nextRun += 17
	r := &run{Run: Run{ID: f.nextRun, Repo: repo, Installation: inst, APIURL: f.URL()}, status: "waiting"}
	for _, env := range environments {
		r.gates = append(r.gates, &Gate{Environment: env, State: GateWaiting})
	}
	f.runs[r.ID] = r
	return r.Run
}

// AddOtherRule makes an environment of a run wait for another protection
// rule too: it stays among the pending deployments after the App's
// approval.
func (f *Server) AddOtherRule(runID int64, env string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if g := f.gate(runID, env); g != nil {
		g.OtherRules = true
	}
}

// CancelRun cancels a run: it is completed, and no environment waits.
func (f *Server) CancelRun(runID int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.runs[runID]
	if !ok {
		return
	}
	r.status, r.conclusion = "completed", "cancelled"
	for _, g := range r.gates {
		if g.State == GateWaiting {
			g.State = GateCancelled
		}
	}
}

// Gate returns an environment of a run now (zero when unknown).
func (f *Server) Gate(runID int64, env string) Gate {
	f.mu.Lock()
	defer f.mu.Unlock()
	if g := f.gate(runID, env); g != nil {
		c := *g
		c.Reports = append([]string(nil), g.Reports...)
		return c
	}
	return Gate{}
}

// RunStatus returns a run's status and conclusion now.
func (f *Server) RunStatus(runID int64) (status, conclusion string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.runs[runID]; ok {
		return r.status, r.conclusion
	}
	return "", ""
}

// gate finds an environment of a run (names are not case-sensitive);
// f.mu is held.
func (f *Server) gate(runID int64, env string) *Gate {
	r, ok := f.runs[runID]
	if !ok {
		return nil
	}
	for _, g := range r.gates {
		if strings.EqualFold(g.Environment, env) {
			return g
		}
	}
	return nil
}

// SetAnswer scripts the answer to any well-formed request; nil, or a nil
// *Answer, answers as GitHub would. A scripted answer changes nothing.
func (f *Server) SetAnswer(fn func(call Call) *Answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = fn
}

// SetFailFirst makes the next n reviews answered 500 and not taken.
func (f *Server) SetFailFirst(n int) { f.faults.SetFailFirst(n) }

// SetLateAnswers makes the next n reviews late: each is taken, and then
// its answer is held until the client gives up. n < 0: every one.
func (f *Server) SetLateAnswers(n int) { f.faults.SetLate(n) }

// SetDroppedAnswers makes the next n reviews unanswered: each is taken,
// and then the connection is closed. n < 0: every one.
func (f *Server) SetDroppedAnswers(n int) { f.faults.SetDropped(n) }

// Calls returns every request so far.
func (f *Server) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

func (f *Server) callsWhere(keep func(Call) bool) []Call {
	var out []Call
	for _, c := range f.Calls() {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// Reviews returns the POSTs to review addresses that carry a state,
// whatever their answer.
func (f *Server) Reviews() []Call {
	return f.callsWhere(func(c Call) bool {
		return c.Method == http.MethodPost && strings.HasSuffix(c.Path, "/deployment_protection_rule") && strings.Contains(c.Body, `"state"`)
	})
}

// StatusReports returns the POSTs to review addresses without a state.
func (f *Server) StatusReports() []Call {
	return f.callsWhere(func(c Call) bool {
		return c.Method == http.MethodPost && strings.HasSuffix(c.Path, "/deployment_protection_rule") && !strings.Contains(c.Body, `"state"`)
	})
}

// TokenRequests returns the requests for installation tokens.
func (f *Server) TokenRequests() []Call {
	return f.callsWhere(func(c Call) bool { return strings.HasSuffix(c.Path, "/access_tokens") })
}

// Reads returns the GETs.
func (f *Server) Reads() []Call {
	return f.callsWhere(func(c Call) bool { return c.Method == http.MethodGet })
}

// IssuedTokens returns every installation token minted so far.
func (f *Server) IssuedTokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.tokens))
	for t := range f.tokens {
		out = append(out, t)
	}
	return out
}

// apiError is GitHub's error answer.
type apiError struct {
	status  int
	message string
}

func notFound() *apiError { return &apiError{http.StatusNotFound, "Not Found"} }

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	now := f.now()
	call := Call{
		Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
		Auth: r.Header.Get("Authorization"), Accept: r.Header.Get("Accept"), APIVersion: r.Header.Get("X-GitHub-Api-Version"),
		UserAgent: r.Header.Get("User-Agent"), ContentType: r.Header.Get("Content-Type"), Body: string(body), At: now,
	}
	index := len(f.calls)
	f.calls = append(f.calls, call)
	handle, refusal := f.route(r, body, now)
	answer := f.answer
	f.mu.Unlock()

	record := func(code int, applied bool) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls[index].Code, f.calls[index].Applied = code, applied
	}
	if refusal != nil {
		writeJSON(w, refusal.status, errorBody(refusal.message))
		record(refusal.status, false)
		return
	}
	if answer != nil {
		if a := answer(call); a != nil {
			record(a.Write(w), false)
			return
		}
	}
	f.mu.Lock()
	status, reply, applied, fault := handle()
	f.mu.Unlock()
	if fault != httpfault.Answered {
		record(0, applied)
		f.faults.Lose(w, r, fault)
	}
	if reply == nil {
		w.WriteHeader(status)
	} else {
		writeJSON(w, status, reply)
	}
	record(status, applied)
}

// handler carries a well-formed request out; f.mu is held.
type handler func() (status int, reply any, applied bool, fault httpfault.Fault)

// route checks a request as GitHub would and returns what carries it out;
// f.mu is held.
func (f *Server) route(r *http.Request, body []byte, now time.Time) (handler, *apiError) {
	path, ok := strings.CutPrefix(r.URL.EscapedPath(), f.prefix+"/")
	if !ok || r.URL.RawQuery != "" {
		return nil, notFound()
	}
	parts := strings.Split(path, "/")
	var h handler
	var refusal *apiError
	switch {
	case len(parts) == 4 && parts[0] == "app" && parts[1] == "installations" && parts[3] == "access_tokens" && r.Method == http.MethodPost:
		if refusal = f.checkHeaders(r); refusal == nil {
			h, refusal = f.accessToken(r, parts[2], body, now)
		}
	case len(parts) >= 6 && parts[0] == "repos" && parts[3] == "actions" && parts[4] == "runs":
		rn, known := f.findRun(parts[1]+"/"+parts[2], parts[5])
		resource := strings.Join(parts[6:], "/")
		switch {
		case !known:
			return nil, notFound()
		case resource == "deployment_protection_rule" && r.Method == http.MethodPost:
		case resource == "pending_deployments" && r.Method == http.MethodGet:
		case resource == "" && r.Method == http.MethodGet:
		default:
			return nil, notFound()
		}
		if refusal = f.checkHeaders(r); refusal != nil {
			break
		}
		if refusal = f.checkToken(r, rn, now); refusal != nil {
			break
		}
		switch resource {
		case "deployment_protection_rule":
			h, refusal = f.review(r, rn, body)
		case "pending_deployments":
			h = f.pending(rn)
		default:
			h = f.runAnswer(rn)
		}
	default:
		return nil, notFound()
	}
	if refusal != nil {
		return nil, refusal
	}
	if r.Method == http.MethodGet && len(body) != 0 {
		return nil, &apiError{http.StatusBadRequest, "a GET has no body"}
	}
	return h, nil
}

// checkHeaders refuses a request without the headers GitHub asks for.
func (f *Server) checkHeaders(r *http.Request) *apiError {
	switch {
	case r.Header.Get("User-Agent") == "":
		return &apiError{http.StatusForbidden, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header"}
	case r.Header.Get("Accept") != MediaType:
		return &apiError{http.StatusUnsupportedMediaType, "Unsupported 'Accept' header: want " + MediaType}
	case r.Header.Get("X-GitHub-Api-Version") != APIVersion:
		return &apiError{http.StatusBadRequest, "API version '" + r.Header.Get("X-GitHub-Api-Version") + "' is not supported; send X-GitHub-Api-Version: " + APIVersion}
	}
	return nil
}

func (f *Server) findRun(repo, id string) (*run, bool) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || id != strconv.FormatInt(n, 10) {
		return nil, false
	}
	rn, ok := f.runs[n]
	if !ok || !strings.EqualFold(rn.Repo, repo) {
		return nil, false
	}
	return rn, true
}

// checkToken accepts a live installation token of the run's installation.
func (f *Server) checkToken(r *http.Request, rn *run, now time.Time) *apiError {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	tok, known := f.tokens[token]
	if !ok || !known || tok.installation != rn.Installation || !now.Before(tok.expires) {
		return &apiError{http.StatusUnauthorized, "Bad credentials"}
	}
	return nil
}

// accessToken mints an installation token for a request signed with the
// App's JWT.
func (f *Server) accessToken(r *http.Request, id string, body []byte, now time.Time) (handler, *apiError) {
	signed, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, &apiError{http.StatusUnauthorized, "A JSON web token could not be decoded"}
	}
	if err := f.checkJWT(signed, now); err != nil {
		return nil, &apiError{http.StatusUnauthorized, err.Error()}
	}
	inst, err := strconv.ParseInt(id, 10, 64)
	if _, known := f.installations[inst]; err != nil || !known {
		return nil, notFound()
	}
	perms := map[string]string{}
	for k, v := range grantedPermissions {
		perms[k] = v
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			return nil, &apiError{http.StatusUnsupportedMediaType, "Content-Type must be application/json"}
		}
		var req struct {
			Permissions   map[string]string `json:"permissions"`
			Repositories  []string          `json:"repositories"`
			RepositoryIDs []int64           `json:"repository_ids"`
		}
		if err := decodeStrict(body, &req); err != nil {
			return nil, &apiError{http.StatusUnprocessableEntity, "Invalid request: " + err.Error()}
		}
		if req.Permissions != nil {
			for k, v := range req.Permissions {
				granted, ok := grantedPermissions[k]
				if !ok || (v != "read" && v != "write") || (v == "write" && granted != "write") {
					return nil, &apiError{http.StatusUnprocessableEntity, "The permissions requested are not granted to this installation."}
				}
			}
			perms = req.Permissions
		}
	}
	return func() (int, any, bool, httpfault.Fault) {
		token := "ghs_" + randomText(36)
		expires := f.now().Add(f.tokenTTL).UTC().Truncate(time.Second)
		f.tokens[token] = issued{installation: inst, expires: expires}
		return http.StatusCreated, map[string]any{
			"token": token, "expires_at": expires.Format(time.RFC3339),
			"permissions": perms, "repository_selection": "all",
		}, true, httpfault.Answered
	}, nil
}

// checkJWT verifies the App's JWT as GitHub does.
func (f *Server) checkJWT(signed string, now time.Time) error {
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(signed, &claims, func(*jwt.Token) (any, error) { return &f.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(AppID), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithTimeFunc(func() time.Time { return now }))
	switch {
	case err != nil:
		return fmt.Errorf("a JSON web token could not be decoded: %v", err)
	case claims.IssuedAt == nil:
		return fmt.Errorf("'Issued at' claim ('iat') is required")
	case claims.ExpiresAt.After(now.Add(MaxJWTLifetime)):
		return fmt.Errorf("'Expiration time' claim ('exp') is too far in the future")
	}
	return nil
}

// review takes a review (state given) or a status report (comment only).
func (f *Server) review(r *http.Request, rn *run, body []byte) (handler, *apiError) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, &apiError{http.StatusUnsupportedMediaType, "Content-Type must be application/json"}
	}
	var req struct {
		EnvironmentName *string `json:"environment_name"`
		State           *string `json:"state"`
		Comment         *string `json:"comment"`
	}
	if err := decodeStrict(body, &req); err != nil {
		return nil, &apiError{http.StatusUnprocessableEntity, "Invalid request: " + err.Error()}
	}
	switch {
	case req.EnvironmentName == nil || *req.EnvironmentName == "":
		return nil, &apiError{http.StatusUnprocessableEntity, "Invalid request: environment_name is required"}
	case req.State != nil && *req.State != GateApproved && *req.State != GateRejected:
		return nil, &apiError{http.StatusUnprocessableEntity, "Invalid request: state must be approved or rejected"}
	case req.State == nil && (req.Comment == nil || *req.Comment == ""):
		return nil, &apiError{http.StatusUnprocessableEntity, "Invalid request: comment is required without a state"}
	}
	g := f.gate(rn.ID, *req.EnvironmentName)
	comment := ""
	if req.Comment != nil {
		comment = *req.Comment
	}
	switch {
	case g == nil:
		return nil, &apiError{http.StatusUnprocessableEntity, MessageNoPending}
	case req.State != nil && (g.State == GateApproved || g.State == GateRejected):
		return nil, &apiError{http.StatusUnprocessableEntity, MessageAlreadyReviewed}
	case g.State != GateWaiting:
		return nil, &apiError{http.StatusUnprocessableEntity, MessageNoPending}
	case req.State == nil && len(g.Reports) >= MaxStatusReports:
		return nil, &apiError{http.StatusUnprocessableEntity, "Status reports are limited to " + strconv.Itoa(MaxStatusReports)}
	}
	if req.State == nil {
		return func() (int, any, bool, httpfault.Fault) {
			g.Reports = append(g.Reports, comment)
			return http.StatusNoContent, nil, true, httpfault.Answered
		}, nil
	}
	state := *req.State
	return func() (int, any, bool, httpfault.Fault) {
		if f.faults.Refuse() {
			return http.StatusInternalServerError, errorBody("Server Error"), false, httpfault.Answered
		}
		g.State, g.Comment = state, comment
		rn.settle()
		return http.StatusNoContent, nil, true, f.faults.Take()
	}, nil
}

// settle moves the run on after a review: a rejection fails it, and once
// no environment waits it runs.
func (rn *run) settle() {
	waiting := false
	for _, g := range rn.gates {
		switch g.State {
		case GateRejected:
			rn.status, rn.conclusion = "completed", "failure"
			return
		case GateWaiting:
			waiting = true
		case GateApproved:
			waiting = waiting || g.OtherRules
		}
	}
	if !waiting {
		rn.status = "in_progress"
	}
}

// pending answers the run's pending deployments: the environments still
// waiting for a protection rule.
func (f *Server) pending(rn *run) handler {
	return func() (int, any, bool, httpfault.Fault) {
		list := []any{}
		for i, g := range rn.gates {
			if g.State != GateWaiting && !(g.OtherRules && g.State == GateApproved && rn.status != "completed") {
				continue
			}
			list = append(list, map[string]any{
				"environment": map[string]any{
					"id": 161088068 + i, "node_id": "EN_kwDOA" + strconv.Itoa(i), "name": g.Environment,
					"url":      rn.APIURL + "/repos/" + rn.Repo + "/environments/" + g.Environment,
					"html_url": rn.HTMLURL() + "/deployments/activity_log?environments_filter=" + g.Environment,
				},
				"wait_timer": 0, "wait_timer_started_at": nil, "current_user_can_approve": false, "reviewers": []any{},
			})
		}
		return http.StatusOK, list, false, httpfault.Answered
	}
}

// runAnswer answers the run itself.
func (f *Server) runAnswer(rn *run) handler {
	return func() (int, any, bool, httpfault.Fault) {
		var conclusion any
		if rn.conclusion != "" {
			conclusion = rn.conclusion
		}
		return http.StatusOK, map[string]any{
			"id": rn.ID, "name": "deploy", "status": rn.status, "conclusion": conclusion, "run_attempt": 1,
			"html_url":   rn.HTMLURL() + "/actions/runs/" + strconv.FormatInt(rn.ID, 10),
			"repository": map[string]any{"full_name": rn.Repo},
		}, false, httpfault.Answered
	}
}

// decodeStrict decodes exactly one JSON object without unknown fields.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("data after the object")
	}
	return nil
}

func errorBody(message string) map[string]any {
	return map[string]any{"message": message, "documentation_url": "https://docs.github.com/rest"}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomText(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// GenerateKeyPEM makes a fresh App private key (PKCS #1 PEM), for tests
// that need a key but no fake.
func GenerateKeyPEM() string {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("githubtest: generate a key: " + err.Error())
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
}
