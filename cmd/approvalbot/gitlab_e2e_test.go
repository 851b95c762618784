package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/approvalbot/approvalbot/internal/gitlabtest"
)

// Secrets of GitLab's side; the log scan looks for both.
const (
	testGitLabToken        = "glpat-e2e-gitlab-token-0123456789"
	testGitLabWebhookToken = "e2e-gitlab-webhook-token-0123456789"
)

// gitlabPolicies let the requester UDEV approve, so that self-approval is
// what refuses them.
const gitlabPolicies = `
  - name: production
    match: {environment: "prod*"}
    channel: CPROD
    approvers: {users: [UALICE, UBOB, UDEV]}
`

// gitlabSetup is the GitLab section of one test: projects polled (none:
// no polling), the YAML of gitlab.users, and more YAML for the config.
type gitlabSetup struct {
	projects string // YAML list, e.g. [platform/payments]
	users    string
	extra    string
}

// gitlabEnv is an end-to-end set-up with a fake GitLab holding project 42
// (platform/payments). The tokens GitLab's side holds are scanned for in
// the logs and the store when the test ends.
func gitlabEnv(t *testing.T, s gitlabSetup) (*env, *gitlabtest.Server) {
	t.Helper()
	gl := gitlabtest.New(testGitLabToken)
	t.Cleanup(gl.Close)
	gl.AddProject(42, "platform/payments")
	e := newEnv(t)
	e.policies = gitlabPolicies
	if s.users == "" {
		s.users = "{dev: UDEV}"
	}
	projects := ""
	if s.projects != "" {
		projects = ", projects: " + s.projects + ", poll_interval: 100ms"
	}
	e.extra = fmt.Sprintf("gitlab: {api_url: %q, token: %q, webhook_token: %q, timeout: 1s, users: %s%s}\n%s",
		gl.URL(), testGitLabToken, testGitLabWebhookToken, s.users, projects, s.extra)
	e.tokens = append(e.tokens, testGitLabToken, testGitLabWebhookToken)
	return e, gl
}

// blocked is a deployment of project 42 to production, waiting.
func blocked(id int64, username, email string) gitlabtest.Deployment {
	return gitlabtest.Deployment{ID: id, ProjectID: 42, Status: "blocked", Ref: "main", SHA: "1a2b3c4d5e6f7a8b", Environment: "production", Username: username, Email: email}
}

