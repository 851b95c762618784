package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/approvalbot/approvalbot/approvals"
)

// fakeTasks is a hand-written fake of the domain with func fields.
type fakeTasks struct {
	submit  func(ctx context.Context, sub approvals.Submission) (*approvals.Task, bool, error)
	get     func(ctx context.Context, id string) (*approvals.Task, error)
	receipt func(ctx context.Context, id string) (approvals.Receipt, error)
}

func (f *fakeTasks) Submit(ctx context.Context, sub approvals.Submission) (*approvals.Task, bool, error) {
	return f.submit(ctx, sub)
}

func (f *fakeTasks) Lookup(ctx context.Context, id string) (*approvals.Task, error) {
	return f.get(ctx, id)
}

// Receipt has no receipt for any task unless the test gives one.
func (f *fakeTasks) Receipt(ctx context.Context, id string) (approvals.Receipt, error) {
	if f.receipt == nil {
		return approvals.Receipt{}, approvals.ErrNoReceipt
	}
	return f.receipt(ctx, id)
}

const testKey = "test-key-0123456789abcdef"

func pendingTask(id string) *approvals.Task {
	return &approvals.Task{
		ID: id, Source: "acme", TaskID: strings.TrimPrefix(id, "acme-"),
		Status: approvals.StatusPending, RequiredApprovals: 1,
		TokenHash: []byte("secret-hash-must-not-show"), Nonce: []byte("nonce-must-not-show"),
		Secret: []byte("secret-must-not-show"),
		Outbox: []approvals.Job{{Seq: 1, Kind: approvals.JobPost}},
	}
}

