package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/approvalbot/approvalbot/approvals"
)

func TestWhenLoadsAndMatches(t *testing.T) {
	t.Parallel()
	c := loadPolicies(t, `
  - name: hotfix
    match: {environment: "PROD*", when: 'task.release.startsWith("hotfix/") && task.extra["team"] == "payments"'}
    channel: C0HOTFIX
    approvers: {users: [U1]}
  - name: default
    approvers: {users: [U2]}
`)
	if problems := problemsOf(t, c); len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	policies := c.ApprovalPolicies()
	if _, ok := policies[0].Match["when"]; ok || policies[0].Match["environment"] != "PROD*" || policies[0].When == nil {
		t.Fatalf("hotfix policy = %+v", policies[0])
	}
	if _, ok := c.Policies[0].Match["when"]; !ok {
		t.Fatal("ApprovalPolicies changed the configuration's own match")
	}
	tests := []struct {
		ctx   approvals.Context
		extra map[string]string
		want  string
	}{
		{approvals.Context{Environment: "PROD-EU", Release: "hotfix/1.2"}, map[string]string{"team": "payments"}, "hotfix"},
		{approvals.Context{Environment: "PROD-EU", Release: "1.2"}, map[string]string{"team": "payments"}, "default"},
		{approvals.Context{Environment: "TEST", Release: "hotfix/1.2"}, map[string]string{"team": "payments"}, "default"},
		// No team: evaluating task.extra["team"] fails, which is no match.
		{approvals.Context{Environment: "PROD", Release: "hotfix/1.2"}, nil, "default"},
	}
	for _, tt := range tests {
		p := approvals.MatchPolicy(policies, &approvals.Task{Context: tt.ctx, Extra: tt.extra})
		if p == nil || p.Name != tt.want {
			t.Errorf("%+v %v matched %v, want %s", tt.ctx, tt.extra, p, tt.want)
		}
	}
}

func TestWhenProblemsNamePolicyAndPlace(t *testing.T) {
	t.Parallel()
	c := loadPolicies(t, `
  - name: ok
    match: {when: 'task.environment == "PROD"'}
    approvers: {users: [U1]}
  - name: hotfix
    match: {when: 'task.environment == "PROD" && task.relase.startsWith("hotfix/")'}
    approvers: {users: [U1]}
  - name: notbool
    match: {when: 'task.environment'}
    approvers: {users: [U1]}
`)
	got := problemsOf(t, c)
	want := []string{
		`policies[1].match.when: policy "hotfix": line 1, column 35: undefined field 'relase'`,
		`policies[2].match.when: policy "notbool": line 1, column 1: must be a bool (true or false), is string`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A policy whose match has only a condition is no catch-all, and shadows
// only a later policy of the very same match.
func TestWhenIsNoCatchAll(t *testing.T) {
	t.Parallel()
	c := loadPolicies(t, `
  - name: hotfix
    match: {when: 'task.release.startsWith("hotfix/")'}
    approvers: {users: [U1]}
`)
	w := strings.Join(c.Warnings(), "\n")
	if !strings.Contains(w, "no policy without match") {
		t.Fatalf("warnings do not say there is no catch-all:\n%s", w)
	}
}
