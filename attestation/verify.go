package attestation

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/approvalbot/approvalbot/approvals"
)

// envelope is a DSSE envelope exactly as Build writes it.
type envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     string      `json:"payload"`
	Signatures  []signature `json:"signatures"`
}

type signature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// Statement is an in-toto Statement v1 with approvalbot's predicate.
type Statement struct {
	Type          string    `json:"_type"`
	Subject       []Subject `json:"subject"`
	PredicateType string    `json:"predicateType"`
	Predicate     Predicate `json:"predicate"`
}

// Subject is what the statement is about: the artifact.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// Invalid is a verification failure: the attestation is not valid, not
// approved, or not for the digest asked about. Its text says which.
type Invalid struct{ Why string }

func (e *Invalid) Error() string { return e.Why }

func invalidf(format string, args ...any) error { return &Invalid{Why: fmt.Sprintf(format, args...)} }

// Verify checks an attestation offline: the envelope is exactly one DSSE
// envelope as approvalbot writes it, signed by pub's key (verified by
// DSSE's own verifier over the pre-authentication encoding), its payload
// an in-toto Statement v1 (in-toto's Validate) with approvalbot's
// predicate and nothing else, the outcome approved and, when digest is
// given ("sha256:…" or "gitCommit:…"), the subject that very digest. It
// returns the statement; an *Invalid says what is wrong.
func Verify(ctx context.Context, raw []byte, pub ed25519.PublicKey, digest string) (*Statement, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, invalidf("the public key is not an Ed25519 public key")
	}
	want := ""
	if digest != "" {
		var err error
		if want, err = approvals.ParseDigest(digest); err != nil {
			return nil, invalidf("--digest must be sha256:<64 hex digits> or gitCommit:<40 hex digits>")
		}
	}
	var env envelope
	if err := decodeStrict(raw, &env); err != nil {
		return nil, invalidf("the envelope is %v", err)
	}
	if env.PayloadType != PayloadType {
		return nil, invalidf("the payload type is %q, not %s", env.PayloadType, PayloadType)
	}
	if len(env.Signatures) != 1 {
		return nil, invalidf("the envelope has %d signatures, approvalbot writes one", len(env.Signatures))
	}
	payload, err := base64.StdEncoding.Strict().DecodeString(env.Payload)
	if err != nil || base64.StdEncoding.EncodeToString(payload) != env.Payload {
		return nil, invalidf("the payload is not in standard base64 as approvalbot writes it")
	}
	if keyID := KeyID(pub); env.Signatures[0].KeyID != keyID {
		return nil, invalidf("signed by key %s, not by this public key (%s)", env.Signatures[0].KeyID, keyID)
	}
	dsseEnv := &dsse.Envelope{PayloadType: env.PayloadType, Payload: env.Payload,
		Signatures: []dsse.Signature{{KeyID: env.Signatures[0].KeyID, Sig: env.Signatures[0].Sig}}}
	verifier, err := dsse.NewEnvelopeVerifier(NewVerifier(pub))
	if err != nil {
		return nil, fmt.Errorf("attestation: %w", err)
	}
	if _, err := verifier.Verify(ctx, dsseEnv); err != nil {
		return nil, invalidf("the signature does not verify with this public key (the payload or its type was changed, or another key signed it)")
	}

	// The payload is signed; now it must be the statement approvalbot
	// writes, for in-toto and for us.
	var proto intoto.Statement
	if err := protojson.Unmarshal(payload, &proto); err != nil {
		return nil, invalidf("the payload is not an in-toto statement: %v", err)
	}
	if err := proto.Validate(); err != nil {
		return nil, invalidf("the payload is not a valid in-toto statement: %v", err)
	}
	var st Statement
	if err := decodeStrict(payload, &st); err != nil {
		return nil, invalidf("the statement is %v", err)
	}
	switch {
	case st.Type != StatementType:
		return nil, invalidf("the statement's _type is %q, not %s", st.Type, StatementType)
	case st.PredicateType != PredicateType:
		return nil, invalidf("the predicate type is %q, not %s", st.PredicateType, PredicateType)
	case len(st.Subject) != 1:
		return nil, invalidf("the statement has %d subjects, approvalbot writes one", len(st.Subject))
	}
	subject := st.Subject[0]
	if len(subject.Digest) != 1 {
		return nil, invalidf("the subject has %d digests, approvalbot writes one", len(subject.Digest))
	}
	var have string
	for alg, hex := range subject.Digest {
		have = alg + ":" + hex
	}
	if canonical, err := approvals.ParseDigest(have); err != nil || canonical != have {
		return nil, invalidf("the subject's digest is not one approvalbot writes")
	}
	if st.Predicate.Outcome != approvals.StatusApproved {
		return &st, invalidf("the deployment of %s (%s) was not approved: the outcome is %s", subject.Name, have, st.Predicate.Outcome)
	}
	if want != "" && want != have {
		return &st, invalidf("the approval is for %s (%s), not for %s", subject.Name, have, want)
	}
	return &st, nil
}

// IsInvalid reports whether err says the attestation does not verify (as
// opposed to a failure to check it at all).
func IsInvalid(err error) bool {
	var inv *Invalid
	return errors.As(err, &inv)
}

// Describe is a one-line account of a verified statement, for people.
func Describe(st *Statement) string {
	s := st.Subject[0]
	var digest string
	for alg, hex := range s.Digest {
		digest = alg + ":" + hex
	}
	p := st.Predicate
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (%s) for task %s", p.Outcome, s.Name, digest, p.Task.ID)
	if p.DecidedBy != nil {
		fmt.Fprintf(&b, " by %s", firstNonEmpty(p.DecidedBy.Name, p.DecidedBy.ID))
	}
	if !p.DecidedAt.IsZero() {
		fmt.Fprintf(&b, " at %s", p.DecidedAt.UTC().Format("2006-01-02T15:04:05Z"))
	}
	if p.Policy != "" {
		fmt.Fprintf(&b, " under policy %s", p.Policy)
	}
	if p.Change != nil {
		fmt.Fprintf(&b, ", change %s (%s)", p.Change.Number, p.Change.State)
	}
	fmt.Fprintf(&b, "; receipt %s", shortHead(p.Receipt.Head))
	return b.String()
}

func shortHead(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
