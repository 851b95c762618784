package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/rest"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
)

// defaultTimeout bounds every Slack Web API call when Config.Timeout is unset.
const defaultTimeout = 10 * time.Second

// maxPrivateMetadata is Slack's limit on a view's private_metadata.
const maxPrivateMetadata = 3000

// Config configures the Slack Web API adapter.
type Config struct {
	// BotToken is the xoxb- token. Without it every call fails (retryably),
	// so the outbox keeps the work until credentials arrive.
	BotToken string
	// APIURL is the Web API root with a trailing slash; "" is Slack's.
	// Tests pass a fake's URL + "/".
	APIURL string
	// DefaultChannel is where tasks go whose message names no channel.
	DefaultChannel string
	// Timeout bounds every call; default 10s.
	Timeout time.Duration
	// Policies returns the current policies (they may be reloaded); it is
	// used to show a task's approvers. May be nil.
	Policies func() []approvals.Policy
	// Tools is the registry of deployment tools; a message names a task's
	// tool by its display name. nil shows the task's source as it is.
	Tools *approvals.Tools
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives the warnings of calls whose context carries no
	// logger (zerolog.Ctx); the zero value drops them.
	Logger zerolog.Logger
	// Pacer keeps the calls under Slack's rate limits (pace.go); share
	// one per process. nil: the Notifier makes its own with Slack's limits.
	Pacer *Pacer
}

// Notifier shows tasks in Slack through the Web API. It never mints a
// token: the outbox hands it the task's token with every post and update.
type Notifier struct {
	api            *slack.Client
	botToken       string
	defaultChannel string
	policies       func() []approvals.Policy
	tools          *approvals.Tools
	now            func() time.Time
	log            zerolog.Logger

	// directory resolves approvers for Direct; NewDirectory sets it.
	directory *Directory
	dirOnce   sync.Once

	// surfaces is what the App Home and /approvals add (home.go): the
	// public URL, the workspace's address, who hears of changed tasks.
	surfaces surfaceState
}

var (
	_ approvals.Notifier = (*Notifier)(nil)
	_ Replier            = (*Notifier)(nil)
)

// New returns a Notifier for cfg.
func New(cfg Config) *Notifier {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	// Its own transport keeps a connection per outbox worker alive (the
	// default keeps two), with explicit dial and TLS timeouts.
	// The Pacer in front of it keeps the calls under Slack's rate limits.
	client := rest.NewHTTPClient(timeout)
	pacer := cfg.Pacer
	if pacer == nil {
		pacer = NewPacer(PaceConfig{})
	}
	client.Transport = pacer.Transport(client.Transport)
	opts := []slack.Option{slack.OptionHTTPClient(client)}
	if cfg.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(cfg.APIURL))
	}
	return &Notifier{
		api:            slack.New(cfg.BotToken, opts...),
		botToken:       cfg.BotToken,
		defaultChannel: cfg.DefaultChannel,
		policies:       cfg.Policies,
		tools:          cfg.Tools,
		now:            now,
		log:            cfg.Logger,
	}
}

// policyFor returns the policy that matched the task at intake, if it still
// exists.
func (n *Notifier) policyFor(t *approvals.Task) *approvals.Policy {
	if n.policies == nil || t.Policy == "" {
		return nil
	}
	return approvals.FindPolicy(n.policies(), t.Policy)
}

// renderOptions are what the task's message is rendered with: its token,
// its policy and its tool's display name.
func (n *Notifier) renderOptions(t *approvals.Task, token string) RenderOptions {
	return RenderOptions{
		Token:     token,
		Policy:    n.policyFor(t),
		Tool:      n.tools.DisplayName(t.Source),
		Now:       n.now(),
		PublicURL: n.surfaces.publicURL,
	}
}

// logger is the call's logger, or the Notifier's when the call's context
// has none.
func (n *Notifier) logger(ctx context.Context) *zerolog.Logger {
	if l := zerolog.Ctx(ctx); l.GetLevel() != zerolog.Disabled {
		return l
	}
	return &n.log
}

// sendTask sends the task's message with send (a post or an update). When
// Slack refuses its content (refusedContent), it sends the minimal message
// instead, and then the bare one: a task is never left without its message
// because of what it shows. The warning names Slack's error code, never the
// token or the message.
func (n *Notifier) sendTask(ctx context.Context, op string, t *approvals.Task, token string,
	send func(text string, blocks []slack.Block) error) error {
	opts := n.renderOptions(t, token)
	err := send(RenderTask(t, opts))
	for _, bare := range []bool{false, true} {
		code, refused := refusedContent(err)
		if !refused {
			break
		}
		kind := "minimal"
		if bare {
			kind = "bare"
		}
		n.logger(ctx).Warn().Str("task", t.ID).Str("op", op).Str("code", code).Str("fallback", kind).
			Msg("slack: Slack refused the message; sending a " + kind + " one instead")
		err = send(RenderMinimal(t, opts, bare))
	}
	if err != nil {
		return n.mapError(ctx, op, err)
	}
	return nil
}

