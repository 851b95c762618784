package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/flexdeploytest"
	"github.com/approvalbot/approvalbot/internal/slacktest"
)

const policyMatrix = `
  - name: production
    match: {environment: "PROD*"}
    channel: CPROD
    approvers: {users: [UALICE, UBOB, UCAROL, UDEV]}
    required_approvals: 2
    require_reject_reason: true
  - name: selfservice
    match: {environment: "sandbox"}
    channel: CSAND
    approvers: {users: [UDEV]}
    allow_self_approval: true
  - name: leads
    match: {environment: "staging"}
    channel: CSTAGE
    approvers: {groups: [SREL], emails: [lead@example.com]}
`

func lastUpdateText(e *env) string {
	ups := e.slack.CallsTo("chat.update")
	if len(ups) == 0 {
		return ""
	}
	return ups[len(ups)-1].Text()
}

func ephemeralTo(e *env, user, contains string) bool {
	for _, c := range e.slack.CallsTo("chat.postEphemeral") {
		if c.Form.Get("user") == user && strings.Contains(strings.ToLower(c.Form.Get("text")), strings.ToLower(contains)) {
			return true
		}
	}
	return false
}

func TestPolicyRoutingAndApprovers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.policies = policyMatrix
	e.start()

	// Routed to the matching policy's channel; an unmatched task fails closed.
	e.submit(`{"taskId":"rt-prod","environment":"PROD-EU"}`)
	e.submit(`{"taskId":"rt-stage","environment":"staging"}`)
	none := e.submit(`{"taskId":"rt-none","environment":"qa"}`)
	if got := e.message("rt-prod").Form.Get("channel"); got != "CPROD" {
		t.Errorf("production task posted to %q", got)
	}
	stage := e.message("rt-stage")
	if got := stage.Form.Get("channel"); got != "CSTAGE" {
		t.Errorf("staging task posted to %q", got)
	}
	unmatched := e.message("rt-none")
	if got := unmatched.Form.Get("channel"); got != "CDEFAULT" || len(unmatched.Buttons()) != 0 || !strings.Contains(unmatched.Text(), "o policy") {
		t.Errorf("unmatched task: channel %q, %d buttons, text %q", got, len(unmatched.Buttons()), unmatched.Text())
	}
	if _, task := e.task(none); task["policy"] != nil && task["policy"] != "" {
		t.Errorf("unmatched task has policy %v", task["policy"])
	}

	// An approver named by email may decide; a stranger may not.
	e.click(stage, "approve", "UMALLORY", "Mallory")
	waitFor(t, "refusal", func() bool { return ephemeralTo(e, "UMALLORY", "not an approver") })
	e.click(stage, "approve", "ULEAD", "Lead")
	e.waitTask("flexdeploy-rt-stage", "approved by email approver", func(task map[string]any) bool { return task["status"] == "approved" })
}

func TestQuorumTwoOfFour(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.policies = policyMatrix
	e.start()
	id := e.submit(`{"taskId":"quorum","environment":"PROD"}`)
	msg := e.message("quorum")
	e.click(msg, "approve", "UALICE", "Alice")
	task := e.waitTask(id, "first vote", func(task map[string]any) bool { return len(task["approvals"].([]any)) == 1 })
	if task["status"] != "pending" {
		t.Fatalf("after one of two approvals: %v", task["status"])
	}
	waitFor(t, "progress on the message", func() bool {
		text := lastUpdateText(e)
		return strings.Contains(text, "1 of 2") && strings.Contains(text, "UALICE")
	})
	// Alice again: counted once.
	e.click(msg, "approve", "UALICE", "Alice")
	waitFor(t, "already voted", func() bool { return ephemeralTo(e, "UALICE", "already") })
	if _, task := e.task(id); task["status"] != "pending" || len(task["approvals"].([]any)) != 1 {
		t.Fatalf("a second click by the same person counted: %v", task)
	}
	// The updated message still has working buttons.
	ups := e.slack.CallsTo("chat.update")
	if b := ups[len(ups)-1].Buttons(); len(b) != 2 || b[0].Value != msg.Buttons()[0].Value {
		t.Fatalf("buttons after a vote: %+v", b)
	}
	e.click(msg, "approve", "UBOB", "Bob")
	task = e.waitTask(id, "delivered", delivered)
	if task["status"] != "approved" || task["decidedBy"].(map[string]any)["user"] != "UBOB" {
		t.Fatalf("task %v", task)
	}
	d := e.fd.Decisions()
	if len(d) != 1 || !strings.Contains(d[0].Notes(), "Alice (UALICE) and Bob (UBOB)") {
		t.Fatalf("decisions %+v", d)
	}
}

