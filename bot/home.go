package bot

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
)

// The App Home: "Waiting for you", every pending task a person may decide
// with its buttons, and "Recently decided" below, published with
// views.publish when they open the tab and again when a task they may
// decide changes (see Home).

// Queue is what the App Home and /approvals read of the approvals service.
type Queue interface {
	// Waiting returns the pending tasks the user may decide, newest
	// first, at most 50.
	Waiting(ctx context.Context, userID string) ([]*approvals.Task, error)
	// RecentlyDecided returns up to n tasks the user could have decided
	// that this process saw become final lately, newest first.
	RecentlyDecided(ctx context.Context, userID string, n int) ([]*approvals.Task, error)
	// Token returns a pending task's one-time token, for its buttons: the
	// outbox mints it, here as for the message.
	Token(t *approvals.Task) (string, error)
}

// TaskReader answers about one task.
type TaskReader interface {
	// Lookup returns a task by its id, or by its tool's own task id.
	Lookup(ctx context.Context, id string) (*approvals.Task, error)
	// MayDecide reports whether the user may decide the pending task.
	MayDecide(ctx context.Context, t *approvals.Task, userID string) (bool, error)
}

// SurfaceService is what the App Home and /approvals need of the service.
type SurfaceService interface {
	Queue
	TaskReader
}

// HomeNotices shows a person a line in their App Home: the reply to a click
// made there, where there is no channel to answer in.
type HomeNotices interface {
	Notice(user, text string)
}

const (
	// homeCallbackID names the App Home view.
	homeCallbackID = "approvals_home"
	// maxHomeTasks is how many waiting tasks the App Home lists (four
	// blocks each, within a view's 100 blocks with the rest).
	maxHomeTasks = 20
	// maxHomeRecent is how many decided tasks it lists below them.
	maxHomeRecent = 10
	// maxViewBlocks is Slack's limit of blocks in a view.
	maxViewBlocks = 100
	// maxBlockIDChars is Slack's limit of a block_id.
	maxBlockIDChars = 255
	// maxHomeDescription bounds a task's description in a list.
	maxHomeDescription = 300

	// defaultHomeInterval is the least time between two publishes of one
	// person's home, however often tasks change.
	defaultHomeInterval = 3 * time.Second
	// defaultHomeSettle gathers a task's changes before the homes showing
	// it are published, so that a publish reads what the outbox's round
	// wrote (the message's link).
	defaultHomeSettle = time.Second
	// homeViewerTTL is how long after opening their App Home a person's
	// home is kept up to date.
	homeViewerTTL = 12 * time.Hour
	// maxHomeViewers bounds the people whose homes are kept up to date;
	// past it the one who opened theirs longest ago is dropped.
	maxHomeViewers = 1000
	// maxHomeChanges bounds the changed tasks waiting to be looked at;
	// past it every home is published again instead.
	maxHomeChanges = 1000
	// homePublishers bounds the publishes under way at once.
	homePublishers = 4
	// homeNoticeTTL is how long a click's reply stays in the home.
	homeNoticeTTL = time.Minute
	// homePublishTimeout bounds reading the tasks and publishing a home.
	homePublishTimeout = 15 * time.Second
)

// HomeConfig configures the App Home.
type HomeConfig struct {
	// Service lists the tasks; nil publishes nothing.
	Service SurfaceService
	// Publisher returns what publishes views in force (the connection's
	// Notifier), nil while there is none.
	Publisher func() HomePublisher
	// Interval is the least time between two publishes of one person's
	// home; default 3 s. Settle is how long changes are gathered before
	// the homes showing them are published; default 1 s.
	Interval, Settle time.Duration
	// Clock is the time notices and viewers age by; default time.Now.
	Clock  func() time.Time
	Logger zerolog.Logger
}

// HomePublisher publishes a person's App Home.
type HomePublisher interface {
	PublishHome(ctx context.Context, user string, content HomeContent) error
}

// Home keeps the App Homes of the people who opened theirs recently up to
// date. A publish happens when someone opens their home (app_home_opened),
// when a click made there is answered (a notice), and when a task changes
// that the home shows or that the person may decide: the Notifier tells of
// every task whose message it posts or updates, which are the moments a
// task changes. Changes are gathered for Settle, and one person's home is
// published at most once every Interval; a bounded number of publishes run
// at once. The people are this process's memory (at most 1000, each for
// 12 hours after they last opened their home): with several replicas, a
// home is kept up to date by the replica that heard it opened, and after a
// restart once it is opened again.
type Home struct {
	svc      SurfaceService
	pub      func() HomePublisher
	interval time.Duration
	settle   time.Duration
	now      func() time.Time
	log      zerolog.Logger
	slots    chan struct{}
	// afterFunc schedules a publish; tests replace it.
	afterFunc func(time.Duration, func()) stopper

	mu       sync.Mutex
	viewers  map[string]*viewer
	changes  map[string]*approvals.Task
	everyone bool // changes overflowed: publish every home
	scanning bool
	closed   bool
	work     sync.WaitGroup
}

