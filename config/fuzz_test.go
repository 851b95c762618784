package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Load as a config file: whatever the file
// holds, loading (and validating what loads) must return, never panic.
func FuzzLoad(f *testing.F) {
	for _, p := range []string{examplePath, "testdata/full.yaml", "testdata/unknown_keys.yaml", "testdata/broken.yaml", "testdata/invalid.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"~",
		"- a\n- b\n",
		"42",
		"server: 5\n",
		"server: [1, 2]\n",
		"1: 2\n",
		"? [a, b]\n: c\n",
		"server:\n  1: 2\n",
		"policies: [1, {name: x}, null, [a]]\n",
		"policies:\n  - match: {1: 2, environment: [a]}\n",
		"policies:\n  - match: [a]\n",
		"policies:\n  - approvers: {users: {a: b}}\n",
		"policies:\n  - name: a\n    Name: b\n",
		"intake: {api_keys: [{name: a, key: [b]}]}\n",
		"intake: {api_keys: a:b}\n",
		"tokens: {ttl: -1h, signing_keys: x}\n",
		"flexdeploy: {timeout: 1e400, enrich: maybe}\n",
		"server: {max_body_bytes: 99999999999999999999999}\n",
		"a: &a [*a, *a]\nb: &b [*a, *a]\n",
		"server.listen: ':1'\n",
		"\"\": x\n",
		"slack: !!binary aGVsbG8=\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "approvalbot.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if err != nil {
			if c != nil {
				t.Errorf("Load returned a config and an error %v", err)
			}
			return
		}
		_ = c.Validate()
		_ = c.Warnings()
		_ = c.ApprovalPolicies()
	})
}
