package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/approvalbot/approvalbot/internal/jiratest"
	"github.com/approvalbot/approvalbot/internal/servicenowtest"
)

const (
	buildA = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	buildB = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// attestationOf is GET /v1/tasks/{id}/attestation: its status and body.
func (e *env) attestationOf(id string) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.url+"/v1/tasks/"+id+"/attestation", nil)
	req.Header.Set("X-API-Key", testAPIKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, body
}

// dsseKey is the receipts' public key as the DSSE library's verifier
// takes it: written here, from the library's interface alone, so that the
// check does not lean on approvalbot's own verifier.
type dsseKey struct{ pub ed25519.PublicKey }

func (k dsseKey) Verify(_ context.Context, data, sig []byte) error {
	if !ed25519.Verify(k.pub, data, sig) {
		return errors.New("bad signature")
	}
	return nil
}
func (k dsseKey) KeyID() (string, error) {
	sum := sha256.Sum256(k.pub)
	return hex.EncodeToString(sum[:]), nil
}
func (k dsseKey) Public() crypto.PublicKey { return k.pub }

// verifyAttestationBinary runs the built `approvalbot attestation verify`
// and returns its exit code and output.
func verifyAttestationBinary(t *testing.T, data []byte, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(approvalbotBinary(t), append([]string{"attestation", "verify", writeFile(t, data)}, args...)...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	}
	t.Fatalf("attestation verify: %v", err)
	return -1, ""
}

// TestAttestationOfADigestBoundApproval: an approval of a task bound to
// a digest yields an attestation that DSSE's own verifier accepts with the
// receipts' public key and whose subject is the intake's digest; the built
// `attestation verify` accepts it for that digest and refuses a tampered
// payload, another key and another digest; a second intake with another
// digest is 409 and changes nothing.
func TestAttestationOfADigestBoundApproval(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.extra = "receipts: {signing_key: " + testReceiptSeed + "}\n"
	e.start()
	intake := func(digest string) string {
		return `{"taskid":"att1","description":"shop to PROD","environment":"PROD","artifact":{"name":"registry.example.com/shop","digest":"` + digest + `"}}`
	}
	id := e.submit(intake(buildA))
	msg := e.message("att1")
	if !strings.Contains(msg.Text(), "`sha256:111111111111`") || strings.Contains(msg.Text(), strings.TrimPrefix(buildA, "sha256:")) {
		t.Errorf("the message does not show the short digest: %s", msg.Text())
	}
	if status, body := e.attestationOf(id); status != http.StatusConflict || !strings.Contains(string(body), "not decided") {
		t.Errorf("a pending task's attestation: %d %s, want 409", status, body)
	}

	// Another build under the same task: refused, nothing changed.
	status, _, answer := e.api("POST", "/v1/tasks", intake(buildB))
	if status != http.StatusConflict || !strings.Contains(fmt.Sprint(answer["error"]), "another artifact") {
		t.Errorf("a repeat naming another digest: %d %v, want 409", status, answer)
	}
	_, task := e.task(id)
	if a, _ := task["artifact"].(map[string]any); a["digest"] != buildA {
		t.Errorf("the task's artifact is now %v", task["artifact"])
	}
	// A malformed digest is refused at the intake.
	if status, _, answer := e.api("POST", "/v1/tasks", `{"taskid":"att2","artifact":{"name":"x","digest":"sha256:123"}}`); status != http.StatusBadRequest {
		t.Errorf("a malformed digest: %d %v, want 400", status, answer)
	}

	e.click(msg, "approve", "UALICE", "Alice")
	e.waitTask(id, "delivered", delivered)
	status, raw := e.attestationOf(id)
	if status != http.StatusOK {
		t.Fatalf("attestation: %d %s", status, raw)
	}

	// DSSE's verifier, with the public key `receipt public-key` prints.
	pubB64 := receiptKeyPublic(t)
	pubBytes, _ := base64.StdEncoding.DecodeString(pubB64)
	pub := ed25519.PublicKey(pubBytes)
	var env dsse.Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	verifier, err := dsse.NewEnvelopeVerifier(dsseKey{pub})
	if err != nil {
		t.Fatal(err)
	}
	accepted, payload, err := verifier.VerifyAndDecode(context.Background(), &env)
	if err != nil || len(accepted) != 1 {
		t.Fatalf("the DSSE verifier refuses the attestation: %v", err)
	}
	var st struct {
		Type    string `json:"_type"`
		Subject []struct {
			Name   string            `json:"name"`
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
		PredicateType string         `json:"predicateType"`
		Predicate     map[string]any `json:"predicate"`
	}
	if err := json.Unmarshal(payload, &st); err != nil {
		t.Fatal(err)
	}
	if env.PayloadType != "application/vnd.in-toto+json" || st.Type != "https://in-toto.io/Statement/v1" ||
		st.PredicateType != "https://github.com/approvalbot/approvalbot/approval/v1" || len(st.Subject) != 1 ||
		st.Subject[0].Name != "registry.example.com/shop" || "sha256:"+st.Subject[0].Digest["sha256"] != buildA {
		t.Fatalf("statement %s", payload)
	}
	if st.Predicate["outcome"] != "approved" || st.Predicate["policy"] != "production" {
		t.Errorf("predicate %v", st.Predicate)
	}
	_, receipt := e.receiptOf(id)
	sum := sha256.Sum256(bytes.TrimSuffix(receipt, []byte("\n")))
	if r, _ := st.Predicate["receipt"].(map[string]any); r["sha256"] != hex.EncodeToString(sum[:]) {
		t.Errorf("the predicate's receipt hash %v is not the served receipt's %x", r, sum)
	}

	// The built command: valid for the digest; not for anything else.
	if code, out := verifyAttestationBinary(t, raw, "--public-key", pubB64, "--digest", buildA); code != 0 || !strings.HasPrefix(out, "valid: approved registry.example.com/shop") {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	tamperedPayload := strings.Replace(string(payload), `"approved"`, `"approved" `, 1)
	tampered := bytes.Replace(raw, []byte(env.Payload), []byte(base64.StdEncoding.EncodeToString([]byte(tamperedPayload))), 1)
	otherKey := base64.StdEncoding.EncodeToString(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32)).Public().(ed25519.PublicKey))
	for _, tc := range []struct {
		name string
		data []byte
		args []string
		code int
		says string
	}{
		{"a tampered payload", tampered, []string{"--public-key", pubB64}, 1, "signature does not verify"},
		{"another key", raw, []string{"--public-key", otherKey}, 1, "not by this public key"},
		{"another digest", raw, []string{"--public-key", pubB64, "--digest", buildB}, 1, "not for " + buildB},
		{"a duplicate key", bytes.Replace(raw, []byte(`{"payloadType"`), []byte(`{"payloadType":"x","payloadType"`), 1), []string{"--public-key", pubB64}, 1, "INVALID"},
		{"no key", raw, nil, 2, "--public-key"},
		{"a bad digest", raw, []string{"--public-key", pubB64, "--digest", "sha256:12"}, 2, "--digest"},
	} {
		code, out := verifyAttestationBinary(t, tc.data, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.says) {
			t.Errorf("%s: exit %d, want %d saying %q\n%s", tc.name, code, tc.code, tc.says, out)
		}
	}

	// A task bound to no artifact has nothing to attest.
	plain := e.submit(`{"taskid":"att3","environment":"PROD"}`)
	e.click(e.message("att3"), "reject", "UALICE", "Alice")
	e.waitTask(plain, "rejected", func(task map[string]any) bool { return task["status"] == "rejected" })
	if status, body := e.attestationOf(plain); status != http.StatusNotFound || !strings.Contains(string(body), "no artifact") {
		t.Errorf("a task without an artifact: %d %s, want 404", status, body)
	}
}

