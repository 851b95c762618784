package bot

import "github.com/approvalbot/approvalbot/approvals"

const (
	// ChatName is Slack's name among the chats: it marks the task's Slack
	// messages and the people who act in Slack.
	ChatName = "slack"
	// DisplayName is how people read it ("Approved in Slack by …").
	DisplayName = "Slack"
)

// Chat is Slack as the core's chat registry knows it, the Runtime answering
// for its directory (its notifier is installed by the Runtime as the
// settings in force make it). Slack is the primary chat: the policies'
// approvers.users, groups and require_from name Slack ids, and records
// written before chats were registered are Slack's. postsByDefault posts
// every task to Slack (in slack.channel when its policy names no channel).
func (r *Runtime) Chat(postsByDefault bool) approvals.Chat {
	return approvals.Chat{
		Name:           ChatName,
		DisplayName:    DisplayName,
		Directory:      r,
		PostsByDefault: postsByDefault,
		Primary:        true,
	}
}

// slackMessage is the task's channel message in Slack (written with no
// chat named before chats were registered), or the zero ref.
func slackMessage(t *approvals.Task) approvals.MessageRef {
	for _, m := range t.Messages {
		if m.User == "" && (m.Chat == ChatName || m.Chat == "") && m.Posted() {
			return m
		}
	}
	return approvals.MessageRef{}
}
