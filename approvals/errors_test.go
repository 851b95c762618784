package approvals_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/approvalbot/approvalbot/approvals"
)

func TestEveryErrorKindHasItsOwnCode(t *testing.T) {
	t.Parallel()
	seen := map[approvals.Code]bool{}
	for _, c := range approvals.Codes() {
		if c == "" || seen[c] {
			t.Errorf("code %q is empty or given twice", c)
		}
		seen[c] = true
	}
	sentinels := []error{
		approvals.ErrNotFound, approvals.ErrInvalid, approvals.ErrConflict, approvals.ErrUnavailable, approvals.ErrCorrupt,
		approvals.ErrBadToken, approvals.ErrExpired, approvals.ErrAlreadyDecided, approvals.ErrNotApprover,
		approvals.ErrSelfApproval, approvals.ErrAlreadyVoted, approvals.ErrReasonRequired, approvals.ErrNoPolicy, approvals.ErrIdentityUnknown, approvals.ErrRequesterUnmapped, approvals.ErrUnauthenticated, approvals.ErrNoTask,
	}
	codes := map[approvals.Code]error{}
	for _, err := range sentinels {
		k := approvals.KindOf(fmt.Errorf("wrapped: %w", err))
		if k.Code == approvals.CodeInternal {
			t.Errorf("%v has no entry in the table", err)
		}
		if other, dup := codes[k.Code]; dup {
			t.Errorf("%v and %v share the code %s", err, other, k.Code)
		}
		codes[k.Code] = err
		if k.Reply == "" || k.Answer == "" || k.HTTPStatus == 0 {
			t.Errorf("%v: kind %+v lacks a reply, an answer or a status", err, k)
		}
	}
}

func TestKindOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err     error
		code    approvals.Code
		status  int
		refusal bool
	}{
		{approvals.ErrSelfApproval, "self_approval", http.StatusForbidden, true},
		{fmt.Errorf("decide: %w", approvals.ErrExpired), "expired", http.StatusGone, true},
		{approvals.Invalidf("taskId is required"), "invalid", http.StatusBadRequest, false},
		{&approvals.CorruptError{Key: "acme-1", Err: errors.New("bad json")}, "corrupt", http.StatusInternalServerError, false},
		{fmt.Errorf("put: %w", approvals.ErrUnavailable), "unavailable", http.StatusServiceUnavailable, false},
		{errors.New("disk on fire"), approvals.CodeInternal, http.StatusInternalServerError, false},
	} {
		k := approvals.KindOf(tc.err)
		if k.Code != tc.code || k.HTTPStatus != tc.status || k.Refusal != tc.refusal || approvals.IsRefusal(tc.err) != tc.refusal {
			t.Errorf("KindOf(%v) = %+v, want code %s status %d refusal %v", tc.err, k, tc.code, tc.status, tc.refusal)
		}
	}
	if got := approvals.KindOf(approvals.ErrExpired).Text("Acme Deploy", "Slack"); got != "This approval request has expired. Decide it in Acme Deploy." {
		t.Errorf("Text = %q", got)
	}
	if got := approvals.KindOf(approvals.ErrNoPolicy).Text("", "Slack"); !strings.Contains(got, "the deployment tool") {
		t.Errorf("Text without a tool = %q", got)
	}
}

func TestToolsRegistry(t *testing.T) {
	t.Parallel()
	parse := func(func(string) string, []byte) (approvals.Submission, error) { return approvals.Submission{}, nil }
	if _, err := approvals.NewTools(approvals.Tool{Name: "a", Intakes: []approvals.Intake{{Path: "tasks", Parse: parse}}}, approvals.Tool{Name: "b", Intakes: []approvals.Intake{{Path: "tasks", Parse: parse}}}); err == nil {
		t.Error("two tools on one intake path were accepted")
	}
	if _, err := approvals.NewTools(approvals.Tool{Name: "a"}, approvals.Tool{Name: "a"}); err == nil {
		t.Error("a tool registered twice was accepted")
	}
	if _, err := approvals.NewTools(approvals.Tool{Name: "Bad Name"}); err == nil {
		t.Error("a malformed name was accepted")
	}
	if _, err := approvals.NewTools(approvals.Tool{Name: "a", ReadByTaskID: true}, approvals.Tool{Name: "b", ReadByTaskID: true}); err == nil {
		t.Error("two tools read by their own task ids were accepted")
	}
	r, err := approvals.NewTools(approvals.Tool{Name: "acme", DisplayName: "Acme Deploy"}, approvals.Tool{Name: "bare"})
	if err != nil {
		t.Fatal(err)
	}
	if r.DisplayName("acme") != "Acme Deploy" || r.DisplayName("bare") != "bare" || r.DisplayName("unknown") != "unknown" {
		t.Errorf("display names: %q %q %q", r.DisplayName("acme"), r.DisplayName("bare"), r.DisplayName("unknown"))
	}
}

func TestTaskIDsNameOneTask(t *testing.T) {
	t.Parallel()
	weird := "../x"
	hashed := approvals.TaskRecordID("acme", weird)
	if !strings.HasPrefix(hashed, "acme-~") {
		t.Fatalf("hashed id %q", hashed)
	}
	// Submitting the literal text of a hashed id (or of its tail) names
	// another task, never the hashed one.
	for _, literal := range []string{strings.TrimPrefix(hashed, "acme-"), hashed, "~" + strings.TrimPrefix(hashed, "acme-~")} {
		if got := approvals.TaskRecordID("acme", literal); got == hashed {
			t.Errorf("task id %q names the task of %q", literal, weird)
		}
	}
	if approvals.TaskRecordID("acme", "8900") != "acme-8900" {
		t.Error("a plain id is not kept as it is")
	}
	if _, err := approvals.NewTools(approvals.Tool{Name: "acme"}, approvals.Tool{Name: "acme-eu"}); err == nil {
		t.Error("tools whose task ids could collide were registered")
	}
}
