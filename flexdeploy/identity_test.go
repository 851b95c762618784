package flexdeploy

import "testing"

// The envelope's actor names the requester by email before name, so that
// the self-approval check can look them up; a task id that is a number is
// canonical however it is written.
func TestRequesterAndCanonicalTaskID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body, taskID, requestedBy string
	}{
		{"actor email before name", `{"actor":{"name":"Jane Smith","email":"jane@example.com"},"payload":{"taskId":7}}`, "7", "jane@example.com"},
		{"actor name without email", `{"actor":{"name":"Jane Smith","userName":"jsmith"},"payload":{"taskId":7}}`, "7", "Jane Smith"},
		{"leading zeros in a string id", `{"taskId":"08900"}`, "8900", ""},
		{"zeros only", `{"taskId":"000"}`, "0", ""},
		{"a number and a string name one task", `{"taskId":8900}`, "8900", ""},
		{"a non-numeric id is kept as it is", `{"taskId":"0x1F"}`, "0x1F", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sub, err := ParseTask([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if sub.TaskID != tc.taskID || sub.RequestedBy != tc.requestedBy {
				t.Errorf("task %q requested by %q, want %q by %q", sub.TaskID, sub.RequestedBy, tc.taskID, tc.requestedBy)
			}
		})
	}
}
