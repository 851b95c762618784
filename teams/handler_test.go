package teams

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/teamstest"
)

const channel = "19:abc@thread.tacv2"

var alice = teamstest.Member{ID: "29:alice", Name: "Alice", AADObjectID: "aad-alice", Email: "alice@example.com"}

// fakeDecider records every request and answers with decide.
type fakeDecider struct {
	mu     sync.Mutex
	got    []approvals.DecideRequest
	decide func(req approvals.DecideRequest) (*approvals.Task, error)
}

func (f *fakeDecider) Decide(_ context.Context, req approvals.DecideRequest) (*approvals.Task, error) {
	f.mu.Lock()
	f.got = append(f.got, req)
	f.mu.Unlock()
	if f.decide == nil {
		t := pendingTask()
		t.Status = approvals.StatusApproved
		at := renderNow
		t.DecidedAt, t.DecidedBy = &at, &req.User
		t.Approvals = []approvals.Vote{{Person: req.User, At: at}}
		return t, nil
	}
	return f.decide(req)
}

func (f *fakeDecider) requests() []approvals.DecideRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]approvals.DecideRequest(nil), f.got...)
}

type endpoint struct {
	fake    *teamstest.Server
	decider *fakeDecider
	handler *Handler
}

func newEndpoint(t *testing.T) *endpoint {
	t.Helper()
	fake := teamstest.New(t)
	fake.AddMember(alice)
	conn := NewConnector(ConnectorConfig{AppID: teamstest.AppID, AppPassword: teamstest.AppPassword, TenantID: teamstest.Tenant, TokenURL: fake.TokenURL()})
	d := &fakeDecider{}
	h := NewHandler(HandlerConfig{
		Verifier: NewVerifier(fake.OpenIDMetadata(), teamstest.AppID, &http.Client{Timeout: 5 * time.Second}, nil),
		TenantID: teamstest.Tenant,
		Decider:  d,
		Members:  conn,
		Policies: func() []approvals.Policy { return []approvals.Policy{testPolicy()} },
		Now:      func() time.Time { return renderNow },
	})
	return &endpoint{fake: fake, decider: d, handler: h}
}

func (e *endpoint) post(t *testing.T, auth string, body []byte) (int, invokeResponse) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/teams/messages", bytes.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	var answer invokeResponse
	if rec.Code == http.StatusOK && rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("answer %s: %v", rec.Body, err)
		}
	}
	return rec.Code, answer
}

func (e *endpoint) click(verb string, data map[string]string) []byte {
	return e.fake.Click(alice, channel, verb, data)
}

// TestBadTokensDecideNothing: every token the channel did not sign for
// this bot and this activity is refused 401 (an activity of another
// tenant 403) before anything is decided or looked up.
func TestBadTokensDecideNothing(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	forger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	svc := e.fake.ServiceURL()
	click := e.click(VerbApprove, map[string]string{"t": "tok"})
	foreign := bytes.ReplaceAll(click, []byte(teamstest.Tenant), []byte("tenant-evil"))
	now := time.Now()
	for _, tc := range []struct {
		name string
		auth string
		body []byte
		want int
	}{
		{"no token", "", click, http.StatusUnauthorized},
		{"not bearer", "Basic " + strings.TrimPrefix(e.fake.ChannelToken(svc), "Bearer "), click, http.StatusUnauthorized},
		{"garbage", "Bearer not.a.jwt", click, http.StatusUnauthorized},
		{"forged: signed by another key", e.fake.Sign(teamstest.Claims{ServiceURL: svc, Key: forger}), click, http.StatusUnauthorized},
		{"unknown kid", e.fake.Sign(teamstest.Claims{ServiceURL: svc, KeyID: "other", Key: forger}), click, http.StatusUnauthorized},
		{"expired beyond the skew", e.fake.Sign(teamstest.Claims{ServiceURL: svc, IssuedAt: now.Add(-2 * time.Hour), NotBefore: now.Add(-2 * time.Hour), Expires: now.Add(-6 * time.Minute)}), click, http.StatusUnauthorized},
		{"not valid yet beyond the skew", e.fake.Sign(teamstest.Claims{ServiceURL: svc, NotBefore: now.Add(6 * time.Minute)}), click, http.StatusUnauthorized},
		{"wrong audience", e.fake.Sign(teamstest.Claims{ServiceURL: svc, Audience: "another-bot"}), click, http.StatusUnauthorized},
		{"wrong issuer", e.fake.Sign(teamstest.Claims{ServiceURL: svc, Issuer: "https://sts.windows.net/x/"}), click, http.StatusUnauthorized},
		{"serviceurl of another activity", e.fake.Sign(teamstest.Claims{ServiceURL: "https://smba.trafficmanager.net/emea/"}), click, http.StatusUnauthorized},
		{"no serviceurl claim", e.fake.Sign(teamstest.Claims{}), click, http.StatusUnauthorized},
		{"foreign tenant", e.fake.ChannelToken(svc), foreign, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _ := e.post(t, tc.auth, tc.body); code != tc.want {
				t.Errorf("answered %d, want %d", code, tc.want)
			}
		})
	}
	if got := e.decider.requests(); len(got) != 0 {
		t.Errorf("decided %d clicks, want none", len(got))
	}
	for _, c := range e.fake.Calls() {
		if strings.Contains(c, "/members/") {
			t.Errorf("looked a member up for a refused activity: %s", c)
		}
	}
	// The control: the same click with the channel's token decides.
	if code, answer := e.post(t, e.fake.ChannelToken(svc), click); code != http.StatusOK || answer.Type != typeCard {
		t.Fatalf("a good token: %d %+v", code, answer)
	}
	if got := e.decider.requests(); len(got) != 1 {
		t.Errorf("decided %d clicks, want 1", len(got))
	}
}

