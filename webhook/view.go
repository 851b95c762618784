package webhook

import (
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

// taskView is a task as GET /v1/tasks/{id} shows it, field for field: the
// receiver reads the decision as a poller would. It mirrors server's
// TaskView, which this package may not import (a tool's package never
// imports the HTTP server); cmd/approvalbot's end-to-end test keeps the
// two in step.
type taskView struct {
	ID     string `json:"id"`
	Source string `json:"source"`
	TaskID string `json:"taskId"`
	approvals.Context
	Status            approvals.Status        `json:"status"`
	Approvals         []approvals.Vote        `json:"approvals"`
	RequiredApprovals int                     `json:"requiredApprovals"`
	DecidedBy         *approvals.Person       `json:"decidedBy"`
	DecidedAt         *time.Time              `json:"decidedAt"`
	Reason            string                  `json:"reason,omitempty"`
	Delivery          approvals.Delivery      `json:"delivery"`
	CreatedAt         time.Time               `json:"createdAt"`
	ExpiresAt         time.Time               `json:"expiresAt"`
	Policy            string                  `json:"policy,omitempty"`
	Message           *approvals.MessageRef   `json:"message,omitempty"`
	Audit             []approvals.AuditRecord `json:"audit"`
}

// viewOf is the view of a task: never its token hash, nonce, secret,
// routing fields or outbox.
func viewOf(t *approvals.Task) taskView {
	v := taskView{
		ID: t.ID, Source: t.Source, TaskID: t.TaskID, Context: t.Context,
		Status: t.Status, Approvals: t.Approvals, RequiredApprovals: t.RequiredApprovals,
		DecidedBy: t.DecidedBy, DecidedAt: t.DecidedAt, Reason: t.Reason, Delivery: t.Delivery,
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, Policy: t.Policy, Audit: t.Audit,
	}
	if v.Approvals == nil {
		v.Approvals = []approvals.Vote{}
	}
	if v.Audit == nil {
		v.Audit = []approvals.AuditRecord{}
	}
	if t.Message.TS != "" {
		m := t.Message
		v.Message = &m
	}
	return v
}
