package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/approvalbot/approvalbot/internal/githubtest"
)

const testGitHubSecret = "e2e-github-webhook-secret-0123456789"

// githubPolicies let the requester UDEV approve, so that self-approval is
// what refuses them.
const githubPolicies = `
  - name: production
    match: {environment: "prod*"}
    channel: CPROD
    approvers: {users: [UALICE, UBOB, UDEV]}
`

// githubEnv is an end-to-end set-up with a fake GitHub; users is the YAML
// of github.users. Every secret GitHub's side holds is scanned for in the
// logs and the store when the test ends.
func githubEnv(t *testing.T, users string) (*env, *githubtest.Server) {
	t.Helper()
	gh := githubtest.New()
	t.Cleanup(gh.Close)
	e := newEnv(t)
	e.policies = githubPolicies
	e.extra = fmt.Sprintf("github: {app_id: %q, private_key: %q, webhook_secret: %q, api_url: %q, timeout: 1s, users: %s}\n",
		githubtest.AppID, gh.PrivateKeyPEM(), testGitHubSecret, gh.URL(), users)
	e.tokens = append(e.tokens, testGitHubSecret, gh.PrivateKeyPEM())
	// Runs before newEnv's checks (cleanups run last-in first-out).
	t.Cleanup(func() {
		e.tokens = append(e.tokens, gh.IssuedTokens()...)
		for _, c := range gh.TokenRequests() {
			e.tokens = append(e.tokens, c.Token())
		}
	})
	return e, gh
}

// deliver posts a webhook delivery to /github/webhook, signed with secret.
func (e *env) deliver(event, delivery, secret string, body []byte) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url+"/github/webhook", bytes.NewReader(body))
	for k, v := range githubtest.Headers(secret, event, delivery, body) {
		req.Header.Set(k, v)
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

// requested delivers the run's request for env and returns the task.
func (e *env) requested(run githubtest.Run, env, creator, delivery string) map[string]any {
	e.t.Helper()
	status, task := e.deliver("deployment_protection_rule", delivery, testGitHubSecret, run.Payload(githubtest.Event{Environment: env, Creator: creator}))
	if status != http.StatusOK {
		e.t.Fatalf("delivery answered %d %v", status, task)
	}
	return task
}

func runTaskID(run githubtest.Run, env string) string {
	return strconv.FormatInt(run.ID, 10) + "-" + strings.ToLower(env)
}

func TestGitHubDeploymentEndToEnd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ action, state, user, name, notes string }{
		{"approve", "approved", "UALICE", "Alice", "Approved in Slack by Alice (UALICE) at 20"},
		{"reject", "rejected", "UBOB", "Bob", "Rejected in Slack by Bob (UBOB) at 20"},
	} {
		t.Run(tc.action, func(t *testing.T) {
			t.Parallel()
			e, gh := githubEnv(t, "{octocat: UDEV}")
			e.start()
			run := gh.NewRun("acme/shop", "production")
			task := e.requested(run, "production", "octocat", "d-"+tc.action)
			id := "github-" + runTaskID(run, "production")
			if task["id"] != id || task["source"] != "github" || task["project"] != "acme/shop" || task["environment"] != "production" ||
				task["requestedBy"] != "UDEV" || task["url"] != "https://github.com/acme/shop/actions/runs/"+strconv.FormatInt(run.ID, 10) ||
				!strings.HasPrefix(fmt.Sprint(task["release"]), "main (") {
				t.Fatalf("task %v", task)
			}
			msg := e.messageOf("GitHub task " + runTaskID(run, "production"))
			if msg.Form.Get("channel") != "CPROD" {
				t.Errorf("posted to %q", msg.Form.Get("channel"))
			}
			// The run tells where the approval waits; that decides nothing.
			waitFor(t, "status report", func() bool { return len(gh.StatusReports()) == 1 && gh.StatusReports()[0].Applied })
			report := gh.StatusReports()[0]
			if report.Body != `{"environment_name":"production","comment":"`+report.Review().Comment+`"}` ||
				!strings.HasPrefix(report.Review().Comment, "Waiting for approval in Slack channel CPROD (policy production") {
				t.Fatalf("status report %s", report.Body)
			}

			e.click(msg, tc.action, tc.user, tc.name)
			got := e.waitTask(id, "delivered", delivered)
			if got["status"] != tc.state {
				t.Fatalf("task %v", got)
			}
			reviews := gh.Reviews()
			if len(reviews) != 1 {
				t.Fatalf("%d reviews, want exactly 1", len(reviews))
			}
			rv := reviews[0]
			var body map[string]any
			if err := json.Unmarshal([]byte(rv.Body), &body); err != nil || len(body) != 3 || body["environment_name"] != "production" ||
				body["state"] != tc.state || !strings.HasPrefix(fmt.Sprint(body["comment"]), tc.notes) {
				t.Fatalf("review body %s", rv.Body)
			}
			tokens := gh.IssuedTokens()
			if len(tokens) != 1 || rv.Auth != "Bearer "+tokens[0] || rv.Accept != githubtest.MediaType ||
				rv.APIVersion != githubtest.APIVersion || rv.Code != http.StatusNoContent {
				t.Fatalf("review %+v, tokens %v", rv, tokens)
			}
			if g := gh.Gate(run.ID, "production"); g.State != tc.state {
				t.Fatalf("gate %+v", g)
			}

			// The installation token was minted with a JWT that verifies
			// with the App's public key: iss the App's id, exp at most ten
			// minutes ahead.
			reqs := gh.TokenRequests()
			if len(reqs) != 1 || reqs[0].Code != http.StatusCreated {
				t.Fatalf("token requests %+v", reqs)
			}
			var claims jwt.RegisteredClaims
			if _, err := jwt.ParseWithClaims(reqs[0].Token(), &claims, func(*jwt.Token) (any, error) { return gh.PublicKey(), nil },
				jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(githubtest.AppID), jwt.WithTimeFunc(func() time.Time { return reqs[0].At })); err != nil {
				t.Fatalf("the JWT does not verify with the App's public key: %v", err)
			}
			if claims.ExpiresAt == nil || claims.IssuedAt == nil || claims.ExpiresAt.After(reqs[0].At.Add(10*time.Minute)) ||
				claims.ExpiresAt.Sub(claims.IssuedAt.Time) > 10*time.Minute {
				t.Fatalf("claims %+v at %v", claims, reqs[0].At)
			}

			word := map[string]string{"approve": "Approved by", "reject": "Rejected by"}[tc.action]
			waitFor(t, "message updated", func() bool {
				text := lastUpdateText(e)
				return strings.Contains(text, word) && strings.Contains(text, "accepted")
			})
		})
	}
}

