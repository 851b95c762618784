package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
)

// The /approvals slash command: the caller's pending tasks with their
// buttons, one task's status and audit trail, or help. Every answer is an
// ephemeral message, seen by the caller only.

const (
	// maxListBlocks is Slack's limit of blocks in a message.
	maxListBlocks = 50
	// maxAuditLines is how many of a task's latest audit records
	// /approvals ID shows, as far as the message's budget allows.
	maxAuditLines = 20
	// maxAuditChars bounds the audit section (a section takes 3000).
	maxAuditChars = 2800
	// maxAuditDetail bounds one record's detail.
	maxAuditDetail = 200
	// maxCommandArg bounds the task id quoted back to the caller.
	maxCommandArg = 100
)

// CommandView renders what a command answers for the connection in force:
// each task's rendering options and the workspace's address. *Notifier is
// one.
type CommandView interface {
	renderOptions(t *approvals.Task, token string) RenderOptions
	workspaceURL(ctx context.Context) string
}

var _ CommandView = (*Notifier)(nil)

// CommandsConfig configures the slash command endpoint.
type CommandsConfig struct {
	// Verifier checks the requests' signatures (HTTP only).
	Verifier *Verifier
	// Service reads the tasks; nil answers that approvalbot is not ready.
	Service      SurfaceService
	View         CommandView
	MaxBodyBytes int64 // default 64 KiB
	// Clock is the time visibility is judged at; default time.Now.
	Clock func() time.Time
}

// Commands answers the /approvals slash command: POST /slack/commands and
// Socket Mode's slash_commands envelopes (Handle).
type Commands struct {
	verifier *Verifier
	svc      SurfaceService
	view     CommandView
	maxBody  int64
	now      func() time.Time
}

// NewCommands returns the slash command endpoint.
func NewCommands(cfg CommandsConfig) *Commands {
	maxBody := cfg.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = defaultMaxBodyBytes
	}
	now := cfg.Clock
	if now == nil {
		now = time.Now
	}
	return &Commands{verifier: cfg.Verifier, svc: cfg.Service, view: cfg.View, maxBody: maxBody, now: now}
}

// CommandReply is the answer to a slash command: a message only the
// caller sees.
type CommandReply struct {
	ResponseType string        `json:"response_type"`
	Text         string        `json:"text"`
	Blocks       []slack.Block `json:"blocks,omitempty"`
}

func textReply(text string) *CommandReply {
	return &CommandReply{ResponseType: "ephemeral", Text: text}
}

// ServeHTTP serves POST /slack/commands: the signature is checked on the
// raw body first (401 when it fails), then the command is answered in the
// response, within Slack's 3 seconds.
func (c *Commands) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := readSigned(w, r, c.verifier, c.maxBody, "slash command")
	if !ok {
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "malformed form body")
		return
	}
	cmd := slack.SlashCommand{
		Command:   form.Get("command"),
		Text:      form.Get("text"),
		UserID:    form.Get("user_id"),
		UserName:  form.Get("user_name"),
		ChannelID: form.Get("channel_id"),
		TeamID:    form.Get("team_id"),
		TriggerID: form.Get("trigger_id"),
	}
	reply := c.Handle(r.Context(), cmd)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(reply)
}

// Handle answers one slash command within ackWithin: what takes longer is
// answered with a request to try again.
func (c *Commands) Handle(ctx context.Context, cmd slack.SlashCommand) *CommandReply {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackWithin)
	defer cancel()
	done := make(chan *CommandReply, 1)
	go func() { done <- c.reply(hctx, cmd) }()
	select {
	case r := <-done:
		return r
	case <-hctx.Done():
		zerolog.Ctx(ctx).Warn().Msg("slack: slash command not answered in time")
		return textReply("approvalbot took too long to look this up; try again in a moment.")
	}
}

func (c *Commands) reply(ctx context.Context, cmd slack.SlashCommand) *CommandReply {
	if cmd.UserID == "" {
		return textReply("Slack did not say who asked.")
	}
	if c.svc == nil || c.view == nil {
		return textReply(approvals.Reply(approvals.ErrUnavailable, "", DisplayName))
	}
	args := strings.Fields(cmd.Text)
	switch {
	case len(args) == 0 || strings.EqualFold(args[0], "list"):
		return c.list(ctx, cmd.UserID)
	case strings.EqualFold(args[0], "help"):
		return helpReply(cmd.Command)
	case isDelegationCommand(args):
		return c.delegation(ctx, cmd, args)
	}
	// Slack escapes &, < and > (should_escape): the id as typed.
	return c.status(ctx, cmd.UserID, html.UnescapeString(args[0]))
}

