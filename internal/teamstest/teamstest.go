// Package teamstest is a fake Bot Framework as strict as the real one for
// what approvalbot uses: the channel's OpenID metadata and JWKS (with a key
// it signs channel tokens with), Entra's token endpoint (client
// credentials and scope checked), and the Bot Connector (bearer token,
// activity and card shapes checked; posts, updates, replies, member
// look-ups), able to answer 429 or 500 on demand.
package teamstest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Facts of the fake's tenant and bot.
const (
	Tenant      = "11111111-1111-4111-8111-111111111111"
	AppID       = "22222222-2222-4222-8222-222222222222"
	AppPassword = "app-password-secret-3333"
	Issuer      = "https://api.botframework.com"
	KeyID       = "fake-key-1"
	Scope       = "https://api.botframework.com/.default"
)

// Activity is one activity the connector holds.
type Activity struct {
	Conversation string
	ID           string
	ReplyTo      string
	Body         map[string]any
	Updates      int
}

// Card is the activity's Adaptive Card, nil when it has none.
func (a Activity) Card() map[string]any {
	atts, _ := a.Body["attachments"].([]any)
	if len(atts) == 0 {
		return nil
	}
	att, _ := atts[0].(map[string]any)
	card, _ := att["content"].(map[string]any)
	return card
}

// Member is a member the connector can look up.
type Member struct {
	ID, Name, AADObjectID, Email, UserPrincipalName string
}

// Fault is an answer the connector gives instead of its own.
type Fault struct {
	Status     int
	RetryAfter string
}

// Server is the fake.
type Server struct {
	*httptest.Server
	key *rsa.PrivateKey

	mu         sync.Mutex
	tokens     map[string]time.Time
	tokenCalls int
	seq        int
	activities map[string]*Activity // by conversation + "/" + id
	order      []string
	members    map[string]Member
	fault      func(r *http.Request) *Fault
	calls      []string
	// Endorsements are the key's (default ["msteams"]).
	endorsements []string
}

// New starts the fake; it stops with the test.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// NewServer starts the fake outside a test (cmd/approvalbench); the
// caller closes it.
func NewServer() (*Server, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	s := &Server{key: key, tokens: map[string]time.Time{}, activities: map[string]*Activity{}, members: map[string]Member{}, endorsements: []string{"msteams"}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /openid", s.metadata)
	mux.HandleFunc("GET /keys", s.keys)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.token)
	mux.HandleFunc("POST /v3/conversations/{conv}/activities", s.send)
	mux.HandleFunc("POST /v3/conversations/{conv}/activities/{id}", s.reply)
	mux.HandleFunc("PUT /v3/conversations/{conv}/activities/{id}", s.update)
	mux.HandleFunc("GET /v3/conversations/{conv}/members/{member}", s.member)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls = append(s.calls, r.Method+" "+r.URL.Path)
		fault := s.fault
		s.mu.Unlock()
		if fault != nil && !strings.HasPrefix(r.URL.Path, "/openid") && r.URL.Path != "/keys" {
			if f := fault(r); f != nil {
				if f.RetryAfter != "" {
					w.Header().Set("Retry-After", f.RetryAfter)
				}
				writeJSON(w, f.Status, map[string]any{"error": map[string]string{"code": "Fault", "message": "fault injected"}})
				return
			}
		}
		mux.ServeHTTP(w, r)
	}))
	return s, nil
}

// OpenIDMetadata is teams.openid_metadata for the fake.
func (s *Server) OpenIDMetadata() string { return s.URL + "/openid" }

// TokenURL is teams.token_url for the fake.
func (s *Server) TokenURL() string { return s.URL + "/" + Tenant + "/oauth2/v2.0/token" }

// ServiceURL is the connector's service URL (teams.service_url).
func (s *Server) ServiceURL() string { return s.URL + "/" }

// SetFault makes the fake answer f's answer instead of its own while f
// returns one (nil clears it).
func (s *Server) SetFault(f func(r *http.Request) *Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// SetEndorsements replaces the key's endorsements (nil: none).
func (s *Server) SetEndorsements(e []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endorsements = e
}

// AddMember makes a member known to the look-up, by its id and by its
// Entra object id.
func (s *Server) AddMember(m Member) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.members[m.ID] = m
	s.members[m.AADObjectID] = m
}

