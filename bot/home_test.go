package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/slacktest"
	"github.com/slack-go/slack"
)

// fakeSurfaces is the service the App Home and /approvals read, with func
// fields; the zero value lists nothing.
type fakeSurfaces struct {
	waiting   func(user string) ([]*approvals.Task, error)
	recent    func(user string) []*approvals.Task
	lookup    func(id string) (*approvals.Task, error)
	mayDecide func(t *approvals.Task, user string) (bool, error)

	mu    sync.Mutex
	calls []string // "waiting U1", "may U1 flexdeploy-1"
}

func (f *fakeSurfaces) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *fakeSurfaces) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeSurfaces) Waiting(_ context.Context, user string) ([]*approvals.Task, error) {
	f.record("waiting " + user)
	if f.waiting == nil {
		return nil, nil
	}
	return f.waiting(user)
}

func (f *fakeSurfaces) RecentlyDecided(_ context.Context, user string, n int) ([]*approvals.Task, error) {
	if f.recent == nil {
		return nil, nil
	}
	out := f.recent(user)
	return out[:min(n, len(out))], nil
}

// Token is a stand-in token naming the task, as the outbox's names it
// by its nonce.
func (f *fakeSurfaces) Token(t *approvals.Task) (string, error) {
	if t.Status.Final() {
		return "", approvals.ErrAlreadyDecided
	}
	return "tok-" + t.ID, nil
}

func (f *fakeSurfaces) Lookup(_ context.Context, id string) (*approvals.Task, error) {
	if f.lookup == nil {
		return nil, approvals.ErrNotFound
	}
	return f.lookup(id)
}

func (f *fakeSurfaces) MayDecide(_ context.Context, t *approvals.Task, user string) (bool, error) {
	f.record("may " + user + " " + t.ID)
	if f.mayDecide == nil {
		return false, nil
	}
	return f.mayDecide(t, user)
}

// homeTask is a pending task of the fixture's kind, numbered.
func homeTask(n int) *approvals.Task {
	t := fixtureTask()
	t.ID = fmt.Sprintf("flexdeploy-%d", 8900+n)
	t.TaskID = fmt.Sprintf("%d", 8900+n)
	t.Release = fmt.Sprintf("v2.%d", n)
	t.Messages = []approvals.MessageRef{approvals.MessageRef{Channel: "C0PROD", TS: fmt.Sprintf("1700000000.%06d", n)}}
	return t
}

// sealed gives a final task a receipt whose short hash is 3f2a9c1b7e0d.
func sealed(t *approvals.Task) *approvals.Task {
	t.Seal = &approvals.Seal{Covered: 2, Head: "3f2a9c1b7e0d" + strings.Repeat("5", 52), SignedAt: decidedAt, KeyID: "0123456789abcdef"}
	return t
}

func approvedTask(n int) *approvals.Task {
	t := homeTask(n)
	t.Status = approvals.StatusApproved
	alice := approvals.Person{ID: "U1", Name: "alice"}
	t.Approvals = []approvals.Vote{{Person: alice, At: decidedAt}}
	t.DecidedBy, t.DecidedAt = &alice, &decidedAt
	t.Delivery = approvals.Delivery{State: approvals.DeliveryDelivered, Attempts: 1, DeliveredAt: &decidedAt}
	return sealed(t)
}

// optionsFor renders tasks as the Notifier does, under policy.
func optionsFor(policy *approvals.Policy) func(t *approvals.Task, token string) RenderOptions {
	return func(t *approvals.Task, token string) RenderOptions {
		return RenderOptions{Token: token, Policy: policy, Tool: testTools.DisplayName(t.Source), Now: renderNow, PublicURL: "https://approvalbot.example.com"}
	}
}

// checkHomeView asserts that Slack takes the view.
func checkHomeView(t *testing.T, blocks []slack.Block) {
	t.Helper()
	raw, err := json.Marshal(slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}, CallbackID: homeCallbackID})
	if err != nil {
		t.Fatal(err)
	}
	if err := slacktest.CheckHomeView(raw); err != nil {
		t.Errorf("Slack refuses the App Home: %v", err)
	}
	if len(blocks) > maxViewBlocks {
		t.Errorf("%d blocks, a view takes %d", len(blocks), maxViewBlocks)
	}
}