func TestSelfApproval(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.policies = policyMatrix
	e.start()
	prod := e.submit(`{"taskId":"self-prod","environment":"PROD","requestedBy":"dev@example.com"}`)
	msg := e.message("self-prod")
	e.click(msg, "approve", "UDEV", "Dev")
	waitFor(t, "self-approval refusal", func() bool { return ephemeralTo(e, "UDEV", "you requested this deployment") })
	if _, task := e.task(prod); len(task["approvals"].([]any)) != 0 {
		t.Fatalf("self-approval counted: %v", task["approvals"])
	}
	sandbox := e.submit(`{"taskId":"self-sandbox","environment":"sandbox","requestedBy":"UDEV"}`)
	e.click(e.message("self-sandbox"), "approve", "UDEV", "Dev")
	e.waitTask(sandbox, "self-approved where the policy allows it", func(task map[string]any) bool { return task["status"] == "approved" })
}

func TestRejectWithRequiredReason(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.policies = policyMatrix
	e.start()
	id := e.submit(`{"taskId":"why","environment":"PROD"}`)
	msg := e.message("why")
	e.click(msg, "reject", "UCAROL", "Carol")
	var view slacktest.Call
	waitFor(t, "reason dialog", func() bool {
		calls := e.slack.CallsTo("views.open")
		if len(calls) > 0 {
			view = calls[0]
		}
		return len(calls) > 0
	})
	if view.JSON["trigger_id"] != "trigger-UCAROL" {
		t.Fatalf("views.open with trigger %v", view.JSON["trigger_id"])
	}
	if _, task := e.task(id); task["status"] != "pending" {
		t.Fatalf("rejected without a reason: %v", task["status"])
	}
	v := view.JSON["view"].(map[string]any)
	submission := map[string]any{
		"type": "view_submission",
		"user": map[string]any{"id": "UCAROL", "name": "Carol"},
		"view": map[string]any{
			"callback_id": v["callback_id"], "private_metadata": v["private_metadata"],
			"state": map[string]any{"values": map[string]any{"reason": map[string]any{"reason": map[string]any{"type": "plain_text_input", "value": "integration tests are red"}}}},
		},
	}
	raw, _ := json.Marshal(submission)
	req, _ := slacktest.InteractionRequest(e.url+"/slack/interactions", testSigningSecret, time.Now(), string(raw))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("submission answered %d", res.StatusCode)
	}
	task := e.waitTask(id, "delivered", delivered)
	if task["status"] != "rejected" || task["reason"] != "integration tests are red" {
		t.Fatalf("task %v", task)
	}
	if d := e.fd.Decisions(); len(d) != 1 || !strings.HasSuffix(d[0].Notes(), ": integration tests are red") {
		t.Fatalf("decisions %+v", d)
	}
	waitFor(t, "reason on the message", func() bool { return strings.Contains(lastUpdateText(e), "integration tests are red") })
}

