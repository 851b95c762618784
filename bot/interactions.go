package bot

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
)

const (
	// defaultMaxBodyBytes matches server.max_body_bytes' default. A
	// block_actions payload carries the whole message, a few KiB.
	defaultMaxBodyBytes = 64 << 10
	// replyTimeout bounds an ephemeral reply sent after the 200.
	replyTimeout = 5 * time.Second
	// maxReasonChars bounds a reject reason (the modal says 1000 too).
	maxReasonChars = 1000
)

// Decider decides a task on a click.
type Decider interface {
	// Decide records the click. It returns the task as it is afterwards;
	// with ErrNotApprover it may return the task too, so that the reply
	// can name the policy.
	Decide(ctx context.Context, req approvals.DecideRequest) (*approvals.Task, error)
}

// Replier answers a clicker in Slack.
type Replier interface {
	Ephemeral(ctx context.Context, channel, user, text string) error
	OpenRejectReason(ctx context.Context, triggerID, token string) error
	// OpenBreakGlass asks for a break-glass approval's reason; why says
	// what the approval overrides.
	OpenBreakGlass(ctx context.Context, triggerID, token, why string) error
	// OpenConfirm asks the approver to type the environment.
	OpenConfirm(ctx context.Context, triggerID, token, environment string) error
}

// InteractionsConfig configures the interactions endpoint.
type InteractionsConfig struct {
	Verifier *Verifier
	Decider  Decider
	Replier  Replier
	// Tools is the registry of deployment tools; a reply names a task's
	// tool by its display name. nil shows the task's source as it is.
	Tools        *approvals.Tools
	MaxBodyBytes int64 // default 64 KiB
	// Policies returns the policies in force, for the progress a vote
	// reply shows (require_from); may be nil.
	Policies func() []approvals.Policy
	// Home shows the replies to clicks made in the App Home, which come
	// with no channel to answer in; nil drops them.
	Home HomeNotices
}

// Interactions turns Slack interactions (button clicks, modal submissions)
// into decisions. ServeHTTP is the HTTP transport; Handle is shared with
// Socket Mode.
type Interactions struct {
	verifier *Verifier
	decider  Decider
	replier  Replier
	tools    *approvals.Tools
	maxBody  int64
	policies func() []approvals.Policy
	home     HomeNotices

	mu      sync.Mutex
	closed  bool
	replies sync.WaitGroup
}

// NewInteractions returns the interactions handler.
func NewInteractions(cfg InteractionsConfig) *Interactions {
	maxBody := cfg.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = defaultMaxBodyBytes
	}
	return &Interactions{verifier: cfg.Verifier, decider: cfg.Decider, replier: cfg.Replier, tools: cfg.Tools, maxBody: maxBody, policies: cfg.Policies, home: cfg.Home}
}

// ServeHTTP serves POST /slack/interactions. The signature is checked on the
// raw body before anything of it is parsed; a request that fails it changes
// nothing.
func (h *Interactions) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := readSigned(w, r, h.verifier, h.maxBody, "interaction")
	if !ok {
		return
	}
	cb, err := parseInteraction(body)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	// Slack shows the clicker an error when the answer takes over 3 s.
	response := handleWithin(r.Context(), h, cb, ackWithin)
	if response == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(response)
}

// parseInteraction reads the form field payload from a verified body. Its
// errors never quote the payload.
func parseInteraction(body []byte) (slack.InteractionCallback, error) {
	var cb slack.InteractionCallback
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return cb, errors.New("malformed form body")
	}
	payload := form.Get("payload")
	if payload == "" {
		return cb, errors.New("missing payload")
	}
	if err := json.Unmarshal([]byte(payload), &cb); err != nil {
		return cb, errors.New("malformed payload")
	}
	return cb, nil
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// Handle acts on one interaction and returns what Slack should get in the
// acknowledgement: nil, or a view_submission response. Replies to the
// clicker go out asynchronously so that the acknowledgement is quick.
func (h *Interactions) Handle(ctx context.Context, cb slack.InteractionCallback) (response any) {
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		h.handleBlockActions(ctx, cb)
		return nil
	case slack.InteractionTypeViewSubmission:
		var r *slack.ViewSubmissionResponse
		switch cb.View.CallbackID {
		case callbackRejectReason:
			r = h.handleRejectReason(ctx, cb)
		case callbackBreakGlass:
			r = h.handleBreakGlass(ctx, cb)
		case callbackConfirm:
			r = h.handleConfirm(ctx, cb)
		}
		if r != nil {
			return r
		}
		return nil
	}
	return nil
}

func clicker(cb slack.InteractionCallback) approvals.Person {
	name := cb.User.Name
	if name == "" {
		name = cb.User.Username
	}
	return approvals.Person{ID: cb.User.ID, Name: name, Chat: ChatName}
}

