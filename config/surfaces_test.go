package config

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

func TestPolicySurfacesLoad(t *testing.T) {
	t.Parallel()
	c := loadPolicies(t, `
  - name: production
    approvers: {users: [U1], groups: [S0RELEASE]}
    ttl: 4h
    notify: {dm: true}
    escalate: {after: 30m, to: {users: [U0BOSS], groups: [S0LEADS]}}
  - name: quiet
    approvers: {users: [U2]}
`)
	if p := problemsOf(t, c); len(p) != 0 {
		t.Fatalf("problems: %q", p)
	}
	got := c.ApprovalPolicies()
	if !got[0].NotifyDM || got[1].NotifyDM {
		t.Errorf("notify.dm = %v, %v; want true, false", got[0].NotifyDM, got[1].NotifyDM)
	}
	want := &approvals.Escalation{After: 30 * time.Minute, To: approvals.Approvers{Users: []string{"U0BOSS"}, Groups: []string{"S0LEADS"}}}
	if !reflect.DeepEqual(got[0].Escalate, want) {
		t.Errorf("escalate = %+v, want %+v", got[0].Escalate, want)
	}
	if got[1].Escalate != nil {
		t.Errorf("a policy without escalate escalates: %+v", got[1].Escalate)
	}
	// The domain's copy shares nothing with the configuration.
	got[0].Escalate.To.Users[0] = "changed"
	if c.Policies[0].Escalate.To.Users[0] != "U0BOSS" {
		t.Error("ApprovalPolicies shares the escalation's users with the configuration")
	}
}

func TestPolicySurfacesProblems(t *testing.T) {
	t.Parallel()
	head := "  - name: p\n    approvers: {users: [U1]}\n    ttl: 1h\n"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"fine", `    escalate: {after: 59m, to: {groups: [S0LEADS]}}`, nil},
		{"dm alone", `    notify: {dm: true}`, nil},
		{"nobody to escalate to", `    escalate: {after: 30m}`,
			[]string{`policies[0].escalate.to: names nobody: give users or groups to escalate to`}},
		{"no after", `    escalate: {to: {users: [U0BOSS]}}`,
			[]string{`policies[0].escalate.after: is required when escalate.to names someone: how long a task waits before it escalates`}},
		{"after the ttl", `    escalate: {after: 1h, to: {users: [U0BOSS]}}`,
			[]string{`policies[0].escalate.after: must be less than the policy's ttl (1h0m0s), got 1h0m0s: the task would expire first`}},
		{"negative", `    escalate: {after: -1m, to: {users: [U0BOSS]}}`,
			[]string{`policies[0].escalate.after: must not be negative, got -1m0s`}},
		{"an empty user", `    escalate: {after: 5m, to: {users: [U0BOSS, " "], groups: [""]}}`,
			[]string{`policies[0].escalate.to.users[1]: must not be empty`, `policies[0].escalate.to.groups[0]: must not be empty`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := problemsOf(t, loadPolicies(t, head+tc.yaml+"\n"))
			if !slices.Equal(got, tc.want) {
				t.Errorf("problems\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// TestPolicySurfacesTypes: a misspelt or mistyped key is a load error, as
// for every key.
func TestPolicySurfacesTypes(t *testing.T) {
	t.Parallel()
	for _, y := range []string{
		"    notify: {dm: sometimes}\n",
		"    notify: {email: true}\n",
		"    escalate: {after: soon, to: {users: [U1]}}\n",
	} {
		if _, err := loadBytes("approvalbot.yaml", []byte(rulesBase+"policies:\n  - name: p\n    approvers: {users: [U1]}\n"+y)); err == nil {
			t.Errorf("%q loaded without an error", y)
		}
	}
}