func TestExpiryWithAndWithoutAutoReject(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.policies = `
  - name: autoreject
    match: {environment: "PROD"}
    approvers: {users: [UALICE]}
    ttl: 1s
    on_expiry: reject
  - name: ignore
    approvers: {users: [UALICE]}
    ttl: 1s
`
	e.start()
	auto := e.submit(`{"taskId":"exp-auto","environment":"PROD"}`)
	ignore := e.submit(`{"taskId":"exp-ignore","environment":"dev"}`)
	e.message("exp-auto")
	e.message("exp-ignore")
	a := e.waitTask(auto, "auto-rejected", delivered)
	i := e.waitTask(ignore, "expired", func(task map[string]any) bool {
		return task["status"] == "expired" && deliveryState(task) == "not_needed"
	})
	if a["status"] != "expired" || i["status"] != "expired" {
		t.Fatalf("statuses %v %v", a["status"], i["status"])
	}
	time.Sleep(500 * time.Millisecond) // sweeps come every 200ms: a second rejection would show
	d := e.fd.Decisions()
	if len(d) != 1 || d[0].Path != flexdeploytest.Root+"/tasks/approval/reject/exp-auto" || !strings.Contains(d[0].Notes(), "Expired") {
		t.Fatalf("decisions %+v", d)
	}
	waitFor(t, "both messages show the expiry", func() bool {
		n := 0
		for _, c := range e.slack.CallsTo("chat.update") {
			if strings.Contains(c.Text(), "Expired") && len(c.Buttons()) == 0 {
				n++
			}
		}
		return n >= 2
	})
}

func TestReminderBeforeExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.policies = `
  - name: remind
    approvers: {users: [UALICE]}
    ttl: 3s
    remind_before: 2s
`
	e.start()
	e.submit(`{"taskId":"remind"}`)
	msg := e.message("remind")
	var reminder slacktest.Call
	waitFor(t, "a reminder in the thread", func() bool {
		for _, c := range e.slack.CallsTo("chat.postMessage") {
			if c.Form.Get("thread_ts") != "" {
				reminder = c
				return true
			}
		}
		return false
	})
	if reminder.Form.Get("channel") != msg.Form.Get("channel") || reminder.Form.Get("thread_ts") != "1700000000.000001" {
		t.Fatalf("reminder in %q thread %q", reminder.Form.Get("channel"), reminder.Form.Get("thread_ts"))
	}
}

func TestDecidedInFlexDeploy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.extra = "reconcile: {interval: 200ms}"
	e.start()
	id := e.submit(`{"taskId":"ui","environment":"PROD"}`)
	e.message("ui")
	e.fd.SetStatus("ui", "APPROVED")
	task := e.waitTask(id, "approved in FlexDeploy", func(task map[string]any) bool { return task["status"] == "approved" })
	if task["decidedBy"] != nil || !strings.Contains(task["reason"].(string), "FlexDeploy") {
		t.Fatalf("task %v", task)
	}
	waitFor(t, "message updated", func() bool {
		ups := e.slack.CallsTo("chat.update")
		return len(ups) > 0 && len(ups[len(ups)-1].Buttons()) == 0 && strings.Contains(lastUpdateText(e), "FlexDeploy")
	})
	if n := len(e.fd.Decisions()); n != 0 {
		t.Fatalf("%d decision calls for a task FlexDeploy decided itself", n)
	}
}

func TestConfigReload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.policies = `
  - name: before
    approvers: {users: [UALICE]}
`
	e.start()
	first := e.submit(`{"taskId":"reload-1"}`)
	if _, task := e.task(first); task["policy"] != "before" {
		t.Fatalf("policy %v", task["policy"])
	}
	// A valid edit is picked up without a restart.
	e.policies = `
  - name: after
    approvers: {users: [UBOB]}
`
	if err := os.WriteFile(e.config, []byte(e.configYAML()), 0o600); err != nil {
		t.Fatal(err)
	}
	n := 0
	waitFor(t, "new policy in force", func() bool {
		n++
		status, _, task := e.api("POST", "/v1/tasks", fmt.Sprintf(`{"taskId":"reload-probe-%d"}`, n))
		return status == http.StatusAccepted && task["policy"] == "after"
	})
	// A broken edit is refused and the running configuration stays.
	if err := os.WriteFile(e.config, []byte(e.configYAML()+"\npolicies_typo: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "refusal logged", func() bool { return strings.Contains(e.logs.String(), "configuration change refused") })
	status, _, task := e.api("POST", "/v1/tasks", `{"taskId":"reload-after-broken"}`)
	if status != http.StatusAccepted || task["policy"] != "after" {
		t.Fatalf("after a broken edit: %d policy %v", status, task["policy"])
	}
}