// Calls are "METHOD path" of every request, in order.
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// TokenCalls counts the tokens Entra issued.
func (s *Server) TokenCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenCalls
}

// Activities are the activities sent (posts and replies), in order, as
// they are now.
func (s *Server) Activities() []Activity {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Activity, 0, len(s.order))
	for _, k := range s.order {
		out = append(out, *s.activities[k])
	}
	return out
}

// Claims are a channel token's claims; Sign fills what is left zero.
type Claims struct {
	Issuer, Audience, ServiceURL string
	IssuedAt, NotBefore, Expires time.Time
	KeyID                        string
	// Key signs instead of the fake's key (a forgery).
	Key *rsa.PrivateKey
}

// ChannelToken signs a token as the channel does for an activity whose
// serviceUrl is serviceURL ("Bearer " included).
func (s *Server) ChannelToken(serviceURL string) string {
	return s.Sign(Claims{ServiceURL: serviceURL})
}

// Sign signs a channel token with c's claims, defaults filled in: the
// fake's issuer, AppID, now ±, the fake's key.
func (s *Server) Sign(c Claims) string {
	now := time.Now()
	if c.Issuer == "" {
		c.Issuer = Issuer
	}
	if c.Audience == "" {
		c.Audience = AppID
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = now
	}
	if c.NotBefore.IsZero() {
		c.NotBefore = now
	}
	if c.Expires.IsZero() {
		c.Expires = now.Add(time.Hour)
	}
	if c.KeyID == "" {
		c.KeyID = KeyID
	}
	key := c.Key
	if key == nil {
		key = s.key
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": c.Issuer, "aud": c.Audience, "serviceurl": c.ServiceURL,
		"iat": c.IssuedAt.Unix(), "nbf": c.NotBefore.Unix(), "exp": c.Expires.Unix(),
	})
	tok.Header["kid"] = c.KeyID
	signed, err := tok.SignedString(key)
	if err != nil {
		panic(err)
	}
	return "Bearer " + signed
}

// Click is an adaptiveCard/action invoke as Teams sends it when the
// member clicks an Action.Execute with verb and data (inputs merged in).
func (s *Server) Click(m Member, conversation, verb string, data map[string]string) []byte {
	d := map[string]any{}
	for k, v := range data {
		d[k] = v
	}
	a := map[string]any{
		"type": "invoke", "name": "adaptiveCard/action", "id": "invoke-1", "channelId": "msteams",
		"serviceUrl":   s.ServiceURL(),
		"from":         map[string]any{"id": m.ID, "name": m.Name, "aadObjectId": m.AADObjectID},
		"recipient":    map[string]any{"id": "28:" + AppID, "name": "approvalbot"},
		"conversation": map[string]any{"id": conversation, "tenantId": Tenant, "conversationType": "channel"},
		"channelData":  map[string]any{"tenant": map[string]any{"id": Tenant}},
		"value":        map[string]any{"action": map[string]any{"type": "Action.Execute", "verb": verb, "data": d}},
	}
	raw, _ := json.Marshal(a)
	return raw
}

func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer": Issuer, "authorization_endpoint": "https://invalid.example/",
		"jwks_uri": s.URL + "/keys", "id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt"},
	})
}

func (s *Server) keys(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	endorsements := s.endorsements
	s.mu.Unlock()
	pub := s.key.PublicKey
	k := map[string]any{
		"kty": "RSA", "use": "sig", "kid": KeyID,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}
	if endorsements != nil {
		k["endorsements"] = endorsements
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": []any{k}})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("tenant") != Tenant {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_tenant"})
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "form body expected"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	switch {
	case r.PostForm.Get("grant_type") != "client_credentials":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	case r.PostForm.Get("client_id") != AppID || r.PostForm.Get("client_secret") != AppPassword:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})
		return
	case r.PostForm.Get("scope") != Scope:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_scope"})
		return
	}
	s.mu.Lock()
	s.tokenCalls++
	tok := fmt.Sprintf("connector-token-%d", s.tokenCalls)
	s.tokens[tok] = time.Now().Add(time.Hour)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok})
}

