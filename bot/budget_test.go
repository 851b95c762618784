package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/slacktest"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
)

// The intake's caps, read from flexdeploy/intake.go and
// azuredevops/intake.go (bot may not import them): every text field at most
// 2000 runes, the url at most 2000 runes, FlexDeploy's task id at most 256
// bytes, Azure DevOps' a GUID (its TaskInstanceId header).
const (
	intakeFieldRunes  = 2000
	intakeURLRunes    = 2000
	intakeTaskIDBytes = 256
)

// hostileRunes are what makes text long after escaping and encoding:
// mrkdwn's control characters, formatting, and characters of two, three and
// four bytes.
const hostileRunes = "&<>*_~`|é漢😀 <!channel> <@U0BAD> &amp; "

// runesOf repeats pattern to exactly n runes.
func runesOf(pattern string, n int) string {
	r := []rune(strings.Repeat(pattern, n/utf8.RuneCountInString(pattern)+1))
	return string(r[:n])
}

// bytesOf repeats pattern to at most n bytes, whole runes only.
func bytesOf(pattern string, n int) string {
	var b strings.Builder
	for _, r := range strings.Repeat(pattern, n) {
		if b.Len()+utf8.RuneLen(r) > n {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// capURL is a URL at the intake's cap: ASCII, as URLs that reach us are,
// with query separators and escapes that grow when escaped for mrkdwn.
func capURL() string {
	u := runesOf("https://fd.example.com/flexdeploy/#/tasks/8900?env=PROD&release=v2.3%C3%A9|stage=", intakeURLRunes)
	if p, err := url.Parse(u); err != nil || p.Host == "" || strings.ContainsAny(u, " \t\n") {
		panic("capURL is not a URL the intake accepts")
	}
	return u
}

// largestToken is longer than any token the bot mints: a JWT whose claims
// hold a task id at its cap.
var largestToken = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0." + runesOf("eyJ0aWQiOiJmbGV4ZGVwbG95LTg5MDAifQ", 900) + ".c2lnbmF0dXJlLW9mLXRoZS10b2tlbi1ieS1oczI1Ng"

// largestTask is the largest task the intake accepts from tool, with every
// context field at its cap, and the largest lists of people and audit a
// task gets.
func largestTask(source string) *approvals.Task {
	t := fixtureTask()
	t.Source = source
	t.TaskID = bytesOf("8900<&é>😀", intakeTaskIDBytes)
	if source == "azure-devops" {
		t.TaskID = "6f9619ff-8b86-d011-b42d-00cf4fc964ff"
	}
	t.Context = approvals.Context{
		Description: runesOf("Release notes: "+hostileRunes+"\n", intakeFieldRunes),
		Environment: runesOf("PROD "+hostileRunes, intakeFieldRunes),
		Project:     runesOf("shop "+hostileRunes, intakeFieldRunes),
		Release:     runesOf("v2.3 "+hostileRunes, intakeFieldRunes),
		Pipeline:    runesOf("main "+hostileRunes, intakeFieldRunes),
		Stage:       runesOf("deploy "+hostileRunes, intakeFieldRunes),
		RequestedBy: runesOf("dev@example.com "+hostileRunes, intakeFieldRunes),
		URL:         capURL(),
	}
	t.Policy = "production"
	t.RequiredApprovals = 1
	for i := 0; i < 200; i++ {
		t.Audit = append(t.Audit, approvals.AuditRecord{At: decidedAt, User: fmt.Sprintf("U%010d", i), Name: runesOf(hostileRunes, 80), Event: "refused", Detail: runesOf(hostileRunes, 500)})
	}
	return t
}

// withVotes gives the task n approvals by people with long names, half of
// them without a Slack id.
func withVotes(t *approvals.Task, n int) *approvals.Task {
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("U%010d", i)
		if i%2 == 1 {
			id = fmt.Sprintf("web:%d:%s", i, runesOf(hostileRunes, 40))
		}
		t.Approvals = append(t.Approvals, approvals.Vote{Person: approvals.Person{ID: id, Name: runesOf("Alice "+hostileRunes, 80)}, At: decidedAt})
	}
	return t
}

// largestPolicy names many approvers of every kind.
func largestPolicy() *approvals.Policy {
	p := &approvals.Policy{Name: "production", RequiredApprovals: 1, OnExpiry: approvals.ExpiryReject}
	for i := 0; i < 300; i++ {
		p.Approvers.Users = append(p.Approvers.Users, fmt.Sprintf("U%010d", i))
		p.Approvers.Groups = append(p.Approvers.Groups, fmt.Sprintf("S%010d", i))
		p.Approvers.Emails = append(p.Approvers.Emails, fmt.Sprintf("lead%d+%s@example.com", i, runesOf(hostileRunes, 30)))
	}
	return p
}

// blocksJSON is the blocks as slack-go sends them.
func blocksJSON(t *testing.T, blocks []slack.Block) []byte {
	t.Helper()
	raw, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// checkFits asserts that Slack takes the message: under the blocks budget
// (in characters, as Slack counts, and in bytes, as the renderer does), and
// within every element's limit as the fake Slack checks them.
func checkFits(t *testing.T, text string, blocks []slack.Block) {
	t.Helper()
	raw := blocksJSON(t, blocks)
	if n := utf8.RuneCount(raw); n >= slacktest.MaxBlocksJSON {
		t.Errorf("blocks have %d characters of JSON, Slack refuses %d or more", n, slacktest.MaxBlocksJSON)
	}
	if len(raw) >= blocksBudget {
		t.Errorf("blocks have %d bytes of JSON, over the budget of %d", len(raw), blocksBudget)
	}
	if err := slacktest.CheckMessage(text, raw); err != nil {
		t.Errorf("Slack refuses the message: %v", err)
	}
	checkLimits(t, text, blocks)
}

// checkLink asserts that the message links to the task's URL.
func checkLink(t *testing.T, task *approvals.Task, blocks []slack.Block) {
	t.Helper()
	want := "<" + safeLink(task.URL) + "|"
	if !strings.Contains(strings.Join(mrkdwnTexts(blocks), "\n"), want) {
		t.Errorf("the message has no link to %.80s…", task.URL)
	}
}

func checkHeader(t *testing.T, blocks []slack.Block, prefix string) {
	t.Helper()
	h, ok := blocks[0].(*slack.HeaderBlock)
	if !ok || !strings.HasPrefix(h.Text.Text, prefix) {
		t.Errorf("first block is %#v, want a header starting %q", blocks[0], prefix)
	}
}

// stateCase is a task in one of the states its message shows.
type stateCase struct {
	name    string
	task    func() *approvals.Task
	now     time.Time
	buttons bool
}

// largestStates are the largest task in every state a message shows.
func largestStates(source string) []stateCase {
	final := func(status approvals.Status, votes int, delivery approvals.Delivery) func() *approvals.Task {
		return func() *approvals.Task {
			t := withVotes(largestTask(source), votes)
			t.Status = status
			t.DecidedBy = &approvals.Person{ID: "U0000000001", Name: runesOf(hostileRunes, 80)}
			t.DecidedAt = &decidedAt
			t.Reason = runesOf("Because "+hostileRunes, maxReasonChars)
			t.Delivery = delivery
			return t
		}
	}
	longError := runesOf("HTTP 400: <html><body>"+hostileRunes+"</body></html>\n", 20000)
	return []stateCase{
		{name: "pending", buttons: true, task: func() *approvals.Task { return largestTask(source) }},
		{name: "progress", buttons: true, task: func() *approvals.Task {
			t := withVotes(largestTask(source), 99)
			t.RequiredApprovals = 100
			return t
		}},
		{name: "no policy", task: func() *approvals.Task { t := largestTask(source); t.Policy = ""; return t }},
		{name: "timed out", now: fixtureTask().ExpiresAt.Add(time.Minute), task: func() *approvals.Task { return largestTask(source) }},
		{name: "approved", task: final(approvals.StatusApproved, 100, approvals.Delivery{State: approvals.DeliveryDelivered, Attempts: 1})},
		{name: "approved retrying", task: final(approvals.StatusApproved, 100, approvals.Delivery{State: approvals.DeliveryPending, Attempts: 7, LastError: longError})},
		{name: "approved delivery failed", task: final(approvals.StatusApproved, 100, approvals.Delivery{State: approvals.DeliveryFailed, Attempts: 1, LastError: longError})},
		{name: "rejected", task: final(approvals.StatusRejected, 0, approvals.Delivery{State: approvals.DeliveryPending})},
		{name: "rejected delivery failed", task: final(approvals.StatusRejected, 50, approvals.Delivery{State: approvals.DeliveryFailed, LastError: longError})},
		{name: "expired", task: func() *approvals.Task {
			t := withVotes(largestTask(source), 50)
			t.Status = approvals.StatusExpired
			t.OnExpiry = approvals.ExpiryReject
			t.DecidedAt = &t.ExpiresAt
			t.Delivery = approvals.Delivery{State: approvals.DeliveryFailed, LastError: longError}
			return t
		}},
		{name: "decided elsewhere", task: func() *approvals.Task {
			t := withVotes(largestTask(source), 10)
			t.Status = approvals.StatusRejected
			t.DecidedAt = &decidedAt
			t.Reason = runesOf("rejected in the tool: "+hostileRunes, 20000)
			return t
		}},
	}
}

// TestLargestTaskPosts: the largest task the intake accepts posts a message
// Slack takes at the first try, with the header, the expiry, the link, and
// buttons whose clicks carry the token.
func TestLargestTaskPosts(t *testing.T) {
	t.Parallel()
	for _, source := range []string{"flexdeploy", "azure-devops"} {
		t.Run(source, func(t *testing.T) {
			t.Parallel()
			fake := newFakeSlack(t)
			n := notifierFor(fake, func(c *Config) {
				c.Policies = func() []approvals.Policy { return []approvals.Policy{*largestPolicy()} }
				c.Tools = testTools
				c.Now = func() time.Time { return renderNow }
			})
			task := largestTask(source)
			ref, err := n.Post(context.Background(), task, slackChannel(task), largestToken)
			if err != nil {
				t.Fatalf("Post: %v", err)
			}
			if ref.TS != firstTS {
				t.Errorf("ref = %+v", ref)
			}
			calls := fake.CallsTo("chat.postMessage")
			if len(calls) != 1 || calls[0].Refused != "" {
				t.Fatalf("got %d posts (first refused with %q), want 1 accepted", len(calls), calls[0].Refused)
			}
			msg := calls[0]
			blocks := formBlocks(t, msg)
			checkFits(t, msg.Form.Get("text"), blocks)
			checkHeader(t, blocks, "Deployment approval: shop ")
			checkButtons(t, blocks, largestToken)
			checkLink(t, task, blocks)
			if ctx := blockText(findBlock(blocks, blockIDContext)); !strings.HasPrefix(ctx, "Expires <!date^") {
				t.Errorf("context %q does not start with the expiry", ctx)
			}
			if d := blockText(findBlock(blocks, blockIDDescription)); !strings.HasSuffix(d, "…") || utf8.RuneCountInString(d) < 300 {
				t.Errorf("description %q is not the start of the description, cut with …", d)
			}

			rig := newInteractionsRig(t, nil)
			for _, action := range []string{"approve", "reject"} {
				click, err := slacktest.ClickOn(msg, action, "U1", "alice")
				if err != nil {
					t.Fatal(err)
				}
				body := formBody(click.Payload())
				if status, _ := rig.post(t, body, signedHeaders(body, clickTime)); status != 200 {
					t.Fatalf("%s click answered %d", action, status)
				}
			}
			reqs := rig.decider.Requests()
			if len(reqs) != 2 || reqs[0].Action != approvals.ActionApprove || reqs[1].Action != approvals.ActionReject {
				t.Fatalf("decisions %+v, want an approve and a reject", reqs)
			}
			for _, r := range reqs {
				if r.Token != largestToken {
					t.Errorf("%s click carried a token of %d characters, not the task's", r.Action, len(r.Token))
				}
			}
		})
	}
}

// TestEveryStateFits: in every state its message shows, the largest task
// renders under the budget, and Slack takes the update at the first try.
func TestEveryStateFits(t *testing.T) {
	t.Parallel()
	for _, source := range []string{"flexdeploy", "azure-devops"} {
		for _, tc := range largestStates(source) {
			t.Run(source+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				now := tc.now
				if now.IsZero() {
					now = renderNow
				}
				task := tc.task()
				var policy *approvals.Policy
				if task.Policy != "" {
					policy = largestPolicy()
				}
				text, blocks := render(task, largestToken, policy, now)
				checkFits(t, text, blocks)
				checkHeader(t, blocks, "Deployment approval: shop ")
				checkLink(t, task, blocks)
				if tc.buttons {
					checkButtons(t, blocks, largestToken)
				} else if a := actionBlocks(blocks); len(a) != 0 {
					t.Errorf("%d actions blocks, want none", len(a))
				}
				if task.Status.Final() {
					if findBlock(blocks, blockIDOutcome) == nil {
						t.Error("no outcome")
					}
					if task.Delivery.State != approvals.DeliveryNotNeeded && task.Delivery.State != "" && findBlock(blocks, blockIDDelivery) == nil {
						t.Error("no delivery line")
					}
				}

				fake := newFakeSlack(t)
				n := notifierFor(fake, func(c *Config) {
					c.Policies = func() []approvals.Policy { return []approvals.Policy{*largestPolicy()} }
					c.Tools = testTools
					c.Now = func() time.Time { return now }
				})
				if err := n.Update(context.Background(), task, slackRefs(task), largestToken); err != nil {
					t.Fatalf("Update: %v", err)
				}
				calls := fake.CallsTo("chat.update")
				if len(calls) != 1 || calls[0].Refused != "" {
					t.Fatalf("got %d updates (first refused with %q), want 1 accepted", len(calls), calls[0].Refused)
				}
			})
		}
	}
}

// TestBudgetCutsInOrder: what is cut first is cut first; a message that
// fits is not cut at all.
func TestBudgetCutsInOrder(t *testing.T) {
	t.Parallel()
	// Only the description is long: it is cut, the rest is whole.
	task := fixtureTask()
	task.Description = runesOf(hostileRunes, intakeFieldRunes)
	task.Project = runesOf("shop ", 1900)
	task.Pipeline = runesOf("main ", 1900)
	task.Stage = runesOf("deploy ", 1900)
	_, blocks := render(task, "tok", singlePolicy(), renderNow)
	checkFits(t, "x", blocks)
	desc := blockText(findBlock(blocks, blockIDDescription))
	if !strings.HasSuffix(desc, "…") {
		t.Errorf("description not cut: %d characters", utf8.RuneCountInString(desc))
	}
	fields := findBlock(blocks, blockIDFields).(*slack.SectionBlock).Fields
	for i, want := range map[int]string{1: "*Project*\n" + strings.TrimSpace(task.Project),
		3: "*Pipeline*\n" + strings.TrimSpace(task.Pipeline), 4: "*Stage*\n" + strings.TrimSpace(task.Stage)} {
		if got := fields[i].Text; got != want {
			t.Errorf("field %d cut before the description was: %d characters", i, utf8.RuneCountInString(got))
		}
	}

	// The fixture fits: nothing is cut.
	_, whole := render(fixtureTask(), "tok", singlePolicy(), renderNow)
	if d := blockText(findBlock(whole, blockIDDescription)); d != fixtureTask().Description {
		t.Errorf("description of a small task = %q", d)
	}

	// Voters are listed as far as they fit, and counted.
	big := withVotes(largestTask("flexdeploy"), 100)
	big.Status = approvals.StatusApproved
	big.DecidedBy = &approvals.Person{ID: "U0000000001"}
	big.DecidedAt = &decidedAt
	_, blocks = render(big, "", largestPolicy(), renderNow)
	if out := blockText(findBlock(blocks, blockIDOutcome)); !strings.Contains(out, " more at <!date^") {
		t.Errorf("outcome %q does not say how many more approved", out)
	}
	if ctx := blockText(findBlock(blocks, blockIDContext)); ctx != "" && !strings.Contains(ctx, " more") {
		t.Errorf("policy line %q does not say how many more approvers there are", ctx)
	}
}

// TestRenderBudgetRandom: long random inputs of every kind render under the
// budget, keep their buttons and their link.
func TestRenderBudgetRandom(t *testing.T) {
	t.Parallel()
	alphabet := []rune(hostileRunes + "abcdefghijklmnopqrstuvwxyz0123456789\n\t\u200b\u202e")
	for seed := uint64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 2026))
		str := func(most int) string {
			n := rng.IntN(most + 1)
			if rng.IntN(3) == 0 {
				n = most // at the cap, often
			}
			r := make([]rune, n)
			for i := range r {
				r[i] = alphabet[rng.IntN(len(alphabet))]
			}
			return string(r)
		}
		task := fixtureTask()
		task.TaskID = strings.Map(func(r rune) rune {
			if r < 0x20 {
				return 'x'
			}
			return r
		}, bytesOf(str(intakeTaskIDBytes)+"8900", intakeTaskIDBytes))
		task.Context = approvals.Context{
			Description: str(intakeFieldRunes), Environment: str(intakeFieldRunes), Project: str(intakeFieldRunes),
			Release: str(intakeFieldRunes), Pipeline: str(intakeFieldRunes), Stage: str(intakeFieldRunes),
			RequestedBy: str(intakeFieldRunes),
		}
		if rng.IntN(4) > 0 {
			task.URL = "https://fd.example.com/" + url.PathEscape(str(intakeURLRunes/8)) + "?q=" + strings.Repeat("a&", rng.IntN(300))
			task.URL = string([]rune(task.URL)[:min(utf8.RuneCountInString(task.URL), intakeURLRunes)])
		}
		task.RequiredApprovals = 1 + rng.IntN(100)
		task = withVotes(task, rng.IntN(task.RequiredApprovals))
		policy := &approvals.Policy{Name: str(100), RequiredApprovals: task.RequiredApprovals}
		for i := rng.IntN(400); i > 0; i-- {
			policy.Approvers.Users = append(policy.Approvers.Users, fmt.Sprintf("U%010d", i))
			policy.Approvers.Emails = append(policy.Approvers.Emails, str(60))
		}
		status := []approvals.Status{approvals.StatusPending, approvals.StatusApproved, approvals.StatusRejected, approvals.StatusExpired}[rng.IntN(4)]
		task.Status = status
		if status.Final() {
			task.DecidedAt = &decidedAt
			if rng.IntN(2) == 0 {
				task.DecidedBy = &approvals.Person{ID: "U1", Name: str(80)}
			}
			task.Reason = str(maxReasonChars * 3)
			task.Delivery = approvals.Delivery{State: []approvals.DeliveryState{approvals.DeliveryPending, approvals.DeliveryFailed, approvals.DeliveryDelivered}[rng.IntN(3)],
				Attempts: rng.IntN(10), LastError: str(5000)}
		}
		token := runesOf("eyJhbGciOiJIUzI1NiJ9.", 20+rng.IntN(1200))

		text, blocks := RenderTask(task, RenderOptions{Token: token, Policy: policy, Tool: "FlexDeploy", Now: renderNow})
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			checkFits(t, text, blocks)
			if !status.Final() {
				checkButtons(t, blocks, token)
			}
			if link := safeLink(task.URL); link != "" && utf8.RuneCountInString(link) < maxSectionChars-10 {
				checkLink(t, task, blocks)
			}
		})
	}
}

