package approvals

import "time"

// View is a task as the API shows it (GET /v1/tasks/{id}) and as the
// webhook tool hands it to its receiver: never a token, its hash, the
// nonce, a delivery secret or the outbox. One view, so the two cannot
// drift apart.
type View struct {
	ID     string `json:"id"`
	Source string `json:"source"`
	TaskID string `json:"taskId"`
	Context
	Status            Status     `json:"status"`
	Approvals         []Vote     `json:"approvals"`
	RequiredApprovals int        `json:"requiredApprovals"`
	DecidedBy         *Person    `json:"decidedBy"`
	DecidedAt         *time.Time `json:"decidedAt"`
	Reason            string     `json:"reason,omitempty"`
	Delivery          Delivery   `json:"delivery"`
	CreatedAt         time.Time  `json:"createdAt"`
	ExpiresAt         time.Time  `json:"expiresAt"`
	Policy            string     `json:"policy,omitempty"`
	// Messages are the task's messages in every chat.
	Messages []ViewMessage `json:"messages"`
	// Message is the channel message in the primary chat (the first chat
	// the task was meant for), as before chats were registered; kept for
	// one release (use Messages).
	Message *MessageRef   `json:"message,omitempty"`
	Audit   []AuditRecord `json:"audit"`
}

// ViewMessage is one of a task's chat messages as the API shows it.
type ViewMessage struct {
	Chat    string `json:"chat"`
	Channel string `json:"channel"`
	ID      string `json:"id"`
	User    string `json:"user,omitempty"`
}

// ViewOf is the view of a task; chats (which may be nil) names the chat of
// messages recorded before chats were registered.
func ViewOf(t *Task, chats *Chats) View {
	v := View{
		ID: t.ID, Source: t.Source, TaskID: t.TaskID, Context: t.Context,
		Status: t.Status, Approvals: t.Approvals, RequiredApprovals: t.RequiredApprovals,
		DecidedBy: t.DecidedBy, DecidedAt: t.DecidedAt, Reason: t.Reason, Delivery: t.Delivery,
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, Policy: t.Policy, Audit: t.Audit,
	}
	if v.Approvals == nil {
		v.Approvals = []Vote{}
	}
	if v.Audit == nil {
		v.Audit = []AuditRecord{}
	}
	v.Messages = []ViewMessage{}
	first := "" // the chat the task was first meant for: the primary chat, registered first
	for i, m := range t.Messages {
		if i == 0 {
			first = m.Chat
		}
		if !m.Posted() {
			continue
		}
		v.Messages = append(v.Messages, ViewMessage{Chat: chats.Canonical(m.Chat), Channel: m.Channel, ID: m.TS, User: m.User})
		if v.Message == nil && m.User == "" && m.Chat == first {
			v.Message = &MessageRef{Channel: m.Channel, TS: m.TS}
		}
	}
	return v
}
