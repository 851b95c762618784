package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/slacktest"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
)

const (
	testSigningSecret = "test-signing-secret"
	clickToken        = "eyJhbGciOiJIUzI1NiJ9.click-token.sig"
)

var clickTime = time.Unix(1700000000, 0)

// fakeDecider is a Decider with a func field; it records every request.
type fakeDecider struct {
	decide func(ctx context.Context, req approvals.DecideRequest) (*approvals.Task, error)

	mu       sync.Mutex
	requests []approvals.DecideRequest
}

func (d *fakeDecider) Decide(ctx context.Context, req approvals.DecideRequest) (*approvals.Task, error) {
	d.mu.Lock()
	d.requests = append(d.requests, req)
	d.mu.Unlock()
	if d.decide == nil {
		t := fixtureTask()
		t.Status = approvals.StatusApproved
		return t, nil
	}
	return d.decide(ctx, req)
}

func (d *fakeDecider) Requests() []approvals.DecideRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]approvals.DecideRequest(nil), d.requests...)
}

type ephemeralReply struct{ Channel, User, Text string }

type modalOpen struct{ TriggerID, Token string }

// fakeReplier is a Replier that records what it was asked to show.
type fakeReplier struct {
	openErr error

	mu         sync.Mutex
	ephemerals []ephemeralReply
	opened     []modalOpen
	prompts    []promptOpen
}

// promptOpen is a break-glass or type-to-confirm modal opened; Detail is
// the why or the environment.
type promptOpen struct{ Kind, TriggerID, Token, Detail string }

func (r *fakeReplier) Ephemeral(ctx context.Context, channel, user, text string) error {
	if _, ok := ctx.Deadline(); !ok {
		return errors.New("ephemeral reply without a deadline")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ephemerals = append(r.ephemerals, ephemeralReply{channel, user, text})
	return nil
}

func (r *fakeReplier) OpenRejectReason(_ context.Context, triggerID, token string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opened = append(r.opened, modalOpen{triggerID, token})
	return r.openErr
}

func (r *fakeReplier) OpenBreakGlass(_ context.Context, triggerID, token, why string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prompts = append(r.prompts, promptOpen{"break_glass", triggerID, token, why})
	return r.openErr
}

func (r *fakeReplier) OpenConfirm(_ context.Context, triggerID, token, environment string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prompts = append(r.prompts, promptOpen{"confirm", triggerID, token, environment})
	return r.openErr
}

func (r *fakeReplier) Prompts() []promptOpen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]promptOpen(nil), r.prompts...)
}

func (r *fakeReplier) Ephemerals() []ephemeralReply {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ephemeralReply(nil), r.ephemerals...)
}

func (r *fakeReplier) Opened() []modalOpen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]modalOpen(nil), r.opened...)
}

type interactionsRig struct {
	h       *Interactions
	srv     *httptest.Server
	decider *fakeDecider
	replier *fakeReplier
}

func newInteractionsRig(t *testing.T, decide func(context.Context, approvals.DecideRequest) (*approvals.Task, error)) *interactionsRig {
	t.Helper()
	rig := &interactionsRig{decider: &fakeDecider{decide: decide}, replier: &fakeReplier{}}
	rig.h = NewInteractions(InteractionsConfig{
		Verifier:     NewVerifier(testSigningSecret, func() time.Time { return clickTime }),
		Decider:      rig.decider,
		Replier:      rig.replier,
		Tools:        testTools,
		MaxBodyBytes: 16 << 10,
	})
	rig.srv = httptest.NewServer(rig.h)
	t.Cleanup(rig.srv.Close)
	return rig
}

// post sends body signed at ts (with the test secret unless sig is given).
func (rig *interactionsRig) post(t *testing.T, body string, headers http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rig.srv.URL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = headers
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := rig.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	rig.h.Close() // the asynchronous replies are done after this
	return resp.StatusCode, string(out)
}

func signedHeaders(body string, at time.Time) http.Header {
	return slackHeaders(slacktest.Sign(testSigningSecret, at, body))
}

func formBody(payload string) string {
	return url.Values{"payload": {payload}}.Encode()
}

