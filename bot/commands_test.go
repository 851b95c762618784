package bot

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/slacktest"
	"github.com/slack-go/slack"
)

// commandsRig is the slash command endpoint over the fake service,
// rendering with a Notifier of the fake Slack at renderNow.
type commandsRig struct {
	c    *Commands
	srv  *httptest.Server
	svc  *fakeSurfaces
	fake *slacktest.Server
}

func newCommandsRig(t *testing.T, svc *fakeSurfaces, policy *approvals.Policy) *commandsRig {
	t.Helper()
	fake := newFakeSlack(t)
	n := notifierFor(fake, func(c *Config) {
		c.Policies = func() []approvals.Policy { return []approvals.Policy{*policy} }
		c.Tools = testTools
		c.Now = func() time.Time { return renderNow }
	})
	n.surfaces = surfaceState{publicURL: "https://approvalbot.example.com", workspace: &workspaceCache{}}
	rig := &commandsRig{svc: svc, fake: fake}
	rig.c = NewCommands(CommandsConfig{
		Verifier: NewVerifier(testSigningSecret, func() time.Time { return clickTime }),
		Service:  svc, View: n, Clock: func() time.Time { return renderNow },
	})
	rig.srv = httptest.NewServer(rig.c)
	t.Cleanup(rig.srv.Close)
	return rig
}

