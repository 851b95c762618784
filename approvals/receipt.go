package approvals

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"
)

// ReceiptFormat names the receipt's layout; a verifier refuses others.
const ReceiptFormat = "approvalbot-receipt/1"

// Seal is what the task keeps of its receipt: the receipt is rebuilt from
// the task's record and these, so nothing is stored twice.
type Seal struct {
	// Covered is how many audit records the receipt covers: those up to and
	// including the one that made the task final.
	Covered int `json:"covered"`
	// Head is the Hash of the last record covered: the receipt's short
	// hash, shown on the message and in the deployment tool's notes.
	Head      string    `json:"head"`
	SignedAt  time.Time `json:"signedAt"`
	KeyID     string    `json:"keyId"`
	Signature []byte    `json:"signature"`
}

// Receipt is a final decision as an auditor can check it offline: the
// decision, the task's hash-chained audit trail up to it, and an Ed25519
// signature over all of it.
type Receipt struct {
	Format    string        `json:"format"`
	ID        string        `json:"id"`
	Source    string        `json:"source"`
	TaskID    string        `json:"taskId"`
	Context   Context       `json:"context"`
	Policy    string        `json:"policy,omitempty"`
	Status    Status        `json:"status"`
	DecidedBy *Person       `json:"decidedBy,omitempty"`
	DecidedAt *time.Time    `json:"decidedAt,omitempty"`
	Reason    string        `json:"reason,omitempty"`
	Approvals []Vote        `json:"approvals"`
	Audit     []AuditRecord `json:"audit"`
	Head      string        `json:"head"`
	SignedAt  time.Time     `json:"signedAt"`
	// KeyID is the first 16 hex digits of the SHA-256 of the public key.
	KeyID string `json:"keyId"`
	// Signature is the standard base64 Ed25519 signature of the receipt's
	// JSON with Signature empty.
	Signature string `json:"signature"`

	// Change is the change record the decision was made on, when the
	// policy required one (change.go).
	Change *ChangeRecord `json:"change,omitempty"`
}

// ShortHash is how people quote a receipt: the first 12 hex digits of its
// head.
func (s *Seal) ShortHash() string {
	if s == nil || len(s.Head) < 12 {
		return ""
	}
	return s.Head[:12]
}

// KeyID names a public key: the first 16 hex digits of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// seal signs the task's receipt as it stands now, covering its whole audit
// trail; the task must be final. A nil key seals nothing.
func seal(t *Task, key ed25519.PrivateKey, now time.Time) {
	if key == nil || !t.Status.Final() || len(t.Audit) == 0 {
		return
	}
	s := &Seal{Covered: len(t.Audit), Head: t.Audit[len(t.Audit)-1].Hash, SignedAt: now.UTC(),
		KeyID: KeyID(key.Public().(ed25519.PublicKey))}
	t.Seal = s
	r, _ := ReceiptOf(t)
	s.Signature = ed25519.Sign(key, receiptMessage(r))
}

// ErrNoReceipt: the task has no receipt (not final yet, or decided before
// receipts were configured).
var ErrNoReceipt = errors.New("the task has no receipt")

// ReceiptOf rebuilds the task's receipt from its record and seal.
func ReceiptOf(t *Task) (Receipt, error) {
	s := t.Seal
	if s == nil || s.Covered > len(t.Audit) {
		return Receipt{}, ErrNoReceipt
	}
	approvals := t.Approvals
	if approvals == nil {
		approvals = []Vote{}
	}
	return Receipt{
		Format: ReceiptFormat, ID: t.ID, Source: t.Source, TaskID: t.TaskID, Context: t.Context, Policy: t.Policy,
		Status: t.Status, DecidedBy: t.DecidedBy, DecidedAt: t.DecidedAt, Reason: t.Reason, Approvals: approvals,
		Audit: t.Audit[:s.Covered], Head: s.Head, SignedAt: s.SignedAt, KeyID: s.KeyID,
		Signature: base64.StdEncoding.EncodeToString(s.Signature), Change: t.ChangeRecord,
	}, nil
}

// receiptMessage is what is signed: the receipt's JSON without its
// signature.
func receiptMessage(r Receipt) []byte {
	r.Signature = ""
	msg, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("approvals: receipt: %v", err))
	}
	return msg
}

