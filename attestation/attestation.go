// Package attestation turns a decided task bound to an artifact into an
// in-toto attestation: a Statement v1 whose subject is the artifact and
// whose predicate is the decision, in a DSSE envelope signed with the
// receipts key (Ed25519). Admission controllers, deploy scripts and
// auditors check it with any DSSE verifier, or with Verify
// (`approvalbot attestation verify`).
//
// The envelope and the statement are built and checked by the ecosystem's
// reference libraries (secure-systems-lab's dsse, in-toto's attestation
// bindings) rather than by encoders of our own: what is signed (DSSE's
// pre-authentication encoding) and what a statement must hold are theirs
// to define, and a verifier of theirs then agrees with us by construction.
package attestation

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/approvalbot/approvalbot/approvals"
)

const (
	// PayloadType is the DSSE payload type of an in-toto statement.
	PayloadType = "application/vnd.in-toto+json"
	// StatementType is the in-toto Statement v1 type.
	StatementType = intoto.StatementTypeUri
	// PredicateType names approvalbot's approval predicate.
	PredicateType = "https://github.com/approvalbot/approvalbot/approval/v1"
)

// Predicate is the decision: what was decided, by whom (and for whom),
// when, why, under which policy and change record, and the hash of the
// signed receipt that holds the whole audit trail.
type Predicate struct {
	// Outcome is approved, rejected or expired.
	Outcome   approvals.Status `json:"outcome"`
	Task      Task             `json:"task"`
	DecidedBy *Person          `json:"decidedBy"`
	DecidedAt time.Time        `json:"decidedAt"`
	// Approvals are everyone whose approval counted, in order.
	Approvals []Approval `json:"approvals"`
	// Reasons are the reasons and comments given with the votes and the
	// decision, in order.
	Reasons           []Reason                `json:"reasons"`
	Policy            string                  `json:"policy"`
	RequiredApprovals int                     `json:"requiredApprovals"`
	Change            *approvals.ChangeRecord `json:"change"`
	Receipt           Receipt                 `json:"receipt"`
}

// Task names the task the decision is of.
type Task struct {
	ID          string `json:"id"`
	Source      string `json:"source"`
	TaskID      string `json:"taskId"`
	Environment string `json:"environment"`
	Project     string `json:"project"`
	Release     string `json:"release"`
	URL         string `json:"url"`
}

// Person is a chat user: id and name.
type Person struct {
	ID   string `json:"user"`
	Name string `json:"userName"`
}

// Approval is one counted approval. For names whom the approver stood in
// for, when they did ("" otherwise).
type Approval struct {
	ID         string    `json:"user"`
	Name       string    `json:"userName"`
	For        string    `json:"for"`
	At         time.Time `json:"at"`
	BreakGlass bool      `json:"breakGlass"`
}

// Reason is what someone wrote with a vote or a decision.
type Reason struct {
	ID    string `json:"user"`
	Name  string `json:"userName"`
	Event string `json:"event"`
	Text  string `json:"text"`
}

// Receipt names the signed receipt of the decision (GET
// /v1/tasks/{id}/receipt): its head (the short hash the message shows)
// and the SHA-256 of its JSON as the API serves it (without the final
// newline).
type Receipt struct {
	Head   string `json:"head"`
	SHA256 string `json:"sha256"`
	KeyID  string `json:"keyId"`
}

// KeyID names an Ed25519 public key in DSSE signatures: the hex SHA-256 of
// the raw 32-byte key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])
}

// ed25519Signer is the receipts key as DSSE's signer and verifier.
type ed25519Signer struct {
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey // nil for verifying only
}

var _ dsse.SignerVerifier = ed25519Signer{}

func (s ed25519Signer) Sign(_ context.Context, data []byte) ([]byte, error) {
	if s.priv == nil {
		return nil, errors.New("attestation: no signing key")
	}
	return ed25519.Sign(s.priv, data), nil
}

func (s ed25519Signer) Verify(_ context.Context, data, sig []byte) error {
	if !ed25519.Verify(s.pub, data, sig) {
		return errors.New("the signature does not verify with this public key")
	}
	return nil
}

func (s ed25519Signer) KeyID() (string, error)   { return KeyID(s.pub), nil }
func (s ed25519Signer) Public() crypto.PublicKey { return s.pub }