// TestServiceNowChangeGate: under require_change: {servicenow: true}, a
// change that is not approved, outside its window or unreachable blocks
// approving (saying so) while rejects go through; an approved change in
// its window lets the approval pass, and the receipt and the attestation
// name it.
func TestServiceNowChangeGate(t *testing.T) {
	t.Parallel()
	snow := servicenowtest.New()
	t.Cleanup(snow.Close)
	now := time.Now().UTC()
	snow.Set(servicenowtest.Change{Number: "CHG0000001", State: "-4", Approval: "requested", Start: now.Add(-time.Hour), End: now.Add(time.Hour)})
	snow.Set(servicenowtest.Change{Number: "CHG0000002", State: "-2", Approval: "approved", Start: now.Add(time.Hour), End: now.Add(2 * time.Hour)})
	snow.Set(servicenowtest.Change{Number: "CHG0000003", State: "-1", Approval: "approved", Start: now.Add(-time.Hour), End: now.Add(time.Hour)})
	snow.Set(servicenowtest.Change{Number: "CHG0000004", State: "-1", Approval: "approved", Start: now.Add(-time.Hour), End: now.Add(time.Hour)})

	e := newEnv(t)
	e.policies = defaultPolicies + "    require_change: {servicenow: true}\n"
	e.extra = fmt.Sprintf("receipts: {signing_key: %s}\nservicenow: {instance_url: %q, username: %q, password: %q, timeout: 2s}\n",
		testReceiptSeed, snow.URL, servicenowtest.Username, servicenowtest.Password)
	e.start()
	t.Cleanup(func() {
		if strings.Contains(e.logs.String(), servicenowtest.Password) {
			t.Error("the ServiceNow password is in the logs")
		}
		if m := snow.Mistakes(); len(m) != 0 {
			t.Errorf("requests to ServiceNow were off: %v", m)
		}
	})
	submit := func(taskID, change string) (string, string) {
		id := e.submit(`{"taskid":"` + taskID + `","environment":"PROD","change":"` + change + `","artifact":{"name":"shop","digest":"` + buildA + `"}}`)
		return id, taskID
	}
	blocked := func(taskID, change, says string) {
		t.Helper()
		id, name := submit(taskID, change)
		msg := e.message(name)
		if !strings.Contains(msg.Text(), change) {
			t.Errorf("%s: the message does not name the change: %s", change, msg.Text())
		}
		e.click(msg, "approve", "UALICE", "Alice")
		waitFor(t, change+" refusal", func() bool { return ephemeralTo(e, "UALICE", says) })
		if _, task := e.task(id); task["status"] != "pending" {
			t.Fatalf("%s: approving went through: %v", change, task["status"])
		}
		e.click(msg, "reject", "UBOB", "Bob")
		e.waitTask(id, change+" rejected", func(task map[string]any) bool { return task["status"] == "rejected" })
	}
	blocked("chg-not-approved", "CHG0000001", "change CHG0000001 is not approved")
	blocked("chg-outside", "CHG0000002", "change CHG0000002 is not in its window")
	snow.SetDown(true)
	blocked("chg-down", "CHG0000003", "change CHG0000003 could not be looked up")
	snow.SetDown(false)

	id, name := submit("chg-ok", "CHG0000004")
	msg := e.message(name)
	if !strings.Contains(msg.Text(), "CHG0000004") || !strings.Contains(msg.Text(), "Implement") {
		t.Errorf("the message does not show the change's number and state: %s", msg.Text())
	}
	e.click(msg, "approve", "UALICE", "Alice")
	e.waitTask(id, "approved", func(task map[string]any) bool { return task["status"] == "approved" })
	_, receipt := e.receiptOf(id)
	var r struct {
		Change struct {
			Number, State string
			Approved      bool
		} `json:"change"`
	}
	if err := json.Unmarshal(receipt, &r); err != nil || r.Change.Number != "CHG0000004" || !r.Change.Approved || r.Change.State != "Implement" {
		t.Errorf("the receipt does not name the change: %s", receipt)
	}
	status, raw := e.attestationOf(id)
	if status != http.StatusOK {
		t.Fatalf("attestation: %d %s", status, raw)
	}
	if code, out := verifyAttestationBinary(t, raw, "--public-key", receiptKeyPublic(t), "--digest", buildA); code != 0 || !strings.Contains(out, "change CHG0000004 (Implement)") {
		t.Errorf("the attestation does not name the change: exit %d %s", code, out)
	}
}