// VerifyReceipt checks a receipt with the signer's public key and says
// what broke: the format, the audit chain, its head, or the signature.
func VerifyReceipt(r Receipt, pub ed25519.PublicKey) error {
	if r.Format != ReceiptFormat {
		return fmt.Errorf("not a receipt of format %s", ReceiptFormat)
	}
	if len(pub) != ed25519.PublicKeySize {
		return errors.New("the public key is not an Ed25519 public key")
	}
	if r.KeyID != KeyID(pub) {
		return fmt.Errorf("signed with key %s, not with this public key (%s)", r.KeyID, KeyID(pub))
	}
	if err := VerifyAudit(r.Audit); err != nil {
		return err
	}
	if len(r.Audit) == 0 || r.Audit[len(r.Audit)-1].Hash != r.Head {
		return errors.New("the head does not name the last audit record")
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(r.Signature)
	if err != nil || !ed25519.Verify(pub, receiptMessage(r), sig) {
		return errors.New("the signature does not match the receipt (a field was changed, or it was signed by another key)")
	}
	return nil
}

// Receipt returns the signed receipt of a task's final decision, or
// ErrNoReceipt while it has none.
func (s *Service) Receipt(ctx context.Context, id string) (Receipt, error) {
	t, err := s.Lookup(ctx, id)
	if err != nil {
		return Receipt{}, err
	}
	return ReceiptOf(t)
}

// ReceiptPublicKey is the key receipts verify with (nil without receipts).
func (s *Service) ReceiptPublicKey() ed25519.PublicKey {
	if s.cfg.ReceiptKey == nil {
		return nil
	}
	return s.cfg.ReceiptKey.Public().(ed25519.PublicKey)
}

// Token returns a pending task's one-time token, for a surface that links
// to the task instead of posting buttons (the web's review link). It is the
// same token the buttons carry; a final task has none.
func (s *Service) Token(t *Task) (string, error) {
	if t.Status.Final() {
		return "", ErrAlreadyDecided
	}
	return s.mint(t)
}

// ParseReceipt reads a receipt as approvalbot writes it, and says what is
// off when it is not exactly that: one JSON object and nothing after it,
// no key twice, every field as written (encoding/json alone would match
// names case-insensitively, skip unknown ones and keep the last of two
// keys, so a changed byte could pass unseen), the signature in standard
// base64 as the encoder writes it. VerifyReceipt then checks it.
func ParseReceipt(raw []byte) (Receipt, error) {
	var r Receipt
	if err := DecodeStrict(raw, &r); err != nil {
		return Receipt{}, fmt.Errorf("the file is not a receipt as approvalbot writes it: %w", err)
	}
	var asWritten any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&asWritten); err != nil {
		return Receipt{}, fmt.Errorf("the file is not one JSON object")
	}
	// encoding/json matches names case-insensitively and skips names it
	// does not know: the receipt as decoded, written again, must be the
	// file, or a changed byte could pass unseen.
	again, _ := json.Marshal(r)
	var canonical any
	dec = json.NewDecoder(bytes.NewReader(again))
	dec.UseNumber()
	_ = dec.Decode(&canonical)
	if where := difference(canonical, asWritten, ""); where != "" {
		return r, fmt.Errorf("the file differs from the receipt approvalbot writes at %s (a field added, dropped, renamed or rewritten)", where)
	}
	// Base64 decoding ignores the unused bits of the last character: the
	// signature must be written as the encoder writes it.
	if sig, err := base64.StdEncoding.Strict().DecodeString(r.Signature); err != nil || base64.StdEncoding.EncodeToString(sig) != r.Signature {
		return r, fmt.Errorf("the signature is not in standard base64 as approvalbot writes it")
	}
	return r, nil
}

// difference names the first place where two decoded JSON values differ
// ("" when they are equal).
func difference(want, got any, at string) string {
	name := func(k string) string {
		if at == "" {
			return k
		}
		return at + "." + k
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return orRoot(at)
		}
		keys := make([]string, 0, len(w)+len(g))
		for k := range w {
			keys = append(keys, k)
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			gv, inGot := g[k]
			wv, inWant := w[k]
			if !inGot || !inWant {
				return name(k)
			}
			if d := difference(wv, gv, name(k)); d != "" {
				return d
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return orRoot(at)
		}
		for i := range w {
			if d := difference(w[i], g[i], fmt.Sprintf("%s[%d]", at, i)); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(want, got) {
		return orRoot(at)
	}
	return ""
}

func orRoot(at string) string {
	if at == "" {
		return "the top"
	}
	return at
}

// ShortHash is how people quote the receipt: the first 12 hex digits of
// its head.
func (r Receipt) ShortHash() string {
	if len(r.Head) < 12 {
		return r.Head
	}
	return r.Head[:12]
}