// testTriggerID is the trigger id of the test's clicks.
const testTriggerID = "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"

// blockActionsPayload is alice's (U1) click on a message in C1.
func blockActionsPayload(actionID, token string) string {
	return slacktest.Click{ActionID: actionID, Value: token, UserID: "U1", UserName: "alice",
		Channel: "C1", MessageTS: "1700000000.000100", TriggerID: testTriggerID}.Payload()
}

// viewSubmissionPayload is carol's (U3) submission of a modal with a
// reason.
func viewSubmissionPayload(callbackID, token, reason string) string {
	return slacktest.Submission{CallbackID: callbackID, PrivateMetadata: token, UserID: "U3", UserName: "carol",
		TriggerID: "trigger-2", Values: map[string]map[string]string{blockIDReason: {actionIDReason: reason}}}.Payload()
}

func TestInteractionsApprove(t *testing.T) {
	t.Parallel()
	rig := newInteractionsRig(t, nil)
	body := formBody(blockActionsPayload("approve", clickToken))
	status, out := rig.post(t, body, signedHeaders(body, clickTime))
	if status != http.StatusOK || out != "" {
		t.Fatalf("answer = %d %q, want 200 and an empty body", status, out)
	}
	reqs := rig.decider.Requests()
	if len(reqs) != 1 {
		t.Fatalf("Decide called %d times, want 1", len(reqs))
	}
	want := approvals.DecideRequest{Token: clickToken, Action: approvals.ActionApprove, User: approvals.Person{ID: "U1", Name: "alice", Chat: ChatName}}
	if reqs[0] != want {
		t.Errorf("Decide(%+v), want %+v", reqs[0], want)
	}
	if e := rig.replier.Ephemerals(); len(e) != 0 {
		t.Errorf("a decisive click got replies %v; the message update shows it", e)
	}
}

func TestInteractionsUserName(t *testing.T) {
	t.Parallel()
	rig := newInteractionsRig(t, nil)
	payload := strings.Replace(blockActionsPayload("reject", clickToken), `"name":"alice",`, "", 1)
	body := formBody(payload)
	if status, _ := rig.post(t, body, signedHeaders(body, clickTime)); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	reqs := rig.decider.Requests()
	if len(reqs) != 1 || reqs[0].User.Name != "alice" || reqs[0].Action != approvals.ActionReject {
		t.Errorf("requests = %+v, want a reject by alice (from username)", reqs)
	}
}

func TestInteractionsRefused(t *testing.T) {
	t.Parallel()
	body := formBody(blockActionsPayload("approve", clickToken))
	stale := clickTime.Add(-6 * time.Minute)
	tests := []struct {
		name    string
		headers http.Header
		body    string
	}{
		{"bad signature", slackHeaders(slacktest.Sign("other-secret", clickTime, body)), body},
		{"stale timestamp", signedHeaders(body, stale), body},
		{"missing headers", http.Header{}, body},
		{"missing signature", slackHeaders(strconv.FormatInt(clickTime.Unix(), 10), ""), body},
		{"body changed after signing", signedHeaders(body, clickTime), body + "&x=1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rig := newInteractionsRig(t, nil)
			status, out := rig.post(t, tc.body, tc.headers)
			if status != http.StatusUnauthorized {
				t.Errorf("status = %d, want 401", status)
			}
			if strings.TrimSpace(out) != `{"error":"invalid signature"}` {
				t.Errorf("body = %q", out)
			}
			if n := len(rig.decider.Requests()); n != 0 {
				t.Errorf("Decide called %d times on a refused request", n)
			}
			if n := len(rig.replier.Ephemerals()) + len(rig.replier.Opened()); n != 0 {
				t.Errorf("refused request caused %d replies", n)
			}
		})
	}
}

