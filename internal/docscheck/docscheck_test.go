package docscheck

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// repoRoot is the repository, from this package's directory.
const repoRoot = "../.."

// TestRepositoryLinks: every relative link of the README, of
// ARCHITECTURE.md (linked from the README's first screen) and of every page
// of docs/ resolves: the file (or folder) exists, and a #anchor names a
// heading of the page it points at.
func TestRepositoryLinks(t *testing.T) {
	t.Parallel()
	pages := []string{"README.md", "ARCHITECTURE.md"}
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		rel, err := filepath.Rel(repoRoot, d)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, filepath.ToSlash(rel))
	}
	if len(pages) < 10 {
		t.Fatalf("found only %d pages (%v); the manual is in docs/", len(pages), pages)
	}
	problems, err := Check(repoRoot, pages)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("broken link: %s", p)
	}
	// The checker must have seen links at all: a regexp that matches
	// nothing would pass every page.
	n := 0
	for _, page := range pages {
		data := mustRead(t, filepath.Join(repoRoot, page))
		n += len(Links(data))
	}
	if n < 50 {
		t.Errorf("found only %d links in %d pages; the link scanner is broken", n, len(pages))
	}
}

// TestCheckFindsBrokenLinks is the negative control: on a small fixture
// with known broken links, Check reports exactly those and nothing else.
func TestCheckFindsBrokenLinks(t *testing.T) {
	t.Parallel()
	root := filepath.Join("testdata", "site")
	problems, err := Check(root, []string{"README.md", "ARCHITECTURE.md", "docs/configuration.md"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, fmt.Sprintf("%s:%d %s", p.File, p.Line, p.Target))
	}
	want := []string{
		"README.md:10 docs/missing.md",
		"README.md:11 docs/configuration.md#no-such-heading",
		"README.md:14 ../../outside.md",
		"README.md:17 /docs/configuration.md",
		"README.md:18 #nowhere",
		"README.md:24 docs/missing-ref.md",
		"docs/configuration.md:3 ../deploy/shot.png",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Check found\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for _, p := range problems {
		if p.Why == "" {
			t.Errorf("%s: no reason given", p)
		}
	}
}

func TestSlug(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"Receipts: proving who decided, offline":          "receipts-proving-who-decided-offline",
		"Web approval with single sign-on":                "web-approval-with-single-sign-on",
		"outbox, sweeper, reconcile":                      "outbox-sweeper-reconcile",
		"azure_devops":                                    "azure_devops",
		"Conditions in CEL: `match.when`":                 "conditions-in-cel-matchwhen",
		"Delegation: `/approvals delegate`":               "delegation-approvals-delegate",
		"1. Register an Azure Bot (single-tenant)":        "1-register-an-azure-bot-single-tenant",
		"approvalbot — design":                            "approvalbot--design",
		"See [the docs](docs/README.md) *now*":            "see-the-docs-now",
		"Change management: approvals bound to the build": "change-management-approvals-bound-to-the-build",
	}
	for heading, want := range tests {
		if got := Slug(heading); got != want {
			t.Errorf("Slug(%q) = %q, want %q", heading, got, want)
		}
	}
}

func TestAnchorsRepeatsAndFences(t *testing.T) {
	t.Parallel()
	doc := "# A\n\n## Keys\n\n```sh\n# not a heading\n```\n\n## Keys\n\n### Keys ###\n"
	got := Anchors(doc)
	for _, a := range []string{"a", "keys", "keys-1", "keys-2"} {
		if !got[a] {
			t.Errorf("anchor %q missing from %v", a, got)
		}
	}
	if got["not-a-heading"] {
		t.Errorf("a comment in a code fence became an anchor: %v", got)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
