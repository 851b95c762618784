package main

import (
	"archive/zip"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestTeamsAppPackage: the command writes a zip of the manifest and the two
// icons from the configuration; a Teams config with problems is refused
// with every problem, the app password never printed.
func TestTeamsAppPackage(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, `
server: {public_url: "https://approvals.corp.example"}
tokens: {signing_keys: [{id: k1, secret: "0123456789abcdef0123456789abcdef0123456789"}]}
teams:
  app_id: "9f1c1f7e-1111-4222-8333-123456789abc"
  app_password: "the-app-password-1234"
  tenant_id: "0b6a1f7e-1111-4222-8333-123456789abc"
  channel: "19:abc@thread.tacv2"
`)
	out := filepath.Join(t.TempDir(), "app.zip")
	stdout, stderr, err := runCLI(t, "teams", "app-package", "--config", cfg, "--out", out)
	if err != nil {
		t.Fatalf("app-package: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "wrote "+out) {
		t.Errorf("stdout %q", stdout)
	}
	z, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	var names []string
	for _, f := range z.File {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "manifest.json,color.png,outline.png" {
		t.Errorf("zip holds %s", got)
	}

	bad := writeConfig(t, `
teams:
  app_id: "not-a-guid"
  app_password: "the-app-password-1234"
`)
	_, stderr, err = runCLI(t, "teams", "app-package", "--config", bad, "--out", filepath.Join(t.TempDir(), "x.zip"))
	if !errors.Is(err, errReported) {
		t.Fatalf("a bad config: %v", err)
	}
	for _, want := range []string{"teams.app_id", "teams.tenant_id", "server.public_url"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("problems do not name %s:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "the-app-password-1234") {
		t.Error("the app password was printed")
	}
	if _, _, err := runCLI(t, "teams", "upload"); !errors.Is(err, errUsage) {
		t.Errorf("teams upload: %v, want usage", err)
	}
}