// TestJiraChangeGate: under require_change: {jira: true}, an issue in
// another status blocks approving while rejects go through; one in an
// approved status lets the approval pass.
func TestJiraChangeGate(t *testing.T) {
	t.Parallel()
	jira := jiratest.New()
	t.Cleanup(jira.Close)
	jira.Set("OPS-1", "In Review")
	jira.Set("OPS-2", "Approved")
	e := newEnv(t)
	e.policies = defaultPolicies + "    require_change: {jira: true}\n"
	e.extra = fmt.Sprintf("jira: {base_url: %q, email: %q, api_token: %q, approved_statuses: [Approved]}\n", jira.URL, jiratest.Email, jiratest.APIToken)
	e.start()
	t.Cleanup(func() {
		if strings.Contains(e.logs.String(), jiratest.APIToken) {
			t.Error("the Jira token is in the logs")
		}
		if m := jira.Mistakes(); len(m) != 0 {
			t.Errorf("requests to Jira were off: %v", m)
		}
	})
	id := e.submit(`{"taskid":"jira1","environment":"PROD","change":"OPS-1"}`)
	msg := e.message("jira1")
	e.click(msg, "approve", "UALICE", "Alice")
	waitFor(t, "refusal", func() bool { return ephemeralTo(e, "UALICE", "change OPS-1 is not approved (status In Review") })
	e.click(msg, "reject", "UBOB", "Bob")
	e.waitTask(id, "rejected", func(task map[string]any) bool { return task["status"] == "rejected" })

	id = e.submit(`{"taskid":"jira2","environment":"PROD","change":"OPS-2"}`)
	e.click(e.message("jira2"), "approve", "UALICE", "Alice")
	e.waitTask(id, "approved", func(task map[string]any) bool { return task["status"] == "approved" })
}