func TestGitHubBadSignatureIsRefused(t *testing.T) {
	t.Parallel()
	e, gh := githubEnv(t, "{octocat: UDEV}")
	e.start()
	run := gh.NewRun("acme/shop", "production")
	body := run.Payload(githubtest.Event{Environment: "production", Creator: "octocat"})
	if status, _ := e.deliver("deployment_protection_rule", "d-1", "not-the-webhook-secret", body); status != http.StatusUnauthorized {
		t.Fatalf("a delivery signed with another secret answered %d", status)
	}
	req, _ := http.NewRequest(http.MethodPost, e.url+"/github/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "deployment_protection_rule")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an unsigned delivery answered %d", res.StatusCode)
	}
	// Nothing was recorded, so nothing can be posted; GitHub was not called.
	if status, _ := e.task("github-" + runTaskID(run, "production")); status != http.StatusNotFound {
		t.Fatalf("the refused task is readable (%d)", status)
	}
	if n := len(e.slack.CallsTo("chat.postMessage")); n != 0 {
		t.Fatalf("%d messages posted", n)
	}
	if n := len(gh.Calls()); n != 0 {
		t.Fatalf("%d calls to GitHub", n)
	}
	// A ping is answered 200 and records nothing either.
	if status, answer := e.deliver("ping", "d-ping", testGitHubSecret, githubtest.Ping()); status != http.StatusOK || answer["status"] != "ignored" {
		t.Fatalf("ping answered %d %v", status, answer)
	}
}

func TestGitHubRepeatedDeliveryPostsOneMessage(t *testing.T) {
	t.Parallel()
	e, gh := githubEnv(t, "{octocat: UDEV}")
	e.start()
	run := gh.NewRun("acme/shop", "production")
	first := e.requested(run, "production", "octocat", "d-1")
	name := "GitHub task " + runTaskID(run, "production")
	e.messageOf(name)
	again := e.requested(run, "production", "octocat", "d-1") // redelivered by hand
	other := e.requested(run, "Production", "octocat", "d-2") // the same run and environment
	if first["id"] != again["id"] || first["id"] != other["id"] {
		t.Fatalf("ids %v, %v, %v", first["id"], again["id"], other["id"])
	}
	// The post is followed by the status report: once it is there the
	// first task's outbox is done, and a repeat queued nothing new.
	waitFor(t, "status report", func() bool { return len(gh.StatusReports()) == 1 && gh.StatusReports()[0].Code == http.StatusNoContent })
	n := 0
	for _, c := range e.slack.CallsTo("chat.postMessage") {
		if strings.Contains(c.Text(), name) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d messages for one run and environment", n)
	}
	if _, task := e.task(fmt.Sprint(first["id"])); task["status"] != "pending" {
		t.Fatalf("task %v", task)
	}
}

