package attestation_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/attestation"
	"github.com/approvalbot/approvalbot/store/bolt"
	"github.com/approvalbot/approvalbot/tokens"
)

const digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

// decided runs a task bound to digestA through a real Service on the
// embedded store and decides it with action; it returns the final task
// and the receipts key.
func decided(t *testing.T, action approvals.Action, artifact bool) (*approvals.Task, ed25519.PrivateKey) {
	t.Helper()
	store, err := bolt.Open(filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	issuer, _ := tokens.NewIssuer([]tokens.Key{{ID: "k1", Secret: []byte(strings.Repeat("s", 32))}})
	tools, _ := approvals.NewTools(approvals.Tool{Name: "acme", Decide: func(context.Context, *approvals.Task, approvals.Action, string, bool) error { return nil }})
	_, key, _ := ed25519.GenerateKey(nil)
	var token string
	svc, err := approvals.NewService(approvals.Config{
		Store: store, Tokens: issuer, Tools: tools, ReceiptKey: key,

		Rules: func() approvals.Rules {
			return approvals.Rules{DefaultTTL: time.Hour, Policies: []approvals.Policy{{Name: "prod", Approvers: approvals.Approvers{Users: []string{"UA"}}, RequiredApprovals: 1}}}
		},
		Chats: testChats(notifier{post: func(tok string) { token = tok }}, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sub := approvals.Submission{Source: "acme", TaskID: "1", Context: approvals.Context{Environment: "prod", Release: "v2"}}
	if artifact {
		sub.Artifact, _ = approvals.NewArtifact("registry.example/shop", digestA)
	}
	task, _, err := svc.Submit(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Work(ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	task, err = svc.Decide(ctx, approvals.DecideRequest{Token: token, Action: action, User: approvals.Person{ID: "UA", Name: "Alice"}, Reason: "looks good"})
	if err != nil {
		t.Fatal(err)
	}
	return task, key
}

type notifier struct{ post func(token string) }

func (n notifier) Post(_ context.Context, _ *approvals.Task, _, token string) (approvals.MessageRef, error) {
	n.post(token)
	return approvals.MessageRef{Channel: "C1", TS: "1.1"}, nil
}
func (notifier) Update(context.Context, *approvals.Task, []approvals.MessageRef, string) error {
	return nil
}
func (notifier) Notice(context.Context, *approvals.Task, approvals.MessageRef, approvals.NoticeKind) error {
	return nil
}
func (notifier) Direct(context.Context, *approvals.Task, []approvals.MessageRef, string) ([]approvals.MessageRef, error) {
	return nil, nil
}

// testChats registers one chat, Slack-like, with the notifier.
func testChats(n approvals.Notifier, d approvals.Directory) *approvals.Chats {
	chats, err := approvals.NewChats(approvals.Chat{Name: "slack", DisplayName: "Slack", Notifier: n, Directory: d, PostsByDefault: true, Primary: true})
	if err != nil {
		panic(err)
	}
	return chats
}

func TestBuildIsADSSEInTotoStatementAnyVerifierAccepts(t *testing.T) {
	t.Parallel()
	task, key := decided(t, approvals.ActionApprove, true)
	raw, err := attestation.Build(context.Background(), task, key)
	if err != nil {
		t.Fatal(err)
	}
	// DSSE's own verifier, with nothing of ours but the key.
	var env dsse.Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	v, _ := dsse.NewEnvelopeVerifier(attestation.NewVerifier(pub))
	accepted, err := v.Verify(context.Background(), &env)
	if err != nil || len(accepted) != 1 || accepted[0].KeyID != attestation.KeyID(pub) || len(accepted[0].KeyID) != 64 {
		t.Fatalf("DSSE verifier: %v %+v", err, accepted)
	}
	payload, _ := base64.StdEncoding.DecodeString(env.Payload)
	var st map[string]any
	_ = json.Unmarshal(payload, &st)
	subject := st["subject"].([]any)[0].(map[string]any)
	if st["_type"] != "https://in-toto.io/Statement/v1" || st["predicateType"] != attestation.PredicateType ||
		subject["digest"].(map[string]any)["sha256"] != strings.TrimPrefix(digestA, "sha256:") || env.PayloadType != "application/vnd.in-toto+json" {
		t.Errorf("statement %s", payload)
	}
	got, err := attestation.Verify(context.Background(), raw, pub, digestA)
	if err != nil {
		t.Fatal(err)
	}
	p := got.Predicate
	receipt, _ := approvals.ReceiptOf(task)
	if p.Outcome != approvals.StatusApproved || p.DecidedBy.Name != "Alice" || p.Policy != "prod" || len(p.Approvals) != 1 ||
		len(p.Reasons) != 1 || p.Reasons[0].Text != "looks good" || p.Receipt.Head != receipt.Head || len(p.Receipt.SHA256) != 64 {
		t.Errorf("predicate %+v", p)
	}
	// Built again, it is the same bytes: nothing random is signed.
	again, _ := attestation.Build(context.Background(), task, key)
	if string(again) != string(raw) {
		t.Error("the attestation of one decision differs between two builds")
	}
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	task, key := decided(t, approvals.ActionApprove, true)
	raw, _ := attestation.Build(context.Background(), task, key)
	pub := key.Public().(ed25519.PublicKey)
	otherPub, _, _ := ed25519.GenerateKey(nil)
	var env map[string]any
	_ = json.Unmarshal(raw, &env)
	payload, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
	withPayload := func(p []byte) []byte {
		e := map[string]any{"payloadType": env["payloadType"], "payload": base64.StdEncoding.EncodeToString(p), "signatures": env["signatures"]}
		out, _ := json.Marshal(e)
		return out
	}
	rejectedTask, rejectedKey := decided(t, approvals.ActionReject, true)
	rejected, _ := attestation.Build(context.Background(), rejectedTask, rejectedKey)
	for _, tc := range []struct {
		name   string
		raw    []byte
		pub    ed25519.PublicKey
		digest string
		why    string
	}{
		{"a tampered payload", withPayload([]byte(strings.Replace(string(payload), `"approved"`, `"approved" `, 1))), pub, "", "signature does not verify"},
		{"another digest in the payload", withPayload([]byte(strings.Replace(string(payload), "aaaa", "bbbb", 1))), pub, "", "signature does not verify"},
		{"a wrong key", raw, otherPub, "", "not by this public key"},
		{"another digest", raw, pub, "sha256:" + strings.Repeat("b", 64), "not for sha256:bbbb"},
		{"a rejection", rejected, rejectedKey.Public().(ed25519.PublicKey), "", "was not approved: the outcome is rejected"},
		{"a duplicate key", []byte(strings.Replace(string(raw), `{"payloadType"`, `{"payloadType":"x","payloadType"`, 1)), pub, "", "twice"},
		{"an unknown field", []byte(strings.Replace(string(raw), `{"payloadType"`, `{"extra":1,"payloadType"`, 1)), pub, "", "unknown"},
		{"a name in another case", []byte(strings.Replace(string(raw), `"payloadType"`, `"PayloadType"`, 1)), pub, "", "unknown"},
		{"trailing data", append(append([]byte{}, raw...), []byte(" {}")...), pub, "", "more after its value"},
		{"a bad --digest", raw, pub, "sha256:abc", "--digest must be"},
	} {
		_, err := attestation.Verify(context.Background(), tc.raw, tc.pub, tc.digest)
		if err == nil || !attestation.IsInvalid(err) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s: %v, want an *Invalid saying %q", tc.name, err, tc.why)
		}
	}
	if _, err := attestation.Verify(context.Background(), raw, pub, strings.ToUpper(digestA)); err != nil {
		t.Errorf("the same digest in upper case: %v", err)
	}
}

func TestBuildRefusesWhatCannotBeAttested(t *testing.T) {
	t.Parallel()
	task, key := decided(t, approvals.ActionApprove, false)
	if _, err := attestation.Build(context.Background(), task, key); approvals.KindOf(err).HTTPStatus != 404 {
		t.Errorf("no artifact: %v, want a 404 kind", err)
	}
	pending := *task
	pending.Artifact, _ = approvals.NewArtifact("x", digestA)
	pending.Status = approvals.StatusPending
	if _, err := attestation.Build(context.Background(), &pending, key); approvals.KindOf(err).HTTPStatus != 409 {
		t.Errorf("pending: %v, want a 409 kind", err)
	}
}