func (h *Interactions) handleBlockActions(ctx context.Context, cb slack.InteractionCallback) {
	var action *slack.BlockAction
	for _, a := range cb.ActionCallback.BlockActions {
		if a != nil && (a.ActionID == actionApprove || a.ActionID == actionReject) {
			action = a
			break
		}
	}
	if action == nil || h.decider == nil {
		return
	}
	channel := cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	user := clicker(cb)
	req := approvals.DecideRequest{Token: action.Value, Action: approvals.Action(action.ActionID), User: user}
	task, err := h.decider.Decide(ctx, req)

	if err == nil {
		switch {
		case task != nil && !task.Status.Final():
			h.replyLater(ctx, channel, user.ID, h.countedText(task))
		case task != nil && channel == "":
			// In the App Home the message that shows the outcome is
			// elsewhere: say it where the click was.
			h.replyLater(ctx, channel, user.ID, "Done. "+newRendering(task, RenderOptions{Tool: h.tools.DisplayName(task.Source)}).fallbackText())
		}
		return
	}
	if req.Action == approvals.ActionApprove && h.prompt(ctx, cb, channel, user.ID, req.Token, task, err) {
		return
	}
	if req.Action == approvals.ActionReject && errors.Is(err, approvals.ErrReasonRequired) && h.replier != nil {
		// Synchronously: the trigger id is valid for 3 seconds only.
		if oerr := h.replier.OpenRejectReason(ctx, cb.TriggerID, req.Token); oerr != nil {
			zerolog.Ctx(ctx).Error().Err(oerr).Msg("slack: open reject reason dialog")
			h.replyLater(ctx, channel, user.ID, "A reason is required to reject this deployment, and the dialog to give one did not open. Try again.")
		}
		return
	}
	h.replyLater(ctx, channel, user.ID, h.refusalText(ctx, err, task))
}

func (h *Interactions) handleRejectReason(ctx context.Context, cb slack.InteractionCallback) *slack.ViewSubmissionResponse {
	reason := ""
	if cb.View.State != nil {
		reason = strings.TrimSpace(cb.View.State.Values[blockIDReason][actionIDReason].Value)
	}
	if reason == "" {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{blockIDReason: "Say why the deployment is rejected."})
	}
	if len([]rune(reason)) > maxReasonChars {
		reason = string([]rune(reason)[:maxReasonChars])
	}
	if h.decider == nil {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{blockIDReason: h.replyText(ctx, approvals.ErrUnavailable, nil)})
	}
	task, err := h.decider.Decide(ctx, approvals.DecideRequest{
		Token:  cb.View.PrivateMetadata,
		Action: approvals.ActionReject,
		User:   clicker(cb),
		Reason: reason,
	})
	if err != nil {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{blockIDReason: h.replyText(ctx, err, task)})
	}
	return nil
}

// refusalText is what the clicker reads when a decision fails: the reply of
// the error's kind in approvals' one table, naming the task's tool. Refusals
// are the rules at work and are not logged here (the service audits and
// counts them); other known kinds are warnings; only an error the table
// does not know is internal, and logged as an error.
func (h *Interactions) refusalText(ctx context.Context, err error, task *approvals.Task) string {
	return escape(h.replyText(ctx, err, task))
}

// replyText is refusalText as plain text, for a modal's errors.
func (h *Interactions) replyText(ctx context.Context, err error, task *approvals.Task) string {
	kind := approvals.KindOf(err)
	switch {
	case kind.Refusal:
	case kind.Code == approvals.CodeInternal:
		zerolog.Ctx(ctx).Error().Err(err).Msg("slack: decide task")
	default:
		zerolog.Ctx(ctx).Warn().Err(err).Str("code", string(kind.Code)).Msg("slack: decide task")
	}
	tool := ""
	if task != nil {
		tool = oneLine(h.tools.DisplayName(task.Source))
	}
	// With the refusal's detail: when a closed approving opens, or why.
	return approvals.Reply(err, tool, DisplayName)
}

// replyLater sends an ephemeral reply after the acknowledgement, bounded by
// replyTimeout; Close waits for it. A click without a channel came from a
// view, the App Home: the reply is a notice on top of the home, which is
// published again at once.
func (h *Interactions) replyLater(ctx context.Context, channel, user, text string) {
	if channel == "" && h.home != nil && user != "" {
		h.home.Notice(user, text)
		return
	}
	if h.replier == nil || channel == "" || user == "" {
		return
	}
	send := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replyTimeout)
		defer cancel()
		if err := h.replier.Ephemeral(ctx, channel, user, text); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("slack: ephemeral reply")
		}
	}
	h.mu.Lock()
	if h.closed {
		// After Close nobody waits for goroutines any more: reply in line.
		h.mu.Unlock()
		send()
		return
	}
	h.replies.Add(1)
	h.mu.Unlock()
	go func() {
		defer h.replies.Done()
		send()
	}()
}

// Close waits for the replies in flight.
func (h *Interactions) Close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.replies.Wait()
}