// TestKeyEndorsementsMustNameTeams: a key endorsed for other channels
// only does not sign Teams' activities.
func TestKeyEndorsementsMustNameTeams(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	e.fake.SetEndorsements([]string{"skype", "webchat"})
	svc := e.fake.ServiceURL()
	if code, _ := e.post(t, e.fake.ChannelToken(svc), e.click(VerbApprove, map[string]string{"t": "tok"})); code != http.StatusUnauthorized {
		t.Errorf("answered %d, want 401", code)
	}
	if len(e.decider.requests()) != 0 {
		t.Error("decided a click signed by a key not endorsed for msteams")
	}
}

// TestClickDecidesAsTheMembersEmail: the clicker is their Entra object
// id and the email of the member look-up; the answer is the refreshed
// card, without actions once final; the look-up is cached.
func TestClickDecidesAsTheMembersEmail(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	svc := e.fake.ServiceURL()
	for range 2 {
		code, answer := e.post(t, e.fake.ChannelToken(svc), e.click(VerbApprove, map[string]string{"t": "tok-1", "reason": "ignored"}))
		if code != http.StatusOK || answer.StatusCode != 200 || answer.Type != typeCard {
			t.Fatalf("answer %d %+v", code, answer)
		}
		card, _ := json.Marshal(answer.Value)
		if strings.Contains(string(card), "Action.Execute") || !strings.Contains(string(card), "Approved by Alice") {
			t.Errorf("refreshed card %s: want the outcome, no actions", card)
		}
	}
	reqs := e.decider.requests()
	if len(reqs) != 2 {
		t.Fatalf("decided %d, want 2", len(reqs))
	}
	want := person("aad-alice", "Alice", "alice@example.com")
	if r := reqs[0]; r.Token != "tok-1" || r.Action != approvals.ActionApprove || r.User != want || r.Reason != "" || r.BreakGlass {
		t.Errorf("decide request %+v, want alice's approval with token tok-1", r)
	}
	lookups := 0
	for _, c := range e.fake.Calls() {
		if strings.Contains(c, "/members/29:alice") {
			lookups++
		}
	}
	if lookups != 1 {
		t.Errorf("%d member look-ups for two clicks, want 1 (cached)", lookups)
	}
}

// TestFailedLookupFailsClosed: when the member look-up fails, the click is
// refused (to the clicker only) and nothing is decided.
func TestFailedLookupFailsClosed(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	e.fake.SetFault(func(r *http.Request) *teamstest.Fault {
		if strings.Contains(r.URL.Path, "/members/") {
			return &teamstest.Fault{Status: http.StatusInternalServerError}
		}
		return nil
	})
	code, answer := e.post(t, e.fake.ChannelToken(e.fake.ServiceURL()), e.click(VerbApprove, map[string]string{"t": "tok"}))
	if code != http.StatusOK || answer.Type != typeMessage || answer.Value != approvals.Reply(approvals.ErrClickerUnknown, "", ChatDisplayName) {
		t.Errorf("answer %d %+v, want the identity refusal as a message", code, answer)
	}
	if len(e.decider.requests()) != 0 {
		t.Error("decided although the clicker's email is unknown")
	}
}

