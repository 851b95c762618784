package bot

import (
	"context"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/approvalbot/approvalbot/approvals"
)

var _ approvals.RequesterTeller = (*Notifier)(nil)

// TellRequester sends the person who requested the deployment its outcome
// in a direct message: approved (by whom), rejected (by whom, why) or
// expired.
func (n *Notifier) TellRequester(ctx context.Context, t *approvals.Task, userID string) error {
	op := "tell the requester of task " + t.ID
	if err := n.ready(op); err != nil {
		return err
	}
	if _, _, err := n.api.PostMessageContext(ctx, userID, slack.MsgOptionText(requesterText(t, toolName(n.tools.DisplayName(t.Source))), false)); err != nil {
		return fmt.Errorf("slack: %s: %w", op, err)
	}
	return nil
}

// requesterText is the outcome as the requester is told it.
func requesterText(t *approvals.Task, tool string) string {
	what := escapeTrunc(oneLine(fmt.Sprintf("%s task %s", tool, t.TaskID)), 200)
	if env := strings.TrimSpace(oneLine(t.Environment)); env != "" {
		what += " → " + escapeTrunc(env, 100)
	}
	by := ""
	if t.DecidedBy != nil {
		name := strings.TrimSpace(t.DecidedBy.Name)
		if name == "" {
			name = t.DecidedBy.ID
		}
		by = " by " + escapeTrunc(oneLine(name), 200)
	}
	switch t.Status {
	case approvals.StatusApproved:
		return "Your deployment " + what + " was approved" + by + "."
	case approvals.StatusRejected:
		text := "Your deployment " + what + " was rejected" + by
		if r := strings.TrimSpace(t.Reason); r != "" {
			text += ": " + escapeTrunc(oneLine(r), 1000)
		}
		return text + "."
	}
	return "Your deployment " + what + " expired without a decision."
}
