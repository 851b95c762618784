package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/webhooktest"
)

// decidedTask is an approved task whose callback URL c sealed.
func decidedTask(t *testing.T, c *Client, callback string) *approvals.Task {
	t.Helper()
	sealed, err := c.sealer.seal(callback, "webhook-build-42")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 22, 14, 2, 0, 0, time.UTC)
	return &approvals.Task{
		ID: "webhook-build-42", Source: Source, TaskID: "build-42",
		Context:           approvals.Context{Environment: "PROD", Project: "shop"},
		Status:            approvals.StatusApproved,
		Approvals:         []approvals.Vote{{Person: approvals.Person{ID: "U1", Name: "alice"}, At: at}},
		RequiredApprovals: 1,
		DecidedBy:         &approvals.Person{ID: "U1", Name: "alice"},
		DecidedAt:         &at,
		Delivery:          approvals.Delivery{State: approvals.DeliveryPending},
		CreatedAt:         at.Add(-time.Hour),
		ExpiresAt:         at.Add(time.Hour),
		TokenHash:         []byte("hash-never-sent"),
		Nonce:             []byte("nonce-never-sent"),
		Secret:            sealed,
		Extra:             map[string]string{ExtraCallbackHost: callbackHost(callback)},
	}
}

func receiverClient(t *testing.T) (*Client, *webhooktest.Receiver) {
	t.Helper()
	r := webhooktest.New(testSecret)
	t.Cleanup(r.Close)
	c, err := New(Config{SigningSecret: testSecret, AllowedHosts: []string{"127.0.0.1"}, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c, r
}

func TestDecideSignsTheDecision(t *testing.T) {
	t.Parallel()
	c, r := receiverClient(t)
	task := decidedTask(t, c, r.URL()+"/hook?token=s3cret")
	if err := c.Decide(context.Background(), task, approvals.ActionApprove, "notes", false); err != nil {
		t.Fatal(err)
	}
	ds := r.Deliveries()
	if len(ds) != 1 || !ds[0].Verified || ds[0].Code != http.StatusOK || ds[0].ID != MessageID(task, approvals.ActionApprove) ||
		ds[0].Query != "token=s3cret" || ds[0].ContentType != "application/json" {
		t.Fatalf("deliveries %+v", ds)
	}
	ev, err := ds[0].Event()
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != "approval.decided" || ev.Timestamp != "2026-11-22T14:02:00Z" || ev.Data["id"] != "webhook-build-42" ||
		ev.Data["status"] != "approved" || ev.Data["taskId"] != "build-42" || ev.Data["environment"] != "PROD" {
		t.Fatalf("event %+v", ev)
	}
	for _, hidden := range []string{"tokenHash", "nonce", "extra", "outbox", "secret", "callbackUrl", "callbackHost"} {
		if _, ok := ev.Data[hidden]; ok {
			t.Errorf("the data shows %s", hidden)
		}
	}
	for _, never := range []string{"hash-never-sent", "nonce-never-sent", "bm9uY2U", "s3cret"} {
		if strings.Contains(ds[0].Body, never) {
			t.Errorf("the body carries %q", never)
		}
	}

	// Another attempt of the same decision carries the same id; the
	// receiver takes it once.
	if err := c.Decide(context.Background(), task, approvals.ActionApprove, "notes", false); err != nil {
		t.Fatal(err)
	}
	if taken := r.Taken(); len(taken) != 1 || len(r.Deliveries()) != 2 || r.Deliveries()[1].ID != ds[0].ID {
		t.Errorf("taken %v of %d deliveries", taken, len(r.Deliveries()))
	}
}

func TestDecideAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		answer     *webhooktest.Answer
		fault      func(r *webhooktest.Receiver)
		delivered  bool
		permanent  bool
		retryAfter time.Duration
		want       string
	}{
		{name: "204", answer: &webhooktest.Answer{Status: 204}, delivered: true},
		{name: "409: decided already", answer: &webhooktest.Answer{Status: 409}, delivered: true},
		{name: "410: gone", answer: &webhooktest.Answer{Status: 410}, delivered: true},
		{name: "400", answer: &webhooktest.Answer{Status: 400, Body: "no such build (token=s3cret)"}, permanent: true, want: "answered 400 Bad Request: no such build"},
		{name: "401", answer: &webhooktest.Answer{Status: 401}, permanent: true, want: "webhook.signing_secret"},
		{name: "302", answer: &webhooktest.Answer{Status: 302, Header: map[string]string{"Location": "https://elsewhere/"}}, permanent: true, want: "redirect"},
		{name: "500", answer: &webhooktest.Answer{Status: 500}, want: "answered 500"},
		{name: "408", answer: &webhooktest.Answer{Status: 408}, want: "answered 408"},
		{name: "429 with a wait", answer: &webhooktest.Answer{Status: 429, Header: map[string]string{"Retry-After": "7"}}, retryAfter: 7 * time.Second, want: "answered 429"},
		{name: "down", fault: func(r *webhooktest.Receiver) { r.SetFailFirst(1) }, want: "answered 503"},
		{name: "late", fault: func(r *webhooktest.Receiver) { r.SetLateAnswers(1) }, want: "did not answer within"},
		{name: "dropped", fault: func(r *webhooktest.Receiver) { r.SetDroppedAnswers(1) }, want: "closed the connection"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, r := receiverClient(t)
			if tc.answer != nil {
				r.SetAnswer(func(webhooktest.Delivery) *webhooktest.Answer { return tc.answer })
			}
			if tc.fault != nil {
				tc.fault(r)
			}
			err := c.Decide(context.Background(), decidedTask(t, c, r.URL()+"/hook?token=s3cret"), approvals.ActionReject, "", false)
			if tc.delivered {
				if err != nil {
					t.Fatalf("Decide = %v, want delivered", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decide = %v, want an error saying %q", err, tc.want)
			}
			if approvals.IsPermanent(err) != tc.permanent {
				t.Errorf("permanent = %v, want %v", !tc.permanent, tc.permanent)
			}
			if after, _ := approvals.RetryAfter(err); after != tc.retryAfter {
				t.Errorf("retry after %v, want %v", after, tc.retryAfter)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows the callback's token: %v", err)
			}
			if n := len(r.Deliveries()); n != 1 {
				t.Errorf("%d requests, want exactly 1 (no retry here)", n)
			}
		})
	}
}

func TestDecideRechecksTheHost(t *testing.T) {
	t.Parallel()
	c, r := receiverClient(t)
	narrowed, err := New(Config{SigningSecret: testSecret, AllowedHosts: []string{"jenkins.internal"}})
	if err != nil {
		t.Fatal(err)
	}
	err = narrowed.Decide(context.Background(), decidedTask(t, c, r.URL()+"/hook"), approvals.ActionApprove, "", false)
	if !approvals.IsPermanent(err) || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("Decide = %v", err)
	}
	if n := len(r.Deliveries()); n != 0 {
		t.Fatalf("%d requests reached a host no longer allowed", n)
	}
}