func TestRenderHomeGolden(t *testing.T) {
	t.Parallel()
	quorum := homeTask(1)
	quorum.RequiredApprovals = 2
	quorum.Approvals = []approvals.Vote{{Person: approvals.Person{ID: "U2", Name: "bob"}, At: decidedAt}}
	cases := []struct {
		name    string
		content HomeContent
	}{
		{"home_waiting", HomeContent{
			Waiting: []HomeTask{{Task: quorum, Token: "tok-1"}, {Task: homeTask(2), Token: "tok-2"}},
			Recent:  []*approvals.Task{approvedTask(3)},
			Notice:  "Your approval is counted (1 of 2).",
		}},
		{"home_empty", HomeContent{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			blocks := RenderHome(tc.content, optionsFor(quorumPolicy()), slacktest.WorkspaceURL)
			checkHomeView(t, blocks)
			out, err := json.MarshalIndent(slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}, CallbackID: homeCallbackID}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tc.name, append(out, '\n'))
		})
	}
}

// TestRenderHomeContract: each waiting task has its own approve and reject
// buttons carrying its token, under a block id naming it, a link to its
// channel message, and the decided ones their receipt.
func TestRenderHomeContract(t *testing.T) {
	t.Parallel()
	content := HomeContent{
		Waiting: []HomeTask{{Task: homeTask(1), Token: "tok-1"}, {Task: homeTask(2), Token: "tok-2"}},
		Recent:  []*approvals.Task{approvedTask(3)},
	}
	blocks := RenderHome(content, optionsFor(singlePolicy()), slacktest.WorkspaceURL)
	var buttons []string
	for _, a := range actionBlocks(blocks) {
		for _, e := range a.Elements.ElementSet {
			b := e.(*slack.ButtonBlockElement)
			buttons = append(buttons, a.BlockID+" "+b.ActionID+" "+b.Value)
		}
	}
	want := []string{
		"decision:flexdeploy-8901 approve tok-1", "decision:flexdeploy-8901 reject tok-1",
		"decision:flexdeploy-8902 approve tok-2", "decision:flexdeploy-8902 reject tok-2",
	}
	if !slices.Equal(buttons, want) {
		t.Errorf("buttons %q, want %q", buttons, want)
	}
	raw, _ := json.Marshal(blocks)
	for _, s := range []string{
		"https://example.slack.com/archives/C0PROD/p1700000000000001",
		"Receipt 3f2a9c1b7e0d",
		"Recently decided",
	} {
		if !strings.Contains(string(raw), s) {
			t.Errorf("the home lacks %q", s)
		}
	}
	// Without the workspace's address nothing links to the messages.
	if raw, _ := json.Marshal(RenderHome(content, optionsFor(singlePolicy()), "")); strings.Contains(string(raw), "/archives/") {
		t.Error("a link to a message without the workspace's address")
	}
}

// TestRenderHomeFits: fifty waiting tasks, each as long as the intake
// allows, make a view Slack takes: at most 100 blocks, each within its
// limits, the newest twenty listed and the rest counted.
func TestRenderHomeFits(t *testing.T) {
	t.Parallel()
	var tasks []*approvals.Task
	for i := range 50 {
		task := homeTask(i)
		task.Description = strings.Repeat("<!channel> & ", 300)
		task.Project = strings.Repeat("p", 2000)
		task.RequestedBy = strings.Repeat("r", 2000)
		tasks = append(tasks, task)
	}
	var recent []*approvals.Task
	for i := range 15 {
		recent = append(recent, approvedTask(100+i))
	}
	content, err := HomeContentFor(context.Background(), &fakeSurfaces{
		waiting: func(string) ([]*approvals.Task, error) { return tasks, nil },
		recent:  func(string) []*approvals.Task { return recent },
	}, "U1")
	if err != nil {
		t.Fatal(err)
	}
	if len(content.Waiting) != maxHomeTasks || content.More != 30 || len(content.Recent) != maxHomeRecent {
		t.Fatalf("listed %d waiting, %d more, %d recent", len(content.Waiting), content.More, len(content.Recent))
	}
	content.Notice = strings.Repeat("n", 5000)
	blocks := RenderHome(content, optionsFor(requireFromPolicy()), slacktest.WorkspaceURL)
	checkHomeView(t, blocks)
	if findBlock(blocks, "waiting_more") == nil {
		t.Error("the home does not say that 30 more wait")
	}
	if n := len(actionBlocks(blocks)); n != maxHomeTasks {
		t.Errorf("%d tasks with buttons, want %d", n, maxHomeTasks)
	}
	if raw, _ := json.Marshal(blocks); strings.Contains(string(raw), "<!channel>") {
		t.Error("a description broadcast to the channel")
	}
	if min := RenderMinimalHome(content); len(min) != 2 {
		t.Errorf("the minimal home has %d blocks", len(min))
	} else {
		checkHomeView(t, min)
	}
}