// authorized checks the connector's bearer token.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	exp, known := s.tokens[tok]
	s.mu.Unlock()
	if !ok || !known || time.Now().After(exp) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "Authorization has been denied for this request."})
		return false
	}
	return true
}

// readActivity reads and checks an activity: a message with text or one
// Adaptive Card 1.5 attachment.
func readActivity(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]any{"error": map[string]string{"code": "BadArgument", "message": "json expected"}})
		return nil, false
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if len(raw) > 28<<10 {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": map[string]string{"code": "MessageSizeTooBig", "message": "Message size too big"}})
		return nil, false
	}
	var a map[string]any
	if err := json.Unmarshal(raw, &a); err != nil {
		bad(w, "malformed activity")
		return nil, false
	}
	if a["type"] != "message" {
		bad(w, "type must be message")
		return nil, false
	}
	atts, _ := a["attachments"].([]any)
	text, _ := a["text"].(string)
	if len(atts) == 0 && text == "" {
		bad(w, "empty message")
		return nil, false
	}
	for _, at := range atts {
		att, _ := at.(map[string]any)
		if att["contentType"] != "application/vnd.microsoft.card.adaptive" {
			bad(w, "unknown attachment content type")
			return nil, false
		}
		card, _ := att["content"].(map[string]any)
		if card["type"] != "AdaptiveCard" || card["version"] != "1.5" {
			bad(w, "content must be an AdaptiveCard of version 1.5")
			return nil, false
		}
		if _, ok := card["body"].([]any); !ok {
			bad(w, "card without body")
			return nil, false
		}
		actions, _ := card["actions"].([]any)
		for _, ac := range actions {
			act, _ := ac.(map[string]any)
			switch act["type"] {
			case "Action.Execute":
				if v, _ := act["verb"].(string); v == "" {
					bad(w, "Action.Execute without verb")
					return nil, false
				}
			case "Action.OpenUrl":
				u, _ := act["url"].(string)
				if p, err := url.Parse(u); err != nil || p.Host == "" {
					bad(w, "Action.OpenUrl without url")
					return nil, false
				}
			default:
				bad(w, "unexpected action type")
				return nil, false
			}
		}
	}
	return a, true
}

func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	a, ok := readActivity(w, r)
	if !ok {
		return
	}
	conv := r.PathValue("conv")
	if !strings.HasPrefix(conv, "19:") && !strings.HasPrefix(conv, "a:") {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"code": "ConversationNotFound", "message": "Conversation not found."}})
		return
	}
	s.mu.Lock()
	s.seq++
	id := fmt.Sprintf("1700000000%03d", s.seq)
	s.activities[conv+"/"+id] = &Activity{Conversation: conv, ID: id, Body: a}
	s.order = append(s.order, conv+"/"+id)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]string{"id": id})
}

func (s *Server) reply(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	a, ok := readActivity(w, r)
	if !ok {
		return
	}
	conv, parent := r.PathValue("conv"), r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.activities[conv+"/"+parent] == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"code": "ActivityNotFound"}})
		return
	}
	s.seq++
	id := fmt.Sprintf("1700000000%03d", s.seq)
	s.activities[conv+"/"+id] = &Activity{Conversation: conv, ID: id, ReplyTo: parent, Body: a}
	s.order = append(s.order, conv+"/"+id)
	writeJSON(w, http.StatusCreated, map[string]string{"id": id})
}

func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	a, ok := readActivity(w, r)
	if !ok {
		return
	}
	conv, id := r.PathValue("conv"), r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	act := s.activities[conv+"/"+id]
	if act == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"code": "ActivityNotFound"}})
		return
	}
	act.Body, act.Updates = a, act.Updates+1
	writeJSON(w, http.StatusOK, map[string]string{"id": id})
}

func (s *Server) member(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	s.mu.Lock()
	m, ok := s.members[r.PathValue("member")]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"code": "MemberNotFoundInConversation", "message": "The member is not in the conversation."}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"id": m.ID, "name": m.Name, "aadObjectId": m.AADObjectID, "email": m.Email,
		"userPrincipalName": m.UserPrincipalName, "tenantId": Tenant, "userRole": "user",
	})
}

func bad(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]string{"code": "BadArgument", "message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