func TestViewHasTheAPIFields(t *testing.T) {
	t.Parallel()
	raw, err := json.Marshal(viewOf(&approvals.Task{ID: "webhook-1"}))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	_ = json.Unmarshal(raw, &v)
	for _, key := range []string{"id", "source", "taskId", "status", "approvals", "requiredApprovals", "decidedBy", "decidedAt", "delivery", "createdAt", "expiresAt", "audit"} {
		if _, ok := v[key]; !ok {
			t.Errorf("the view lacks %s", key)
		}
	}
}

func TestCallbackIsSealed(t *testing.T) {
	t.Parallel()
	c, r := receiverClient(t)
	task := decidedTask(t, c, r.URL()+"/hook?token=s3cret")
	if strings.Contains(string(task.Secret), "s3cret") || strings.Contains(string(task.Secret), "/hook") {
		t.Fatal("the sealed callback is readable")
	}
	other, err := New(Config{SigningSecret: "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY", AllowedHosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]func() (*Client, *approvals.Task){
		"another signing secret": func() (*Client, *approvals.Task) { return other, task },
		"another task's seal": func() (*Client, *approvals.Task) {
			moved := *task
			moved.ID = "webhook-build-43"
			return c, &moved
		},
		"no seal": func() (*Client, *approvals.Task) {
			bare := *task
			bare.Secret = nil
			return c, &bare
		},
	} {
		cl, tk := tt()
		err := cl.Decide(context.Background(), tk, approvals.ActionApprove, "", false)
		if !approvals.IsPermanent(err) {
			t.Errorf("%s: Decide = %v, want a permanent failure", name, err)
		}
	}
	if n := len(r.Deliveries()); n != 0 {
		t.Fatalf("%d deliveries of callbacks that did not open", n)
	}
}