// TestRenderSSOAndReceiptGolden: a require_sso task shows, instead of the
// deciding buttons, one link button to its web page carrying its token;
// a decided task shows its receipt's short hash.
func TestRenderSSOAndReceiptGolden(t *testing.T) {
	t.Parallel()
	sso := singlePolicy()
	sso.RequireSSO = true
	task := fixtureTask()
	task.ID = "flexdeploy-~ab/cd" // an id that needs escaping in a path
	text, blocks := RenderTask(task, RenderOptions{Token: "tok-sso", Policy: sso, Tool: "FlexDeploy", Now: renderNow, PublicURL: "https://approvalbot.example.com/"})
	checkFits(t, text, blocks)
	checkGolden(t, "pending_require_sso", marshalMessage(t, text, blocks))
	actions := actionBlocks(blocks)
	if len(actions) != 1 || len(actions[0].Elements.ElementSet) != 1 {
		t.Fatalf("actions %+v, want one block with one button", actions)
	}
	b := actions[0].Elements.ElementSet[0].(*slack.ButtonBlockElement)
	if want := "https://approvalbot.example.com/approve/flexdeploy-~ab%2Fcd?t=tok-sso"; b.ActionID != "review" || b.URL != want || b.Value != "" {
		t.Errorf("review button %+v, want action_id review to %s", b, want)
	}
	if b.Text.Text != "Review and sign in" {
		t.Errorf("review button says %q", b.Text.Text)
	}
	// The minimal message keeps the link; without a public URL there is
	// none, and the message says why.
	if _, min := RenderMinimal(task, RenderOptions{Token: "tok-sso", Policy: sso, Now: renderNow, PublicURL: "https://a.example"}, true); len(actionBlocks(min)) != 1 {
		t.Error("the bare message lost the review link")
	}
	_, none := RenderTask(task, RenderOptions{Token: "tok-sso", Policy: sso, Now: renderNow})
	if len(actionBlocks(none)) != 0 || findBlock(none, blockIDReview) == nil {
		t.Error("without a public URL: want no buttons and a line saying why")
	}

	done := approvedTask(0)
	text, blocks = RenderTask(done, RenderOptions{Policy: singlePolicy(), Tool: "FlexDeploy", Now: renderNow})
	checkFits(t, text, blocks)
	checkGolden(t, "approved_receipt", marshalMessage(t, text, blocks))
	if b := findBlock(blocks, blockIDReceipt); b == nil {
		t.Fatal("no receipt block")
	}
	if raw, _ := json.Marshal(blocks); !strings.Contains(string(raw), "Receipt 3f2a9c1b7e0d") {
		t.Error("the receipt's short hash is not shown")
	}
}

// manualTimers stand in for time.AfterFunc: a test fires them.
type manualTimers struct {
	mu      sync.Mutex
	pending []*manualTimer
}

type manualTimer struct {
	d       time.Duration
	f       func()
	stopped bool
	fired   bool
}

func (m *manualTimers) afterFunc(d time.Duration, f func()) stopper {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := &manualTimer{d: d, f: f}
	m.pending = append(m.pending, t)
	return stopperFunc(func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		if t.fired || t.stopped {
			return false
		}
		t.stopped = true
		return true
	})
}

type stopperFunc func() bool

func (f stopperFunc) Stop() bool { return f() }

// waiting returns the timers not yet fired or stopped.
func (m *manualTimers) waiting() []*manualTimer {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*manualTimer
	for _, t := range m.pending {
		if !t.fired && !t.stopped {
			out = append(out, t)
		}
	}
	return out
}