// FuzzRenderBudget: whatever the texts, the message fits Slack, and a
// pending task keeps its buttons.
func FuzzRenderBudget(f *testing.F) {
	f.Add(strings.Repeat("&", 2000), strings.Repeat("<", 2000), "https://fd.example.com/"+strings.Repeat("a&", 900), strings.Repeat("😀", 1000), uint8(50), uint16(600), false)
	f.Add(hostileRunes, hostileRunes, capURL(), hostileRunes, uint8(255), uint16(2000), true)
	f.Add("", "", "", "", uint8(0), uint16(1), false)
	policy := largestPolicy()
	f.Fuzz(func(t *testing.T, description, field, rawURL, reason string, votes uint8, tokenLen uint16, final bool) {
		capped := func(s string, n int) string { return approvals.CapRunes(strings.ToValidUTF8(s, "?"), n) }
		task := fixtureTask()
		task.Context = approvals.Context{
			Description: capped(description, intakeFieldRunes), Environment: capped(field, intakeFieldRunes),
			Project: capped(field, intakeFieldRunes), Release: capped(field, intakeFieldRunes),
			Pipeline: capped(field, intakeFieldRunes), Stage: capped(field, intakeFieldRunes),
			RequestedBy: capped(field, intakeFieldRunes), URL: capped(rawURL, intakeURLRunes),
		}
		task.RequiredApprovals = int(votes) + 1
		task = withVotes(task, int(votes))
		if final {
			task.Status = approvals.StatusRejected
			task.DecidedBy = &approvals.Person{ID: "U1"}
			task.DecidedAt = &decidedAt
			task.Reason = capped(reason, 3*maxReasonChars)
			task.Delivery = approvals.Delivery{State: approvals.DeliveryFailed, LastError: capped(reason, 10000)}
		}
		// Tokens the bot mints are a few hundred characters; 1,500 is
		// more than any.
		token := runesOf("t", 1+int(tokenLen)%1500)
		text, blocks := render(task, token, policy, renderNow)
		checkFits(t, text, blocks)
		if !final {
			checkButtons(t, blocks, token)
		}
	})
}