func TestGitHubRefusesCallbackElsewhere(t *testing.T) {
	t.Parallel()
	e, gh := githubEnv(t, "{octocat: UDEV}")
	e.start()
	elsewhere := githubtest.New() // another host:port, GitHub-like
	t.Cleanup(elsewhere.Close)
	run := gh.NewRun("acme/shop", "production")
	foreign := elsewhere.NewRun("acme/shop", "production")
	body := run.Payload(githubtest.Event{Environment: "production", Creator: "octocat", CallbackURL: foreign.CallbackURL()})
	status, answer := e.deliver("deployment_protection_rule", "d-1", testGitHubSecret, body)
	if status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(answer["error"]), "deployment_callback_url") {
		t.Fatalf("a callback URL on another host answered %d %v", status, answer)
	}
	if n := len(elsewhere.Calls()); n != 0 {
		t.Fatalf("%d requests reached the other host", n)
	}
	if n := len(gh.Calls()); n != 0 {
		t.Fatalf("%d requests to GitHub (no token is minted for a refused task)", n)
	}
	if status, _ := e.task("github-" + runTaskID(run, "production")); status != http.StatusNotFound {
		t.Fatalf("the refused task was recorded (%d)", status)
	}
}

// A review GitHub took but whose answer was lost (late, or the connection
// dropped) is not sent again: the retry reads the run's pending
// deployments first and finds the environment no longer waiting.
func TestGitHubLostAnswerIsNotRepeated(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		lose func(gh *githubtest.Server)
	}{
		{"answer after the timeout", func(gh *githubtest.Server) { gh.SetLateAnswers(1) }},
		{"connection dropped after the request", func(gh *githubtest.Server) { gh.SetDroppedAnswers(1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, gh := githubEnv(t, "{octocat: UDEV}")
			e.start()
			run := gh.NewRun("acme/shop", "production")
			id := fmt.Sprint(e.requested(run, "production", "octocat", "d-1")["id"])
			msg := e.messageOf("GitHub task " + runTaskID(run, "production"))
			tc.lose(gh)
			e.click(msg, "approve", "UALICE", "Alice")
			got := e.waitTask(id, "delivered", delivered)
			if n := len(gh.Reviews()); n != 1 {
				t.Fatalf("%d reviews reached GitHub, want exactly 1", n)
			}
			if got["status"] != "approved" || gh.Gate(run.ID, "production").State != githubtest.GateApproved {
				t.Fatalf("task %v, gate %+v", got["status"], gh.Gate(run.ID, "production"))
			}
			read := false
			for _, c := range gh.Reads() {
				read = read || strings.HasSuffix(c.Path, "/pending_deployments")
			}
			if !read {
				t.Fatal("the retry did not read the pending deployments")
			}
			waitFor(t, "message shows approved and accepted", func() bool {
				text := lastUpdateText(e)
				return strings.Contains(text, "Approved by") && strings.Contains(text, "accepted")
			})
		})
	}
}

// An environment that also waits for required reviewers is still listed
// after the App's review, so the retry after a lost answer cannot tell:
// it sends the review again, GitHub refuses it as reviewed already, and
// that answers the earlier attempt. The rule is reviewed once, and the
// delivery counts as done.
func TestGitHubLostAnswerWithOtherRules(t *testing.T) {
	t.Parallel()
	e, gh := githubEnv(t, "{octocat: UDEV}")
	e.start()
	run := gh.NewRun("acme/shop", "production")
	gh.AddOtherRule(run.ID, "production")
	id := fmt.Sprint(e.requested(run, "production", "octocat", "d-1")["id"])
	msg := e.messageOf("GitHub task " + runTaskID(run, "production"))
	gh.SetLateAnswers(1)
	e.click(msg, "approve", "UALICE", "Alice")
	e.waitTask(id, "delivered", delivered)
	reviews := gh.Reviews()
	if len(reviews) != 2 || !reviews[0].Applied || reviews[1].Applied || reviews[1].Code != http.StatusUnprocessableEntity {
		t.Fatalf("reviews %+v: want the first taken, the repeat refused", reviews)
	}
	waitFor(t, "message shows approved and accepted", func() bool {
		text := lastUpdateText(e)
		return strings.Contains(text, "Approved by") && strings.Contains(text, "accepted")
	})
}