func TestInteractionsHTTPErrors(t *testing.T) {
	t.Parallel()
	t.Run("method", func(t *testing.T) {
		t.Parallel()
		rig := newInteractionsRig(t, nil)
		resp, err := rig.srv.Client().Get(rig.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost {
			t.Errorf("GET = %d Allow %q, want 405 Allow POST", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})
	t.Run("too large", func(t *testing.T) {
		t.Parallel()
		rig := newInteractionsRig(t, nil)
		body := formBody(blockActionsPayload("approve", strings.Repeat("x", 20<<10)))
		status, _ := rig.post(t, body, signedHeaders(body, clickTime))
		if status != http.StatusRequestEntityTooLarge {
			t.Errorf("status = %d, want 413", status)
		}
		if n := len(rig.decider.Requests()); n != 0 {
			t.Errorf("Decide called %d times", n)
		}
	})
	for name, body := range map[string]string{
		"malformed payload": formBody(`{"type":"block_actions",`),
		"missing payload":   "token=abc",
		"malformed form":    "payload=%zz",
		"payload not json":  formBody("approve"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rig := newInteractionsRig(t, nil)
			status, out := rig.post(t, body, signedHeaders(body, clickTime))
			if status != http.StatusBadRequest {
				t.Errorf("status = %d, want 400", status)
			}
			if !strings.Contains(out, `"error"`) {
				t.Errorf("body %q is not a JSON error", out)
			}
			if n := len(rig.decider.Requests()); n != 0 {
				t.Errorf("Decide called %d times", n)
			}
		})
	}
}

func TestInteractionsRefusalReplies(t *testing.T) {
	t.Parallel()
	policyTask := func() *approvals.Task {
		task := fixtureTask()
		task.Policy = "production"
		return task
	}
	tests := []struct {
		name string
		task *approvals.Task
		err  error
		want string
	}{
		{"not approver", policyTask(), fmt.Errorf("decide: %w", approvals.ErrNotApprover), "You are not an approver for this deployment."},
		{"not approver without task", nil, approvals.ErrNotApprover, "You are not an approver for this deployment."},
		{"self approval", nil, approvals.ErrSelfApproval, "you cannot approve it yourself"},
		{"already decided", nil, approvals.ErrAlreadyDecided, "already been decided"},
		{"expired", policyTask(), approvals.ErrExpired, "This approval request has expired. Decide it in FlexDeploy."},
		{"expired without task", nil, approvals.ErrExpired, "This approval request has expired. Decide it in the deployment tool."},
		{"expired, unregistered tool", func() *approvals.Task { t := policyTask(); t.Source = "jenkins"; return t }(), approvals.ErrExpired, "Decide it in jenkins."},
		{"bad token", nil, fmt.Errorf("verify: %w", approvals.ErrBadToken), "This button is no longer valid"},
		{"unknown task", nil, approvals.ErrNotFound, "This button is no longer valid"},
		{"already voted", nil, approvals.ErrAlreadyVoted, "already counted"},
		{"no policy", policyTask(), approvals.ErrNoPolicy, "nobody can decide it from Slack. Decide it in FlexDeploy."},
		{"store busy", nil, fmt.Errorf("bolt: %w", approvals.ErrConflict), "approvalbot is busy with this task; try again in a minute."},
		{"store down", nil, fmt.Errorf("bolt: %w", approvals.ErrUnavailable), "approvalbot cannot reach its store right now; try again in a minute"},
		{"internal", nil, errors.New("boom"), "Something went wrong; the deployment was not decided. Try again."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rig := newInteractionsRig(t, func(context.Context, approvals.DecideRequest) (*approvals.Task, error) {
				return tc.task, tc.err
			})
			body := formBody(blockActionsPayload("approve", clickToken))
			if status, _ := rig.post(t, body, signedHeaders(body, clickTime)); status != http.StatusOK {
				t.Fatalf("status = %d, want 200: a refusal is a reply, not an HTTP error", status)
			}
			replies := rig.replier.Ephemerals()
			if len(replies) != 1 {
				t.Fatalf("got %d replies, want 1", len(replies))
			}
			r := replies[0]
			if r.Channel != "C1" || r.User != "U1" || !strings.Contains(r.Text, tc.want) {
				t.Errorf("reply = %+v, want to C1/U1 containing %q", r, tc.want)
			}
			if strings.Contains(r.Text, clickToken) {
				t.Error("reply shows the token")
			}
		})
	}
}

func TestInteractionsQuorumProgress(t *testing.T) {
	t.Parallel()
	rig := newInteractionsRig(t, func(_ context.Context, req approvals.DecideRequest) (*approvals.Task, error) {
		task := fixtureTask()
		task.RequiredApprovals = 2
		task.Approvals = []approvals.Vote{{Person: req.User, At: clickTime}}
		return task, nil
	})
	body := formBody(blockActionsPayload("approve", clickToken))
	rig.post(t, body, signedHeaders(body, clickTime))
	replies := rig.replier.Ephemerals()
	if len(replies) != 1 || replies[0].Text != "Your approval is counted (1 of 2)." {
		t.Errorf("replies = %+v, want one saying the approval is counted (1 of 2)", replies)
	}
}

func TestInteractionsReasonRequired(t *testing.T) {
	t.Parallel()
	decide := func(_ context.Context, req approvals.DecideRequest) (*approvals.Task, error) {
		if req.Reason == "" {
			return nil, approvals.ErrReasonRequired
		}
		return fixtureTask(), nil
	}
	t.Run("opens the modal", func(t *testing.T) {
		t.Parallel()
		rig := newInteractionsRig(t, decide)
		body := formBody(blockActionsPayload("reject", clickToken))
		if status, _ := rig.post(t, body, signedHeaders(body, clickTime)); status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		opened := rig.replier.Opened()
		want := modalOpen{TriggerID: testTriggerID, Token: clickToken}
		if len(opened) != 1 || opened[0] != want {
			t.Errorf("opened = %+v, want %+v", opened, want)
		}
		if e := rig.replier.Ephemerals(); len(e) != 0 {
			t.Errorf("replies = %+v, want none", e)
		}
	})
	t.Run("modal fails to open", func(t *testing.T) {
		t.Parallel()
		rig := newInteractionsRig(t, decide)
		rig.replier.openErr = errors.New("slack: open reject reason: expired_trigger_id")
		body := formBody(blockActionsPayload("reject", clickToken))
		rig.post(t, body, signedHeaders(body, clickTime))
		if e := rig.replier.Ephemerals(); len(e) != 1 || !strings.Contains(e[0].Text, "reason is required") {
			t.Errorf("replies = %+v, want one saying a reason is required", e)
		}
	})
}

func TestInteractionsRejectReasonSubmission(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		callbackID string
		reason     string
		err        error
		wantDecide bool
		wantError  string // "" when the modal closes
	}{
		{name: "rejects with the reason", callbackID: "reject_reason", reason: "  change freeze  ", wantDecide: true},
		{name: "refused", callbackID: "reject_reason", reason: "freeze", err: approvals.ErrAlreadyDecided, wantDecide: true, wantError: "already been decided"},
		{name: "blank reason", callbackID: "reject_reason", reason: "   ", wantError: "Say why"},
		{name: "other modal", callbackID: "something_else", reason: "x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rig := newInteractionsRig(t, func(context.Context, approvals.DecideRequest) (*approvals.Task, error) {
				return nil, tc.err
			})
			body := formBody(viewSubmissionPayload(tc.callbackID, clickToken, tc.reason))
			status, out := rig.post(t, body, signedHeaders(body, clickTime))
			if status != http.StatusOK {
				t.Fatalf("status = %d", status)
			}
			reqs := rig.decider.Requests()
			if tc.wantDecide {
				want := approvals.DecideRequest{Token: clickToken, Action: approvals.ActionReject,
					User: approvals.Person{ID: "U3", Name: "carol", Chat: ChatName}, Reason: strings.TrimSpace(tc.reason)}
				if len(reqs) != 1 || reqs[0] != want {
					t.Errorf("requests = %+v, want %+v", reqs, want)
				}
			} else if len(reqs) != 0 {
				t.Errorf("Decide called: %+v", reqs)
			}
			if tc.wantError == "" {
				if out != "" {
					t.Errorf("body = %q, want empty (closes the modal)", out)
				}
				return
			}
			var resp slack.ViewSubmissionResponse
			if err := json.Unmarshal([]byte(out), &resp); err != nil {
				t.Fatalf("body %q: %v", out, err)
			}
			if resp.ResponseAction != slack.RAErrors || !strings.Contains(resp.Errors["reason"], tc.wantError) {
				t.Errorf("response = %+v, want errors on block reason containing %q", resp, tc.wantError)
			}
		})
	}
}

