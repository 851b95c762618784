package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/azuredevopstest"
)

const azureKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

func azureEnv(t *testing.T, policies string) (*env, *azuredevopstest.Server) {
	t.Helper()
	az := azuredevopstest.New()
	t.Cleanup(az.Close)
	e := newEnv(t)
	if policies != "" {
		e.policies = policies
	}
	e.extra = `azure_devops: {encryption_key: "` + azureKey + `", allowed_hosts: ["127.0.0.1"]}`
	return e, az
}

// check starts a check run in the fake and sends Azure Pipelines' check
// request for it; each check has its own job token.
func (e *env) check(az *azuredevopstest.Server, instance, body string) (int, map[string]any, azuredevopstest.Check) {
	e.t.Helper()
	chk := az.NewCheck(instance)
	e.tokens = append(e.tokens, chk.AuthToken)
	req, _ := http.NewRequest("POST", e.url+"/v1/azure-devops/checks", strings.NewReader(body))
	for k, v := range chk.Headers() {
		req.Header.Set(k, v)
	}
	req.Header.Set("X-API-Key", testAPIKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var task map[string]any
	_ = json.NewDecoder(res.Body).Decode(&task)
	return res.StatusCode, task, chk
}

func TestAzureDevOpsCheckEndToEnd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ action, result, user string }{
		{"approve", "succeeded", "UALICE"},
		{"reject", "failed", "UBOB"},
	} {
		t.Run(tc.action, func(t *testing.T) {
			t.Parallel()
			e, az := azureEnv(t, "")
			e.start()
			instance := "0f0e0d0c-" + tc.action
			status, task, chk := e.check(az, instance, `{"environment":"PROD","description":"Release 42 to production"}`)
			token := chk.AuthToken
			if status != http.StatusOK || task["source"] != "azure-devops" {
				t.Fatalf("check answered %d %v", status, task)
			}
			msg := e.messageOf("Azure DevOps task " + instance)
			if msg.Form.Get("channel") != "CPROD" {
				t.Errorf("posted to %q, want the PROD policy's channel", msg.Form.Get("channel"))
			}
			// The pipeline user is told where the check waits.
			waitFor(t, "status log attached", func() bool {
				for _, c := range az.Calls() {
					if c.Method == http.MethodPatch {
						return true
					}
				}
				return false
			})
			calls := az.Calls()
			base := chk.PlanPath()
			if calls[0].Method != "POST" || calls[0].Path != base+"/logs" || calls[1].Path != base+"/logs/1" ||
				!strings.Contains(calls[1].Body, "Waiting for approval in Slack") || calls[2].Path != base+"/timelines/"+chk.TimelineID+"/records" {
				t.Fatalf("status log calls %+v", calls)
			}
			e.click(msg, tc.action, tc.user, tc.user)
			got := e.waitTask(task["id"].(string), "delivered", delivered)
			if got["status"] != map[string]string{"approve": "approved", "reject": "rejected"}[tc.action] {
				t.Fatalf("task %v", got)
			}
			done := az.Completed()
			if len(done) != 1 {
				t.Fatalf("%d TaskCompleted calls, want 1", len(done))
			}
			ev := done[0]
			want := fmt.Sprintf(`{"name":"TaskCompleted","taskId":%q,"jobId":%q,"result":%q}`, instance, chk.JobID, tc.result)
			if ev.Method != "POST" || ev.Path != base+"/events" || ev.Query != "api-version=2.0-preview.1" ||
				ev.Auth != "Bearer "+token || !strings.HasPrefix(ev.ContentType, "application/json") || strings.TrimSpace(ev.Body) != want {
				t.Fatalf("event %+v\nwant body %s", ev, want)
			}
			// The job token is not readable at rest, before or after delivery.
			e.stop()
			raw, err := os.ReadFile(filepath.Join(e.dir, "approvalbot.db"))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(raw, []byte(token)) || bytes.Contains(raw, []byte("azure-job-token")) {
				t.Fatal("the job token is readable in the store")
			}
		})
	}
}