// fire runs every waiting timer, as if their time had come.
func (m *manualTimers) fire() int {
	ts := m.waiting()
	m.mu.Lock()
	for _, t := range ts {
		t.fired = true
	}
	m.mu.Unlock()
	for _, t := range ts {
		t.f()
	}
	return len(ts)
}

// homeRig is a Home publishing to the fake Slack through a Notifier, on
// manual timers and a fake clock.
type homeRig struct {
	home   *Home
	fake   *slacktest.Server
	svc    *fakeSurfaces
	timers *manualTimers
	clock  *fakeClock
}

func newHomeRig(t *testing.T, svc *fakeSurfaces) *homeRig {
	t.Helper()
	fake := newFakeSlack(t)
	n := notifierFor(fake, func(c *Config) {
		c.Policies = func() []approvals.Policy { return []approvals.Policy{*singlePolicy()} }
		c.Tools = testTools
		c.Now = func() time.Time { return renderNow }
	})
	n.surfaces.workspace = &workspaceCache{}
	rig := &homeRig{fake: fake, svc: svc, timers: &manualTimers{}, clock: &fakeClock{now: renderNow}}
	rig.home = NewHome(HomeConfig{Service: svc, Publisher: func() HomePublisher { return n }, Clock: rig.clock.Now})
	rig.home.afterFunc = rig.timers.afterFunc
	t.Cleanup(rig.home.Close)
	return rig
}

// settled waits until the home has worked out whose homes a change
// concerns.
func (rig *homeRig) settled(t *testing.T) {
	t.Helper()
	waitUntil(t, "the changes looked at", func() bool {
		rig.home.mu.Lock()
		defer rig.home.mu.Unlock()
		return !rig.home.scanning
	})
}

// TestHomePublishes: opening the home publishes it; a change to a task the
// person may decide, or that their home shows, publishes it again, after
// the settle time and never sooner than the interval after the last; a
// change that concerns them does not; changes while one is scheduled or
// under way make one more publish, not one each.
func TestHomePublishes(t *testing.T) {
	t.Parallel()
	mine, other := homeTask(1), homeTask(2)
	waiting := []*approvals.Task{mine}
	var mu sync.Mutex
	svc := &fakeSurfaces{
		waiting: func(string) ([]*approvals.Task, error) {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(waiting), nil
		},
		mayDecide: func(t *approvals.Task, user string) (bool, error) { return user == "U1" && t.ID == mine.ID, nil },
	}
	rig := newHomeRig(t, svc)
	rig.home.Opened("U1")
	if got := rig.timers.waiting(); len(got) != 1 || got[0].d != 0 {
		t.Fatalf("after opening: %d timers, want one due at once", len(got))
	}
	rig.timers.fire()
	homes := rig.fake.HomesOf("U1")
	if len(homes) != 1 {
		t.Fatalf("%d publishes, want 1", len(homes))
	}
	if b := homes[0].ViewButtons(); len(b) != 2 || b[0].Value != "tok-"+mine.ID || b[0].BlockID != "decision:"+mine.ID {
		t.Errorf("the home's buttons %+v", b)
	}
	if !strings.Contains(homes[0].ViewText(), slacktest.WorkspaceURL+"archives/C0PROD/p1700000000000001") {
		t.Error("the home does not link to the task's message")
	}

	// A change that concerns nobody here.
	rig.home.TaskChanged(other)
	rig.settled(t)
	if n := len(rig.timers.waiting()); n != 0 {
		t.Fatalf("a change to another's task scheduled %d publishes", n)
	}

	// A change to a task U1 may decide: one publish, after the settle time.
	rig.home.TaskChanged(mine)
	rig.settled(t)
	rig.home.TaskChanged(mine)
	rig.settled(t)
	got := rig.timers.waiting()
	if len(got) != 1 {
		t.Fatalf("two changes scheduled %d publishes, want 1", len(got))
	}
	if got[0].d < defaultHomeSettle {
		t.Errorf("scheduled in %s, want the settle time (%s) at least", got[0].d, defaultHomeSettle)
	}
	rig.clock.Advance(10 * time.Second)
	rig.timers.fire()

	// Decided: U1 may decide it no longer, but their home shows it, so it
	// is published again, within the interval of the last one.
	mu.Lock()
	waiting = nil
	mu.Unlock()
	decided := *mine
	decided.Status = approvals.StatusApproved
	rig.home.TaskChanged(&decided)
	rig.settled(t)
	got = rig.timers.waiting()
	if len(got) != 1 || got[0].d != defaultHomeInterval {
		t.Fatalf("after the decision: %+v, want one publish an interval after the last", got)
	}
	rig.timers.fire()
	homes = rig.fake.HomesOf("U1")
	if len(homes) != 3 || len(homes[2].ViewButtons()) != 0 || !strings.Contains(homes[2].ViewText(), "Nothing waits") {
		t.Errorf("%d publishes; the last lists %d buttons", len(homes), len(homes[len(homes)-1].ViewButtons()))
	}
	// Nobody who has not opened their home is published.
	if n := len(rig.fake.CallsTo("views.publish")); n != 3 {
		t.Errorf("%d publishes in all, want 3", n)
	}
}

