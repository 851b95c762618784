package webhook

import "github.com/approvalbot/approvalbot/approvals"

// viewOf is the task as GET /v1/tasks/{id} shows it, field for field: the
// receiver reads the decision as a poller would.
func viewOf(t *approvals.Task) approvals.View { return approvals.ViewOf(t, nil) }
