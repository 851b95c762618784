// Package condition compiles and evaluates a policy's match.when, a CEL
// expression over the task (cel.dev/cel-go, the library Kubernetes and
// Kyverno use). It implements approvals.Condition, so that the domain
// never imports CEL.
//
// An expression sees one variable, task, with the fields source, taskId,
// environment, project, release, pipeline, stage, requestedBy, description
// (strings) and extra (a map of strings), and must be a bool:
//
//	task.environment == "PROD" && task.release.startsWith("hotfix/")
package condition

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"

	"github.com/approvalbot/approvalbot/approvals"
)

// Fields is the task as an expression sees it; its cel tags are the
// names expressions use.
type Fields struct {
	Source      string            `cel:"source"`
	TaskID      string            `cel:"taskId"`
	Environment string            `cel:"environment"`
	Project     string            `cel:"project"`
	Release     string            `cel:"release"`
	Pipeline    string            `cel:"pipeline"`
	Stage       string            `cel:"stage"`
	RequestedBy string            `cel:"requestedBy"`
	Description string            `cel:"description"`
	Extra       map[string]string `cel:"extra"`
}

// fieldsOf is what an expression sees of t.
func fieldsOf(t *approvals.Task) Fields {
	extra := t.Extra
	if extra == nil {
		extra = map[string]string{}
	}
	return Fields{
		Source: t.Source, TaskID: t.TaskID, Environment: t.Environment, Project: t.Project,
		Release: t.Release, Pipeline: t.Pipeline, Stage: t.Stage, RequestedBy: t.RequestedBy,
		Description: t.Description, Extra: extra,
	}
}

// maxChars bounds an expression's text.
const maxChars = 4000

// environment is the CEL environment every expression compiles in. It is
// built once and never changes (cel.Env is safe for concurrent use).
var environment = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		ext.NativeTypes(reflect.TypeFor[Fields](), ext.ParseStructTags(true)),
		cel.Variable("task", cel.ObjectType("condition.Fields")),
		ext.Strings(),
	)
})

// Problem is one thing wrong with an expression, at a place in it.
type Problem struct {
	Line, Column int // 1-based; 0 when the problem has no place
	Message      string
}

func (p Problem) String() string {
	if p.Line == 0 {
		return p.Message
	}
	return fmt.Sprintf("line %d, column %d: %s", p.Line, p.Column, p.Message)
}

// CompileError lists the problems of an expression.
type CompileError struct{ Problems []Problem }

func (e *CompileError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

// Condition is a compiled expression; it is safe for concurrent use.
type Condition struct {
	expr    string
	program cel.Program
}

var _ approvals.Condition = (*Condition)(nil)

// Compile parses and type-checks expr; the errors are a *CompileError
// naming the line and column of each problem.
func Compile(expr string) (*Condition, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, &CompileError{[]Problem{{Message: "is empty"}}}
	}
	if n := len([]rune(expr)); n > maxChars {
		return nil, &CompileError{[]Problem{{Message: fmt.Sprintf("must be at most %d characters, got %d", maxChars, n)}}}
	}
	env, err := environment()
	if err != nil {
		return nil, fmt.Errorf("condition: environment: %w", err)
	}
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		var out []Problem
		for _, e := range iss.Errors() {
			p := Problem{Message: e.Message}
			if loc := e.Location; loc != nil && loc.Line() > 0 {
				p.Line, p.Column = loc.Line(), loc.Column()+1
			}
			out = append(out, p)
		}
		return nil, &CompileError{out}
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, &CompileError{[]Problem{{Line: 1, Column: 1, Message: fmt.Sprintf("must be a bool (true or false), is %s", ast.OutputType())}}}
	}
	// No runtime cost tracking: it doubles the time of an evaluation, and
	// an expression's work is bounded by its text (maxChars) and the
	// task's fields (the intake's body limit).
	program, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, &CompileError{[]Problem{{Message: err.Error()}}}
	}
	return &Condition{expr: expr, program: program}, nil
}

// String is the expression as written.
func (c *Condition) String() string { return c.expr }

// activation hands an expression its one variable, without the map a
// plain activation would allocate on every evaluation.
type activation struct{ task *Fields }

func (a activation) ResolveName(name string) (any, bool) {
	if name == "task" {
		return a.task, true
	}
	return nil, false
}

func (a activation) Parent() interpreter.Activation { return nil }

// errNotBool is a result that is no bool (the type check rules it out).
var errNotBool = errors.New("the expression did not give a bool")

// Eval evaluates the expression on the task.
func (c *Condition) Eval(t *approvals.Task) (bool, error) {
	f := fieldsOf(t)
	out, _, err := c.program.Eval(activation{&f})
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, errNotBool
	}
	return b, nil
}