// syncBuffer is a log sink for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRefusedBlocksFallBack: when Slack refuses a message's blocks, Post
// and Update send the minimal message instead (and then the bare one), so
// that the task has its message and its buttons; the warning names Slack's
// code and never the token.
func TestRefusedBlocksFallBack(t *testing.T) {
	t.Parallel()
	const token = "tok-fallback-0123456789"
	approved := func() *approvals.Task {
		task := fixtureTask()
		task.Status = approvals.StatusApproved
		task.DecidedBy = &approvals.Person{ID: "U1", Name: "alice"}
		task.DecidedAt = &decidedAt
		task.Delivery = approvals.Delivery{State: approvals.DeliveryFailed, LastError: "HTTP 400"}
		return task
	}
	for _, code := range []string{"invalid_blocks", "msg_blocks_too_long", "invalid_attachments"} {
		for _, tc := range []struct {
			name    string
			method  string
			task    func() *approvals.Task
			buttons bool
		}{
			{"post", "chat.postMessage", fixtureTask, true},
			{"update pending", "chat.update", fixtureTask, true},
			{"update final", "chat.update", approved, false},
		} {
			t.Run(code+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				for _, refusals := range []int{1, 2, -1} {
					fake := newFakeSlack(t)
					logs := &syncBuffer{}
					n := notifierFor(fake, func(c *Config) {
						c.Policies = policies
						c.Tools = testTools
						c.Now = func() time.Time { return renderNow }
						c.Logger = zerolog.New(logs)
					})
					fake.RefuseBlocks(code, refusals)
					var err error
					if tc.method == "chat.postMessage" {
						var ref approvals.MessageRef
						ref, err = n.Post(context.Background(), tc.task(), slackChannel(tc.task()), token)
						if err == nil && (ref.Channel != "C0PROD" || ref.TS != firstTS) {
							t.Errorf("refusals %d: ref = %+v, want the fallback's", refusals, ref)
						}
					} else {
						err = n.Update(context.Background(), tc.task(), slackRefs(tc.task()), token)
					}
					calls := fake.CallsTo(tc.method)
					if strings.Contains(logs.String(), token) || (err != nil && strings.Contains(err.Error(), token)) {
						t.Errorf("refusals %d: the token shows in the log or the error", refusals)
					}
					if !strings.Contains(logs.String(), `"code":"`+code+`"`) || !strings.Contains(logs.String(), `"level":"warn"`) {
						t.Errorf("refusals %d: no warning naming %s: %s", refusals, code, logs)
					}
					if refusals < 0 {
						// Slack refuses everything: the error is permanent,
						// after the minimal and the bare message were tried.
						if !approvals.IsPermanent(err) || len(calls) != 3 {
							t.Errorf("all refused: err %v, %d calls; want a permanent error after 3", err, len(calls))
						}
						continue
					}
					if err != nil {
						t.Fatalf("refusals %d: %v", refusals, err)
					}
					if len(calls) != refusals+1 || calls[0].Refused != code || calls[refusals].Refused != "" {
						t.Fatalf("refusals %d: got %d calls, want %d, the last accepted", refusals, len(calls), refusals+1)
					}
					last := calls[refusals]
					blocks := formBlocks(t, last)
					if last.Form.Get("text") == "" {
						t.Error("the fallback has no text")
					}
					checkFits(t, last.Form.Get("text"), blocks)
					if findBlock(blocks, blockIDDescription) != nil || findBlock(blocks, blockIDFields) != nil {
						t.Error("the fallback shows the description or the fields")
					}
					header := "Deployment approval: shop v2.3 → PROD"
					if refusals == 2 {
						header = "Deployment approval" // bare
					} else {
						checkLink(t, fixtureTask(), blocks)
					}
					if h := blocks[0].(*slack.HeaderBlock).Text.Text; h != header {
						t.Errorf("header %q, want %q", h, header)
					}
					if tc.buttons {
						checkButtons(t, blocks, token)
					} else {
						if a := actionBlocks(blocks); len(a) != 0 {
							t.Errorf("final fallback has %d actions blocks", len(a))
						}
						if out := blockText(findBlock(blocks, blockIDOutcome)); !strings.HasPrefix(out, "✅ Approved by <@U1> at <!date^") {
							t.Errorf("final fallback's outcome %q", out)
						}
					}
				}
			})
		}
	}
}

