package condition

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/approvalbot/approvalbot/approvals"
)

func task() *approvals.Task {
	return &approvals.Task{
		Source: "flexdeploy", TaskID: "8900",
		Context: approvals.Context{Environment: "PROD", Project: "shop", Release: "hotfix/2.3.1",
			Pipeline: "main", Stage: "deploy", RequestedBy: "alice@example.com", Description: "urgent fix"},
		Extra: map[string]string{"team": "payments"},
	}
}

func TestEval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr string
		want bool
	}{
		{`task.environment == "PROD" && task.release.startsWith("hotfix/")`, true},
		{`task.environment == "PROD" && task.release.startsWith("release/")`, false},
		{`task.extra["team"] == "payments"`, true},
		{`"team" in task.extra && task.extra.team == "payments"`, true},
		{`task.source == "flexdeploy" && task.taskId == "8900"`, true},
		{`task.project.matches("^sh") && task.pipeline == "main" && task.stage == "deploy"`, true},
		{`task.requestedBy.endsWith("@example.com") && task.description.contains("urgent")`, true},
		{`task.environment.lowerAscii() == "prod"`, true},
	}
	for _, tt := range tests {
		c, err := Compile(tt.expr)
		if err != nil {
			t.Fatalf("Compile(%s): %v", tt.expr, err)
		}
		got, err := c.Eval(task())
		if err != nil || got != tt.want {
			t.Errorf("%s = %v, %v; want %v", tt.expr, got, err, tt.want)
		}
	}
}

// An evaluation error (a missing extra key) is an error, which the domain
// takes as no match; the policy is not matched.
func TestEvalErrorIsNoMatch(t *testing.T) {
	t.Parallel()
	c, err := Compile(`task.extra["missing"] == "x"`)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Eval(task()); err == nil || ok {
		t.Fatalf("Eval = %v, %v; want an error", ok, err)
	}
	var reported []error
	policies := []approvals.Policy{{Name: "hotfix", When: c}, {Name: "other"}}
	p := approvals.MatchPolicyReport(policies, task(), func(err error) { reported = append(reported, err) })
	if p == nil || p.Name != "other" {
		t.Fatalf("matched %v, want other", p)
	}
	var ce *approvals.ConditionError
	if len(reported) != 1 || !errors.As(reported[0], &ce) || ce.Policy != "hotfix" {
		t.Fatalf("reported %v", reported)
	}
	if policies[0].Matches(task()) {
		t.Fatal("Matches is true although the condition failed")
	}
}

func TestCompileProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr string
		want string
	}{
		{`task.enviroment == "PROD"`, "line 1, column 5: undefined field 'enviroment'"},
		{"task.environment == \"PROD\" &&\n  task.release.startsWith(", "line 2, column"},
		{`task.environment`, "must be a bool"},
		{`task.environment == 1`, "line 1, column 18: found no matching overload"},
		{`nobody == "x"`, "undeclared reference to 'nobody'"},
		{`  `, "is empty"},
		{strings.Repeat("a", maxChars+1), "must be at most"},
	}
	for _, tt := range tests {
		_, err := Compile(tt.expr)
		var ce *CompileError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Compile(%q) = %v, want a CompileError containing %q", tt.expr, err, tt.want)
		}
	}
}

// A condition is evaluated concurrently by every intake.
func TestConcurrentEval(t *testing.T) {
	t.Parallel()
	c, err := Compile(`task.environment == "PROD"`)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan bool)
	for range 8 {
		go func() {
			ok := true
			for range 200 {
				got, err := c.Eval(task())
				ok = ok && got && err == nil
			}
			done <- ok
		}()
	}
	for range 8 {
		if !<-done {
			t.Fatal("a concurrent evaluation failed")
		}
	}
}

// BenchmarkMatch50 matches a task against 50 CEL policies of which only
// the last matches: the worst case, every condition evaluated.
func BenchmarkMatch50(b *testing.B) {
	policies := make([]approvals.Policy, 50)
	for i := range policies {
		expr := fmt.Sprintf(`task.environment == "ENV%d" && task.release.startsWith("hotfix/") || task.extra["team"] == "team%d"`, i, i)
		if i == len(policies)-1 {
			expr = `task.environment == "PROD" && task.release.startsWith("hotfix/")`
		}
		c, err := Compile(expr)
		if err != nil {
			b.Fatal(err)
		}
		policies[i] = approvals.Policy{Name: fmt.Sprint("p", i), When: c}
	}
	tk := task()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if p := approvals.MatchPolicy(policies, tk); p == nil || p.Name != "p49" {
			b.Fatalf("matched %v", p)
		}
	}
}
