package bot

import (
	"encoding/json"
	"testing"

	"github.com/slack-go/slack"

	"github.com/approvalbot/approvalbot/internal/slacktest"
)

// TestViewsAndHelpGolden: the reject-reason modal, the minimal fallbacks of
// every modal and the /approvals help reply, as golden files beside the
// others, so that each is checked by Slack's own type definitions in CI
// (make check-slack-types) as well as by the project's checker.
func TestViewsAndHelpGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		view slack.ModalViewRequest
	}{
		{"modal_reject_reason", rejectReasonView("tok-reject")},
		{"modal_reject_reason_minimal", minimalRejectReasonView("tok-reject")},
		{"modal_break_glass_minimal", minimalBreakGlassView("tok-break-glass")},
		{"modal_confirm_minimal", minimalConfirmView("tok-confirm", "PROD")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw, err := json.MarshalIndent(tc.view, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if err := slacktest.CheckView(raw); err != nil {
				t.Errorf("Slack refuses the view: %v", err)
			}
			checkGolden(t, tc.name, append(raw, '\n'))
		})
	}
	t.Run("command_help", func(t *testing.T) {
		t.Parallel()
		reply := helpReply("/approvals")
		checkFits(t, reply.Text, reply.Blocks)
		out, err := json.MarshalIndent(reply, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		checkGolden(t, "command_help", append(out, '\n'))
	})
}
