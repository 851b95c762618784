package gitlab

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/gitlabtest"
	"github.com/approvalbot/approvalbot/internal/rest/resttest"
)

const (
	testToken        = "glpat-TESTtokenNeverShown123"
	testWebhookToken = "hook-secret-token-0123456789"
)

func newFake(t *testing.T) *gitlabtest.Server {
	t.Helper()
	gl := gitlabtest.New(testToken)
	t.Cleanup(gl.Close)
	gl.AddProject(42, "platform/payments")
	gl.AddDeployment(gitlabtest.Deployment{ID: 7, ProjectID: 42, Status: "blocked", Ref: "main", SHA: "1a2b3c4d5e6f", Environment: "production", Username: "alice"})
	return gl
}

func newClient(t *testing.T, gl *gitlabtest.Server, modify ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{APIURL: gl.URL(), Token: testToken, WebhookToken: testWebhookToken, Projects: []string{"platform/payments"},
		Users: map[string]string{"Alice": "alice@example.com"}, Sleep: func(context.Context, time.Duration) error { return nil }}
	for _, m := range modify {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func header(m map[string]string) func(string) string {
	h := http.Header{}
	for k, v := range m {
		h.Set(k, v)
	}
	return h.Get
}

func blockedTask(t *testing.T, c *Client, gl *gitlabtest.Server) *approvals.Task {
	t.Helper()
	sub, err := c.Parse(header(map[string]string{"X-Gitlab-Token": testWebhookToken}), gl.Event(gitlabtest.Deployment{ID: 7, ProjectID: 42, Status: "blocked", Ref: "main", SHA: "1a2b3c4d5e6f", Environment: "production", Username: "alice"}))
	if err != nil {
		t.Fatal(err)
	}
	return &approvals.Task{Source: sub.Source, TaskID: sub.TaskID, Context: sub.Context, Extra: sub.Extra, Status: approvals.StatusPending}
}

// TestWebhookAndPollingMakeTheSameTask: the blocked event and the polled
// list name one task, with the deployment's context; the username maps
// through gitlab.users.
func TestWebhookAndPollingMakeTheSameTask(t *testing.T) {
	t.Parallel()
	gl := newFake(t)
	c := newClient(t, gl)
	task := blockedTask(t, c, gl)
	polled, err := c.Poll(context.Background())
	if err != nil || len(polled) != 1 {
		t.Fatalf("Poll = %+v, %v", polled, err)
	}
	p := polled[0]
	if task.TaskID != "42-7" || p.TaskID != task.TaskID || p.Context != task.Context {
		t.Errorf("webhook %s %+v\npolled  %s %+v", task.TaskID, task.Context, p.TaskID, p.Context)
	}
	want := approvals.Context{Environment: "production", Project: "platform/payments", Release: "main (1a2b3c4d)", RequestedBy: "alice@example.com",
		URL: gl.Server.URL + "/platform/payments/-/jobs/70"}
	if task.Context != want {
		t.Errorf("context %+v\nwant    %+v", task.Context, want)
	}
	for _, call := range gl.Calls() {
		if call.Token != testToken || call.UserAgent != "approvalbot" {
			t.Errorf("%s %s: token %q, user agent %q", call.Method, call.Path, call.Token, call.UserAgent)
		}
	}
	if got := gl.Calls()[0].Path; got != gitlabtest.Root+"/projects/platform%2Fpayments" {
		t.Errorf("project read at %s, want the path URL-encoded", got)
	}
}

// TestPollingPages: every page of blocked deployments is read, by
// GitLab's X-Next-Page.
func TestPollingPages(t *testing.T) {
	t.Parallel()
	gl := newFake(t)
	gl.SetPageSize(2)
	for id := int64(8); id <= 12; id++ {
		gl.AddDeployment(gitlabtest.Deployment{ID: id, ProjectID: 42, Status: "blocked", Environment: "production", Username: "bob"})
	}
	gl.AddDeployment(gitlabtest.Deployment{ID: 13, ProjectID: 42, Status: "running", Environment: "production"})
	c := newClient(t, gl, func(cfg *Config) { cfg.Projects = []string{"42"} })
	subs, err := c.Poll(context.Background())
	if err != nil || len(subs) != 6 {
		t.Fatalf("Poll = %d tasks, %v; want the 6 blocked", len(subs), err)
	}
	if subs[1].RequestedBy != "" || subs[1].RequestedByUnmapped != "bob" {
		t.Errorf("an unmapped requester: %+v", subs[1].Context)
	}
}

// TestDecideApprovesOnce: one approval call, the notes as its comment.
func TestDecideApprovesOnce(t *testing.T) {
	t.Parallel()
	gl := newFake(t)
	c := newClient(t, gl, func(cfg *Config) { cfg.RepresentedAs = "security" })
	task := blockedTask(t, c, gl)
	if err := c.Decide(context.Background(), task, approvals.ActionApprove, "Approved in Slack by Bob", false); err != nil {
		t.Fatal(err)
	}
	want := []gitlabtest.Approval{{ProjectID: 42, DeploymentID: 7, Status: "approved", Comment: "Approved in Slack by Bob", RepresentedAs: "security"}}
	if got := gl.Approvals(); len(got) != 1 || got[0] != want[0] {
		t.Errorf("approvals %+v, want %+v", got, want)
	}
	if s, err := c.Status(context.Background(), task); err != nil || s != approvals.StatusApproved {
		t.Errorf("Status = %v, %v", s, err)
	}
}

// TestLostAnswer: GitLab applies the approval and the answer is lost:
// Decide may mend, and the status read the outbox makes first says it is
// approved there, so no second call is made.
func TestLostAnswer(t *testing.T) {
	t.Parallel()
	gl := newFake(t)
	gl.LoseAnswers(1)
	c := newClient(t, gl)
	task := blockedTask(t, c, gl)
	err := c.Decide(context.Background(), task, approvals.ActionApprove, "ok", false)
	if err == nil || approvals.IsPermanent(err) {
		t.Fatalf("error %v, want one that may mend", err)
	}
	if s, err := c.Status(context.Background(), task); err != nil || s != approvals.StatusApproved {
		t.Errorf("Status = %v, %v; want approved", s, err)
	}
	if n := len(gl.ApprovalCalls()); n != 1 {
		t.Errorf("%d approval calls, want 1", n)
	}
}

// TestNotBlockedIsDecidedThere: GitLab's 400 to a deployment that runs
// already is ErrToolDecided, after the status read says so; a refusal of
// a deployment still blocked is GitLab's refusal, final.
func TestNotBlockedIsDecidedThere(t *testing.T) {
	t.Parallel()
	gl := newFake(t)
	c := newClient(t, gl)
	task := blockedTask(t, c, gl)
	gl.SetStatus(7, "running")
	err := c.Decide(context.Background(), task, approvals.ActionApprove, "ok", false)
	if !errors.Is(err, approvals.ErrToolDecided) {
		t.Fatalf("error %v, want ErrToolDecided", err)
	}
	if calls := gl.Calls(); len(calls) != 2 || calls[1].Method != http.MethodGet {
		t.Errorf("calls %+v, want the approval and the status read", calls)
	}
	if len(gl.Approvals()) != 0 {
		t.Errorf("an approval was taken: %+v", gl.Approvals())
	}
}

func TestStatusMapping(t *testing.T) {
	t.Parallel()
	for remote, want := range map[string]approvals.Status{
		"blocked": approvals.StatusPending, "running": approvals.StatusApproved, "success": approvals.StatusApproved,
		"created": approvals.StatusApproved, "canceled": approvals.StatusRejected, "failed": approvals.StatusRejected, "new-one": approvals.StatusPending,
	} {
		if got := mapStatus(remote); got != want {
			t.Errorf("mapStatus(%q) = %v, want %v", remote, got, want)
		}
	}
}

// TestWebhookToken: a wrong or missing token is unauthenticated before
// anything is parsed; other statuses and events carry no task.
func TestWebhookToken(t *testing.T) {
	t.Parallel()
	gl := newFake(t)
	c := newClient(t, gl)
	body := gl.Event(gitlabtest.Deployment{ID: 7, ProjectID: 42, Status: "blocked", Environment: "production"})
	for _, token := range []string{"", "wrong", testWebhookToken + "x"} {
		if _, err := c.Parse(header(map[string]string{"X-Gitlab-Token": token}), body); !errors.Is(err, approvals.ErrUnauthenticated) {
			t.Errorf("token %q: %v", token, err)
		}
	}
	if _, err := c.Parse(header(map[string]string{"X-Gitlab-Token": testWebhookToken}), []byte("not json")); err == nil || errors.Is(err, approvals.ErrUnauthenticated) {
		t.Errorf("garbage after the right token: %v", err)
	}
	running := gl.Event(gitlabtest.Deployment{ID: 7, ProjectID: 42, Status: "running", Environment: "production"})
	if _, err := c.Parse(header(map[string]string{"X-Gitlab-Token": testWebhookToken}), running); !errors.Is(err, approvals.ErrNoTask) {
		t.Errorf("a running deployment: %v", err)
	}
}

// TestSecretsNeverShow: the token is in no error, nor in the client's
// printed form.
func TestSecretsNeverShow(t *testing.T) {
	t.Parallel()
	gl := newFake(t)
	c := newClient(t, gl)
	for _, s := range []string{c.String(), c.GoString()} {
		if strings.Contains(s, testToken) || strings.Contains(s, testWebhookToken) {
			t.Errorf("printed: %s", s)
		}
	}
	if _, err := New(Config{APIURL: "https://user:" + testToken + "@gitlab.example.com", Token: testToken}); err == nil || strings.Contains(err.Error(), testToken) {
		t.Errorf("New: %v", err)
	}
}

// TestExchangeContract: GitLab's client keeps the contract of every
// client sending through rest.Exchange.
func TestExchangeContract(t *testing.T) {
	t.Parallel()
	resttest.Run(t, resttest.Subject{
		Service:  "GitLab",
		DecideOp: "gitlab: approve deployment",
		StatusOp: "gitlab: read deployment",
		Secrets:  []string{testToken},
		ReadOK:   `{"id":7,"status":"blocked"}`,
		New: func(t *testing.T, o resttest.Options) resttest.Client {
			c, err := New(Config{APIURL: o.URL, Token: testToken, Timeout: o.Timeout, Retries: o.Retries,
				MinBackoff: o.MinBackoff, MaxBackoff: o.MaxBackoff, Sleep: o.Sleep, Now: o.Now})
			if err != nil {
				t.Fatal(err)
			}
			task := &approvals.Task{Extra: map[string]string{ExtraProjectID: "42", ExtraDeploymentID: "7"}}
			return resttest.Client{
				Decide: func(ctx context.Context) error { return c.Decide(ctx, task, approvals.ActionApprove, "ok", false) },
				Status: func(ctx context.Context) error { _, err := c.Status(ctx, task); return err },
			}
		},
	})
}

// FuzzParse: whatever GitLab (or anyone) posts, Parse never panics, and
// without the right token nothing is parsed.
func FuzzParse(f *testing.F) {
	f.Add(testWebhookToken, []byte(`{"object_kind":"deployment","status":"blocked","deployment_id":7,"environment":"production","project":{"id":42,"path_with_namespace":"a/b"},"user":{"username":"alice"}}`))
	f.Add("", []byte(`{}`))
	c, err := New(Config{APIURL: "https://gitlab.example.com/api/v4", Token: testToken, WebhookToken: testWebhookToken})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string, body []byte) {
		sub, err := c.Parse(header(map[string]string{"X-Gitlab-Token": token}), body)
		if token != testWebhookToken && !errors.Is(err, approvals.ErrUnauthenticated) {
			t.Fatalf("token %q accepted: %v", token, err)
		}
		if err == nil && (sub.Source != Source || !isID(sub.Extra[ExtraProjectID]) || !isID(sub.Extra[ExtraDeploymentID]) || sub.Environment == "") {
			t.Fatalf("a task without its routing: %+v", sub)
		}
	})
}
