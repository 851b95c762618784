package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/approvalbot/approvalbot/internal/webhooktest"
)

const (
	testWebhookSecret = "whsec_ZTJlLXdlYmhvb2stc2lnbmluZy1zZWNyZXQtMDEyMzQ1Njc4OQ=="
	// testCallbackToken rides in the callback URL's query, as receivers'
	// tokens do; it must reach no log.
	testCallbackToken = "e2e-callback-token-0123456789"
)

// webhookEnv is an end-to-end set-up with a Standard Webhooks receiver on
// loopback (the one allowed host).
func webhookEnv(t *testing.T) (*env, *webhooktest.Receiver) {
	t.Helper()
	r := webhooktest.New(testWebhookSecret)
	t.Cleanup(r.Close)
	e := newEnv(t)
	e.policies = `
  - name: pipelines
    match: {source: webhook}
    channel: CPIPE
    approvers: {users: [UALICE, UBOB]}
    on_expiry: reject
`
	e.extra = fmt.Sprintf("webhook: {signing_secret: %q, allowed_hosts: [\"127.0.0.1\"], timeout: 1s}\n", testWebhookSecret)
	e.tokens = append(e.tokens, testWebhookSecret, testCallbackToken)
	return e, r
}

// submitWebhook posts a task with its callback to /v1/webhook/tasks.
func (e *env) submitWebhook(taskID, callback string) (int, http.Header, map[string]any) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{
		"taskId": taskID, "environment": "PROD", "project": "shop", "release": "2.3",
		"description": "shop 2.3 to PROD", "callbackUrl": callback,
	})
	return e.api(http.MethodPost, "/v1/webhook/tasks", string(body))
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// The receiver verifies every delivery with the specification's
// algorithm, and sees one webhook-id per decision even though it failed
// the first tries.
func TestWebhookTaskEndToEnd(t *testing.T) {
	t.Parallel()
	e, r := webhookEnv(t)
	e.start()
	status, h, task := e.submitWebhook("build-42", r.URL()+"/hook?token="+testCallbackToken)
	if status != http.StatusAccepted || task["id"] != "webhook-build-42" || task["source"] != "webhook" || h.Get("Location") != "/v1/tasks/webhook-build-42" {
		t.Fatalf("intake: %d %v %v", status, h, task)
	}
	if strings.Contains(fmt.Sprint(task), testCallbackToken) {
		t.Fatal("the task JSON shows the callback URL")
	}
	if status, _, again := e.submitWebhook("build-42", r.URL()+"/hook"); status != http.StatusAccepted || again["id"] != task["id"] {
		t.Fatalf("a repeat: %d %v", status, again)
	}
	msg := e.messageOf("Webhook task build-42")
	if msg.Form.Get("channel") != "CPIPE" {
		t.Errorf("posted to %q", msg.Form.Get("channel"))
	}

	r.SetFailFirst(2) // down for the first two tries
	e.click(msg, "approve", "UALICE", "Alice")
	got := e.waitTask("webhook-build-42", "delivered", delivered)
	ds := r.Deliveries()
	if len(ds) != 3 {
		t.Fatalf("%d deliveries, want 3 (two refused, one taken)", len(ds))
	}
	for i, d := range ds {
		if !d.Verified || d.ID != ds[0].ID || d.Query != "token="+testCallbackToken || d.Path != "/hook" {
			t.Fatalf("delivery %d: %+v", i, d)
		}
	}
	if taken := r.Taken(); len(taken) != 1 || taken[0] != ds[0].ID {
		t.Fatalf("taken %v", taken)
	}
	ev, err := ds[2].Event()
	if err != nil || ev.Type != "approval.decided" || ev.Data["id"] != "webhook-build-42" || ev.Data["status"] != "approved" ||
		ev.Data["decidedBy"].(map[string]any)["user"] != "UALICE" {
		t.Fatalf("event %+v, %v", ev, err)
	}
	// The data is the task as the API shows it, field for field.
	if want, have := keysOf(got), keysOf(ev.Data); !slices.Equal(want, have) {
		t.Errorf("data has fields %v, GET /v1/tasks/{id} %v", have, want)
	}
	waitFor(t, "message shows approved and accepted", func() bool {
		text := lastUpdateText(e)
		return strings.Contains(text, "Approved by") && strings.Contains(text, "accepted")
	})
}

func TestWebhookAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		set        func(r *webhooktest.Receiver)
		state      string
		deliveries int
	}{
		{"410 is delivered", func(r *webhooktest.Receiver) {
			r.SetAnswer(func(webhooktest.Delivery) *webhooktest.Answer { return &webhooktest.Answer{Status: http.StatusGone} })
		}, "delivered", 1},
		{"a late answer is retried with the same id", func(r *webhooktest.Receiver) { r.SetLateAnswers(1) }, "delivered", 2},
		{"400 is final", func(r *webhooktest.Receiver) {
			r.SetAnswer(func(webhooktest.Delivery) *webhooktest.Answer {
				return &webhooktest.Answer{Status: http.StatusBadRequest, Body: "unknown build"}
			})
		}, "failed", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, r := webhookEnv(t)
			e.start()
			if status, _, _ := e.submitWebhook("job-1", r.URL()+"/hook"); status != http.StatusAccepted {
				t.Fatalf("intake %d", status)
			}
			msg := e.messageOf("Webhook task job-1")
			tc.set(r)
			e.click(msg, "reject", "UBOB", "Bob")
			got := e.waitTask("webhook-job-1", "delivery "+tc.state, func(task map[string]any) bool { return deliveryState(task) == tc.state })
			ds := r.Deliveries()
			if got["status"] != "rejected" || len(ds) != tc.deliveries {
				t.Fatalf("task %v, %d deliveries, want %d", got["status"], len(ds), tc.deliveries)
			}
			for _, d := range ds {
				if !d.Verified || d.ID != ds[0].ID {
					t.Fatalf("deliveries %+v", ds)
				}
			}
			if tc.state == "failed" {
				waitFor(t, "message shows the failure", func() bool { return strings.Contains(lastUpdateText(e), "unknown build") })
			}
		})
	}
}

// A callbackUrl on a host that is not allowed, or over plain http to a
// host that is not loopback, is refused: 400, nothing recorded, and no
// request reaches it.
func TestWebhookRefusesCallbackElsewhere(t *testing.T) {
	t.Parallel()
	e, r := webhookEnv(t)
	e.start()
	other := webhooktest.New(testWebhookSecret) // localhost is not in allowed_hosts
	t.Cleanup(other.Close)
	for i, callback := range []string{
		strings.Replace(other.URL(), "127.0.0.1", "localhost", 1) + "/hook",
		"https://evil.example.com/hook",
		"http://jenkins.example.com/hook",
		"ftp://127.0.0.1/hook",
	} {
		id := fmt.Sprintf("refused-%d", i)
		status, _, answer := e.submitWebhook(id, callback)
		if status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(answer["error"]), "callbackUrl") {
			t.Errorf("%s: answered %d %v", callback, status, answer)
		}
		if status, _ := e.task("webhook-" + id); status != http.StatusNotFound {
			t.Errorf("%s: the refused task was recorded (%d)", callback, status)
		}
	}
	if n := len(other.Deliveries()) + len(r.Deliveries()); n != 0 {
		t.Fatalf("%d requests reached a receiver", n)
	}
	if n := len(e.slack.CallsTo("chat.postMessage")); n != 0 {
		t.Fatalf("%d messages posted for refused tasks", n)
	}
}