// TestRenderMinimalGolden: the minimal and bare messages, as golden files.
func TestRenderMinimalGolden(t *testing.T) {
	t.Parallel()
	final := fixtureTask()
	final.Status = approvals.StatusRejected
	final.DecidedBy = &approvals.Person{ID: "U3", Name: "carol"}
	final.DecidedAt = &decidedAt
	final.Reason = "Change freeze until Monday"
	final.Delivery = approvals.Delivery{State: approvals.DeliveryFailed, LastError: "HTTP 400: task 8900 is not pending"}
	quorum := fixtureTask()
	quorum.RequiredApprovals = 2
	quorum.Approvals = []approvals.Vote{{Person: approvals.Person{ID: "U1", Name: "alice"}, At: decidedAt}}
	for _, tc := range []struct {
		name   string
		task   *approvals.Task
		token  string
		policy *approvals.Policy
		bare   bool
	}{
		{"minimal_pending", quorum, "tok-minimal", quorumPolicy(), false},
		{"minimal_rejected", final, "", quorumPolicy(), false},
		{"minimal_bare_pending", fixtureTask(), "tok-bare", singlePolicy(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			text, blocks := RenderMinimal(tc.task, RenderOptions{Token: tc.token, Policy: tc.policy, Tool: "FlexDeploy", Now: renderNow}, tc.bare)
			checkFits(t, text, blocks)
			checkRoundTrip(t, blocks)
			if tc.token != "" {
				checkButtons(t, blocks, tc.token)
			}
			checkGolden(t, tc.name, marshalMessage(t, text, blocks))
		})
	}
}

