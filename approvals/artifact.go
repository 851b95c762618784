package approvals

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Artifact is what a task deploys: a build, named and pinned by its digest.
// An approval is of that build only (the receipt signs it, the attestation
// names it as its subject); a repeated intake naming another digest is
// refused, so that an approval never moves to another build.
type Artifact struct {
	Name string `json:"name"`
	// Digest is "sha256:<64 hex>" or "gitCommit:<40 hex>", lower-case hex.
	Digest string `json:"digest"`
}

// Digest algorithms an artifact may be pinned by, with the length of their
// hex. The names are in-toto's DigestSet keys.
const (
	DigestSHA256    = "sha256"
	DigestGitCommit = "gitCommit"
)

var digestHex = map[string]int{DigestSHA256: 64, DigestGitCommit: 40}

// maxArtifactNameRunes bounds an artifact's name: it is shown in chat and
// signed, never stored without limit.
const maxArtifactNameRunes = 256

var (
	// ErrArtifactMismatch: a repeated intake of a task names another
	// artifact than the one the task was recorded with; nothing changed.
	ErrArtifactMismatch = errors.New("the task was recorded with another artifact")
	// ErrNoArtifact: the task names no artifact, so there is nothing to
	// attest.
	ErrNoArtifact = errors.New("the task names no artifact")
	// ErrNotDecided: the task is still pending; what asks for its decision
	// must come back once it is final.
	ErrNotDecided = errors.New("the task is not decided yet")
)

// NewArtifact checks an intake's artifact and returns it in its one
// spelling: the algorithm as in-toto writes it, the hex lower-case. Errors
// wrap ErrInvalid and quote nothing of the input.
func NewArtifact(name, digest string) (*Artifact, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return nil, Invalidf("artifact.name is required")
	case !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0:
		return nil, Invalidf("artifact.name must be text without control characters")
	case utf8.RuneCountInString(name) > maxArtifactNameRunes:
		return nil, Invalidf("artifact.name is longer than %d characters", maxArtifactNameRunes)
	}
	d, err := ParseDigest(digest)
	if err != nil {
		return nil, err
	}
	return &Artifact{Name: name, Digest: d}, nil
}

var hexDigits = regexp.MustCompile(`^[0-9a-fA-F]+$`)

// ParseDigest checks a digest ("sha256:<64 hex>" or "gitCommit:<40 hex>",
// the algorithm in any case) and returns it as approvalbot writes it.
func ParseDigest(digest string) (string, error) {
	alg, hex, ok := strings.Cut(strings.TrimSpace(digest), ":")
	if !ok {
		return "", Invalidf("artifact.digest must be sha256:<64 hex digits> or gitCommit:<40 hex digits>")
	}
	for name, n := range digestHex {
		if strings.EqualFold(alg, name) {
			if len(hex) != n || !hexDigits.MatchString(hex) {
				return "", Invalidf("artifact.digest: %s takes %d hex digits", name, n)
			}
			return name + ":" + strings.ToLower(hex), nil
		}
	}
	return "", Invalidf("artifact.digest must be sha256:<64 hex digits> or gitCommit:<40 hex digits>")
}

// Algorithm is the digest's algorithm (sha256, gitCommit); Hex its value.
func (a *Artifact) Algorithm() string { alg, _, _ := strings.Cut(a.Digest, ":"); return alg }

// Hex is the digest's hex value.
func (a *Artifact) Hex() string { _, hex, _ := strings.Cut(a.Digest, ":"); return hex }

// ShortDigest is how people quote the digest: the algorithm and the first
// 12 hex digits ("sha256:0123456789ab").
func (a *Artifact) ShortDigest() string {
	if a == nil {
		return ""
	}
	hex := a.Hex()
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return a.Algorithm() + ":" + hex
}

// checkSameArtifact refuses a repeated intake that names another artifact
// than the stored task's. A repeat naming none is the same task (a poller
// resending what it has); a task recorded without one never gains one.
func checkSameArtifact(stored *Task, sub Submission) error {
	if sub.Artifact == nil {
		return nil
	}
	if stored.Artifact == nil || stored.Artifact.Digest != sub.Artifact.Digest {
		recorded := "no artifact"
		if stored.Artifact != nil {
			recorded = stored.Artifact.ShortDigest()
		}
		return fmt.Errorf("%w: task %s is recorded with %s, not %s", ErrArtifactMismatch, stored.ID, recorded, sub.Artifact.ShortDigest())
	}
	return nil
}

// AttestationReady says whether the task can be attested: it is final,
// names an artifact and has a signed receipt (the attestation carries the
// receipt's hash and is signed with its key).
func AttestationReady(t *Task) error {
	switch {
	case t.Artifact == nil:
		return ErrNoArtifact
	case !t.Status.Final():
		return ErrNotDecided
	case t.Seal == nil:
		return ErrNoReceipt
	}
	return nil
}