// hook posts a deployment event to /gitlab/webhook with the token.
func (e *env) hook(token string, body []byte) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url+"/gitlab/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Event", "Deployment Hook")
	if token != "" {
		req.Header.Set("X-Gitlab-Token", token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

// blockedEvent adds the deployment to GitLab and delivers its blocked
// event; it returns the task's id.
func (e *env) blockedEvent(gl *gitlabtest.Server, d gitlabtest.Deployment) string {
	e.t.Helper()
	gl.AddDeployment(d)
	status, task := e.hook(testGitLabWebhookToken, gl.Event(d))
	if status != http.StatusOK || task["source"] != "gitlab" {
		e.t.Fatalf("the blocked event answered %d %v", status, task)
	}
	return fmt.Sprint(task["id"])
}

// postsOf counts the channel messages posted for the GitLab task.
func postsOf(e *env, name string) int {
	n := 0
	for _, c := range e.slack.CallsTo("chat.postMessage") {
		if c.Form.Get("thread_ts") == "" && strings.Contains(c.Text(), name) {
			n++
		}
	}
	return n
}

// polls counts the pages of blocked deployments the bot asked GitLab for.
func polls(gl *gitlabtest.Server) int {
	n := 0
	for _, c := range gl.Calls() {
		if c.Method == http.MethodGet && strings.HasSuffix(c.Path, "/deployments") && strings.Contains(c.Query, "status=blocked") {
			n++
		}
	}
	return n
}

// A blocked deployment polling finds first, then the webhook delivers
// (and the other way round for a second one), is one task with one
// message, however many polls and deliveries follow.
func TestGitLabWebhookAndPollingMakeOneTask(t *testing.T) {
	t.Parallel()
	e, gl := gitlabEnv(t, gitlabSetup{projects: "[platform/payments]"})
	first := blocked(7, "dev", "")
	gl.AddDeployment(first)
	e.start()

	// Polling found it at the start.
	msg := e.messageOf("GitLab task 42-7")
	if msg.Form.Get("channel") != "CPROD" {
		t.Errorf("posted to %q", msg.Form.Get("channel"))
	}
	status, task := e.hook(testGitLabWebhookToken, gl.Event(first))
	if status != http.StatusOK || task["id"] != "gitlab-42-7" || task["environment"] != "production" || task["project"] != "platform/payments" ||
		task["release"] != "main (1a2b3c4d)" || task["requestedBy"] != "UDEV" || task["url"] != gl.Server.URL+"/platform/payments/-/jobs/70" {
		t.Fatalf("the webhook after polling answered %d %v", status, task)
	}

	// The webhook first, polling after.
	second := blocked(8, "dev", "")
	id := e.blockedEvent(gl, second)
	if id != "gitlab-42-8" {
		t.Fatalf("task id %q", id)
	}
	e.messageOf("GitLab task 42-8")
	after := polls(gl)
	waitFor(t, "three more polls", func() bool { return polls(gl) >= after+3 })
	if status, again := e.hook(testGitLabWebhookToken, gl.Event(second)); status != http.StatusOK || again["id"] != id {
		t.Fatalf("a repeated event answered %d %v", status, again)
	}
	// The polls and the repeat ran after both messages were posted; a
	// second task or post would have been made by now, and one more round
	// of polling proves the repeat queued nothing that a poll then posts.
	after = polls(gl)
	waitFor(t, "another poll", func() bool { return polls(gl) >= after+1 })
	for _, name := range []string{"GitLab task 42-7", "GitLab task 42-8"} {
		if n := postsOf(e, name); n != 1 {
			t.Errorf("%d messages for %s, want 1", n, name)
		}
	}
	if _, got := e.task("gitlab-42-7"); got["status"] != "pending" {
		t.Fatalf("task %v", got)
	}
	if n := len(gl.ApprovalCalls()); n != 0 {
		t.Fatalf("%d approval calls before any click", n)
	}
}

// An approver's click makes exactly one approval call, with the decision
// and the click's notes; the deployment goes on in GitLab and the message
// says the decision was accepted.
func TestGitLabDecisionEndToEnd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ action, state, gitlab, user, name, notes, after, word string }{
		{"approve", "approved", "approved", "UALICE", "Alice", "Approved in Slack by Alice (UALICE) at 20", "running", "Approved by"},
		{"reject", "rejected", "rejected", "UBOB", "Bob", "Rejected in Slack by Bob (UBOB) at 20", "canceled", "Rejected by"},
	} {
		t.Run(tc.action, func(t *testing.T) {
			t.Parallel()
			e, gl := gitlabEnv(t, gitlabSetup{})
			e.start()
			id := e.blockedEvent(gl, blocked(7, "dev", ""))
			msg := e.messageOf("GitLab task 42-7")
			e.click(msg, tc.action, tc.user, tc.name)
			got := e.waitTask(id, "delivered", delivered)
			if got["status"] != tc.state {
				t.Fatalf("task %v", got)
			}
			calls := gl.ApprovalCalls()
			if len(calls) != 1 {
				t.Fatalf("%d approval calls, want exactly 1", len(calls))
			}
			c := calls[0]
			var body map[string]any
			if err := json.Unmarshal([]byte(c.Body), &body); err != nil || len(body) != 2 || body["status"] != tc.gitlab ||
				!strings.HasPrefix(fmt.Sprint(body["comment"]), tc.notes) {
				t.Fatalf("approval body %s", c.Body)
			}
			if c.Path != "/api/v4/projects/42/deployments/7/approval" || c.Token != testGitLabToken || !strings.HasPrefix(c.ContentType, "application/json") {
				t.Fatalf("approval call %+v", c)
			}
			if a := gl.Approvals(); len(a) != 1 || a[0].Status != tc.gitlab || a[0].Comment != body["comment"] {
				t.Fatalf("approvals GitLab took: %+v", a)
			}
			if s := gl.StatusOf(7); s != tc.after {
				t.Fatalf("the deployment is %s in GitLab", s)
			}
			waitFor(t, "message updated", func() bool {
				text := lastUpdateText(e)
				return strings.Contains(text, tc.word) && strings.Contains(text, "accepted")
			})
		})
	}
}

