package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
)

// The modals an approval may need before it is decided: a written reason
// to break glass, the environment typed out. Their callback ids, block ids
// and action ids are part of the interactive contract, like the buttons'.
const (
	callbackBreakGlass = "break_glass"
	callbackConfirm    = "confirm_environment"
	blockIDConfirm     = "environment"
	actionIDConfirm    = "environment"
)

// maxModalTextChars bounds a modal's explaining text (a plain_text section
// takes 3000): the environment (the intake caps it at 2000) and why.
const maxModalTextChars = 2500

// OpenBreakGlass opens the modal that asks for the written reason a
// break-glass approval needs; why says what the approval overrides ("a
// freeze …"). The token travels in private_metadata, as with the reject
// reason.
func (n *Notifier) OpenBreakGlass(ctx context.Context, triggerID, token, why string) error {
	return n.openView(ctx, "open break-glass reason", triggerID, token, breakGlassView(token, why), minimalBreakGlassView(token))
}

// OpenConfirm opens the modal that asks the approver to type the task's
// environment.
func (n *Notifier) OpenConfirm(ctx context.Context, triggerID, token, environment string) error {
	return n.openView(ctx, "open type-to-confirm", triggerID, token, confirmView(token, environment), minimalConfirmView(token, environment))
}

// openView opens a modal carrying the token, and the minimal one when Slack
// refuses it for what it shows.
func (n *Notifier) openView(ctx context.Context, op, triggerID, token string, full, minimal slack.ModalViewRequest) error {
	if len(token) > maxPrivateMetadata {
		return approvals.Permanent(fmt.Errorf("slack: %s: token longer than Slack's private_metadata limit", op))
	}
	if err := n.ready(op); err != nil {
		return err
	}
	_, err := n.api.OpenViewContext(ctx, triggerID, full)
	if code, refused := refusedContent(err); refused {
		// The trigger id is single-use. Should Slack have taken it with
		// the refused view, this call fails (exchanged_trigger_id) and
		// the clicker is asked to try again.
		n.logger(ctx).Warn().Str("op", op).Str("code", code).Str("fallback", "minimal").
			Msg("slack: Slack refused the dialog; opening a minimal one instead")
		_, err = n.api.OpenViewContext(ctx, triggerID, minimal)
	}
	if err != nil {
		return n.mapError(ctx, op, err)
	}
	return nil
}

// breakGlassView asks for the reason of a break-glass approval, saying
// what breaking glass does. Its texts are plain: why may quote a freeze's
// reason and the environment.
func breakGlassView(token, why string) slack.ModalViewRequest {
	text := "🚨 " + strings.TrimSpace(why) + "\n\nBreaking glass approves this deployment at once. " +
		"It is marked BREAK-GLASS on the message, in the audit trail and in the notes to the deployment tool, " +
		"and announced in the thread to every approver."
	intro := slack.NewSectionBlock(plainText(plainTrunc(text, maxModalTextChars)), nil, nil, slack.SectionBlockOptionBlockID("why"))
	reason := reasonBlock(plainText("Why can this not wait?"), "Reason",
		plainText("Required. The deployment tool receives it with the approval."))
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           plainText("Break glass"),
		Submit:          plainText("Break glass & approve"),
		Close:           plainText("Cancel"),
		CallbackID:      callbackBreakGlass,
		PrivateMetadata: token,
		Blocks:          slack.Blocks{BlockSet: []slack.Block{intro, reason}},
	}
}

// minimalBreakGlassView is the break-glass modal with nothing but the
// input: the fallback when Slack refuses the full one.
func minimalBreakGlassView(token string) slack.ModalViewRequest {
	return minimalReasonView(callbackBreakGlass, "Break glass", "Approve", "Break-glass reason", token)
}

// reasonBlock is the multi-line input a reason modal asks in; placeholder
// and hint may be nil.
func reasonBlock(placeholder *slack.TextBlockObject, label string, hint *slack.TextBlockObject) *slack.InputBlock {
	input := slack.NewPlainTextInputBlockElement(placeholder, actionIDReason).
		WithMultiline(true).
		WithMaxLength(maxReasonChars)
	return slack.NewInputBlock(blockIDReason, plainText(label), hint, input)
}

// minimalReasonView is a reason modal with nothing but its input: the
// fallback when Slack refuses the full one.
func minimalReasonView(callbackID, title, submit, label, token string) slack.ModalViewRequest {
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           plainText(title),
		Submit:          plainText(submit),
		CallbackID:      callbackID,
		PrivateMetadata: token,
		Blocks:          slack.Blocks{BlockSet: []slack.Block{reasonBlock(nil, label, nil)}},
	}
}

// confirmPrompt is what the approver is asked to type.
func confirmPrompt(environment string) string {
	env := strings.TrimSpace(oneLine(environment))
	if env == "" {
		return "Type the environment's name to approve."
	}
	return "Type " + env + " to approve."
}