// viewer is one person whose home is kept up to date.
type viewer struct {
	opened    time.Time
	published time.Time
	// shown are the tasks the last publish listed as waiting.
	shown map[string]bool
	// timer is the publish scheduled, busy one under way, again asks for
	// another after it.
	timer       stopper
	busy, again bool
	notice      string
	noticeUntil time.Time
}

var _ HomeNotices = (*Home)(nil)

// stopper is a scheduled publish: time.AfterFunc's timer, or a test's.
type stopper interface{ Stop() bool }

func afterFunc(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) }

// NewHome returns the App Home keeper; Close it when done.
func NewHome(cfg HomeConfig) *Home {
	h := &Home{
		svc:      cfg.Service,
		pub:      cfg.Publisher,
		interval: cfg.Interval,
		settle:   cfg.Settle,
		now:      cfg.Clock,
		log:      cfg.Logger,
		slots:    make(chan struct{}, homePublishers),
		viewers:  map[string]*viewer{},
		changes:  map[string]*approvals.Task{},

		afterFunc: afterFunc,
	}
	if h.interval <= 0 {
		h.interval = defaultHomeInterval
	}
	if h.settle <= 0 {
		h.settle = defaultHomeSettle
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h
}

// Opened publishes the person's home, who just opened it, and keeps it up
// to date from now on.
func (h *Home) Opened(user string) {
	if user == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.remember(user).opened = h.now()
	h.scheduleLocked(user, 0)
}

// Notice shows text (mrkdwn, escaped by the caller) at the top of the
// person's home for a minute, publishing it at once.
func (h *Home) Notice(user, text string) {
	if user == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	v := h.remember(user)
	if v.opened.IsZero() {
		v.opened = h.now() // the click came from the home: it is open
	}
	v.notice, v.noticeUntil = text, h.now().Add(homeNoticeTTL)
	h.scheduleLocked(user, 0)
}

// remember returns the person's viewer, making room for a new one. h.mu is
// held.
func (h *Home) remember(user string) *viewer {
	if v := h.viewers[user]; v != nil {
		return v
	}
	if len(h.viewers) >= maxHomeViewers {
		oldest := ""
		for u, v := range h.viewers {
			if v.timer == nil && !v.busy && (oldest == "" || v.opened.Before(h.viewers[oldest].opened)) {
				oldest = u
			}
		}
		delete(h.viewers, oldest)
	}
	v := &viewer{}
	h.viewers[user] = v
	return v
}

// TaskChanged is told of a task whose message was posted or updated. It
// returns at once: the homes to publish are worked out apart.
func (h *Home) TaskChanged(t *approvals.Task) {
	if t == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || len(h.viewers) == 0 {
		return
	}
	if len(h.changes) >= maxHomeChanges {
		h.everyone = true
	} else {
		cp := *t // the outbox goes on changing its copy
		h.changes[t.ID] = &cp
	}
	if !h.scanning {
		h.scanning = true
		h.work.Add(1)
		go h.scan()
	}
}

// scan works out whose homes the changed tasks concern until none are
// left: those that showed a task, and those who may decide it now.
func (h *Home) scan() {
	defer h.work.Done()
	for {
		h.mu.Lock()
		changes, everyone := h.changes, h.everyone
		h.changes, h.everyone = map[string]*approvals.Task{}, false
		if h.closed || (len(changes) == 0 && !everyone) {
			h.scanning = false
			h.mu.Unlock()
			return
		}
		now := h.now()
		shown := map[string]map[string]bool{}
		for u, v := range h.viewers {
			if now.Sub(v.opened) > homeViewerTTL && v.timer == nil && !v.busy {
				delete(h.viewers, u) // not opened for long: no longer kept
				continue
			}
			shown[u] = v.shown
		}
		h.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), homePublishTimeout)
		var due []string
		for user, ids := range shown {
			if everyone || h.concerns(ctx, user, ids, changes) {
				due = append(due, user)
			}
		}
		cancel()
		h.mu.Lock()
		for _, user := range due {
			h.scheduleLocked(user, h.settle)
		}
		h.mu.Unlock()
	}
}

