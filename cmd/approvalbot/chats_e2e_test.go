package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/slacktest"
	"github.com/approvalbot/approvalbot/store/bolt"
	"github.com/approvalbot/approvalbot/tokens"
)

// echoChat is a second chat for the tests, registered beside Slack as any
// chat is: its notifier sends each post, update and notice to an httptest
// server that records them, and its clicks come in at POST /echo/click.
// Nothing in the core or in Slack's adapter knows it.
type echoChat struct {
	srv *httptest.Server

	mu    sync.Mutex
	calls []echoCall
}

// echoCall is one request the echo server received.
type echoCall struct {
	Method, Path string
	Task         string `json:"task"`
	Channel      string `json:"channel"`
	Token        string `json:"token"`
	Status       string `json:"status"`
	Kind         string `json:"kind"`
}

func newEchoChat(t *testing.T) *echoChat {
	c := &echoChat{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var call echoCall
		if err := json.NewDecoder(r.Body).Decode(&call); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		call.Method, call.Path = r.Method, r.URL.Path
		c.mu.Lock()
		c.calls = append(c.calls, call)
		n := len(c.calls)
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"E%d"}`, n)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *echoChat) callsTo(method, prefix string) []echoCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []echoCall
	for _, call := range c.calls {
		if call.Method == method && strings.HasPrefix(call.Path, prefix) {
			out = append(out, call)
		}
	}
	return out
}

func (c *echoChat) send(ctx context.Context, method, path string, call echoCall) (string, error) {
	body, _ := json.Marshal(call)
	req, err := http.NewRequestWithContext(ctx, method, c.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	res, err := c.srv.Client().Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var out struct{ ID string }
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("echo %s %s: %d %v", method, path, res.StatusCode, err)
	}
	return out.ID, nil
}

// echoNotifier is the echo chat's approvals.Notifier.
type echoNotifier struct{ c *echoChat }

func (n echoNotifier) Post(ctx context.Context, t *approvals.Task, channel, token string) (approvals.MessageRef, error) {
	if channel == "" {
		channel = "EDEFAULT"
	}
	id, err := n.c.send(ctx, http.MethodPost, "/post", echoCall{Task: t.ID, Channel: channel, Token: token, Status: string(t.Status)})
	return approvals.MessageRef{Chat: "echo", Channel: channel, TS: id}, err
}

func (n echoNotifier) Update(ctx context.Context, t *approvals.Task, refs []approvals.MessageRef, token string) error {
	for _, ref := range refs {
		if _, err := n.c.send(ctx, http.MethodPut, "/messages/"+ref.TS, echoCall{Task: t.ID, Channel: ref.Channel, Token: token, Status: string(t.Status)}); err != nil {
			return err
		}
	}
	return nil
}

func (n echoNotifier) Notice(ctx context.Context, t *approvals.Task, ref approvals.MessageRef, kind approvals.NoticeKind) error {
	_, err := n.c.send(ctx, http.MethodPost, "/messages/"+ref.TS+"/replies", echoCall{Task: t.ID, Kind: string(kind)})
	return err
}

func (n echoNotifier) Direct(context.Context, *approvals.Task, []approvals.MessageRef, string) ([]approvals.MessageRef, error) {
	return nil, nil
}

// adapter registers the echo chat, posting every task, with its click
// route.
func (c *echoChat) adapter() chatAdapter {
	return chatAdapter{
		chat: approvals.Chat{Name: "echo", DisplayName: "Echo Chat", Notifier: echoNotifier{c}, PostsByDefault: true},
		routes: func(svc *approvals.Service) map[string]http.Handler {
			return map[string]http.Handler{"POST /echo/click": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var click struct{ Token, Action, User, Name, Email string }
				if err := json.NewDecoder(r.Body).Decode(&click); err != nil {
					http.Error(w, "bad body", http.StatusBadRequest)
					return
				}
				_, err := svc.Decide(r.Context(), approvals.DecideRequest{Token: click.Token, Action: approvals.Action(click.Action),
					User: approvals.Person{ID: click.User, Name: click.Name, Email: click.Email, Chat: "echo"}})
				if err != nil {
					w.WriteHeader(approvals.KindOf(err).HTTPStatus)
					fmt.Fprint(w, approvals.Reply(err, "", "Echo Chat"))
				}
			})}
		},
	}
}

// click decides in the echo chat as the person with that email.
func (e *env) echoClick(token, action, user, email string) (int, string) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"token": token, "action": action, "user": user, "name": user, "email": email})
	res, err := http.Post(e.url+"/echo/click", "application/json", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	buf := new(bytes.Buffer)
	_, _ = buf.ReadFrom(res.Body)
	return res.StatusCode, buf.String()
}

// A second chat registered beside Slack gets the post, every update and
// the notices of the task; a person who votes in both, known by one
// email, counts once; the decision reaches FlexDeploy once.
func TestSecondChatBesideSlack(t *testing.T) {
	t.Parallel()
	echo := newEchoChat(t)
	e := newEnv(t)
	e.chats = []chatAdapter{echo.adapter()}
	e.slack.Emails["alice@example.com"] = "UALICE"
	e.slack.Emails["bob@example.com"] = "UBOB"
	e.policies = `
  - name: production
    match: {environment: "PROD*"}
    channel: CPROD
    approvers: {users: [UALICE, UBOB], emails: [alice@example.com, bob@example.com]}
    required_approvals: 2
`
	e.start()
	id := e.submit(`{"taskid":"8910","description":"v2.4 to PROD","environment":"PROD","requestedBy":"dev@example.com"}`)
	msg := e.message("8910")
	var post echoCall
	waitFor(t, "the post in the echo chat", func() bool {
		posts := echo.callsTo(http.MethodPost, "/post")
		if len(posts) == 1 {
			post = posts[0]
		}
		return len(posts) == 1
	})
	if post.Task != id || post.Channel != "EDEFAULT" || post.Token == "" || post.Token != msg.Buttons()[0].Value {
		t.Fatalf("echo post %+v; want the task in the default channel with the token Slack's buttons carry", post)
	}
	// The round that posted records both messages in one write.
	e.waitTask(id, "both messages recorded", func(task map[string]any) bool {
		got := fmt.Sprint(task["messages"])
		return strings.Contains(got, "chat:echo") && strings.Contains(got, "chat:slack")
	})

	// Alice approves in the echo chat, then again in Slack: once.
	if status, body := e.echoClick(post.Token, "approve", "e-alice", "Alice@Example.com"); status != http.StatusOK {
		t.Fatalf("echo click: %d %s", status, body)
	}
	e.click(msg, "approve", "UALICE", "alice")
	waitFor(t, "the second vote refused", func() bool {
		_, task := e.task(id)
		return strings.Contains(fmt.Sprint(task["audit"]), "already voted")
	})
	if _, task := e.task(id); task["status"] != "pending" || len(task["approvals"].([]any)) != 1 {
		t.Fatalf("after Alice voted twice: %v %v; want pending with one approval", task["status"], task["approvals"])
	}
	waitFor(t, "the echo message shows the vote", func() bool { return len(echo.callsTo(http.MethodPut, "/messages/E1")) > 0 })

	// Bob approves in Slack: the second person decides.
	e.click(msg, "approve", "UBOB", "bob")
	task := e.waitTask(id, "delivered", delivered)
	if task["status"] != "approved" {
		t.Fatalf("status %v", task["status"])
	}
	decisions := e.fd.Decisions()
	if len(decisions) != 1 {
		t.Fatalf("%d FlexDeploy decisions, want 1", len(decisions))
	}
	if notes := decisions[0].Notes(); !strings.HasPrefix(notes, "Approved in Slack by e-alice (alice@example.com) and bob (UBOB) at 20") {
		t.Errorf("notes %q", notes)
	}
	waitFor(t, "both messages final", func() bool {
		ups := echo.callsTo(http.MethodPut, "/messages/E1")
		slackUps := e.slack.CallsTo("chat.update")
		return len(ups) > 0 && ups[len(ups)-1].Status == "approved" && ups[len(ups)-1].Token == "" &&
			len(slackUps) > 0 && len(slackUps[len(slackUps)-1].Buttons()) == 0
	})
}

// Reminders reach every chat's thread, each once.
func TestSecondChatGetsNotices(t *testing.T) {
	t.Parallel()
	echo := newEchoChat(t)
	e := newEnv(t)
	e.chats = []chatAdapter{echo.adapter()}
	e.policies = `
  - name: production
    match: {environment: "PROD*"}
    channel: CPROD
    approvers: {users: [UALICE]}
    ttl: 3s
    remind_before: 2s
`
	e.start()
	e.submit(`{"taskid":"8911","environment":"PROD"}`)
	e.message("8911")
	waitFor(t, "the reminder in both chats", func() bool {
		return len(echo.callsTo(http.MethodPost, "/messages/E1/replies")) == 1 && len(threadReplies(e)) == 1
	})
	time.Sleep(200 * time.Millisecond)
	if n := len(echo.callsTo(http.MethodPost, "/messages/E1/replies")); n != 1 {
		t.Errorf("%d reminders in the echo chat, want 1", n)
	}
}

// threadReplies are the bot's posts in a message's thread in Slack.
func threadReplies(e *env) []string {
	var out []string
	for _, c := range e.slack.CallsTo("chat.postMessage") {
		if c.Form.Get("thread_ts") != "" {
			out = append(out, c.Text())
		}
	}
	return out
}

// A store written before chats were registered (testdata/legacy-v0.db: a
// task posted to Slack channel CPROD with a direct-message copy to UBOB,
// approved once by UALICE, made by the release before) keeps working: the
// vote recorded by Slack id still counts as Alice's, and the decision
// updates the message and the copy the old release posted.
func TestStoreWrittenBeforeChats(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	raw, err := os.ReadFile("testdata/legacy-v0.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.dir, "legacy.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	task, err := st.Get(context.Background(), "flexdeploy-7001")
	if err != nil {
		t.Fatal(err)
	}
	if len(task.Messages) != 2 || task.Messages[0].TS != "1700000000.000100" || task.Messages[1].User != "UBOB" || task.Approvals[0].ID != "UALICE" {
		t.Fatalf("legacy task read as messages %+v, approvals %+v", task.Messages, task.Approvals)
	}
	issuer, err := tokens.NewIssuer([]tokens.Key{{ID: "k1", Secret: []byte(testSigningKey)}})
	if err != nil {
		t.Fatal(err)
	}
	token, err := issuer.Mint(task)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	e.store = fmt.Sprintf("{driver: bolt, bolt: {path: %q}}", path)
	e.policies = `
  - name: production
    match: {environment: "PROD*"}
    channel: CPROD
    approvers: {users: [UALICE, UBOB, UCAROL]}
    required_approvals: 2
    notify: {dm: true}
`
	e.start()
	_, view := e.task(task.ID)
	if got := fmt.Sprint(view["message"], view["messages"]); !strings.Contains(got, "ts:1700000000.000100") || !strings.Contains(got, "chat:slack") || !strings.Contains(got, "user:UBOB") {
		t.Errorf("the API shows message %v, messages %v", view["message"], view["messages"])
	}
	click := func(user string) {
		c := slacktest.Click{ActionID: "approve", Value: token, UserID: user, UserName: user, Channel: "CPROD", MessageTS: "1700000000.000100", TriggerID: "trigger-" + user}
		req, err := slacktest.InteractionRequest(e.url+"/slack/interactions", testSigningSecret, time.Now(), c.Payload())
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	click("UALICE")
	waitFor(t, "Alice's second vote refused", func() bool {
		_, view := e.task(task.ID)
		return strings.Contains(fmt.Sprint(view["audit"]), "already voted")
	})
	click("UBOB")
	e.waitTask(task.ID, "delivered", delivered)
	waitFor(t, "the old message and its copy updated", func() bool {
		updated := map[string]bool{}
		for _, c := range e.slack.CallsTo("chat.update") {
			if len(c.Buttons()) == 0 {
				updated[c.Form.Get("channel")+"/"+c.Form.Get("ts")] = true
			}
		}
		return updated["CPROD/1700000000.000100"] && updated["D0BOB/1700000000.000200"]
	})
	if n := len(e.fd.Decisions()); n != 1 {
		t.Errorf("%d FlexDeploy decisions, want 1", n)
	}
}