// ask sends the command signed at at and returns the status and the reply.
func (rig *commandsRig) ask(t *testing.T, secret string, at time.Time, user, text string) (int, CommandReply, []byte) {
	t.Helper()
	req, err := slacktest.CommandRequest(rig.srv.URL, secret, at, slacktest.SlashCommand{Command: "/approvals", Text: text, UserID: user, UserName: "alice", ChannelID: "D1"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var raw json.RawMessage
	_ = json.NewDecoder(res.Body).Decode(&raw)
	var reply CommandReply
	var loose struct {
		ResponseType string            `json:"response_type"`
		Text         string            `json:"text"`
		Blocks       []json.RawMessage `json:"blocks"`
	}
	if json.Unmarshal(raw, &loose) == nil {
		reply.ResponseType, reply.Text = loose.ResponseType, loose.Text
	}
	return res.StatusCode, reply, raw
}

// unescapeJSON is JSON as Slack reads it: with <, > and & as written.
func unescapeJSON(raw []byte) string {
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(raw))
}

// replyButtons are a reply's buttons as the fake Slack reads them.
func replyButtons(t *testing.T, raw []byte) []slacktest.Button {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return slacktest.Call{JSON: m}.Buttons()
}

// checkReplyFits asserts that Slack takes the reply as a message.
func checkReplyFits(t *testing.T, raw []byte) {
	t.Helper()
	var m struct {
		Text   string          `json:"text"`
		Blocks json.RawMessage `json:"blocks"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if err := slacktest.CheckMessage(m.Text, m.Blocks); err != nil {
		t.Errorf("Slack refuses the reply: %v", err)
	}
	if len(m.Blocks) >= blocksBudget {
		t.Errorf("the reply's blocks have %d bytes, over the budget", len(m.Blocks))
	}
}

// auditedTask is a pending task with a vote and a refusal in its audit.
func auditedTask() *approvals.Task {
	t := homeTask(1)
	t.RequiredApprovals = 2
	t.Approvals = []approvals.Vote{{Person: approvals.Person{ID: "U2", Name: "bob"}, At: decidedAt}}
	t.Record(approvals.AuditRecord{At: t.CreatedAt, Event: "received", Detail: "policy production"})
	t.Record(approvals.AuditRecord{At: decidedAt, User: "U9", Name: "mallory", Event: "refused", Detail: "approve: not an approver <!channel>"})
	t.Record(approvals.AuditRecord{At: decidedAt, User: "U2", Name: "bob", Event: "approved"})
	return t
}

func TestCommandsEndpoint(t *testing.T) {
	t.Parallel()
	tasks := []*approvals.Task{homeTask(2), homeTask(1)}
	svc := &fakeSurfaces{waiting: func(user string) ([]*approvals.Task, error) {
		if user == "U1" {
			return tasks, nil
		}
		return nil, nil
	}}
	rig := newCommandsRig(t, svc, singlePolicy())

	status, reply, raw := rig.ask(t, testSigningSecret, clickTime, "U1", "")
	if status != http.StatusOK || reply.ResponseType != "ephemeral" || reply.Text != "2 deployments wait for your decision." {
		t.Fatalf("list: %d %+v", status, reply)
	}
	checkReplyFits(t, raw)
	var got []string
	for _, b := range replyButtons(t, raw) {
		got = append(got, b.BlockID+" "+b.ActionID+" "+b.Value)
	}
	if strings.Join(got, ",") != "decision:flexdeploy-8902 approve tok-flexdeploy-8902,decision:flexdeploy-8902 reject tok-flexdeploy-8902,"+
		"decision:flexdeploy-8901 approve tok-flexdeploy-8901,decision:flexdeploy-8901 reject tok-flexdeploy-8901" {
		t.Errorf("buttons %q", got)
	}

	// Someone with nothing waiting.
	if _, reply, _ := rig.ask(t, testSigningSecret, clickTime, "U7", ""); reply.Text != "Nothing waits for your decision." {
		t.Errorf("an empty list says %q", reply.Text)
	}
	if _, reply, _ := rig.ask(t, testSigningSecret, clickTime, "U1", "help"); !strings.Contains(reply.Text, "*/approvals ID*") {
		t.Errorf("help says %q", reply.Text)
	}

	// Unsigned, stale or forged: 401, and the service is not asked.
	before := len(svc.Calls())
	for name, at := range map[string]time.Time{"stale": clickTime.Add(-10 * time.Minute), "from the future": clickTime.Add(10 * time.Minute)} {
		if status, _, _ := rig.ask(t, testSigningSecret, at, "U1", ""); status != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, status)
		}
	}
	if status, _, _ := rig.ask(t, "forged-secret", clickTime, "U1", ""); status != http.StatusUnauthorized {
		t.Errorf("forged: %d, want 401", status)
	}
	req, _ := http.NewRequest(http.MethodPost, rig.srv.URL, strings.NewReader(slacktest.SlashCommand{Command: "/approvals", UserID: "U1"}.Form().Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned: %v %v, want 401", res, err)
	} else {
		res.Body.Close()
	}
	if n := len(svc.Calls()); n != before {
		t.Errorf("refused commands asked the service %d times", n-before)
	}
}

// TestCommandStatus: /approvals ID shows a task to those its policy names
// and those who voted, with the buttons to those who may decide it now;
// to anyone else it does not exist.
func TestCommandStatus(t *testing.T) {
	t.Parallel()
	pending := auditedTask()
	final := approvedTask(3)
	final.Record(approvals.AuditRecord{At: decidedAt, User: "U1", Name: "alice", Event: "approved"})
	svc := &fakeSurfaces{
		lookup: func(id string) (*approvals.Task, error) {
			switch id {
			case pending.ID, pending.TaskID:
				return pending, nil
			case final.ID:
				return final, nil
			case "broken":
				return nil, approvals.ErrUnavailable
			}
			return nil, approvals.ErrNotFound
		},
		mayDecide: func(t *approvals.Task, user string) (bool, error) {
			if user == "UFLAKY" {
				return false, errFake
			}
			return t.Status == approvals.StatusPending && (user == "U1" || user == "U2"), nil
		},
	}
	rig := newCommandsRig(t, svc, quorumPolicy())
	for _, tc := range []struct {
		user, text, want string
		buttons          int
	}{
		{"U1", pending.ID, "Deployment approval needed: shop v2.1 → PROD", 2},
		{"U1", pending.TaskID, "Deployment approval needed: shop v2.1 → PROD", 2}, // the tool's own id
		{"U1", final.ID, "Approved: shop v2.3 → PROD", 0},
		{"UOUT", pending.ID, "No task flexdeploy-8901 that you may see.", 0},
		{"UOUT", "nosuch<!here>", "No task nosuch&lt;!here&gt; that you may see.", 0},
		{"U1", "broken", "approvalbot cannot reach its store right now", 0},
		{"UFLAKY", pending.ID, "Could not check who may see this task", 0},
	} {
		_, reply, raw := rig.ask(t, testSigningSecret, clickTime, tc.user, tc.text)
		if !strings.Contains(reply.Text, tc.want) {
			t.Errorf("%s asking %q: %q, want %q", tc.user, tc.text, reply.Text, tc.want)
		}
		if n := len(replyButtons(t, raw)); n != tc.buttons {
			t.Errorf("%s asking %q: %d buttons, want %d", tc.user, tc.text, n, tc.buttons)
		}
		checkReplyFits(t, raw)
	}
	_, _, raw := rig.ask(t, testSigningSecret, clickTime, "U1", pending.ID)
	if s := unescapeJSON(raw); !strings.Contains(s, "Audit trail") || strings.Contains(s, "<!channel>") || !strings.Contains(s, "refused by <@U9>") {
		t.Errorf("the audit trail is missing or unescaped: %s", s)
	}
	if _, _, raw := rig.ask(t, testSigningSecret, clickTime, "U1", final.ID); !strings.Contains(unescapeJSON(raw), "Receipt 3f2a9c1b7e0d") {
		t.Error("a decided task's status does not show its receipt")
	}
}

func TestCommandReplyGolden(t *testing.T) {
	t.Parallel()
	opts := optionsFor(quorumPolicy())
	task := auditedTask()
	cases := []struct {
		name   string
		render func() (string, []slack.Block)
	}{
		{"command_list", func() (string, []slack.Block) {
			return RenderTaskList([]HomeTask{{Task: task, Token: "tok-1"}, {Task: homeTask(2), Token: "tok-2"}}, 0, opts, slacktest.WorkspaceURL)
		}},
		{"command_status", func() (string, []slack.Block) {
			return RenderTaskStatus(task, opts(task, "tok-1"), slacktest.WorkspaceURL)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			text, blocks := tc.render()
			checkFits(t, text, blocks)
			out, err := json.MarshalIndent(CommandReply{ResponseType: "ephemeral", Text: text, Blocks: blocks}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tc.name, append(out, '\n'))
		})
	}
}

// TestCommandRepliesFit: fifty long tasks make a reply within a message's
// 50 blocks and budget, the rest counted; so does a task with a long audit
// trail of hostile details.
func TestCommandRepliesFit(t *testing.T) {
	t.Parallel()
	var items []HomeTask
	for i := range 50 {
		task := homeTask(i)
		task.Description = strings.Repeat("<&> ", 500)
		task.Project = strings.Repeat("p", 2000)
		items = append(items, HomeTask{Task: task, Token: strings.Repeat("t", 400)})
	}
	text, blocks := RenderTaskList(items, 0, optionsFor(requireFromPolicy()), slacktest.WorkspaceURL)
	checkFits(t, text, blocks)
	if len(blocks) > maxListBlocks || findBlock(blocks, "list_more") == nil {
		t.Errorf("%d blocks; the reply must say how many more wait", len(blocks))
	}
	if n := len(actionBlocks(blocks)); n == 0 || n == 50 {
		t.Errorf("%d tasks with buttons in one reply", n)
	}

	task := auditedTask()
	for range 300 {
		task.Record(approvals.AuditRecord{At: decidedAt, User: "U9", Name: "mallory", Event: "refused", Detail: strings.Repeat("<!channel> &", 100)})
	}
	text, blocks = RenderTaskStatus(task, optionsFor(quorumPolicy())(task, strings.Repeat("t", 400)), slacktest.WorkspaceURL)
	checkFits(t, text, blocks)
	if findBlock(blocks, "audit") == nil || len(actionBlocks(blocks)) != 1 {
		t.Error("the long audit pushed out the audit or the buttons")
	}
}

// TestCommandsInTime: a look-up slower than Slack waits is answered with a
// request to try again.
func TestCommandsInTime(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	svc := &fakeSurfaces{waiting: func(string) ([]*approvals.Task, error) {
		<-release
		return nil, nil
	}}
	rig := newCommandsRig(t, svc, singlePolicy())
	reply := rig.c.Handle(context.Background(), slack.SlashCommand{Command: "/approvals", UserID: "U1"})
	if !strings.Contains(reply.Text, "took too long") {
		t.Errorf("a slow look-up answered %q", reply.Text)
	}
}