// concerns reports whether any of the changed tasks is in the person's
// home or may now be decided by them.
func (h *Home) concerns(ctx context.Context, user string, shown map[string]bool, changes map[string]*approvals.Task) bool {
	for id, t := range changes {
		if shown[id] {
			return true
		}
		if h.svc == nil || t.Status.Final() {
			continue
		}
		ok, err := h.svc.MayDecide(ctx, t, user)
		if err != nil {
			// Publishing reads who may decide again, and a person who
			// cannot be told apart is better shown the truth once more.
			return true
		}
		if ok {
			return true
		}
	}
	return false
}

// scheduleLocked publishes the person's home after delay, and not sooner
// than Interval after the last publish; one scheduled or under way covers
// every change before it. h.mu is held.
func (h *Home) scheduleLocked(user string, delay time.Duration) {
	v := h.viewers[user]
	if v == nil || h.closed {
		return
	}
	if v.busy {
		v.again = true
		return
	}
	if v.timer != nil {
		return
	}
	now := h.now()
	at := now.Add(delay)
	if next := v.published.Add(h.interval); !v.published.IsZero() && next.After(at) {
		at = next
	}
	h.work.Add(1)
	v.timer = h.afterFunc(at.Sub(now), func() { h.publish(user) })
}

// publish publishes the person's home now.
func (h *Home) publish(user string) {
	defer h.work.Done()
	h.mu.Lock()
	v := h.viewers[user]
	if v == nil || h.closed {
		h.mu.Unlock()
		return
	}
	v.timer, v.busy = nil, true
	notice := ""
	if h.now().Before(v.noticeUntil) {
		notice = v.notice
	}
	h.mu.Unlock()

	h.slots <- struct{}{}
	shown, err := h.publishNow(user, notice)
	<-h.slots

	h.mu.Lock()
	defer h.mu.Unlock()
	v.busy = false
	v.published = h.now()
	if err == nil {
		v.shown = shown
	}
	if v.again {
		v.again = false
		h.scheduleLocked(user, 0)
	}
}

// publishNow reads what the person's home shows and publishes it; it
// returns the waiting tasks listed.
func (h *Home) publishNow(user, notice string) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), homePublishTimeout)
	defer cancel()
	ctx = h.log.WithContext(ctx)
	var pub HomePublisher
	if h.pub != nil {
		pub = h.pub()
	}
	if pub == nil || h.svc == nil {
		return nil, errNotConfigured
	}
	content, err := HomeContentFor(ctx, h.svc, user)
	if err != nil {
		h.log.Warn().Err(err).Str("user", user).Msg("slack: read the tasks of an App Home")
		return nil, err
	}
	content.Notice = notice
	if err := pub.PublishHome(ctx, user, content); err != nil {
		h.log.Warn().Err(err).Str("user", user).Msg("slack: publish an App Home")
		return nil, err
	}
	shown := make(map[string]bool, len(content.Waiting))
	for _, w := range content.Waiting {
		shown[w.Task.ID] = true
	}
	return shown, nil
}

// Close stops the publishes scheduled and waits for those under way.
func (h *Home) Close() {
	h.mu.Lock()
	h.closed = true
	for _, v := range h.viewers {
		if v.timer != nil && v.timer.Stop() {
			v.timer = nil
			h.work.Done()
		}
	}
	h.mu.Unlock()
	h.work.Wait()
}

// HomeTask is a pending task with the token its buttons carry.
type HomeTask struct {
	Task  *approvals.Task
	Token string
}

// HomeContent is what one person's App Home shows.
type HomeContent struct {
	// Waiting are the tasks listed with their buttons, newest first;
	// More counts those that wait too but are not listed.
	Waiting []HomeTask
	More    int
	// Recent are tasks decided lately, newest first.
	Recent []*approvals.Task
	// Notice is a line shown on top (mrkdwn, escaped): a click's reply.
	Notice string
}

// HomeContentFor reads what the person's home shows: the newest
// maxHomeTasks tasks waiting for them (a task that became final on the way
// is left out) and the last maxHomeRecent decided.
func HomeContentFor(ctx context.Context, svc Queue, user string) (HomeContent, error) {
	var c HomeContent
	waiting, err := svc.Waiting(ctx, user)
	if err != nil {
		return c, fmt.Errorf("tasks waiting for %s: %w", user, err)
	}
	c.Waiting, c.More = withTokens(svc, waiting, maxHomeTasks)
	if c.Recent, err = svc.RecentlyDecided(ctx, user, maxHomeRecent); err != nil {
		return c, fmt.Errorf("tasks decided lately for %s: %w", user, err)
	}
	return c, nil
}