// A review GitHub refused (5xx) is sent again, and taken once.
func TestGitHubRefusedReviewIsRetried(t *testing.T) {
	t.Parallel()
	e, gh := githubEnv(t, "{octocat: UDEV}")
	gh.SetFailFirst(2)
	e.start()
	run := gh.NewRun("acme/shop", "production")
	id := fmt.Sprint(e.requested(run, "production", "octocat", "d-1")["id"])
	e.click(e.messageOf("GitHub task "+runTaskID(run, "production")), "approve", "UALICE", "Alice")
	e.waitTask(id, "delivered", delivered)
	applied := 0
	for _, c := range gh.Reviews() {
		if c.Applied {
			applied++
		}
	}
	if n := len(gh.Reviews()); n != 3 || applied != 1 {
		t.Fatalf("%d reviews, %d taken; want 3 and 1", n, applied)
	}
}

// A requester GitHub names but nobody mapped to Slack cannot be told from
// the clicker: approving is refused with the hint to map them (rejecting
// works). A mapped requester's own approval is refused as self-approval,
// and another approver's goes through.
func TestGitHubRequesterMapping(t *testing.T) {
	t.Parallel()
	e, gh := githubEnv(t, "{octocat: UDEV}")
	e.start()

	unmapped := gh.NewRun("acme/shop", "production")
	task := e.requested(unmapped, "production", "mallory", "d-1")
	if task["requestedByUnmapped"] != "mallory" || task["requestedBy"] != nil {
		t.Fatalf("task %v", task)
	}
	id := fmt.Sprint(task["id"])
	msg := e.messageOf("GitHub task " + runTaskID(unmapped, "production"))
	if !strings.Contains(msg.Text(), "not mapped to a Slack user") {
		t.Errorf("the message does not say the requester is unmapped: %s", msg.Text())
	}
	e.click(msg, "approve", "UALICE", "Alice")
	waitFor(t, "the mapping hint", func() bool { return ephemeralTo(e, "UALICE", "not mapped to a Slack user") })
	if _, got := e.task(id); got["status"] != "pending" || len(got["approvals"].([]any)) != 0 {
		t.Fatalf("an approval counted: %v", got)
	}
	e.click(msg, "reject", "UBOB", "Bob")
	if got := e.waitTask(id, "rejected and delivered", delivered); got["status"] != "rejected" {
		t.Fatalf("task %v", got)
	}

	mapped := gh.NewRun("acme/shop", "production")
	id = fmt.Sprint(e.requested(mapped, "production", "octocat", "d-2")["id"])
	msg = e.messageOf("GitHub task " + runTaskID(mapped, "production"))
	e.click(msg, "approve", "UDEV", "Dev")
	waitFor(t, "self-approval refusal", func() bool { return ephemeralTo(e, "UDEV", "you requested this deployment") })
	e.click(msg, "approve", "UALICE", "Alice")
	if got := e.waitTask(id, "approved and delivered", delivered); got["status"] != "approved" || got["decidedBy"].(map[string]any)["user"] != "UALICE" {
		t.Fatalf("task %v", got)
	}
	var states []string
	for _, c := range gh.Reviews() {
		states = append(states, c.Review().State)
	}
	if strings.Join(states, ",") != "rejected,approved" {
		t.Fatalf("reviews %v, want one rejection and one approval", states)
	}
}

// A login mapped after its task came in applies to that task once the bot
// has restarted with the mapping: the self-approval check asks the tool at
// the click, not what the intake found.
func TestGitHubLoginMappedAfterIntake(t *testing.T) {
	t.Parallel()
	e, gh := githubEnv(t, "{octocat: UDEV}")
	e.start()
	run := gh.NewRun("acme/shop", "production")
	id := fmt.Sprint(e.requested(run, "production", "mallory", "d-1")["id"])
	msg := e.messageOf("GitHub task " + runTaskID(run, "production"))
	e.click(msg, "approve", "UALICE", "Alice")
	waitFor(t, "the mapping hint", func() bool { return ephemeralTo(e, "UALICE", "not mapped to a Slack user") })

	e.stop()
	e.extra = strings.Replace(e.extra, "users: {octocat: UDEV}", "users: {octocat: UDEV, Mallory: UBOB}", 1)
	e.start()
	e.click(msg, "approve", "UBOB", "Bob")
	waitFor(t, "self-approval refusal", func() bool { return ephemeralTo(e, "UBOB", "you requested this deployment") })
	e.click(msg, "approve", "UALICE", "Alice")
	if got := e.waitTask(id, "approved and delivered", delivered); got["status"] != "approved" || got["decidedBy"].(map[string]any)["user"] != "UALICE" {
		t.Fatalf("task %v", got)
	}
}
