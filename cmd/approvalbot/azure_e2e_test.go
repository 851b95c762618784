package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// azureCall is one request the fake Azure DevOps received.
type azureCall struct {
	Method, Path, Query, Auth, ContentType, Body string
}

// fakeAzure is Azure DevOps' distributed-task API on a real HTTP server.
type fakeAzure struct {
	srv       *httptest.Server
	mu        sync.Mutex
	calls     []azureCall
	failFirst int // events answered 500 this many times
	events    int
}

func newFakeAzure(t *testing.T) *fakeAzure {
	f := &fakeAzure{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.calls = append(f.calls, azureCall{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(body)})
		fail := false
		if strings.HasSuffix(r.URL.Path, "/events") {
			f.events++
			fail = f.events <= f.failFirst
		}
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case fail:
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"message":"try later"}`)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/logs"):
			io.WriteString(w, `{"id": 42, "path": "logs\\x"}`)
		default:
			io.WriteString(w, `{}`)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAzure) Calls() []azureCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]azureCall(nil), f.calls...)
}

// events returns the TaskCompleted calls that were answered 2xx.
func (f *fakeAzure) completed() []azureCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []azureCall
	n := 0
	for _, c := range f.calls {
		if strings.HasSuffix(c.Path, "/events") {
			n++
			if n > f.failFirst {
				out = append(out, c)
			}
		}
	}
	return out
}

const (
	azureKey     = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	azureProject = "6c3ac5e2-4b7a-4d1b-9f0e-1a2b3c4d5e6f"
	azurePlan    = "11111111-2222-3333-4444-555555555555"
	azureJob     = "99999999-8888-7777-6666-555555555555"
	azureTimelne = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
)

func azureEnv(t *testing.T, policies string) (*env, *fakeAzure) {
	t.Helper()
	az := newFakeAzure(t)
	e := newEnv(t)
	if policies != "" {
		e.policies = policies
	}
	e.extra = `azure_devops: {encryption_key: "` + azureKey + `", allowed_hosts: ["127.0.0.1"]}`
	return e, az
}

// check sends Azure Pipelines' check request; the job token is unique per check.
func (e *env) check(az *fakeAzure, instance, body string) (int, map[string]any, string) {
	e.t.Helper()
	token := "azure-job-token-" + instance + "-0123456789abcdef0123456789"
	e.tokens = append(e.tokens, token)
	req, _ := http.NewRequest("POST", e.url+"/v1/azure-devops/checks", strings.NewReader(body))
	for k, v := range map[string]string{
		"Content-Type": "application/json", "X-API-Key": testAPIKey,
		"PlanUrl": az.srv.URL + "/", "ProjectId": azureProject, "HubName": "checks", "PlanId": azurePlan,
		"JobId": azureJob, "TimelineId": azureTimelne, "TaskInstanceId": instance, "AuthToken": token,
	} {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var task map[string]any
	_ = json.NewDecoder(res.Body).Decode(&task)
	return res.StatusCode, task, token
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
			status, task, token := e.check(az, instance, `{"environment":"PROD","description":"Release 42 to production"}`)
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
			base := "/" + azureProject + "/_apis/distributedtask/hubs/checks/plans/" + azurePlan
			if calls[0].Method != "POST" || calls[0].Path != base+"/logs" || calls[1].Path != base+"/logs/42" ||
				!strings.Contains(calls[1].Body, "Waiting for approval in Slack") || calls[2].Path != base+"/timelines/"+azureTimelne+"/records" {
				t.Fatalf("status log calls %+v", calls)
			}
			e.click(msg, tc.action, tc.user, tc.user)
			got := e.waitTask(task["id"].(string), "delivered", delivered)
			if got["status"] != map[string]string{"approve": "approved", "reject": "rejected"}[tc.action] {
				t.Fatalf("task %v", got)
			}
			done := az.completed()
			if len(done) != 1 {
				t.Fatalf("%d TaskCompleted calls, want 1", len(done))
			}
			ev := done[0]
			want := fmt.Sprintf(`{"name":"TaskCompleted","taskId":%q,"jobId":%q,"result":%q}`, instance, azureJob, tc.result)
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
	done := az.completed()
	if len(done) != 1 || !strings.Contains(done[0].Body, `"result":"failed"`) {
		t.Fatalf("completions %+v", done)
	}
}

func TestAzureDevOpsCallbackRecovers(t *testing.T) {
	t.Parallel()
	e, az := azureEnv(t, "")
	az.failFirst = 2
	e.start()
	_, task, _ := e.check(az, "flaky-check", `{"environment":"PROD"}`)
	e.click(e.messageOf("Azure DevOps task flaky-check"), "approve", "UALICE", "Alice")
	e.waitTask(task["id"].(string), "delivered", delivered)
	if n := len(az.completed()); n != 1 {
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
	az := newFakeAzure(t)
	status, body, _ := e.check(az, "foreign", "")
	if status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body["error"]), "not allowed") {
		t.Fatalf("check to a foreign host answered %d %v", status, body)
	}
	if n := len(az.Calls()); n != 0 {
		t.Fatalf("%d calls to the foreign host", n)
	}
}