// withTokens pairs the first most tasks with their tokens and counts the
// rest; a task without a token (decided meanwhile) is left out.
func withTokens(svc Queue, tasks []*approvals.Task, most int) (listed []HomeTask, more int) {
	for _, t := range tasks {
		if len(listed) == most {
			more++
			continue
		}
		token, err := svc.Token(t)
		if err != nil {
			continue
		}
		listed = append(listed, HomeTask{Task: t, Token: token})
	}
	return listed, more
}

// PublishHome renders the person's App Home and publishes it. When Slack
// refuses the view for what it shows, a minimal one (counts, no buttons)
// is published instead.
func (n *Notifier) PublishHome(ctx context.Context, user string, content HomeContent) error {
	op := "publish the App Home of " + user
	if err := n.ready(op); err != nil {
		return err
	}
	publish := func(blocks []slack.Block) error {
		_, err := n.api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: user, View: slack.HomeTabViewRequest{
			Type:       slack.VTHomeTab,
			Blocks:     slack.Blocks{BlockSet: blocks},
			CallbackID: homeCallbackID,
		}})
		return err
	}
	err := publish(RenderHome(content, n.renderOptions, n.workspaceURL(ctx)))
	if code, refused := refusedContent(err); refused {
		n.logger(ctx).Warn().Str("op", op).Str("code", code).Str("fallback", "minimal").
			Msg("slack: Slack refused the App Home; publishing a minimal one instead")
		err = publish(RenderMinimalHome(content))
	}
	if err != nil {
		return n.mapError(ctx, op, err)
	}
	return nil
}

// RenderHome renders an App Home: a notice, "Waiting for you" with each
// task and its buttons (or its review link), "Recently decided" below.
// opts gives each task's rendering options for its token; workspace is the
// workspace's URL, for links to the channel messages ("" links none).
func RenderHome(c HomeContent, opts func(t *approvals.Task, token string) RenderOptions, workspace string) []slack.Block {
	var blocks []slack.Block
	if c.Notice != "" {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(truncKeepEntities("🔔 "+c.Notice, maxSectionChars)), nil, nil,
			slack.SectionBlockOptionBlockID("notice")))
	}
	title := "Waiting for you"
	if n := len(c.Waiting) + c.More; n > 0 {
		title = fmt.Sprintf("Waiting for you (%d)", n)
	}
	blocks = append(blocks, slack.NewHeaderBlock(plainText(title), slack.HeaderBlockOptionBlockID("waiting")))
	if len(c.Waiting) == 0 {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn("Nothing waits for your decision."), nil, nil,
			slack.SectionBlockOptionBlockID("waiting_none")))
	}
	for _, w := range c.Waiting {
		r := newRendering(w.Task, opts(w.Task, w.Token))
		blocks = append(blocks, r.listBlocks(workspace)...)
		blocks = append(blocks, slack.NewDividerBlock())
	}
	if c.More > 0 {
		blocks = append(blocks, slack.NewContextBlock("waiting_more",
			mrkdwn(fmt.Sprintf("The newest %d are listed; %d more wait for you.", len(c.Waiting), c.More))))
	}
	blocks = append(blocks, slack.NewHeaderBlock(plainText("Recently decided"), slack.HeaderBlockOptionBlockID("recent")))
	if len(c.Recent) == 0 {
		blocks = append(blocks, slack.NewContextBlock("recent_none", mrkdwn("Nothing decided lately.")))
	}
	for i, t := range c.Recent {
		if i == maxHomeRecent {
			break
		}
		r := newRendering(t, opts(t, ""))
		blocks = append(blocks, slack.NewContextBlock(listBlockID("recent:", t.ID), mrkdwn(r.recentLine(workspace))))
	}
	if len(blocks) > maxViewBlocks {
		blocks = blocks[:maxViewBlocks] // never with the limits above
	}
	return blocks
}