// TestHomeNotice: the reply to a click in the home is shown on top of it,
// for a while.
func TestHomeNotice(t *testing.T) {
	t.Parallel()
	rig := newHomeRig(t, &fakeSurfaces{})
	rig.home.Notice("U1", "You are not an approver for this deployment.")
	rig.timers.fire()
	homes := rig.fake.HomesOf("U1")
	if len(homes) != 1 || !strings.Contains(homes[0].ViewText(), "You are not an approver") {
		t.Fatalf("publishes %d; want the notice shown", len(homes))
	}
	rig.clock.Advance(2 * homeNoticeTTL)
	rig.home.Opened("U1")
	rig.timers.fire()
	if homes = rig.fake.HomesOf("U1"); len(homes) != 2 || strings.Contains(homes[1].ViewText(), "You are not an approver") {
		t.Error("the notice outlived its minute")
	}
}

// TestHomeRefusedView: when Slack refuses the view, the minimal one is
// published; when reading the tasks fails, nothing is.
func TestHomeRefusedView(t *testing.T) {
	t.Parallel()
	rig := newHomeRig(t, &fakeSurfaces{waiting: func(string) ([]*approvals.Task, error) { return []*approvals.Task{homeTask(1)}, nil }})
	rig.fake.RefuseBlocks("invalid_blocks", 1)
	rig.home.Opened("U1")
	rig.timers.fire()
	homes := rig.fake.HomesOf("U1")
	if len(homes) != 2 || homes[0].Refused != "invalid_blocks" || homes[1].Refused != "" || len(homes[1].ViewButtons()) != 0 {
		t.Fatalf("publishes %+v, want the refused one and a minimal one", len(homes))
	}
	failing := newHomeRig(t, &fakeSurfaces{waiting: func(string) ([]*approvals.Task, error) { return nil, approvals.ErrUnavailable }})
	failing.home.Opened("U1")
	failing.timers.fire()
	if n := len(failing.fake.CallsTo("views.publish")); n != 0 {
		t.Errorf("%d publishes while the store is down", n)
	}
}

// TestHomeBounds: the people kept are bounded, and a closed home
// schedules nothing.
func TestHomeBounds(t *testing.T) {
	t.Parallel()
	var published atomic.Int32
	timers := &manualTimers{}
	home := NewHome(HomeConfig{Service: &fakeSurfaces{}, Publisher: func() HomePublisher {
		return publisherFunc(func(context.Context, string, HomeContent) error {
			published.Add(1)
			return nil
		})
	}})
	home.afterFunc = timers.afterFunc
	t.Cleanup(home.Close)
	for i := range maxHomeViewers + 10 {
		home.Opened(fmt.Sprintf("U%d", i))
		timers.fire()
	}
	home.mu.Lock()
	n := len(home.viewers)
	home.mu.Unlock()
	if n > maxHomeViewers {
		t.Errorf("%d people kept, at most %d", n, maxHomeViewers)
	}
	if got := published.Load(); got != maxHomeViewers+10 {
		t.Errorf("%d publishes, want one for each who opened", got)
	}
	home.Close()
	home.Opened("ULATE")
	home.TaskChanged(homeTask(1))
	if n := len(timers.waiting()); n != 0 {
		t.Errorf("a closed home scheduled %d publishes", n)
	}
}

type publisherFunc func(ctx context.Context, user string, c HomeContent) error

func (f publisherFunc) PublishHome(ctx context.Context, user string, c HomeContent) error {
	return f(ctx, user, c)
}

