package attestation_test

import (
	"context"
	"crypto/ed25519"
	"testing"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/attestation"
)

// FuzzVerify: whatever file is handed to `attestation verify`, Verify
// never panics, and it accepts nothing that is not signed by the key.
func FuzzVerify(f *testing.F) {
	seed := make([]byte, ed25519.SeedSize)
	key := ed25519.NewKeyFromSeed(seed)
	pub := key.Public().(ed25519.PublicKey)
	a, _ := approvals.NewArtifact("app", digestA)
	seal := &approvals.Seal{Covered: 1, KeyID: "k"}
	task := &approvals.Task{ID: "acme-1", Source: "acme", TaskID: "1", Status: approvals.StatusApproved, Context: approvals.Context{Artifact: a}, Seal: seal}
	task.Record(approvals.AuditRecord{Event: "approved", User: "U1"})
	seal.Head = task.Audit[0].Hash
	raw, err := attestation.Build(context.Background(), task, key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"","signatures":[]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := attestation.Verify(context.Background(), data, pub, "")
		if err == nil && (st == nil || st.Predicate.Outcome != approvals.StatusApproved) {
			t.Fatalf("accepted %q without an approval", data)
		}
		if err != nil && !attestation.IsInvalid(err) {
			t.Fatalf("a failure that is not a verdict: %v", err)
		}
	})
}