// RenderMinimalHome is the App Home Slack cannot refuse for what a task
// brought: how many tasks wait, and how to list them, without buttons.
func RenderMinimalHome(c HomeContent) []slack.Block {
	text := "Nothing waits for your decision."
	if n := len(c.Waiting) + c.More; n > 0 {
		text = fmt.Sprintf("%d deployments wait for your decision. Type `/approvals` to list them, or decide them in their channels.", n)
	}
	return []slack.Block{
		slack.NewHeaderBlock(plainText("Waiting for you"), slack.HeaderBlockOptionBlockID("waiting")),
		slack.NewSectionBlock(mrkdwn(text), nil, nil, slack.SectionBlockOptionBlockID("waiting_count")),
	}
}

// listBlocks are a pending task in a list (the App Home, /approvals): what
// and where, its context line, and its buttons (or review link). Their
// block ids name the task, so that several tasks' blocks stay apart.
func (r *rendering) listBlocks(workspace string) []slack.Block {
	blocks := []slack.Block{
		slack.NewSectionBlock(mrkdwn(r.summary(workspace)), nil, nil, slack.SectionBlockOptionBlockID(listBlockID("task:", r.t.ID))),
	}
	if about := r.aboutLine(); len(about) > 0 {
		blocks = append(blocks, slack.NewContextBlock(listBlockID("about:", r.t.ID), about...))
	}
	if b := r.listButtons(); b != nil {
		blocks = append(blocks, b)
	}
	return blocks
}

// listButtons are the task's buttons in a list: the same approve and
// reject (or review link) as on its message, under a block id of its own.
func (r *rendering) listButtons() slack.Block {
	if r.policy == nil || !r.pending || r.token == "" || r.timedOut {
		return nil
	}
	id := listBlockID("decision:", r.t.ID)
	if r.policy.RequireSSO {
		switch b := r.reviewBlock().(type) {
		case *slack.ActionBlock:
			b.BlockID = id
			return b
		case *slack.ContextBlock:
			b.BlockID = listBlockID("review:", r.t.ID)
			return b
		}
		return nil
	}
	b := r.decisionButtons(fullCuts())
	b.BlockID = id
	return b
}

// summary is what a list says of a task: its subject (linked to its
// message), the description's start, its tool's name (linked to the
// task there) and who requested it.
func (r *rendering) summary(workspace string) string {
	t := r.t
	subject := r.subject
	if subject == "" {
		subject = "A deployment"
	}
	title := "*" + escapeTrunc(subject, maxHeaderChars) + "*"
	if link := messageLink(workspace, slackMessage(t)); link != "" {
		title = "*<" + link + "|" + escapeTrunc(subject, maxHeaderChars) + ">*"
	}
	lines := []string{title}
	if d := strings.TrimSpace(oneLine(t.Description)); d != "" {
		lines = append(lines, escapeTrunc(d, maxHomeDescription))
	}
	var about []string
	if label := sourceLabel(t, r.display, maxSourceChars); label != "" {
		if r.url != "" && utf8.RuneCountInString(r.url) < maxFieldChars {
			label = "<" + r.url + "|" + label + ">"
		}
		about = append(about, label)
	}
	if by := strings.TrimSpace(oneLine(t.RequestedBy)); by != "" {
		about = append(about, "requested by "+escapeTrunc(by, maxNameChars))
	}
	if len(about) > 0 {
		lines = append(lines, strings.Join(about, " · "))
	}
	return truncKeepEntities(strings.Join(lines, "\n"), maxSectionChars)
}

// aboutLine is a pending task's context in a list: its expiry, its policy,
// its progress and whether approving is closed now.
func (r *rendering) aboutLine() []slack.MixedElement {
	t := r.t
	var out []slack.MixedElement
	if !t.ExpiresAt.IsZero() {
		verb := "Expires"
		if r.timedOut {
			verb = "Expired"
		}
		out = append(out, mrkdwn(verb+" "+slackDate(t.ExpiresAt)))
	}
	if r.policy == nil {
		return out
	}
	out = append(out, mrkdwn(policyLine(t, r.policy, r.approvers, maxSectionChars/4)))
	var progress []string
	if need := requiredApprovals(t, r.policy); need > 1 {
		line := fmt.Sprintf("%d of %d approvals", len(t.Approvals), need)
		if who := joinPeople(r.voters, maxSectionChars/4); who != "" {
			line += ": " + who
		}
		progress = append(progress, line)
	}
	if line := requirementLine(t, r.policy); line != "" {
		progress = append(progress, line)
	}
	if len(progress) > 0 {
		out = append(out, mrkdwn(truncKeepEntities(strings.Join(progress, " · "), maxSectionChars)))
	}
	if g, ok := r.gateBlock().(*slack.ContextBlock); ok && g != nil {
		out = append(out, g.ContextElements.Elements...)
	}
	return out
}

