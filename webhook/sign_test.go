package webhook

import (
	"strings"
	"testing"

	"github.com/approvalbot/approvalbot/approvals"
)

// The Standard Webhooks specification's test vector.
func TestSignSpecTestVector(t *testing.T) {
	t.Parallel()
	key, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	const secretText = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"whsec_" + secretText, true},
		{" whsec_" + secretText + " ", true},
		{secretText, false},
		{"whsec_" + secretText[:20], false},                  // 15 bytes
		{"whsec_" + strings.Repeat("QUJD", 22), false},       // 66 bytes
		{"whsec_" + secretText + "!!", false},                // not base64
		{"whsec_" + strings.Repeat("QUJD", 8) + "QUI", true}, // unpadded
		{"whsec_", false},
	} {
		_, err := ParseSecret(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseSecret(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), secretText[:10]) {
			t.Errorf("the error quotes the secret: %v", err)
		}
	}
}

func TestMessageID(t *testing.T) {
	t.Parallel()
	a := &approvals.Task{ID: "webhook-build-1"}
	b := &approvals.Task{ID: "webhook-build-2"}
	if MessageID(a, approvals.ActionApprove) != MessageID(&approvals.Task{ID: "webhook-build-1"}, approvals.ActionApprove) {
		t.Error("the id of one decision changes")
	}
	ids := map[string]bool{}
	for _, id := range []string{MessageID(a, approvals.ActionApprove), MessageID(a, approvals.ActionReject), MessageID(b, approvals.ActionApprove)} {
		if ids[id] || !strings.HasPrefix(id, "msg_") || len(id) != 36 {
			t.Errorf("id %q is a duplicate or malformed", id)
		}
		ids[id] = true
	}
}