// helpReply says what the command does.
func helpReply(command string) *CommandReply {
	name := strings.TrimSpace(oneLine(command))
	if name == "" || !strings.HasPrefix(name, "/") {
		name = "/approvals"
	}
	name = escapeTrunc(name, 40)
	text := strings.Join([]string{
		"*" + name + "* lists the deployments waiting for your decision, with their buttons.",
		"*" + name + " ID* shows one task's status and audit trail: its id (as in `/v1/tasks/ID`), or its tool's own task id where the tool's tasks can be read so.",
		"*" + name + " help* shows this.",
		"The app's Home tab lists what waits for you too, and keeps up to date.",
	}, "\n")
	return &CommandReply{ResponseType: "ephemeral", Text: text,
		Blocks: []slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil, slack.SectionBlockOptionBlockID("help"))}}
}

// list answers /approvals: the caller's pending tasks with their buttons,
// as many as the message's budget takes.
func (c *Commands) list(ctx context.Context, user string) *CommandReply {
	waiting, err := c.svc.Waiting(ctx, user)
	if err != nil {
		return textReply(commandErrorText(ctx, err))
	}
	items, more := withTokens(c.svc, waiting, maxListBlocks)
	text, blocks := RenderTaskList(items, more, c.view.renderOptions, c.view.workspaceURL(ctx))
	return &CommandReply{ResponseType: "ephemeral", Text: text, Blocks: blocks}
}

// status answers /approvals ID: the task's status and audit trail, with
// its buttons when the caller may decide it. Only those its policy names
// (and those who voted on it) see a task; to anyone else it does not
// exist, so that ids cannot be probed.
func (c *Commands) status(ctx context.Context, user, id string) *CommandReply {
	notFound := textReply("No task " + escapeTrunc(oneLine(id), maxCommandArg) + " that you may see. `/approvals` lists those waiting for you.")
	t, err := c.svc.Lookup(ctx, id)
	if errors.Is(err, approvals.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return textReply(commandErrorText(ctx, err))
	}
	visible, may, err := c.visibility(ctx, t, user)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("slack: slash command: check who may see a task")
		return textReply("Could not check who may see this task; try again in a minute.")
	}
	if !visible {
		return notFound
	}
	token := ""
	if may {
		if token, err = c.svc.Token(t); err != nil {
			token = ""
		}
	}
	text, blocks := RenderTaskStatus(t, c.view.renderOptions(t, token), c.view.workspaceURL(ctx))
	return &CommandReply{ResponseType: "ephemeral", Text: text, Blocks: blocks}
}

// visibility reports whether the user may see the task (its policy names
// them, or they voted on it) and whether they may decide it now.
func (c *Commands) visibility(ctx context.Context, t *approvals.Task, user string) (visible, may bool, err error) {
	asPending := *t
	asPending.Status = approvals.StatusPending // whom the policy names
	named, err := c.svc.MayDecide(ctx, &asPending, user)
	if err != nil {
		return false, false, err
	}
	may = named && t.Status == approvals.StatusPending && !t.Expired(c.now())
	visible = named || t.HasVoted(user, "") || (t.DecidedBy != nil && t.DecidedBy.ID == user)
	return visible, may, nil
}

// commandErrorText is what the caller reads when a look-up failed.
func commandErrorText(ctx context.Context, err error) string {
	kind := approvals.KindOf(err)
	if kind.Code == approvals.CodeInternal {
		zerolog.Ctx(ctx).Error().Err(err).Msg("slack: slash command")
	} else {
		zerolog.Ctx(ctx).Warn().Err(err).Str("code", string(kind.Code)).Msg("slack: slash command")
	}
	return escape(approvals.Reply(err, "", DisplayName))
}