func TestAzureDevOpsExpiryFailsTheCheck(t *testing.T) {
	t.Parallel()
	e, az := azureEnv(t, `
  - name: pipelines
    match: {source: azure-devops}
    approvers: {users: [UALICE]}
    ttl: 1s
    on_expiry: reject
`)
	e.start()
	_, task, _ := e.check(az, "expiring-check", "")
	e.waitTask(task["id"].(string), "expired and delivered", delivered)
	done := az.Completed()
	if len(done) != 1 || !strings.Contains(done[0].Body, `"result":"failed"`) {
		t.Fatalf("completions %+v", done)
	}
}

func TestAzureDevOpsCallbackRecovers(t *testing.T) {
	t.Parallel()
	e, az := azureEnv(t, "")
	az.SetFailFirst(2)
	e.start()
	_, task, _ := e.check(az, "flaky-check", `{"environment":"PROD"}`)
	e.click(e.messageOf("Azure DevOps task flaky-check"), "approve", "UALICE", "Alice")
	e.waitTask(task["id"].(string), "delivered", delivered)
	if n := len(az.Completed()); n != 1 {
		t.Fatalf("%d successful completions, want 1", n)
	}
}

func TestAzureDevOpsDuplicateDelivery(t *testing.T) {
	t.Parallel()
	e, az := azureEnv(t, "")
	e.start()
	s1, t1, _ := e.check(az, "dup-check", `{"environment":"PROD"}`)
	e.messageOf("Azure DevOps task dup-check")
	s2, t2, _ := e.check(az, "dup-check", `{"environment":"PROD"}`)
	if s1 != http.StatusOK || s2 != http.StatusOK || t1["id"] != t2["id"] {
		t.Fatalf("duplicate: %d %v, %d %v", s1, t1["id"], s2, t2["id"])
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(e.slack.CallsTo("chat.postMessage")); n != 1 {
		t.Fatalf("%d messages for one check", n)
	}
}

func TestAzureDevOpsRefusesForeignPlanURL(t *testing.T) {
	t.Parallel()
	e, _ := azureEnv(t, "")
	e.extra = `azure_devops: {encryption_key: "` + azureKey + `"}` // default hosts: Azure DevOps only
	e.start()
	az := azuredevopstest.New()
	t.Cleanup(az.Close)
	status, body, _ := e.check(az, "foreign", "")
	if status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body["error"]), "not allowed") {
		t.Fatalf("check to a foreign host answered %d %v", status, body)
	}
	if n := len(az.Calls()); n != 0 {
		t.Fatalf("%d calls to the foreign host", n)
	}
}

// A TaskCompleted that Azure DevOps took but whose answer was lost (late,
// or the connection dropped) is not sent again: the retry reads the
// check's record first and finds it completed.
func TestAzureDevOpsLostAnswerIsNotSentTwice(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		lose func(az *azuredevopstest.Server)
	}{
		{"answer after the timeout", func(az *azuredevopstest.Server) { az.SetLateAnswers(1) }},
		{"connection dropped after the request", func(az *azuredevopstest.Server) { az.SetDroppedAnswers(1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, az := azureEnv(t, "")
			e.extra = `azure_devops: {encryption_key: "` + azureKey + `", allowed_hosts: ["127.0.0.1"], timeout: 1s}`
			e.start()
			instance := "lost-" + strings.ReplaceAll(tc.name, " ", "-")
			_, task, _ := e.check(az, instance, `{"environment":"PROD"}`)
			msg := e.messageOf("Azure DevOps task " + instance)
			tc.lose(az)
			e.click(msg, "approve", "UALICE", "Alice")
			got := e.waitTask(task["id"].(string), "delivered", delivered)
			if n := len(az.Events()); n != 1 {
				t.Fatalf("%d TaskCompleted events reached Azure DevOps, want exactly 1", n)
			}
			if got["status"] != "approved" || az.Record(instance).Result != azuredevopstest.ResultSucceeded {
				t.Fatalf("task %v, record %+v", got["status"], az.Record(instance))
			}
			waitFor(t, "message shows approved and accepted", func() bool {
				text := lastUpdateText(e)
				return strings.Contains(text, "Approved by") && strings.Contains(text, "accepted")
			})
		})
	}
}
