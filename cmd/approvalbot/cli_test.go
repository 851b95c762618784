package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/approvalbot/approvalbot/internal/dynalitetest"
)

func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "approvalbot.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigCheck(t *testing.T) {
	t.Parallel()
	out, _, err := runCLI(t, "config", "check", "--config", "../../approvalbot.example.yaml")
	if err != nil || !strings.Contains(out, "is valid") || !strings.Contains(out, "warning: slack.bot_token") {
		t.Fatalf("example config: %v\n%s", err, out)
	}

	bad := writeConfig(t, `
store: {driver: sqlite}
tokens: {signing_keys: [{id: k1, secret: short}]}
policies:
  - name: p
    required_approvals: 0
`)
	_, errOut, err := runCLI(t, "config", "check", "--config", bad)
	if !errors.Is(err, errReported) {
		t.Fatalf("invalid config: %v", err)
	}
	for _, want := range []string{"store.driver", "tokens.signing_keys[0].secret", "policies[0].required_approvals", "policies[0].approvers"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("problems do not name %s:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "short") {
		t.Errorf("a secret was printed:\n%s", errOut)
	}

	// serve refuses to start on it, with the same problems.
	_, serveErr, err := runCLI(t, "serve", "--config", bad)
	if !errors.Is(err, errReported) || !strings.Contains(serveErr, "policies[0].required_approvals") {
		t.Fatalf("serve on an invalid config: %v\n%s", err, serveErr)
	}
}

func TestCommandLine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		err  error
		out  string
	}{
		{[]string{"version"}, nil, "approvalbot "},
		{[]string{"help"}, nil, "Usage:"},
		{nil, errUsage, ""},
		{[]string{"deploy"}, errUsage, ""},
		{[]string{"config"}, errUsage, ""},
		{[]string{"serve", "--nope"}, errUsage, ""},
		{[]string{"serve", "extra"}, errUsage, ""},
		{[]string{"config", "check", "--config", "/does/not/exist.yaml"}, errReported, ""},
	}
	for _, tc := range cases {
		out, _, err := runCLI(t, tc.args...)
		if !errors.Is(err, tc.err) && !(err == nil && tc.err == nil) {
			t.Errorf("%v: error %v, want %v", tc.args, err, tc.err)
		}
		if !strings.Contains(out, tc.out) {
			t.Errorf("%v: output %q lacks %q", tc.args, out, tc.out)
		}
	}
}

func TestCreateTableCommand(t *testing.T) {
	t.Parallel()
	table := dynalitetest.TableName(t)
	cfg := writeConfig(t, fmt.Sprintf(`
store: {driver: dynamodb, dynamodb: {table: %q, region: us-east-1, endpoint: %q}}
tokens: {signing_keys: [{id: k1, secret: "0123456789abcdef0123456789abcdef"}]}
`, table, dynalitetest.Endpoint()))
	out, errOut, err := runCLI(t, "dynamodb", "create-table", "--config", cfg)
	if err != nil || !strings.Contains(out, "created table "+table) || !strings.Contains(out, "TTL is not supported") {
		t.Fatalf("create-table: %v\n%s%s", err, out, errOut)
	}
	out, _, err = runCLI(t, "dynamodb", "create-table", "--config", cfg)
	if err != nil || !strings.Contains(out, "exists already") {
		t.Fatalf("second create-table: %v\n%s", err, out)
	}
}