// TestHomeClickReplies: a click in the App Home comes with no channel; its
// refusal, and its outcome, are notices in the home.
func TestHomeClickReplies(t *testing.T) {
	t.Parallel()
	notices := &recordedNotices{}
	decide := func(_ context.Context, req approvals.DecideRequest) (*approvals.Task, error) {
		if req.Action == approvals.ActionReject {
			return fixtureTask(), approvals.ErrNotApprover
		}
		t := fixtureTask()
		t.Status = approvals.StatusApproved
		return t, nil
	}
	h := NewInteractions(InteractionsConfig{Decider: &fakeDecider{decide: decide}, Replier: &fakeReplier{}, Tools: testTools, Home: notices})
	for _, action := range []string{"reject", "approve"} {
		payload := slacktest.ViewClick{ActionID: action, BlockID: "decision:flexdeploy-8900", Value: clickToken, UserID: "U1", UserName: "alice", ViewID: "VHOME"}.Payload()
		var cb slack.InteractionCallback
		if err := json.Unmarshal([]byte(payload), &cb); err != nil {
			t.Fatal(err)
		}
		h.Handle(context.Background(), cb)
	}
	h.Close()
	got := notices.all()
	if len(got) != 2 || !strings.Contains(got[0], "U1: You are not an approver") || !strings.Contains(got[1], "U1: Done. Approved: shop v2.3 → PROD") {
		t.Errorf("notices %q", got)
	}
}

type recordedNotices struct {
	mu   sync.Mutex
	list []string
}

func (r *recordedNotices) Notice(user, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, user+": "+text)
}

func (r *recordedNotices) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.list)
}

// TestReviewClickIgnored: Slack tells the bot of a click on a link button
// too; it is answered 200 and decides nothing.
func TestReviewClickIgnored(t *testing.T) {
	t.Parallel()
	rig := newInteractionsRig(t, nil)
	body := formBody(blockActionsPayload("review", ""))
	if status, out := rig.post(t, body, signedHeaders(body, clickTime)); status != http.StatusOK || out != "" {
		t.Fatalf("answer %d %q, want 200 and nothing", status, out)
	}
	if n := len(rig.decider.Requests()); n != 0 {
		t.Errorf("Decide called %d times", n)
	}
	if n := len(rig.replier.Ephemerals()); n != 0 {
		t.Errorf("%d replies", n)
	}
}

// TestMessageLink: links are made only of what is a channel id and a ts.
func TestMessageLink(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ref  approvals.MessageRef
		want string
	}{
		{approvals.MessageRef{Channel: "C1", TS: "1700000000.000100"}, "https://example.slack.com/archives/C1/p1700000000000100"},
		{approvals.MessageRef{Channel: "C1|x", TS: "1.2"}, ""},
		{approvals.MessageRef{Channel: "C1", TS: "1.2>"}, ""},
		{approvals.MessageRef{Channel: "C1"}, ""},
	} {
		if got := messageLink(slacktest.WorkspaceURL, tc.ref); got != tc.want {
			t.Errorf("messageLink(%+v) = %q, want %q", tc.ref, got, tc.want)
		}
	}
	if got := utf8.RuneCountInString(listBlockID("decision:", strings.Repeat("x", 400))); got != maxBlockIDChars {
		t.Errorf("a block id of %d characters", got)
	}
}

// errFake is a failure of the fake service.
var errFake = errors.New("fake failure")

// TestNotifierTellsOfChanges: every post and update of a task's message
// is a moment the task changed, and the App Home hears of it.
func TestNotifierTellsOfChanges(t *testing.T) {
	t.Parallel()
	fake := newFakeSlack(t)
	n := notifierFor(fake, func(c *Config) { c.Policies = policies })
	var told []string
	n.surfaces.changed = func(t *approvals.Task) { told = append(told, string(t.Status)) }
	task := fixtureTask()
	if _, err := n.Post(context.Background(), task, slackChannel(task), "tok"); err != nil {
		t.Fatal(err)
	}
	task.Status = approvals.StatusApproved
	if err := n.Update(context.Background(), task, slackRefs(task), ""); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(told, []string{"pending", "approved"}) {
		t.Errorf("told of %q, want the post and the update", told)
	}
}
