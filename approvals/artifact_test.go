package approvals_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/tokens"
)

const (
	sha256A = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	sha256B = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func TestNewArtifact(t *testing.T) {
	t.Parallel()
	hex40 := strings.Repeat("0123456789", 4)
	for _, tc := range []struct{ name, digest, want string }{
		{"app", sha256A, sha256A},
		{"app", "SHA256:" + strings.ToUpper(strings.TrimPrefix(sha256A, "sha256:")), sha256A},
		{"acme/shop", "gitCommit:" + hex40, "gitCommit:" + hex40},
		{"acme/shop", "gitcommit:" + hex40, "gitCommit:" + hex40},
	} {
		a, err := approvals.NewArtifact(tc.name, tc.digest)
		if err != nil || a.Digest != tc.want {
			t.Errorf("NewArtifact(%q, %q) = %+v, %v; want %s", tc.name, tc.digest, a, err, tc.want)
		}
	}
	for _, tc := range []struct{ name, digest string }{
		{"", sha256A},
		{"a\x00b", sha256A},
		{strings.Repeat("n", 257), sha256A},
		{"app", ""},
		{"app", "aaaa"},
		{"app", "sha256:" + strings.Repeat("a", 63)},
		{"app", "sha256:" + strings.Repeat("g", 64)},
		{"app", "gitCommit:" + strings.Repeat("a", 64)},
		{"app", "sha512:" + strings.Repeat("a", 128)},
		{"app", "md5:" + strings.Repeat("a", 32)},
	} {
		if a, err := approvals.NewArtifact(tc.name, tc.digest); !errors.Is(err, approvals.ErrInvalid) {
			t.Errorf("NewArtifact(%q, %q) = %+v, %v; want ErrInvalid", tc.name, tc.digest, a, err)
		}
	}
	a, _ := approvals.NewArtifact("app", sha256A)
	if got := a.ShortDigest(); got != "sha256:aaaaaaaaaaaa" {
		t.Errorf("ShortDigest = %q", got)
	}
}

func TestRepeatedIntakeWithAnotherArtifactIsRefused(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	issuer, _ := tokens.NewIssuer([]tokens.Key{{ID: "k1", Secret: []byte(strings.Repeat("s", 32))}})
	svc, err := approvals.NewService(approvals.Config{
		Store: store, Tokens: issuer, Tools: mustTools(t, approvals.Tool{Name: "acme"}),
		Rules: func() approvals.Rules { return approvals.Rules{DefaultTTL: time.Hour} },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	art := func(digest string) *approvals.Artifact { a, _ := approvals.NewArtifact("app", digest); return a }
	sub := func(taskID string, a *approvals.Artifact) approvals.Submission {
		return approvals.Submission{Source: "acme", TaskID: taskID, Context: approvals.Context{Description: "d", Artifact: a}}
	}
	first, created, err := svc.Submit(ctx, sub("1", art(sha256A)))
	if err != nil || !created {
		t.Fatal(err)
	}
	before := store.task(t, first.ID)
	if _, _, err := svc.Submit(ctx, sub("1", art(sha256B))); !errors.Is(err, approvals.ErrArtifactMismatch) {
		t.Fatalf("another digest: %v, want ErrArtifactMismatch", err)
	}
	if k := approvals.KindOf(approvals.ErrArtifactMismatch); k.HTTPStatus != 409 {
		t.Errorf("status %d, want 409", k.HTTPStatus)
	}
	if after := store.task(t, first.ID); after.Version != before.Version || after.Artifact.Digest != sha256A {
		t.Errorf("the refused repeat changed the task: version %d→%d, artifact %s", before.Version, after.Version, after.Artifact.Digest)
	}
	for name, a := range map[string]*approvals.Artifact{"the same digest": art(sha256A), "no artifact": nil} {
		if _, created, err := svc.Submit(ctx, sub("1", a)); err != nil || created {
			t.Errorf("a repeat with %s: created=%v, %v; want the same task", name, created, err)
		}
	}
	// A task recorded without an artifact never gains one by a repeat.
	if _, _, err := svc.Submit(ctx, sub("2", nil)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Submit(ctx, sub("2", art(sha256A))); !errors.Is(err, approvals.ErrArtifactMismatch) {
		t.Errorf("a repeat adding an artifact: %v, want ErrArtifactMismatch", err)
	}
}

func TestAttestationReady(t *testing.T) {
	t.Parallel()
	a, _ := approvals.NewArtifact("app", sha256A)
	for _, tc := range []struct {
		name string
		t    approvals.Task
		want error
	}{
		{"no artifact", approvals.Task{Status: approvals.StatusApproved, Seal: &approvals.Seal{}}, approvals.ErrNoArtifact},
		{"pending", approvals.Task{Status: approvals.StatusPending, Context: approvals.Context{Artifact: a}}, approvals.ErrNotDecided},
		{"no receipt", approvals.Task{Status: approvals.StatusApproved, Context: approvals.Context{Artifact: a}}, approvals.ErrNoReceipt},
		{"ready", approvals.Task{Status: approvals.StatusRejected, Context: approvals.Context{Artifact: a}, Seal: &approvals.Seal{}}, nil},
	} {
		if err := approvals.AttestationReady(&tc.t); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if approvals.KindOf(approvals.ErrNotDecided).HTTPStatus != 409 || approvals.KindOf(approvals.ErrNoArtifact).HTTPStatus != 404 {
		t.Error("not decided must be 409 and no artifact 404")
	}
}