// refusedContent reports whether err is Slack refusing a message or a
// view for what it shows (blocks Slack finds too long or invalid, or a
// text too long), which a smaller one mends; code is Slack's error code.
func refusedContent(err error) (code string, refused bool) {
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		return "", false
	}
	switch se.Err {
	case "invalid_blocks", "invalid_blocks_format", "msg_blocks_too_long", "msg_too_long", "invalid_attachments",
		"invalid_arguments", "view_too_large":
		return se.Err, true
	}
	return se.Err, false
}

func (n *Notifier) ready(op string) error {
	if n.botToken == "" {
		// Retryable on purpose: a config reload may bring the token.
		return fmt.Errorf("slack: %s: no bot token configured (set slack.bot_token)", op)
	}
	return nil
}

// Post posts the task's message with its buttons to the task's channel, or
// the default channel, and returns where it landed.
func (n *Notifier) Post(ctx context.Context, t *approvals.Task, channel, token string) (approvals.MessageRef, error) {
	op := "post task " + t.ID
	ctx = withPaceOrder(ctx, t) // the channel's posts keep intake order
	if channel == "" {
		channel = n.defaultChannel
	}
	if channel == "" {
		// Retryable: setting slack.channel (a config reload) mends it.
		return approvals.MessageRef{}, fmt.Errorf("slack: %s: no channel: the task names none and slack.channel is not set", op)
	}
	if err := n.ready(op); err != nil {
		return approvals.MessageRef{}, err
	}
	var gotChannel, ts string
	err := n.sendTask(ctx, op, t, token, func(text string, blocks []slack.Block) (err error) {
		gotChannel, ts, err = n.api.PostMessageContext(ctx, channel,
			slack.MsgOptionText(text, false),
			slack.MsgOptionBlocks(blocks...),
			slack.MsgOptionDisableLinkUnfurl(),
			slack.MsgOptionDisableMediaUnfurl(),
		)
		return err
	})
	if err != nil {
		return approvals.MessageRef{}, err
	}
	if gotChannel == "" {
		gotChannel = channel
	}
	n.surfaces.taskChanged(t)
	return approvals.MessageRef{Chat: ChatName, Channel: gotChannel, TS: ts}, nil
}