// TestEphemeralFitsSlack: a reply longer than Slack takes is cut, and one
// Slack refuses is followed by a shorter one.
func TestEphemeralFitsSlack(t *testing.T) {
	t.Parallel()
	fake := newFakeSlack(t)
	n := notifierFor(fake, nil)
	long := runesOf(hostileRunes, 50000)
	if err := n.Ephemeral(context.Background(), "C1", "U1", escape(long)); err != nil {
		t.Fatalf("Ephemeral: %v", err)
	}
	refused := false
	fake.SetAnswer(func(c slacktest.Call) *slacktest.Answer {
		if c.Method == "chat.postEphemeral" && !refused {
			refused = true
			return &slacktest.Answer{Body: `{"ok":false,"error":"msg_too_long"}`}
		}
		return nil
	})
	if err := n.Ephemeral(context.Background(), "C1", "U1", escape(long)); err != nil {
		t.Fatalf("Ephemeral after a refusal: %v", err)
	}
	calls := fake.CallsTo("chat.postEphemeral")
	if len(calls) != 3 {
		t.Fatalf("got %d chat.postEphemeral calls, want 3", len(calls))
	}
	for i, c := range calls {
		text := c.Form.Get("text")
		if i != 1 && c.Refused != "" {
			t.Errorf("call %d refused: %s", i, c.Refused)
		}
		if err := slacktest.CheckMessage(text, nil); err != nil {
			t.Errorf("call %d: %v", i, err)
		}
		checkLimits(t, text, nil)
	}
	if got := utf8.RuneCountInString(calls[2].Form.Get("text")); got > maxEphemeralFallbackChars {
		t.Errorf("the reply after a refusal has %d characters", got)
	}
}