// confirmView asks the approver to type the task's environment.
func confirmView(token, environment string) slack.ModalViewRequest {
	prompt := slack.NewSectionBlock(plainText(plainTrunc(confirmPrompt(environment), maxModalTextChars)), nil, nil,
		slack.SectionBlockOptionBlockID("prompt"))
	input := slack.NewInputBlock(blockIDConfirm, plainText("Environment"),
		plainText("A name that does not match decides nothing."),
		slack.NewPlainTextInputBlockElement(nil, actionIDConfirm))
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           plainText("Confirm approval"),
		Submit:          plainText("Approve"),
		Close:           plainText("Cancel"),
		CallbackID:      callbackConfirm,
		PrivateMetadata: token,
		Blocks:          slack.Blocks{BlockSet: []slack.Block{prompt, input}},
	}
}

// minimalConfirmView is the type-to-confirm modal with nothing but the
// input, the prompt as its label.
func minimalConfirmView(token, environment string) slack.ModalViewRequest {
	input := slack.NewInputBlock(blockIDConfirm, plainText(plainTrunc(confirmPrompt(environment), 2000)), nil,
		slack.NewPlainTextInputBlockElement(nil, actionIDConfirm))
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           plainText("Confirm"),
		Submit:          plainText("Approve"),
		CallbackID:      callbackConfirm,
		PrivateMetadata: token,
		Blocks:          slack.Blocks{BlockSet: []slack.Block{input}},
	}
}

// prompt answers an approve click that the service answered by asking for
// more — a break-glass reason, the environment typed out — by opening the
// modal that asks for it, at once: the trigger id is valid for 3 seconds.
// It reports whether err was such an answer.
func (h *Interactions) prompt(ctx context.Context, cb slack.InteractionCallback, channel, user, token string, task *approvals.Task, err error) bool {
	if h.replier == nil {
		return false
	}
	var open error
	switch {
	case errors.Is(err, approvals.ErrBreakGlassNeeded):
		open = h.replier.OpenBreakGlass(ctx, cb.TriggerID, token, approvals.BreakGlassWhy(err))
	case errors.Is(err, approvals.ErrConfirmRequired):
		environment := ""
		if task != nil {
			environment = task.Environment
		}
		open = h.replier.OpenConfirm(ctx, cb.TriggerID, token, environment)
	default:
		return false
	}
	if open != nil {
		zerolog.Ctx(ctx).Error().Err(open).Msg("slack: open approval dialog")
		h.replyLater(ctx, channel, user, h.refusalText(ctx, err, task)+" The dialog to do so did not open. Try again.")
	}
	return true
}

// handleBreakGlass decides the submitted break-glass approval. The service
// refuses one without a reason; its refusal stays in the modal, which
// decides nothing.
func (h *Interactions) handleBreakGlass(ctx context.Context, cb slack.InteractionCallback) *slack.ViewSubmissionResponse {
	reason := inputValue(cb, blockIDReason, actionIDReason)
	if len([]rune(reason)) > maxReasonChars {
		reason = string([]rune(reason)[:maxReasonChars])
	}
	return h.decideFromModal(ctx, cb, blockIDReason, approvals.DecideRequest{BreakGlass: true, Reason: reason})
}

// handleConfirm decides the approval whose environment was typed; a name
// that does not match is answered in the modal and decides nothing.
func (h *Interactions) handleConfirm(ctx context.Context, cb slack.InteractionCallback) *slack.ViewSubmissionResponse {
	return h.decideFromModal(ctx, cb, blockIDConfirm, approvals.DecideRequest{Confirm: inputValue(cb, blockIDConfirm, actionIDConfirm)})
}

// decideFromModal approves with req as the modal's submission completes
// it, and answers a refusal on the modal's input block (nil closes it).
func (h *Interactions) decideFromModal(ctx context.Context, cb slack.InteractionCallback, block string, req approvals.DecideRequest) *slack.ViewSubmissionResponse {
	if h.decider == nil {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{block: h.replyText(ctx, approvals.ErrUnavailable, nil)})
	}
	req.Token, req.Action, req.User = cb.View.PrivateMetadata, approvals.ActionApprove, clicker(cb)
	task, err := h.decider.Decide(ctx, req)
	if err != nil {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{block: h.replyText(ctx, err, task)})
	}
	return nil
}

// inputValue is what the submission's input holds, trimmed.
func inputValue(cb slack.InteractionCallback, block, action string) string {
	if cb.View.State == nil {
		return ""
	}
	return strings.TrimSpace(cb.View.State.Values[block][action].Value)
}

// countedText tells an approver whose vote did not decide how far the task
// is: the quorum, and each require_from entry.
func (h *Interactions) countedText(t *approvals.Task) string {
	var p *approvals.Policy
	if h.policies != nil {
		p = approvals.FindPolicy(h.policies(), t.Policy)
	}
	text := fmt.Sprintf("Your approval is counted (%d of %d", len(t.Approvals), requiredApprovals(t, p))
	if line := requirementLine(t, p); line != "" {
		text += " · " + line
	}
	return text + ")."
}