// GitLab applied the approval but its answer was lost: the outbox reads
// the deployment before it tries again, finds it running, and counts the
// approval delivered. GitLab took exactly one approval.
func TestGitLabLostAnswerIsNotRepeated(t *testing.T) {
	t.Parallel()
	e, gl := gitlabEnv(t, gitlabSetup{})
	e.start()
	id := e.blockedEvent(gl, blocked(7, "dev", ""))
	msg := e.messageOf("GitLab task 42-7")
	gl.LoseAnswers(1)
	e.click(msg, "approve", "UALICE", "Alice")
	got := e.waitTask(id, "delivered", delivered)
	if got["status"] != "approved" {
		t.Fatalf("task %v", got)
	}
	if n, m := len(gl.ApprovalCalls()), len(gl.Approvals()); n != 1 || m != 1 {
		t.Fatalf("%d approval calls, %d approvals taken; want exactly 1 and 1", n, m)
	}
	// The read came after the approval whose answer was lost.
	approvedAt, readAfter := -1, false
	for i, c := range gl.Calls() {
		switch {
		case c.Method == http.MethodPost:
			approvedAt = i
		case approvedAt >= 0 && c.Method == http.MethodGet && c.Path == "/api/v4/projects/42/deployments/7":
			readAfter = true
		}
	}
	if !readAfter {
		t.Fatalf("the deployment was not read after the lost answer: %+v", gl.Calls())
	}
	waitFor(t, "message shows approved and accepted", func() bool {
		text := lastUpdateText(e)
		return strings.Contains(text, "Approved by") && strings.Contains(text, "accepted")
	})
}

// A deployment someone approves (or cancels) in GitLab before anyone
// clicks is closed in Slack by reconcile, without an approval call; a
// click on the closed message makes none either.
func TestGitLabDecidedInGitLabClosesTheMessage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ remote, state, word string }{
		{"running", "approved", "Approved"},
		{"canceled", "rejected", "Rejected"},
	} {
		t.Run(tc.remote, func(t *testing.T) {
			t.Parallel()
			e, gl := gitlabEnv(t, gitlabSetup{extra: "reconcile: {interval: 100ms}\n"})
			e.start()
			id := e.blockedEvent(gl, blocked(7, "dev", ""))
			msg := e.messageOf("GitLab task 42-7")
			gl.SetStatus(7, tc.remote)
			got := e.waitTask(id, "decided in GitLab", func(task map[string]any) bool { return task["status"] == tc.state })
			if got["decidedBy"] != nil {
				t.Errorf("decided by %v, want nobody in chat", got["decidedBy"])
			}
			waitFor(t, "message closed", func() bool {
				text := lastUpdateText(e)
				return strings.Contains(text, tc.word+" at") && strings.Contains(text, strings.ToLower(tc.word)+" in GitLab")
			})
			e.click(msg, "approve", "UALICE", "Alice")
			waitFor(t, "the clicker told it is decided", func() bool { return ephemeralTo(e, "UALICE", "already") })
			if n := len(gl.ApprovalCalls()); n != 0 {
				t.Fatalf("%d approval calls for a deployment decided in GitLab", n)
			}
			if s := gl.StatusOf(7); s != tc.remote {
				t.Fatalf("the deployment is %s", s)
			}
		})
	}
}