func TestInteractionsIgnored(t *testing.T) {
	t.Parallel()
	payloads := map[string]string{
		"shortcut":          `{"type":"shortcut","callback_id":"x","trigger_id":"t","user":{"id":"U1"}}`,
		"other action":      blockActionsPayload("open_in_tool", clickToken),
		"no actions":        `{"type":"block_actions","user":{"id":"U1"},"actions":[]}`,
		"view closed":       `{"type":"view_closed","view":{"callback_id":"reject_reason","private_metadata":"t"}}`,
		"unknown type":      `{"type":"something_new"}`,
		"empty object":      `{}`,
		"view without view": `{"type":"view_submission"}`,
	}
	for name, payload := range payloads {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rig := newInteractionsRig(t, nil)
			body := formBody(payload)
			status, out := rig.post(t, body, signedHeaders(body, clickTime))
			if status != http.StatusOK {
				t.Errorf("status = %d, want 200", status)
			}
			if out != "" {
				t.Errorf("body = %q, want empty", out)
			}
			if len(rig.decider.Requests()) != 0 {
				t.Errorf("Decide called: %+v", rig.decider.Requests())
			}
		})
	}
}

func TestInteractionsNeverLogsToken(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := zerolog.New(&logs)
	replier := &fakeReplier{}
	h := NewInteractions(InteractionsConfig{
		Verifier: NewVerifier(testSigningSecret, nil),
		Decider: &fakeDecider{decide: func(context.Context, approvals.DecideRequest) (*approvals.Task, error) {
			return nil, errors.New("store exploded")
		}},
		Replier: replier,
	})
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(blockActionsPayload("approve", clickToken)), &cb); err != nil {
		t.Fatal(err)
	}
	if resp := h.Handle(logger.WithContext(context.Background()), cb); resp != nil {
		t.Errorf("Handle = %v, want nil", resp)
	}
	h.Close()
	if !strings.Contains(logs.String(), `"level":"error"`) || !strings.Contains(logs.String(), "store exploded") {
		t.Errorf("internal error not logged as an error: %s", logs.String())
	}
	if strings.Contains(logs.String(), clickToken) || strings.Contains(logs.String(), "click-token") {
		t.Errorf("log shows the token: %s", logs.String())
	}
	if e := replier.Ephemerals(); len(e) != 1 || !strings.HasPrefix(e[0].Text, "Something went wrong") {
		t.Errorf("replies = %+v", e)
	}
}

