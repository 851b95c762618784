package github

import (
	"strings"

	"github.com/approvalbot/approvalbot/approvals"
)

// commitArtifact is what a deployment deploys: the repository at the
// deployment's commit ({name: owner/name, digest: gitCommit:<sha>}), so
// that the approval, its receipt and its attestation are of that commit
// only. nil when the commit id is not a 40-digit one (in-toto's gitCommit
// and approvalbot's digests take SHA-1 commit ids).
func commitArtifact(repo, sha string) *approvals.Artifact {
	a, err := approvals.NewArtifact(repo, approvals.DigestGitCommit+":"+strings.TrimSpace(sha))
	if err != nil {
		return nil
	}
	return a
}
