package dynalitetest

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewTableIsFreshAndDeletedOnCleanup(t *testing.T) {
	t.Parallel()
	var table string
	var client *dynamodb.Client
	t.Run("use", func(t *testing.T) {
		client, table = NewTable(t)
		_, err := client.PutItem(t.Context(), &dynamodb.PutItemInput{
			TableName: aws.String(table),
			Item:      map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "a"}},
		})
		if err != nil {
			t.Fatalf("PutItem: %v", err)
		}
		_, other := NewTable(t)
		if other == table {
			t.Fatalf("two tables named %s", table)
		}
	})
	// Deletion takes its time: the table may still be seen, as DELETING.
	out, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	var notFound *types.ResourceNotFoundException
	if !errors.As(err, &notFound) && (err != nil || out.Table.TableStatus != types.TableStatusDeleting) {
		t.Fatalf("DescribeTable after cleanup: got %+v, %v; want the table deleted or DELETING", out, err)
	}
}

func TestCounterCountsCallsByOperation(t *testing.T) {
	t.Parallel()
	_, table := NewTable(t)
	counter := NewCounter()
	client := NewClient(t, counter.Option())
	other := NewClient(t) // not counted
	ctx := t.Context()
	key := map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "a"}}
	for range 2 {
		if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: key}); err != nil {
			t.Fatalf("PutItem: %v", err)
		}
	}
	if _, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key}); err != nil {
		t.Fatalf("GetItem: %v", err)
	}
	if _, err := other.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key}); err != nil {
		t.Fatalf("GetItem: %v", err)
	}
	// A failing call counts too.
	if _, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("no-such-table"), Key: key}); err == nil {
		t.Fatal("GetItem on a missing table: no error")
	}

	want := map[string]int{"PutItem": 2, "GetItem": 2}
	if got := counter.Snapshot(); !maps.Equal(got, want) {
		t.Errorf("Snapshot() = %v, want %v", got, want)
	}
	if got := counter.Count("PutItem"); got != 2 {
		t.Errorf("Count(PutItem) = %d, want 2", got)
	}
	if got := counter.Count("Scan"); got != 0 {
		t.Errorf("Count(Scan) = %d, want 0", got)
	}
	snap := counter.Snapshot()
	counter.Reset()
	if got := counter.Snapshot(); len(got) != 0 {
		t.Errorf("after Reset: %v, want none", got)
	}
	if snap["PutItem"] != 2 {
		t.Errorf("Reset changed an earlier snapshot: %v", snap)
	}
}

func TestTableName(t *testing.T) {
	t.Parallel()
	a, b := TableName(t), TableName(t)
	if a == b {
		t.Errorf("TableName twice gave %s", a)
	}
	if !strings.HasPrefix(a, "test-TestTableName-") {
		t.Errorf("TableName = %s, want it to name the test", a)
	}
	t.Run("odd/characters here", func(t *testing.T) {
		name := TableName(t)
		if strings.ContainsAny(name, "/ ") || len(name) > 255 {
			t.Errorf("TableName = %q, not a valid table name", name)
		}
	})
}

// TestFindDynaliteNamesTheAlternative: where dynalite is not installed the
// error also names the variable for a running endpoint (finding the binary
// itself is internal/dynalite's, tested there).
func TestFindDynaliteNamesTheAlternative(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "go.mod"), "module example\n")
	_, err := findDynalite(dir)
	if err == nil || !strings.Contains(err.Error(), "make tools") || !strings.Contains(err.Error(), EndpointEnv) {
		t.Fatalf("findDynalite without tools: %v", err)
	}
}

// TestMainFailsWithoutDynalite runs this test binary again in a module
// without tools/: Main must exit 1 and say to run `make tools`, never skip.
func TestMainFailsWithoutDynalite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "go.mod"), "module example\n")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperNothing$")
	cmd.Dir = dir
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EndpointEnv+"=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Fatalf("test binary without dynalite: err = %v, want exit status 1; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "make tools") {
		t.Errorf("output does not tell to run `make tools`:\n%s", out)
	}
	if strings.Contains(string(out), "SKIP") || strings.Contains(string(out), "\nok") {
		t.Errorf("output shows tests run or skipped:\n%s", out)
	}
}

// TestHelperNothing is what the child of TestMainFailsWithoutDynalite would
// run had Main not failed.
func TestHelperNothing(t *testing.T) {}

func TestStopLeavesNoServer(t *testing.T) {
	t.Parallel()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := findDynalite(wd)
	if err != nil {
		if os.Getenv(EndpointEnv) != "" {
			// Main did not need dynalite: the run uses another server.
			t.Skipf("%s is set and dynalite is not installed: %v", EndpointEnv, err)
		}
		t.Fatal(err)
	}
	srv, err := start(bin)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(srv.endpoint)
	if err != nil {
		srv.stop()
		t.Fatalf("running server does not answer: %v", err)
	}
	resp.Body.Close()

	srv.stop()
	select {
	case <-srv.exited:
	default:
		t.Fatal("process still running after stop")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.endpoint, nil)
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("server still answers after stop")
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}