// TestRejectReasonFallsBack: the reject reason modal fits Slack; when Slack
// refuses it, the minimal one opens instead, with the token.
func TestRejectReasonFallsBack(t *testing.T) {
	t.Parallel()
	fake := newFakeSlack(t)
	n := notifierFor(fake, nil)
	if err := n.OpenRejectReason(context.Background(), "trigger-1", largestToken); err != nil {
		t.Fatalf("OpenRejectReason: %v", err)
	}
	fake.RefuseBlocks("invalid_arguments", 1)
	if err := n.OpenRejectReason(context.Background(), "trigger-2", largestToken); err != nil {
		t.Fatalf("OpenRejectReason after a refusal: %v", err)
	}
	calls := fake.CallsTo("views.open")
	if len(calls) != 3 || calls[0].Refused != "" || calls[1].Refused != "invalid_arguments" || calls[2].Refused != "" {
		t.Fatalf("views.open calls %d, want the full one, a refusal and the minimal one accepted", len(calls))
	}
	for _, c := range []slacktest.Call{calls[0], calls[2]} {
		raw, _ := json.Marshal(c.JSON["view"])
		if err := slacktest.CheckView(raw); err != nil {
			t.Errorf("view refused: %v", err)
		}
		view := c.JSON["view"].(map[string]any)
		if view["private_metadata"] != largestToken || view["callback_id"] != callbackRejectReason {
			t.Errorf("view carries %v / %v", view["callback_id"], view["private_metadata"])
		}
	}
	if title := calls[2].JSON["view"].(map[string]any)["title"].(map[string]any)["text"]; title != "Reject" {
		t.Errorf("minimal modal's title %q", title)
	}
	fake.RefuseBlocks("invalid_arguments", -1)
	if err := n.OpenRejectReason(context.Background(), "trigger-3", largestToken); !approvals.IsPermanent(err) {
		t.Errorf("all refused: %v, want a permanent error", err)
	}
}

// BenchmarkRenderLargest: the largest task, which the budget renders
// several times until it fits.
func BenchmarkRenderLargest(b *testing.B) {
	task := withVotes(largestTask("flexdeploy"), 100)
	task.RequiredApprovals = 101
	policy := largestPolicy()
	for b.Loop() {
		render(task, largestToken, policy, renderNow)
	}
}

// BenchmarkRenderFixture: a task of everyday size, rendered once.
func BenchmarkRenderFixture(b *testing.B) {
	task, policy := fixtureTask(), singlePolicy()
	for b.Loop() {
		render(task, "tok", policy, renderNow)
	}
}
