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
	Status            Status        `json:"status"`
	Approvals         []Vote        `json:"approvals"`
	RequiredApprovals int           `json:"requiredApprovals"`
	DecidedBy         *Person       `json:"decidedBy"`
	DecidedAt         *time.Time    `json:"decidedAt"`
	Reason            string        `json:"reason,omitempty"`
	Delivery          Delivery      `json:"delivery"`
	CreatedAt         time.Time     `json:"createdAt"`
	ExpiresAt         time.Time     `json:"expiresAt"`
	Policy            string        `json:"policy,omitempty"`
	Message           *MessageRef   `json:"message,omitempty"`
	Audit             []AuditRecord `json:"audit"`
}

// ViewOf is the view of a task.
func ViewOf(t *Task) View {
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
	if t.Message.TS != "" {
		m := t.Message
		v.Message = &m
	}
	return v
}