// TestInteractionsLogsOnlyInternal: a refusal is the rules at work and is
// not logged; a known failure (the store is down) is a warning naming its
// code; only an error the table does not know is logged as an error.
func TestInteractionsLogsOnlyInternal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		err   error
		level string // "" for no log line
	}{
		{"refusal", fmt.Errorf("decide: %w", approvals.ErrNotApprover), ""},
		{"expired", approvals.ErrExpired, ""},
		{"store down", fmt.Errorf("bolt: %w", approvals.ErrUnavailable), "warn"},
		{"corrupt record", &approvals.CorruptError{Key: "flexdeploy-8900", Err: errors.New("bad json")}, "warn"},
		{"internal", errors.New("boom"), "error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			h := NewInteractions(InteractionsConfig{
				Decider: &fakeDecider{decide: func(context.Context, approvals.DecideRequest) (*approvals.Task, error) {
					return nil, tc.err
				}},
				Replier: &fakeReplier{},
			})
			var cb slack.InteractionCallback
			if err := json.Unmarshal([]byte(blockActionsPayload("approve", clickToken)), &cb); err != nil {
				t.Fatal(err)
			}
			h.Handle(zerolog.New(&logs).WithContext(context.Background()), cb)
			h.Close()
			out := logs.String()
			if tc.level == "" {
				if out != "" {
					t.Errorf("a refusal was logged: %s", out)
				}
				return
			}
			if !strings.Contains(out, `"level":"`+tc.level+`"`) || strings.Count(out, "\n") > 1 {
				t.Errorf("log = %s, want one %s line", out, tc.level)
			}
			if code := approvals.KindOf(tc.err).Code; code != approvals.CodeInternal && !strings.Contains(out, `"code":"`+string(code)+`"`) {
				t.Errorf("log = %s, want the code %s", out, code)
			}
		})
	}
}

