package approvals_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/tokens"
)

// decidedWithReceipt runs a task to an approval on a Service that signs
// receipts, and returns the task and the public key.
func decidedWithReceipt(t *testing.T) (*approvals.Task, ed25519.PublicKey, []string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	store := newMemStore()
	issuer, _ := tokens.NewIssuer([]tokens.Key{{ID: "k1", Secret: []byte(strings.Repeat("s", 32))}})
	var posted []string
	var notes []string
	svc, err := approvals.NewService(approvals.Config{
		Store: store, Tokens: issuer, ReceiptKey: priv,
		Tools: mustTools(t, approvals.Tool{Name: "acme", Decide: func(_ context.Context, _ *approvals.Task, _ approvals.Action, n string, _ bool) error {
			notes = append(notes, n)
			return nil
		}}),

		Rules: func() approvals.Rules {
			return approvals.Rules{DefaultTTL: time.Hour, Policies: []approvals.Policy{{Name: "p", Approvers: approvals.Approvers{Users: []string{"UALICE", "UBOB"}}}}}
		},
		Chats: testChats(funcNotifier{post: func(_ *approvals.Task, token string) (approvals.MessageRef, error) {
			posted = append(posted, token)
			return approvals.MessageRef{Channel: "C1", TS: "1.1"}, nil
		}}, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	task, _, err := svc.Submit(ctx, approvals.Submission{Source: "acme", TaskID: "r1", Context: approvals.Context{Environment: "prod"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Work(ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Decide(ctx, approvals.DecideRequest{Token: posted[0], Action: approvals.ActionApprove, User: approvals.Person{ID: "UALICE", Name: "Alice"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Work(ctx, task.ID); err != nil { // delivery and update: more audit after the receipt
		t.Fatal(err)
	}
	return store.task(t, task.ID), pub, notes
}

func TestReceiptVerifies(t *testing.T) {
	t.Parallel()
	task, pub, notes := decidedWithReceipt(t)
	r, err := approvals.ReceiptOf(task)
	if err != nil {
		t.Fatal(err)
	}
	if err := approvals.VerifyReceipt(r, pub); err != nil {
		t.Fatalf("a real receipt does not verify: %v", err)
	}
	if r.Audit[len(r.Audit)-1].Event != "approved" || len(task.Audit) <= len(r.Audit) {
		t.Errorf("the receipt covers %d of %d records, ending %q; want up to the decision", len(r.Audit), len(task.Audit), r.Audit[len(r.Audit)-1].Event)
	}
	if err := approvals.VerifyAudit(task.Audit); err != nil {
		t.Errorf("the whole trail, delivery included: %v", err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "[receipt "+task.Seal.ShortHash()+"]") {
		t.Errorf("notes %q do not quote the receipt's short hash %s", notes, task.Seal.ShortHash())
	}
	other, _, _ := ed25519.GenerateKey(nil)
	if err := approvals.VerifyReceipt(r, other); err == nil {
		t.Error("a receipt verified with another key")
	}
}

// Flipping any byte of the receipt (as JSON), by one bit or by case,
// breaks it: ParseReceipt refuses the file, or VerifyReceipt the receipt.
func TestReceiptTamperingIsCaught(t *testing.T) {
	t.Parallel()
	task, pub, _ := decidedWithReceipt(t)
	r, _ := approvals.ReceiptOf(task)
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := approvals.ParseReceipt(raw); err != nil || approvals.VerifyReceipt(got, pub) != nil {
		t.Fatalf("the receipt as written does not pass: %v", err)
	}
	for _, flip := range []byte{0x01, 0x20} {
		for i := range raw {
			flipped := bytes.Clone(raw)
			flipped[i] ^= flip
			got, err := approvals.ParseReceipt(flipped)
			if err != nil {
				continue // refused as a file
			}
			if err := approvals.VerifyReceipt(got, pub); err == nil {
				t.Fatalf("flipping byte %d (%q → %q) still verifies", i, raw[i], flipped[i])
			}
		}
	}
	// Changing any audit record, even one the signature would not see
	// without the chain, is caught with what broke.
	for i := range r.Audit {
		bad := r
		bad.Audit = append([]approvals.AuditRecord(nil), r.Audit...)
		bad.Audit[i].Detail += "!"
		err := approvals.VerifyReceipt(bad, pub)
		if err == nil || !strings.Contains(err.Error(), "audit record") {
			t.Errorf("changing audit record %d: %v", i, err)
		}
	}
}