// Update renders the task's current state into its message, blocks
// included: an update without blocks would keep the old buttons. A final
// task is rendered without buttons (token is ignored); a pending one keeps
// working buttons carrying token, which must then be given.
func (n *Notifier) Update(ctx context.Context, t *approvals.Task, refs []approvals.MessageRef, token string) error {
	op := "update task " + t.ID
	ctx = withPaceOrder(ctx, t)
	if len(refs) == 0 || refs[0].Channel == "" || refs[0].TS == "" {
		return approvals.Permanent(fmt.Errorf("slack: %s: the task has no posted message", op))
	}
	if !t.Status.Final() && token == "" {
		// The outbox hands every pending task's token over; without one
		// the message would lose working buttons for good.
		return approvals.Permanent(fmt.Errorf("slack: %s: the task is pending and no token was given", op))
	}
	if err := n.ready(op); err != nil {
		return err
	}
	if t.Status.Final() {
		token = ""
	}
	// The channel message and every direct-message copy show the same.
	var errs []error
	for _, ref := range refs {
		err := n.sendTask(ctx, op, t, token, func(text string, blocks []slack.Block) error {
			_, _, _, err := n.api.UpdateMessageContext(ctx, ref.Channel, ref.TS,
				slack.MsgOptionText(text, false),
				slack.MsgOptionBlocks(blocks...),
			)
			return err
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	n.surfaces.taskChanged(t)
	return errors.Join(errs...)
}

// Notice posts a notice in the message's thread: a reminder mentioning
// the approvers who have not approved yet, or a break-glass approval
// announced to every approver the policy names.
func (n *Notifier) Notice(ctx context.Context, t *approvals.Task, ref approvals.MessageRef, kind approvals.NoticeKind) error {
	op := fmt.Sprintf("post %s notice of task %s", kind, t.ID)
	ctx = withPaceOrder(ctx, t)
	var text string
	switch kind {
	case approvals.NoticeReminder:
		if t.Status.Final() {
			return nil
		}
		text = reminderText(t, n.policyFor(t), toolName(n.tools.DisplayName(t.Source)))
	case approvals.NoticeBreakGlass:
		text = breakGlassText(t, n.policyFor(t))
	case approvals.NoticeEscalation:
		if t.Status.Final() {
			return nil
		}
		text = escalationText(t, n.policyFor(t))
	default:
		return approvals.Permanent(fmt.Errorf("slack: %s: unknown notice", op))
	}
	if ref.Channel == "" || ref.TS == "" {
		return approvals.Permanent(fmt.Errorf("slack: %s: the task has no posted message", op))
	}
	if err := n.ready(op); err != nil {
		return err
	}
	_, _, err := n.api.PostMessageContext(ctx, ref.Channel,
		slack.MsgOptionTS(ref.TS),
		slack.MsgOptionText(text, false),
		slack.MsgOptionDisableLinkUnfurl(),
	)
	if err != nil {
		return n.mapError(ctx, op, err)
	}
	return nil
}

// escalationText tells the escalation's approvers that they may decide now.
func escalationText(t *approvals.Task, p *approvals.Policy) string {
	text := "⏫ Still waiting for approval"
	if p != nil && p.Escalate != nil {
		text += fmt.Sprintf(" after %s: escalated", p.Escalate.After)
		who := approverMentions(&approvals.Policy{Approvers: p.Escalate.To}, nil)
		if len(who) > 0 {
			text += " to " + joinPeople(who, maxSectionChars/2) + ", who may decide it now"
		}
	}
	return truncKeepEntities(text+".", maxSectionChars)
}

// breakGlassText announces a break-glass approval in the thread, to every
// approver the policy names.
func breakGlassText(t *approvals.Task, p *approvals.Policy) string {
	by := "someone"
	for _, v := range t.Approvals {
		if v.BreakGlass {
			by = mentionUser(v.ID, v.Name)
		}
	}
	text := "🚨 *BREAK-GLASS*: " + by + " approved this deployment outside the normal rules"
	if r := strings.TrimSpace(t.Reason); r != "" {
		text += ": " + escape(oneLine(r))
	}
	if p != nil {
		if who := approverMentions(p, func(string) bool { return false }); len(who) > 0 {
			text += "\ncc " + joinPeople(who, maxSectionChars/2)
		}
	}
	return truncKeepEntities(text, maxSectionChars)
}

// reminderText is the reminder; tool names the task's deployment tool.
func reminderText(t *approvals.Task, p *approvals.Policy, tool string) string {
	text := "⏰ Still waiting for approval"
	if !t.ExpiresAt.IsZero() {
		text += "; expires " + slackDate(t.ExpiresAt)
	}
	if p == nil {
		return text + ". No policy names approvers; decide it in " + escape(tool) + "."
	}
	who := approverMentions(p, func(id string) bool { return t.HasVoted(id, "") })
	if len(who) > 0 {
		list := joinPeople(who, maxSectionChars/2)
		if list == "" {
			list = fmt.Sprintf("%d named", len(who))
		}
		text += " · approvers: " + list
	}
	if need := requiredApprovals(t, p); need > 1 {
		text += fmt.Sprintf(" · %d of %d approvals", len(t.Approvals), need)
	}
	return truncKeepEntities(text, maxSectionChars)
}

// Ephemeral shows text (mrkdwn, escaped by the caller) to one user in a
// channel, cut to maxFallbackChars. When Slack refuses it for what it says,
// a shorter plain one follows.
func (n *Notifier) Ephemeral(ctx context.Context, channel, user, text string) error {
	op := "reply to " + user
	if err := n.ready(op); err != nil {
		return err
	}
	_, err := n.api.PostEphemeralContext(ctx, channel, user, slack.MsgOptionText(truncKeepEntities(text, maxFallbackChars), false))
	if code, refused := refusedContent(err); refused {
		n.logger(ctx).Warn().Str("op", op).Str("code", code).Str("fallback", "minimal").
			Msg("slack: Slack refused the reply; sending a shorter one instead")
		_, err = n.api.PostEphemeralContext(ctx, channel, user, slack.MsgOptionText(truncKeepEntities(text, maxEphemeralFallbackChars), false))
	}
	if err != nil {
		return n.mapError(ctx, op, err)
	}
	return nil
}

// maxEphemeralFallbackChars bounds the reply sent when Slack refused one.
const maxEphemeralFallbackChars = 500

// OpenRejectReason opens the modal that asks for a reason to reject. The
// token travels in private_metadata, which only Slack and this app see, and
// comes back with the submission.
func (n *Notifier) OpenRejectReason(ctx context.Context, triggerID, token string) error {
	return n.openView(ctx, "open reject reason", triggerID, token, rejectReasonView(token), minimalRejectReasonView(token))
}

// rejectReasonView is the modal that asks for a reason to reject. Its texts
// are all the bot's own and within Slack's limits (title and buttons ≤ 24,
// placeholder ≤ 150); the token is within private_metadata's 3000.
func rejectReasonView(token string) slack.ModalViewRequest {
	reason := reasonBlock(plainText("Why is this deployment rejected?"), "Reason",
		plainText("The deployment tool receives it with the rejection."))
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           plainText("Reject deployment"),
		Submit:          plainText("Reject"),
		Close:           plainText("Cancel"),
		CallbackID:      callbackRejectReason,
		PrivateMetadata: token,
		Blocks:          slack.Blocks{BlockSet: []slack.Block{reason}},
	}
}

// minimalRejectReasonView is the reject reason modal with nothing but the
// input: the fallback when Slack refuses the full one.
func minimalRejectReasonView(token string) slack.ModalViewRequest {
	return minimalReasonView(callbackRejectReason, "Reject", "Reject", "Reason", token)
}

// permanentCode reports whether a Slack error code means that no retry can
// mend the request: it is itself wrong.
func permanentCode(code string) bool {
	switch code {
	case "invalid_blocks", "invalid_blocks_format", "msg_too_long", "msg_blocks_too_long", "invalid_attachments", "no_text",
		"view_too_large",
		"message_not_found", "cant_update_message", "edit_window_closed",
		"invalid_arguments", "invalid_form_data",
		"invalid_trigger_id", "expired_trigger_id", "exchanged_trigger_id",
		"user_not_in_channel":
		return true
	}
	return false
}

// operatorHint says what to fix for a Slack error code an operator can fix;
// the outbox keeps retrying (with capped backoff) until they do.
func operatorHint(code string) string {
	switch code {
	case "not_in_channel":
		return "the bot is not in the channel; invite it (/invite @approvalbot)"
	case "channel_not_found":
		return "the channel does not exist or the bot cannot see it; check slack.channel and the policies' channels, and invite the bot"
	case "is_archived":
		return "the channel is archived; unarchive it or configure another channel"
	case "invalid_auth":
		return "the bot token is not valid; check slack.bot_token"
	case "not_authed":
		return "no bot token was sent; check slack.bot_token"
	case "account_inactive":
		return "the bot's account is deactivated; reinstall the app and update slack.bot_token"
	case "token_revoked":
		return "the bot token was revoked; reinstall the app and update slack.bot_token"
	case "token_expired":
		return "the bot token expired; update slack.bot_token"
	case "missing_scope":
		return "the bot token lacks a scope; add it in the app's OAuth settings and reinstall"
	case "no_permission":
		return "the bot lacks permission; check the app's scopes"
	case "team_access_not_granted":
		return "the token has no access to this workspace"
	}
	return ""
}

// mapError turns a slack-go error of a call made under ctx into what the
// outbox understands: a RetryAfterError for 429 (a turn to wait for when
// the Pacer kept the task's place), a PermanentError when retrying cannot help, and a
// plain (retryable) error otherwise. The token never reaches the message.
func (n *Notifier) mapError(ctx context.Context, op string, err error) error {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		// A call the Pacer sent away to come back at its turn is no failure.
		return &approvals.RetryAfterError{Err: fmt.Errorf("slack: %s: %w", op, rl), After: rl.RetryAfter, Turn: sentAwayForTurn(ctx)}
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		code := se.Err
		if permanentCode(code) {
			return approvals.Permanent(fmt.Errorf("slack: %s: %w", op, se))
		}
		if hint := operatorHint(code); hint != "" {
			if code == "missing_scope" && se.Needed != "" {
				hint += " (needed: " + se.Needed + ")"
			}
			return fmt.Errorf("slack: %s: %w: %s", op, se, hint)
		}
		return fmt.Errorf("slack: %s: %w", op, se)
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		return fmt.Errorf("slack: %s: HTTP %d", op, sc.Code)
	}
	if n.botToken != "" && strings.Contains(err.Error(), n.botToken) {
		// Never expected, but a token in an error would end up in the
		// task's lastError, logs and the message.
		return fmt.Errorf("slack: %s: %s", op, strings.ReplaceAll(err.Error(), n.botToken, "[redacted]"))
	}
	return fmt.Errorf("slack: %s: %w", op, err)
}