func TestInteractionsReplyAfterClose(t *testing.T) {
	t.Parallel()
	replier := &fakeReplier{}
	h := NewInteractions(InteractionsConfig{
		Verifier: NewVerifier(testSigningSecret, nil),
		Decider: &fakeDecider{decide: func(context.Context, approvals.DecideRequest) (*approvals.Task, error) {
			return nil, approvals.ErrExpired
		}},
		Replier: replier,
	})
	h.Close()
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(blockActionsPayload("approve", clickToken)), &cb); err != nil {
		t.Fatal(err)
	}
	h.Handle(context.Background(), cb)
	if e := replier.Ephemerals(); len(e) != 1 {
		t.Errorf("after Close the reply is sent in line; got %d replies", len(e))
	}
}

func FuzzHandlePayload(f *testing.F) {
	f.Add(blockActionsPayload("approve", clickToken))
	f.Add(blockActionsPayload("reject", ""))
	f.Add(viewSubmissionPayload("reject_reason", clickToken, "freeze"))
	f.Add(`{"type":"view_submission","view":{"callback_id":"reject_reason","state":null}}`)
	f.Add(`{"type":"block_actions","actions":[null]}`)
	f.Add(`{"type":"block_actions","actions":[{"action_id":"approve"}],"state":{"values":{}}}`)
	f.Add(`{"type":"block_actions","actions":{"action_id":"approve"}}`)
	f.Add(`{"type":"dialog_submission","state":"x"}`)
	f.Add(`null`)
	f.Add(`[]`)
	f.Add(`{`)
	f.Add(``)
	errs := []error{nil, approvals.ErrNotApprover, approvals.ErrReasonRequired, approvals.ErrUnavailable, errors.New("boom")}
	f.Fuzz(func(t *testing.T, payload string) {
		decider := &fakeDecider{decide: func(_ context.Context, req approvals.DecideRequest) (*approvals.Task, error) {
			err := errs[len(req.Token)%len(errs)]
			if err == nil {
				task := fixtureTask()
				task.RequiredApprovals = 2
				return task, nil
			}
			return nil, err
		}}
		h := NewInteractions(InteractionsConfig{
			Verifier: NewVerifier(testSigningSecret, func() time.Time { return clickTime }),
			Decider:  decider,
			Replier:  &fakeReplier{},
		})
		body := formBody(payload)
		req := httptest.NewRequest(http.MethodPost, "/slack/interactions", strings.NewReader(body))
		req.Header = signedHeaders(body, clickTime)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		h.Close()
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for payload %q", rec.Code, payload)
		}
		if rec.Code == http.StatusOK && rec.Body.Len() > 0 && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("answer %q is not JSON", rec.Body.String())
		}
	})
}

// TestSlowDecisionStillAnswered: a store that hangs must not keep Slack
// waiting past its 3 seconds; the click is answered while the decision is
// still under way.
func TestSlowDecisionStillAnswered(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	rig := newInteractionsRig(t, func(ctx context.Context, _ approvals.DecideRequest) (*approvals.Task, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, ctx.Err()
	})
	body := formBody(blockActionsPayload("approve", "tok"))
	answered := make(chan int, 1)
	go func() {
		status, _ := rig.post(t, body, signedHeaders(body, clickTime))
		answered <- status
	}()
	select {
	case status := <-answered:
		if status != http.StatusOK {
			t.Fatalf("answered %d", status)
		}
	case <-time.After(20 * time.Second): // a bound on the test, not a measurement
		t.Fatal("the click was not answered while the decision hung")
	}
}
