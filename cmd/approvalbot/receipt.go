package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/config"
)

const receiptUsage = `Usage:
  approvalbot receipt public-key [--config FILE]          print the receipts' public key (standard base64)
  approvalbot receipt verify FILE --public-key KEY        check a receipt offline (FILE - reads stdin)

verify exits 0 when the receipt is valid, 1 when it is not (saying what broke), 2 on a usage mistake.
`

// receipt runs `approvalbot receipt …`.
func receipt(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, receiptUsage)
		return errUsage
	}
	switch args[0] {
	case "public-key":
		path, err := configFlag("receipt public-key", args[1:], stderr)
		if err != nil {
			return err
		}
		return receiptPublicKey(path, stdout, stderr)
	case "verify":
		return receiptVerify(args[1:], stdin, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, receiptUsage)
		return nil
	}
	fmt.Fprintf(stderr, "approvalbot receipt: unknown command %q\n\n%s", args[0], receiptUsage)
	return errUsage
}

// receiptPublicKey prints the public key of receipts.signing_key. It reads
// only that key of the configuration, so that it also works with a file
// that holds nothing else.
func receiptPublicKey(flagPath string, stdout, stderr io.Writer) error {
	path := config.ResolvePath(flagPath)
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, "approvalbot: configuration:", err)
		return errReported
	}
	key, err := cfg.Receipts.ReceiptKey()
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "approvalbot: receipts.signing_key%s: %v\n", describePath(path), err)
		return errReported
	case key == nil:
		fmt.Fprintf(stderr, "approvalbot: receipts.signing_key is not set in the configuration%s: no receipts are signed\n", describePath(path))
		return errReported
	}
	fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)))
	return nil
}

// receiptVerify checks a receipt file with a public key: the file must be
// the receipt exactly as approvalbot wrote it (no field added, dropped or
// spelt otherwise; whitespace aside), its audit chain whole, its head the
// last record, and its signature the key's over all of it.
func receiptVerify(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("approvalbot receipt verify", flag.ContinueOnError)
	raw, pub, err := readSignedFile(fs, args, stdin, stderr, receiptUsage, nil)
	if err != nil {
		return err
	}
	r, err := checkReceipt(raw, pub)
	if err != nil {
		fmt.Fprintf(stdout, "INVALID: %v\n", err)
		return errReported
	}
	by := "nobody (it expired)"
	if r.DecidedBy != nil {
		by = r.DecidedBy.Name + " (" + r.DecidedBy.ID + ")"
	}
	at := ""
	if r.DecidedAt != nil {
		at = " at " + r.DecidedAt.UTC().Format("2006-01-02T15:04:05Z07:00")
	}
	fmt.Fprintf(stdout, "valid: %s %s, decided by %s%s; %d audit records, receipt %s, signed by key %s at %s\n",
		r.ID, r.Status, by, at, len(r.Audit), r.ShortHash(), r.KeyID, r.SignedAt.UTC().Format("2006-01-02T15:04:05Z07:00"))
	return nil
}

// checkReceipt decodes and verifies a receipt, saying what broke.
func checkReceipt(raw []byte, pub ed25519.PublicKey) (approvals.Receipt, error) {
	r, err := approvals.ParseReceipt(raw)
	if err != nil {
		return r, err
	}
	return r, approvals.VerifyReceipt(r, pub)
}

// parsePublicKey reads an Ed25519 public key in standard base64 (padding
// optional).
func parsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("an Ed25519 public key is %d bytes, this one %d", ed25519.PublicKeySize, len(b))
			}
			return ed25519.PublicKey(b), nil
		}
	}
	return nil, fmt.Errorf("not standard base64")
}

// readSignedFile is the input of a verify command named by fs: its flags
// (--public-key, and those the caller added to fs, which check looks at
// once parsed), then its one FILE ("-": standard input). A usage mistake
// is said with usage and answered errUsage; a file that cannot be read,
// errReported.
func readSignedFile(fs *flag.FlagSet, args []string, stdin io.Reader, stderr io.Writer, usage string, check func() error) ([]byte, ed25519.PublicKey, error) {
	name := fs.Name()
	fs.SetOutput(stderr)
	keyFlag := fs.String("public-key", "", "the receipts' public key, standard base64 (approvalbot receipt public-key)")
	files, err := parseWithFiles(fs, args)
	if err != nil {
		return nil, nil, errUsage
	}
	if len(files) != 1 || *keyFlag == "" {
		fmt.Fprint(stderr, name+": give one FILE and --public-key KEY\n\n"+usage)
		return nil, nil, errUsage
	}
	pub, err := parsePublicKey(*keyFlag)
	if err != nil {
		fmt.Fprintf(stderr, "%s: --public-key: %v\n", name, err)
		return nil, nil, errUsage
	}
	if check != nil {
		if err := check(); err != nil {
			return nil, nil, err
		}
	}
	var raw []byte
	if files[0] == "-" {
		raw, err = io.ReadAll(stdin)
	} else {
		raw, err = os.ReadFile(files[0])
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return nil, nil, errReported
	}
	return raw, pub, nil
}

// parseWithFiles parses the flags of a command that takes FILE arguments,
// which may come before the flags, between them or after them; it returns
// the files.
func parseWithFiles(fs *flag.FlagSet, args []string) ([]string, error) {
	var files []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return files, nil
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
}
