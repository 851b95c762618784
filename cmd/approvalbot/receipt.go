package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
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
	fs.SetOutput(stderr)
	keyFlag := fs.String("public-key", "", "the receipts' public key, standard base64 (approvalbot receipt public-key)")
	// FILE may come before the flags or after them.
	var files []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(files) != 1 || *keyFlag == "" {
		fmt.Fprint(stderr, "approvalbot receipt verify: give one FILE and --public-key KEY\n\n"+receiptUsage)
		return errUsage
	}
	pub, err := parsePublicKey(*keyFlag)
	if err != nil {
		fmt.Fprintf(stderr, "approvalbot receipt verify: --public-key: %v\n", err)
		return errUsage
	}
	var raw []byte
	if files[0] == "-" {
		raw, err = io.ReadAll(stdin)
	} else {
		raw, err = os.ReadFile(files[0])
	}
	if err != nil {
		fmt.Fprintf(stderr, "approvalbot receipt verify: %v\n", err)
		return errReported
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
		r.ID, r.Status, by, at, len(r.Audit), shortHash(r.Head), r.KeyID, r.SignedAt.UTC().Format("2006-01-02T15:04:05Z07:00"))
	return nil
}

// checkReceipt decodes and verifies a receipt, saying what broke.
func checkReceipt(raw []byte, pub ed25519.PublicKey) (approvals.Receipt, error) {
	var r approvals.Receipt
	var asWritten any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&asWritten); err != nil || dec.More() {
		return r, fmt.Errorf("the file is not one JSON object")
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("the file is not a receipt: %v", err)
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
	if err := approvals.VerifyReceipt(r, pub); err != nil {
		return r, err
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

func shortHash(head string) string {
	if len(head) < 12 {
		return head
	}
	return head[:12]
}