// TestRefusalsAndPrompts: a refusal is a message to the clicker; a
// refusal that asks for more is answered with the card that asks for it,
// and its submission carries the input back.
func TestRefusalsAndPrompts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		verb     string
		data     map[string]string
		err      error
		wantType string
		want     string // in the answer
	}{
		{"not an approver", VerbApprove, nil, approvals.ErrNotApprover, typeMessage, "You are not an approver"},
		{"already decided", VerbReject, nil, approvals.ErrAlreadyDecided, typeMessage, "already been decided"},
		{"reason asked", VerbReject, nil, approvals.ErrReasonRequired, typeCard, `"isRequired":true`},
		{"break glass asked", VerbApprove, nil, &approvals.Refusal{Err: approvals.ErrBreakGlassNeeded, Detail: "frozen until Jan 4"}, typeCard, `"verb":"break_glass"`},
		{"confirm asked", VerbApprove, nil, approvals.ErrConfirmRequired, typeCard, `"id":"confirm"`},
		{"confirm typed wrong", VerbApprove, map[string]string{"confirm": "QA"}, approvals.ErrConfirmMismatch, typeMessage, "does not match"},
		{"break-glass without a reason", VerbBreakGlass, nil, approvals.ErrBreakGlassReason, typeMessage, "reason is required to break glass"},
		{"sso", VerbApprove, nil, approvals.ErrSSORequired, typeMessage, "signing in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEndpoint(t)
			e.decider.decide = func(approvals.DecideRequest) (*approvals.Task, error) { return pendingTask(), tc.err }
			data := map[string]string{"t": "tok"}
			for k, v := range tc.data {
				data[k] = v
			}
			code, answer := e.post(t, e.fake.ChannelToken(e.fake.ServiceURL()), e.click(tc.verb, data))
			raw, _ := json.Marshal(answer.Value)
			if code != http.StatusOK || answer.Type != tc.wantType || !strings.Contains(string(raw), tc.want) {
				t.Errorf("answer %d %s %s, want %s with %q", code, answer.Type, raw, tc.wantType, tc.want)
			}
			if tc.wantType == typeCard && !strings.Contains(string(raw), `"t":"tok"`) {
				t.Errorf("the prompt card %s does not carry the token", raw)
			}
		})
	}
}

// TestPromptSubmissionsDecide: the prompt cards' submissions become the
// requests the service wants: a rejection with its reason, a break-glass
// approval with its reason, an approval with the typed environment.
func TestPromptSubmissionsDecide(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	svc := e.fake.ServiceURL()
	e.post(t, e.fake.ChannelToken(svc), e.click(VerbReject, map[string]string{"t": "tok", "reason": "  tests fail "}))
	e.post(t, e.fake.ChannelToken(svc), e.click(VerbBreakGlass, map[string]string{"t": "tok", "reason": "outage"}))
	e.post(t, e.fake.ChannelToken(svc), e.click(VerbApprove, map[string]string{"t": "tok", "confirm": "PROD"}))
	got := e.decider.requests()
	if len(got) != 3 {
		t.Fatalf("decided %d, want 3", len(got))
	}
	if r := got[0]; r.Action != approvals.ActionReject || r.Reason != "tests fail" {
		t.Errorf("reject: %+v", r)
	}
	if r := got[1]; r.Action != approvals.ActionApprove || !r.BreakGlass || r.Reason != "outage" {
		t.Errorf("break glass: %+v", r)
	}
	if r := got[2]; r.Action != approvals.ActionApprove || r.Confirm != "PROD" || r.BreakGlass {
		t.Errorf("confirm: %+v", r)
	}
}

// TestOtherActivitiesAreAcknowledged: an install or a message to the bot
// is answered 200 and decides nothing.
func TestOtherActivitiesAreAcknowledged(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	body := bytes.Replace(e.click(VerbApprove, map[string]string{"t": "tok"}), []byte(`"type":"invoke"`), []byte(`"type":"message"`), 1)
	if code, _ := e.post(t, e.fake.ChannelToken(e.fake.ServiceURL()), body); code != http.StatusOK {
		t.Errorf("answered %d", code)
	}
	if len(e.decider.requests()) != 0 {
		t.Error("a message decided something")
	}
}