// recentLine is a decided task in "Recently decided": how it ended, what,
// by whom and when, and its receipt.
func (r *rendering) recentLine(workspace string) string {
	t := r.t
	verb := "Status " + escapeTrunc(oneLine(string(t.Status)), maxNameChars)
	switch t.Status {
	case approvals.StatusApproved:
		verb = "✅ Approved"
		if t.BrokeGlass() {
			verb = "🚨 BREAK-GLASS · ✅ Approved"
		}
	case approvals.StatusRejected:
		verb = "❌ Rejected"
	case approvals.StatusExpired:
		verb = "⌛ Expired"
	}
	subject := r.subject
	if subject == "" {
		subject = "a deployment"
	}
	what := escapeTrunc(subject, maxHeaderChars)
	if link := messageLink(workspace, slackMessage(t)); link != "" {
		what = "<" + link + "|" + what + ">"
	}
	line := verb + " · *" + what + "*"
	if t.DecidedBy != nil {
		line += " by " + mentionUser(t.DecidedBy.ID, t.DecidedBy.Name)
	} else if t.Status != approvals.StatusExpired {
		line += " outside Slack"
	}
	if t.DecidedAt != nil && !t.DecidedAt.IsZero() {
		line += " · " + slackDate(*t.DecidedAt)
	}
	if h := t.Seal.ShortHash(); h != "" {
		line += " · Receipt " + escape(h)
	}
	return truncKeepEntities(line, maxSectionChars)
}

// listBlockID is a block id naming the task, within Slack's limit.
func listBlockID(prefix, taskID string) string {
	id := prefix + taskID
	if len(id) > maxBlockIDChars {
		id = id[:maxBlockIDChars]
	}
	return id
}

// messageLink is the address of a posted message in the workspace, as
// Slack's permalinks are written ({workspace}/archives/{channel}/p{ts
// without its dot}); "" when the workspace or the message is not known.
func messageLink(workspace string, ref approvals.MessageRef) string {
	if workspace == "" || ref.Channel == "" || ref.TS == "" ||
		!slackIDPattern.MatchString(ref.Channel) || strings.Trim(ref.TS, "0123456789.") != "" {
		return ""
	}
	return safeLink(strings.TrimSuffix(workspace, "/") + "/archives/" + ref.Channel + "/p" + strings.ReplaceAll(ref.TS, ".", ""))
}

// surfaceState is what a Notifier knows for the App Home and /approvals.
// The Runtime sets it once, before the notifier is used.
type surfaceState struct {
	// publicURL is server.public_url, where review links go.
	publicURL string
	// changed is told of every task whose message was posted or updated.
	changed func(*approvals.Task)
	// workspace caches the workspace's address, for links to messages.
	workspace *workspaceCache
}

func (s *surfaceState) taskChanged(t *approvals.Task) {
	if s.changed != nil {
		s.changed(t)
	}
}

// workspaceCache is the workspace's address, asked of Slack (auth.test)
// once per connection: links to messages are made from it instead of one
// chat.getPermalink call per task and publish.
type workspaceCache struct {
	mu    sync.Mutex
	url   string
	tried time.Time
}

// workspaceRetry is how long a failed auth.test is not asked again: links
// are a convenience, and a publish must not wait on them.
const workspaceRetry = time.Minute

// workspaceURL is the workspace's address ("https://example.slack.com/"),
// or "" while Slack has not said it.
func (n *Notifier) workspaceURL(ctx context.Context) string {
	w := n.surfaces.workspace
	if w == nil {
		return ""
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.url != "" || (!w.tried.IsZero() && time.Since(w.tried) < workspaceRetry) {
		return w.url
	}
	w.tried = time.Now()
	resp, err := n.api.AuthTestContext(ctx)
	if err != nil {
		n.logger(ctx).Warn().Err(n.mapError(ctx, "ask for the workspace's address", err)).Msg("slack: links to messages are left out")
		return ""
	}
	if u, perr := url.Parse(resp.URL); perr != nil || u.Scheme != "https" || u.Host == "" {
		n.logger(ctx).Warn().Msg("slack: auth.test gave no https workspace address; links to messages are left out")
		return ""
	}
	w.url = resp.URL
	return w.url
}

// errNoService answers while no approvals service is wired to the runtime.
var errNoService = errors.New("slack: no approvals service is wired to the Slack runtime")
