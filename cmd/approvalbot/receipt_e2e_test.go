package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/approvalbot/approvalbot/approvals"
)

// verifyReceipt runs `approvalbot receipt verify - --public-key KEY` on
// data given on standard input.
func verifyReceipt(data []byte, key string) (string, error) {
	var out, errOut bytes.Buffer
	err := receipt([]string{"verify", "-", "--public-key", key}, bytes.NewReader(data), &out, &errOut)
	return out.String() + errOut.String(), err
}

// TestReceiptOfARealDecision: a decision clicked in Slack gets a receipt
// at GET /v1/tasks/{id}/receipt that `receipt verify` accepts with the
// key `receipt public-key` prints; flipping any byte of it, or changing
// any audit record, makes verify fail with exit 1 and say what broke.
func TestReceiptOfARealDecision(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.extra = "receipts: {signing_key: " + testReceiptSeed + "}\n"
	e.start()
	id := e.submit(`{"taskid":"rcpt1","description":"v2.3 to PROD","environment":"PROD","requestedBy":"dev@example.com"}`)
	if status, raw := e.receiptOf(id); status != http.StatusNotFound || !strings.Contains(string(raw), `"error"`) {
		t.Errorf("a pending task's receipt: %d %s, want 404 JSON", status, raw)
	}
	e.click(e.message("rcpt1"), "approve", "UALICE", "Alice")
	e.waitTask(id, "delivered", delivered)
	status, raw := e.receiptOf(id)
	if status != http.StatusOK {
		t.Fatalf("receipt: %d %s", status, raw)
	}

	// The printed public key is the signing key's, and the receipt names it.
	key := receiptKeyPublic(t)
	seed, _ := base64.StdEncoding.DecodeString(testReceiptSeed)
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	if key != base64.StdEncoding.EncodeToString(pub) {
		t.Errorf("receipt public-key printed %s, not the public key of receipts.signing_key", key)
	}
	var r approvals.Receipt
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if r.KeyID != approvals.KeyID(pub) || r.Status != approvals.StatusApproved || r.DecidedBy == nil || r.DecidedBy.ID != "UALICE" || len(r.Audit) < 2 {
		t.Errorf("receipt %+v", r)
	}

	if out, err := runReceiptVerify(t, raw, key); err != nil || !strings.HasPrefix(out, "valid: "+id+" approved, decided by Alice (UALICE)") {
		t.Fatalf("receipt verify on the real receipt: %v\n%s", err, out)
	}

	// Any byte flipped, in any of two bits: the JSON breaks, or a name,
	// a value, a hash or the signature changes.
	for i := range raw {
		for _, bit := range []byte{0x01, 0x20} {
			tampered := bytes.Clone(raw)
			tampered[i] ^= bit
			out, err := verifyReceipt(tampered, key)
			if !errors.Is(err, errReported) || !strings.HasPrefix(out, "INVALID: ") {
				t.Fatalf("byte %d (%q) flipped by %#x: %v\n%s", i, raw[i], bit, err, out)
			}
		}
	}

	// Any audit record changed, as a forger would write it: well-formed,
	// even with its own hash made right again.
	for i := range r.Audit {
		for _, fix := range []bool{false, true} {
			forged := r
			forged.Audit = append([]approvals.AuditRecord(nil), r.Audit...)
			forged.Audit[i].Detail += " (edited)"
			if fix {
				forged.Audit[i].Hash = approvals.AuditHash(forged.Audit[i])
			}
			data, _ := json.Marshal(forged)
			out, err := verifyReceipt(data, key)
			if !errors.Is(err, errReported) || !strings.Contains(out, "INVALID: ") {
				t.Fatalf("audit record %d changed (hash fixed %v): %v\n%s", i, fix, err, out)
			}
			if !fix && !strings.Contains(out, "audit record") {
				t.Errorf("audit record %d changed: the verdict does not say where: %s", i, out)
			}
		}
	}
	// Signed by another key.
	other := base64.StdEncoding.EncodeToString(make([]byte, ed25519.PublicKeySize))
	if out, err := verifyReceipt(raw, other); !errors.Is(err, errReported) || !strings.Contains(out, "not with this public key") {
		t.Errorf("another key: %v\n%s", err, out)
	}
}

func runReceiptVerify(t *testing.T, raw []byte, key string) (string, error) {
	t.Helper()
	out, errOut, err := runCLI(t, "receipt", "verify", writeFile(t, raw), "--public-key", key)
	return out + errOut, err
}

// TestReceiptCommandUsage: the exit codes of the receipt commands.
func TestReceiptCommandUsage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		args []string
		want error
	}{
		{"no subcommand", []string{"receipt"}, errUsage},
		{"unknown subcommand", []string{"receipt", "sign"}, errUsage},
		{"verify without a key", []string{"receipt", "verify", "x.json"}, errUsage},
		{"verify without a file", []string{"receipt", "verify", "--public-key", "AAAA"}, errUsage},
		{"verify with two files", []string{"receipt", "verify", "a", "b", "--public-key", "AAAA"}, errUsage},
		{"verify with a key not base64", []string{"receipt", "verify", "x.json", "--public-key", "!!"}, errUsage},
		{"verify with a short key", []string{"receipt", "verify", "x.json", "--public-key", "AAAA"}, errUsage},
		{"verify a missing file", []string{"receipt", "verify", "/nonexistent/receipt.json", "--public-key", base64.StdEncoding.EncodeToString(make([]byte, 32))}, errReported},
		{"public-key without receipts.signing_key", []string{"receipt", "public-key", "--config", writeConfig(t, "log: {level: info}\n")}, errReported},
		{"public-key with a bad key", []string{"receipt", "public-key", "--config", writeConfig(t, "receipts: {signing_key: c2hvcnQ=}\n")}, errReported},
	} {
		_, errOut, err := runCLI(t, tt.args...)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v\n%s", tt.name, err, tt.want, errOut)
		}
		if strings.Contains(errOut, "c2hvcnQ=") {
			t.Errorf("%s: the key was printed: %s", tt.name, errOut)
		}
	}
	if err := run(context.Background(), []string{"receipt", "help"}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Errorf("receipt help: %v", err)
	}
}
