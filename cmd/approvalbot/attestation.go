package main

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"io"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/attestation"
)

const attestationUsage = `Usage:
  approvalbot attestation verify FILE --public-key KEY [--digest sha256:…|gitCommit:…]
      check an attestation (GET /v1/tasks/{id}/attestation) offline; FILE - reads stdin

verify exits 0 when the attestation is valid, signed by KEY (the receipts' public key,
standard base64) and approves the deployment (of --digest, when given); 1 when it does
not (saying why); 2 on a usage mistake.
`

// attester builds attestations with the receipts key; nil without one.
func attester(key ed25519.PrivateKey) func(context.Context, *approvals.Task) ([]byte, error) {
	if key == nil {
		return nil
	}
	return func(ctx context.Context, t *approvals.Task) ([]byte, error) { return attestation.Build(ctx, t, key) }
}

// attestationCmd runs `approvalbot attestation …`.
func attestationCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, attestationUsage)
		return errUsage
	}
	switch args[0] {
	case "verify":
		return attestationVerify(ctx, args[1:], stdin, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, attestationUsage)
		return nil
	}
	fmt.Fprintf(stderr, "approvalbot attestation: unknown command %q\n\n%s", args[0], attestationUsage)
	return errUsage
}

func attestationVerify(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("approvalbot attestation verify", flag.ContinueOnError)
	digest := fs.String("digest", "", "the digest the deployment must be approved for (sha256:… or gitCommit:…)")
	raw, pub, err := readSignedFile(fs, args, stdin, stderr, attestationUsage, func() error {
		if *digest == "" {
			return nil
		}
		if _, err := approvals.ParseDigest(*digest); err != nil {
			fmt.Fprintln(stderr, "approvalbot attestation verify: --digest must be sha256:<64 hex digits> or gitCommit:<40 hex digits>")
			return errUsage
		}
		return nil
	})
	if err != nil {
		return err
	}
	st, err := attestation.Verify(ctx, raw, pub, *digest)
	if err != nil {
		fmt.Fprintf(stdout, "INVALID: %v\n", err)
		return errReported
	}
	fmt.Fprintf(stdout, "valid: %s\n", attestation.Describe(st))
	return nil
}