// RenderTaskList renders the answer to /approvals: the tasks with their
// buttons, newest first, as many as fit a message (its 50 blocks and
// blocksBudget), then how many more wait. more counts tasks not in items.
func RenderTaskList(items []HomeTask, more int, opts func(t *approvals.Task, token string) RenderOptions, workspace string) (text string, blocks []slack.Block) {
	total := len(items) + more
	if total == 0 {
		text = "Nothing waits for your decision."
		return text, []slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil, slack.SectionBlockOptionBlockID("list"))}
	}
	noun := "deployments wait"
	if total == 1 {
		noun = "deployment waits"
	}
	text = fmt.Sprintf("%d %s for your decision.", total, noun)
	blocks = []slack.Block{slack.NewSectionBlock(mrkdwn("*"+text+"*"), nil, nil, slack.SectionBlockOptionBlockID("list"))}
	moreLine := func(n int) slack.Block {
		return slack.NewContextBlock("list_more", mrkdwn(fmt.Sprintf(
			"%d more wait for you: the app's Home tab lists the newest 20, and their channels have them all.", n)))
	}
	shown := 0
	for _, it := range items {
		r := newRendering(it.Task, opts(it.Task, it.Token))
		next := append(append([]slack.Block(nil), blocks...), r.listBlocks(workspace)...)
		if len(next)+1 > maxListBlocks || !fits(append(next, moreLine(total))) {
			break
		}
		blocks = next
		shown++
	}
	if shown < total {
		blocks = append(blocks, moreLine(total-shown))
	}
	return text, blocks
}

// RenderTaskStatus renders the answer to /approvals ID: the task, how it
// stands or ended, its buttons if opts carries a token, and as much of its
// latest audit trail as fits.
func RenderTaskStatus(t *approvals.Task, opts RenderOptions, workspace string) (text string, blocks []slack.Block) {
	r := newRendering(t, opts)
	text = r.fallbackText()
	header := "Deployment approval"
	if r.subject != "" {
		header += ": " + r.subject
	}
	head := []slack.Block{
		slack.NewHeaderBlock(plainText(plainTrunc(header, maxHeaderChars)), slack.HeaderBlockOptionBlockID(blockIDHeader)),
		slack.NewSectionBlock(mrkdwn(r.summary(workspace)), nil, nil, slack.SectionBlockOptionBlockID("task")),
	}
	if r.pending {
		if about := r.aboutLine(); len(about) > 0 {
			head = append(head, slack.NewContextBlock(blockIDContext, about...))
		}
		if b := r.listButtons(); b != nil {
			head = append(head, b)
		}
	} else {
		c := fullCuts()
		head = append(head, slack.NewSectionBlock(mrkdwn(truncKeepEntities(outcomeText(t, r.policy, r.tool, r.voters, c), maxSectionChars)), nil, nil,
			slack.SectionBlockOptionBlockID(blockIDOutcome)))
		if line := deliveryLine(t, r.tool, c.lastError); line != "" {
			head = append(head, slack.NewContextBlock(blockIDDelivery, mrkdwn(line)))
		}
		if b := receiptBlock(t); b != nil {
			head = append(head, b)
		}
	}
	for lines := maxAuditLines; lines > 0; lines /= 2 {
		blocks = append(append([]slack.Block(nil), head...), auditBlock(t, lines))
		if fits(blocks) {
			return text, blocks
		}
	}
	return text, head
}

// auditBlock lists the task's latest audit records, at most lines of
// them and maxAuditChars, saying how many earlier ones are left out.
func auditBlock(t *approvals.Task, lines int) slack.Block {
	var out []string
	n := 0
	for i := len(t.Audit) - 1; i >= 0 && len(out) < lines; i-- {
		line := auditLine(t.Audit[i])
		if n+utf8.RuneCountInString(line)+1 > maxAuditChars {
			break
		}
		out = append(out, line)
		n += utf8.RuneCountInString(line) + 1
	}
	text := "*Audit trail*"
	if left := len(t.Audit) - len(out); left > 0 {
		text += fmt.Sprintf(" (the latest %d of %d records)", len(out), len(t.Audit))
	}
	for i := len(out) - 1; i >= 0; i-- {
		text += "\n" + out[i]
	}
	if len(t.Audit) == 0 {
		text += "\nNo records."
	}
	return slack.NewSectionBlock(mrkdwn(text), nil, nil, slack.SectionBlockOptionBlockID("audit"))
}

// auditLine is one record: when, what, who, why.
func auditLine(rec approvals.AuditRecord) string {
	line := "• " + slackDate(rec.At) + " " + escapeTrunc(oneLine(rec.Event), maxNameChars)
	if rec.User != "" || rec.Name != "" {
		line += " by " + mentionUser(rec.User, rec.Name)
	}
	if d := strings.TrimSpace(oneLine(rec.Detail)); d != "" {
		line += ": " + escapeTrunc(d, maxAuditDetail)
	}
	return line
}