// NewVerifier is the DSSE verifier of envelopes signed with pub's key.
func NewVerifier(pub ed25519.PublicKey) dsse.Verifier { return ed25519Signer{pub: pub} }

// Build returns the task's attestation: the DSSE envelope, as JSON, of an
// in-toto Statement v1 about the task's artifact. The task must be final,
// name an artifact and have a receipt (approvals.AttestationReady says
// which is missing; its sentinels give the API's answer).
func Build(ctx context.Context, t *approvals.Task, key ed25519.PrivateKey) ([]byte, error) {
	if err := approvals.AttestationReady(t); err != nil {
		return nil, err
	}
	if key == nil {
		return nil, approvals.ErrNoReceipt
	}
	pred, err := predicateOf(t)
	if err != nil {
		return nil, err
	}
	payload, err := statementJSON(t.Artifact, pred)
	if err != nil {
		return nil, err
	}
	signer, err := dsse.NewEnvelopeSigner(ed25519Signer{pub: key.Public().(ed25519.PublicKey), priv: key})
	if err != nil {
		return nil, fmt.Errorf("attestation: %w", err)
	}
	env, err := signer.SignPayload(ctx, PayloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("attestation: sign: %w", err)
	}
	return json.Marshal(env)
}

// predicateOf is the decision of a final task.
func predicateOf(t *approvals.Task) (Predicate, error) {
	receipt, err := approvals.ReceiptOf(t)
	if err != nil {
		return Predicate{}, err
	}
	served, err := json.Marshal(receipt)
	if err != nil {
		return Predicate{}, fmt.Errorf("attestation: receipt: %w", err)
	}
	sum := sha256.Sum256(served)
	p := Predicate{
		Outcome: t.Status,
		Task: Task{ID: t.ID, Source: t.Source, TaskID: t.TaskID, Environment: t.Environment, Project: t.Project,
			Release: t.Release, URL: t.URL},
		Approvals:         []Approval{},
		Reasons:           []Reason{},
		Policy:            t.Policy,
		RequiredApprovals: t.RequiredApprovals,
		Change:            t.ChangeRecord,
		Receipt:           Receipt{Head: receipt.Head, SHA256: hex.EncodeToString(sum[:]), KeyID: receipt.KeyID},
	}
	if t.DecidedBy != nil {
		p.DecidedBy = &Person{ID: t.DecidedBy.ID, Name: t.DecidedBy.Name}
	}
	if t.DecidedAt != nil {
		p.DecidedAt = t.DecidedAt.UTC()
	}
	for _, v := range t.Approvals {
		p.Approvals = append(p.Approvals, Approval{ID: v.ID, Name: v.Name, At: v.At.UTC(), BreakGlass: v.BreakGlass})
	}
	for _, rec := range receipt.Audit {
		if (rec.Event == "approved" || rec.Event == "rejected") && rec.Detail != "" {
			p.Reasons = append(p.Reasons, Reason{ID: rec.User, Name: rec.Name, Event: rec.Event, Text: rec.Detail})
		}
	}
	return p, nil
}

// statementJSON is the in-toto statement about the artifact, checked by
// in-toto's own Validate, in compact JSON.
func statementJSON(a *approvals.Artifact, pred Predicate) ([]byte, error) {
	predJSON, err := json.Marshal(pred)
	if err != nil {
		return nil, fmt.Errorf("attestation: predicate: %w", err)
	}
	predStruct := &structpb.Struct{}
	if err := protojson.Unmarshal(predJSON, predStruct); err != nil {
		return nil, fmt.Errorf("attestation: predicate: %w", err)
	}
	st := &intoto.Statement{
		Type:          StatementType,
		Subject:       []*intoto.ResourceDescriptor{{Name: a.Name, Digest: map[string]string{a.Algorithm(): a.Hex()}}},
		PredicateType: PredicateType,
		Predicate:     predStruct,
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("attestation: statement: %w", err)
	}
	out, err := protojson.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("attestation: statement: %w", err)
	}
	// protojson varies its whitespace on purpose; what is signed is the
	// compact form, the same for the same decision.
	var compact bytes.Buffer
	if err := json.Compact(&compact, out); err != nil {
		return nil, fmt.Errorf("attestation: statement: %w", err)
	}
	return compact.Bytes(), nil
}