// A missing or wrong X-Gitlab-Token is refused before anything is read:
// 401, no task, no message, no call to GitLab.
func TestGitLabWrongWebhookTokenIsRefused(t *testing.T) {
	t.Parallel()
	e, gl := gitlabEnv(t, gitlabSetup{})
	e.start()
	d := blocked(7, "dev", "")
	gl.AddDeployment(d)
	for _, token := range []string{"", "not-the-webhook-token-0123456789", testGitLabWebhookToken + "x", strings.ToUpper(testGitLabWebhookToken)} {
		if status, answer := e.hook(token, gl.Event(d)); status != http.StatusUnauthorized {
			t.Fatalf("token %.8q… answered %d %v", token, status, answer)
		}
	}
	if status, _ := e.task("gitlab-42-7"); status != http.StatusNotFound {
		t.Fatalf("the refused task is readable (%d)", status)
	}
	// A later accepted event is the first: nothing was kept of the refused.
	id := e.blockedEvent(gl, d)
	e.messageOf("GitLab task 42-7")
	if n := postsOf(e, "GitLab task"); n != 1 {
		t.Fatalf("%d messages", n)
	}
	if _, got := e.task(id); len(got["audit"].([]any)) == 0 {
		t.Fatalf("task %v", got)
	}
	for _, c := range gl.Calls() {
		if c.Method != http.MethodGet {
			t.Fatalf("a call to GitLab: %+v", c)
		}
	}
}

// The requester is who started the deployment: mapped through
// gitlab.users (or by the email GitLab shows) they cannot approve their
// own deployment; unmapped, nobody can approve it (fail closed) but it can
// be rejected.
func TestGitLabRequesterCannotApproveTheirOwn(t *testing.T) {
	t.Parallel()
	e, gl := gitlabEnv(t, gitlabSetup{users: "{Dev: UDEV}"})
	e.start()

	mapped := e.blockedEvent(gl, blocked(7, "dev", ""))
	msg := e.messageOf("GitLab task 42-7")
	e.click(msg, "approve", "UDEV", "Dev")
	waitFor(t, "self-approval refusal", func() bool { return ephemeralTo(e, "UDEV", "you requested this deployment") })
	if _, got := e.task(mapped); got["status"] != "pending" || len(gl.ApprovalCalls()) != 0 {
		t.Fatalf("the requester's own approval counted: %v", got)
	}
	e.click(msg, "approve", "UALICE", "Alice")
	if got := e.waitTask(mapped, "approved and delivered", delivered); got["status"] != "approved" || got["decidedBy"].(map[string]any)["user"] != "UALICE" {
		t.Fatalf("task %v", got)
	}

	byEmail := e.blockedEvent(gl, blocked(8, "someone-else", "dev@example.com"))
	msg = e.messageOf("GitLab task 42-8")
	e.click(msg, "approve", "UDEV", "Dev")
	waitFor(t, "self-approval refusal by email", func() bool {
		n := 0
		for _, c := range e.slack.CallsTo("chat.postEphemeral") {
			if c.Form.Get("user") == "UDEV" && strings.Contains(strings.ToLower(c.Form.Get("text")), "you requested this deployment") {
				n++
			}
		}
		return n == 2
	})
	if _, got := e.task(byEmail); got["status"] != "pending" {
		t.Fatalf("task %v", got)
	}

	unmapped := e.blockedEvent(gl, blocked(9, "mallory", ""))
	if _, got := e.task(unmapped); got["requestedByUnmapped"] != "mallory" || got["requestedBy"] != nil {
		t.Fatalf("task %v", got)
	}
	msg = e.messageOf("GitLab task 42-9")
	e.click(msg, "approve", "UALICE", "Alice")
	waitFor(t, "the mapping hint", func() bool { return ephemeralTo(e, "UALICE", "not mapped to a Slack user") })
	if _, got := e.task(unmapped); got["status"] != "pending" || len(got["approvals"].([]any)) != 0 {
		t.Fatalf("an approval counted: %v", got)
	}
	e.click(msg, "reject", "UBOB", "Bob")
	if got := e.waitTask(unmapped, "rejected and delivered", delivered); got["status"] != "rejected" {
		t.Fatalf("task %v", got)
	}
	var got []string
	for _, a := range gl.Approvals() {
		got = append(got, fmt.Sprintf("%d:%s", a.DeploymentID, a.Status))
	}
	if strings.Join(got, ",") != "7:approved,9:rejected" {
		t.Fatalf("GitLab took %v, want 7 approved and 9 rejected only", got)
	}
}