// parseJSONTask is a minimal parser: the real ones live in the adapters.
func parseJSONTask(_ func(string) string, body []byte) (approvals.Submission, error) {
	var v struct {
		TaskID string `json:"taskId"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return approvals.Submission{}, approvals.Invalidf("body is not valid JSON")
	}
	if v.TaskID == "" {
		return approvals.Submission{}, approvals.Invalidf("taskId is required")
	}
	return approvals.Submission{Source: "acme", TaskID: v.TaskID}, nil
}

func newTestServer(t *testing.T, tasks Tasks, mutate func(*Config)) *httptest.Server {
	t.Helper()
	cfg := Config{
		MaxBodyBytes: 1024,
		Tasks:        tasks,
		APIKeys: func() []APIKey {
			return []APIKey{{Name: "deploy-tool", Key: testKey}, {Name: "old", Key: "old-key-0123456789abcdef"}}
		},
		Intakes: []approvals.Intake{{Path: "tasks", Parse: parseJSONTask}},
		Logger:  zerolog.Nop(),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, method, url string, header map[string]string, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if len(raw) > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("answer is not JSON: %q", raw)
		}
	}
	return res, out
}

func TestIntakeAndStatusCodes(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	stored := map[string]*approvals.Task{}
	tasks := &fakeTasks{
		submit: func(_ context.Context, sub approvals.Submission) (*approvals.Task, bool, error) {
			mu.Lock()
			defer mu.Unlock()
			id := approvals.TaskRecordID(sub.Source, sub.TaskID)
			if t, ok := stored[id]; ok {
				return t, false, nil
			}
			if sub.TaskID == "down" {
				return nil, false, fmt.Errorf("put: %w", approvals.ErrUnavailable)
			}
			if sub.TaskID == "boom" {
				return nil, false, errors.New("disk on fire at /secret/path")
			}
			t := pendingTask(id)
			stored[id] = t
			return t, true, nil
		},
		get: func(_ context.Context, id string) (*approvals.Task, error) {
			mu.Lock()
			defer mu.Unlock()
			if t, ok := stored[id]; ok {
				return t, nil
			}
			return nil, approvals.ErrNotFound
		},
	}
	srv := newTestServer(t, tasks, nil)
	mu.Lock()
	final := pendingTask("acme-done")
	final.Status = approvals.StatusApproved
	stored[final.ID] = final
	mu.Unlock()

	jsonKey := map[string]string{"Content-Type": "application/json", "X-API-Key": testKey}
	cases := []struct {
		name        string
		method      string
		path        string
		header      map[string]string
		body        string
		status      int
		errContains string
		location    string
		retryAfter  string
	}{
		{"created", "POST", "/v1/tasks", jsonKey, `{"taskId":"1"}`, 202, "", "/v1/tasks/acme-1", ""},
		{"repeat answers the same task", "POST", "/v1/tasks", jsonKey, `{"taskId":"1"}`, 202, "", "/v1/tasks/acme-1", "30"},
		{"repeat of a final task answers 200", "POST", "/v1/tasks", jsonKey, `{"taskId":"done"}`, 200, "", "/v1/tasks/acme-done", ""},
		{"bearer key", "POST", "/v1/tasks", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + testKey}, `{"taskId":"2"}`, 202, "", "/v1/tasks/acme-2", ""},
		{"second key of a rotation", "POST", "/v1/tasks", map[string]string{"Content-Type": "application/json; charset=utf-8", "X-API-Key": "old-key-0123456789abcdef"}, `{"taskId":"3"}`, 202, "", "", ""},
		{"missing key", "POST", "/v1/tasks", map[string]string{"Content-Type": "application/json"}, `{"taskId":"4"}`, 401, "API key", "", ""},
		{"wrong key", "POST", "/v1/tasks", map[string]string{"Content-Type": "application/json", "X-API-Key": "nope-nope-nope-nope"}, `{"taskId":"4"}`, 401, "API key", "", ""},
		{"wrong scheme", "POST", "/v1/tasks", map[string]string{"Content-Type": "application/json", "Authorization": "Basic " + testKey}, `{"taskId":"4"}`, 401, "API key", "", ""},
		{"wrong content type", "POST", "/v1/tasks", map[string]string{"Content-Type": "text/plain", "X-API-Key": testKey}, `{"taskId":"4"}`, 415, "application/json", "", ""},
		{"no content type", "POST", "/v1/tasks", map[string]string{"X-API-Key": testKey}, `{"taskId":"4"}`, 415, "application/json", "", ""},
		{"bad JSON", "POST", "/v1/tasks", jsonKey, `{"taskId":`, 400, "JSON", "", ""},
		{"missing task id", "POST", "/v1/tasks", jsonKey, `{"description":"x"}`, 400, "taskId is required", "", ""},
		{"body too large", "POST", "/v1/tasks", jsonKey, `{"taskId":"5","description":"` + strings.Repeat("x", 2000) + `"}`, 413, "larger than 1024", "", ""},
		{"store down", "POST", "/v1/tasks", jsonKey, `{"taskId":"down"}`, 503, "store unavailable", "", "5"},
		{"internal error hides details", "POST", "/v1/tasks", jsonKey, `{"taskId":"boom"}`, 500, "internal error", "", ""},
		{"status pending", "GET", "/v1/tasks/acme-1", map[string]string{"X-API-Key": testKey}, "", 202, "", "/v1/tasks/acme-1", "30"},
		{"status final", "GET", "/v1/tasks/acme-done", map[string]string{"X-API-Key": testKey}, "", 200, "", "/v1/tasks/acme-done", ""},
		{"status unknown", "GET", "/v1/tasks/nope", map[string]string{"X-API-Key": testKey}, "", 404, "not found", "", ""},
		{"status without key", "GET", "/v1/tasks/acme-1", nil, "", 401, "API key", "", ""},
		{"method not allowed", "DELETE", "/v1/tasks/acme-1", map[string]string{"X-API-Key": testKey}, "", 405, "method not allowed", "", ""},
		{"GET on intake", "GET", "/v1/tasks", map[string]string{"X-API-Key": testKey}, "", 405, "method not allowed", "", ""},
		{"unknown path", "GET", "/v2/nothing", nil, "", 404, "not found", "", ""},
		{"healthz", "GET", "/healthz", nil, "", 200, "", "", ""},
		{"readyz", "GET", "/readyz", nil, "", 200, "", "", ""},
	}
	// Cases run in order: the repeat depends on the first.
	for _, tc := range cases {
		res, body := do(t, tc.method, srv.URL+tc.path, tc.header, tc.body)
		if res.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d (%v)", tc.name, res.StatusCode, tc.status, body)
			continue
		}
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", tc.name, ct)
		}
		if tc.errContains != "" {
			msg, _ := body["error"].(string)
			if !strings.Contains(msg, tc.errContains) {
				t.Errorf("%s: error %q does not contain %q", tc.name, msg, tc.errContains)
			}
			if strings.Contains(msg, "/secret/path") {
				t.Errorf("%s: internal detail leaked: %q", tc.name, msg)
			}
		}
		if tc.location != "" && res.Header.Get("Location") != tc.location {
			t.Errorf("%s: Location %q, want %q", tc.name, res.Header.Get("Location"), tc.location)
		}
		if tc.retryAfter != "" && res.Header.Get("Retry-After") != tc.retryAfter {
			t.Errorf("%s: Retry-After %q, want %q", tc.name, res.Header.Get("Retry-After"), tc.retryAfter)
		}
		if res.StatusCode == 405 && res.Header.Get("Allow") == "" {
			t.Errorf("%s: 405 without Allow", tc.name)
		}
	}
}

func TestTaskViewHidesSecrets(t *testing.T) {
	t.Parallel()
	task := pendingTask("acme-7")
	task.Description = "deploy"
	srv := newTestServer(t, &fakeTasks{get: func(context.Context, string) (*approvals.Task, error) { return task, nil }}, nil)
	req, _ := http.NewRequest("GET", srv.URL+"/v1/tasks/acme-7", nil)
	req.Header.Set("X-API-Key", testKey)
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, secret := range []string{"must-not-show", "tokenHash", "nonce", "outbox", "lease", "secret"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("task JSON contains %q: %s", secret, raw)
		}
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"id", "source", "taskId", "description", "status", "approvals", "requiredApprovals", "decidedBy", "decidedAt", "delivery", "createdAt", "expiresAt"} {
		if _, ok := v[field]; !ok {
			t.Errorf("task JSON lacks %q: %s", field, raw)
		}
	}
}

func TestReadyzReportsStore(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, &fakeTasks{}, func(c *Config) {
		c.Ready = func(context.Context) error { return approvals.ErrUnavailable }
	})
	res, body := do(t, "GET", srv.URL+"/readyz", nil, "")
	if res.StatusCode != 503 || body["status"] != "unavailable" {
		t.Fatalf("readyz: %d %v", res.StatusCode, body)
	}
}

// TestLoadShedding fills every slot and the queue, then checks that the next
// request is refused with 429 and Retry-After while health stays answered.
func TestLoadShedding(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	tasks := &fakeTasks{get: func(ctx context.Context, id string) (*approvals.Task, error) {
		<-release
		return pendingTask(id), nil
	}}
	s, err := New(Config{
		Tasks:                  tasks,
		APIKeys:                func() []APIKey { return []APIKey{{Name: "k", Key: testKey}} },
		Logger:                 zerolog.Nop(),
		MaxConcurrentRequests:  1,
		MaxOutstandingRequests: 2,
		Webhooks: map[string]http.Handler{"POST /slack/interactions": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	var wg sync.WaitGroup
	statuses := make(chan int, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, _ := do(t, "GET", srv.URL+"/v1/tasks/acme-1", map[string]string{"X-API-Key": testKey}, "")
			statuses <- res.StatusCode
		}()
	}
	// One runs, one waits: the server is full.
	for deadline := time.Now().Add(5 * time.Second); s.api.outstanding.Load() < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("requests did not arrive")
		}
	}
	res, _ := do(t, "GET", srv.URL+"/v1/tasks/acme-1", map[string]string{"X-API-Key": testKey}, "")
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Errorf("over capacity: %d, Retry-After %q; want 429 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if res, _ := do(t, "GET", srv.URL+"/healthz", nil, ""); res.StatusCode != 200 {
		t.Errorf("healthz shed: %d", res.StatusCode)
	}
	// A click has capacity of its own: the full API does not shed it.
	if res, _ := do(t, "POST", srv.URL+"/slack/interactions", nil, ""); res.StatusCode != 200 {
		t.Errorf("a webhook was shed while the API was full: %d", res.StatusCode)
	}
	close(release)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != 202 {
			t.Errorf("queued request answered %d", s)
		}
	}
}

func TestPanicIsRecovered(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, &fakeTasks{get: func(context.Context, string) (*approvals.Task, error) { panic("bug") }}, nil)
	res, body := do(t, "GET", srv.URL+"/v1/tasks/x", map[string]string{"X-API-Key": testKey}, "")
	if res.StatusCode != 500 || body["error"] != "internal error" {
		t.Fatalf("panic answer: %d %v", res.StatusCode, body)
	}
}

// TestGracefulShutdown: once the context ends the server takes no new
// connections, lets the request under way finish, and then returns.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	s, err := New(Config{
		Tasks: &fakeTasks{get: func(ctx context.Context, id string) (*approvals.Task, error) {
			close(entered)
			<-release
			return pendingTask(id), nil
		}},
		APIKeys:         func() []APIKey { return []APIKey{{Name: "k", Key: testKey}} },
		Logger:          zerolog.Nop(),
		ShutdownTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	answered := make(chan int, 1)
	go func() {
		res, _ := do(t, "GET", "http://"+ln.Addr().String()+"/v1/tasks/acme-1", map[string]string{"X-API-Key": testKey}, "")
		answered <- res.StatusCode
	}()
	<-entered
	cancel()
	// New connections are refused while the one under way goes on.
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", ln.Addr().String(), 100*time.Millisecond)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) before the request under way finished", err)
	default:
	}
	close(release)
	if status := <-answered; status != http.StatusAccepted {
		t.Fatalf("the request under way was answered %d", status)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// A signed intake is served at its own path without the API key; its
// parser proves the sender, and a request with no task is answered 200.
func TestSignedIntake(t *testing.T) {
	t.Parallel()
	signed := approvals.Intake{Path: "/hooks/acme", Signed: true, Parse: func(header func(string) string, body []byte) (approvals.Submission, error) {
		switch {
		case header("X-Signature") != "good":
			return approvals.Submission{}, fmt.Errorf("acme: %w", approvals.ErrUnauthenticated)
		case header("X-Event") == "ping":
			return approvals.Submission{}, fmt.Errorf("acme: ping: %w", approvals.ErrNoTask)
		}
		return approvals.Submission{Source: "acme", TaskID: "s1"}, nil
	}}
	tasks := &fakeTasks{submit: func(_ context.Context, sub approvals.Submission) (*approvals.Task, bool, error) {
		return pendingTask(approvals.TaskRecordID(sub.Source, sub.TaskID)), true, nil
	}}
	srv := newTestServer(t, tasks, func(c *Config) { c.Intakes = append(c.Intakes, signed) })
	for _, tc := range []struct {
		name   string
		header map[string]string
		status int
	}{
		{"no signature", map[string]string{"Content-Type": "application/json"}, http.StatusUnauthorized},
		{"bad signature", map[string]string{"Content-Type": "application/json", "X-Signature": "bad"}, http.StatusUnauthorized},
		{"ping", map[string]string{"Content-Type": "application/json", "X-Signature": "good", "X-Event": "ping"}, http.StatusOK},
		{"task, no API key needed", map[string]string{"Content-Type": "application/json", "X-Signature": "good"}, http.StatusAccepted},
	} {
		res, body := do(t, "POST", srv.URL+"/hooks/acme", tc.header, `{}`)
		if res.StatusCode != tc.status {
			t.Errorf("%s: %d %v, want %d", tc.name, res.StatusCode, body, tc.status)
		}
	}
	if res, _ := do(t, "POST", srv.URL+"/v1/hooks/acme", map[string]string{"X-API-Key": testKey}, `{}`); res.StatusCode != http.StatusNotFound {
		t.Errorf("the signed intake is also under /v1: %d", res.StatusCode)
	}
}

// Busy says requests are queueing up once more of them are in flight than
// the process has cores, and not before or after.
func TestBusyWhileRequestsQueueUp(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	tasks := &fakeTasks{get: func(ctx context.Context, id string) (*approvals.Task, error) {
		<-release
		return pendingTask(id), nil
	}}
	s, err := New(Config{Tasks: tasks, APIKeys: func() []APIKey { return []APIKey{{Name: "k", Key: testKey}} }, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	if s.Busy() {
		t.Fatal("busy with nothing in flight")
	}
	n := runtime.GOMAXPROCS(0) + 1
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { _, _ = do(t, "GET", srv.URL+"/v1/tasks/acme-1", map[string]string{"X-API-Key": testKey}, "") })
	}
	for deadline := time.Now().Add(5 * time.Second); s.api.outstanding.Load() < int64(n); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("requests did not arrive")
		}
	}
	if !s.Busy() {
		t.Errorf("not busy with %d requests in flight on %d cores", n, n-1)
	}
	close(release)
	wg.Wait()
	for deadline := time.Now().Add(5 * time.Second); s.Busy(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("still busy after the requests were answered")
		}
	}
}
