package approvals

// Submission is a task as a deployment tool's intake adapter parsed it.
type Submission struct {
	Source string // "flexdeploy", "azure-devops"
	TaskID string // the source's own task id
	Context
	// Secret and Extra are copied to the task (see Task).
	Secret []byte
	Extra  map[string]string
}

// DecideRequest is one click (or modal submission) of a chat user.
type DecideRequest struct {
	Token  string
	Action Action
	User   Person
	Reason string
}
