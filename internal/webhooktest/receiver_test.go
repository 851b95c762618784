package webhooktest

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/httpfault"
)

// The specification's own test vector.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = "1614265330"
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

var specTime = time.Unix(1614265330, 0)

func TestSpecTestVector(t *testing.T) {
	t.Parallel()
	got, err := Signature(specSecret, specID, specTimestamp, []byte(specBody))
	if err != nil || got != specSignature {
		t.Fatalf("Signature = %q, %v; want the specification's %q", got, err, specSignature)
	}
	if err := Verify(specSecret, specID, specTimestamp, specSignature, []byte(specBody), specTime, Tolerance); err != nil {
		t.Fatalf("Verify of the specification's vector: %v", err)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	body := []byte(specBody)
	tests := []struct {
		name                 string
		secret, id, ts, sigs string
		body                 []byte
		now                  time.Time
		want                 error
	}{
		{name: "one of several, other versions skipped", secret: specSecret, id: specID, ts: specTimestamp,
			sigs: "v2,abc v1,Zm9v " + specSignature, body: body, now: specTime},
		{name: "within the tolerance", secret: specSecret, id: specID, ts: specTimestamp, sigs: specSignature, body: body, now: specTime.Add(4 * time.Minute)},
		{name: "too old", secret: specSecret, id: specID, ts: specTimestamp, sigs: specSignature, body: body, now: specTime.Add(6 * time.Minute), want: ErrTimestamp},
		{name: "from the future", secret: specSecret, id: specID, ts: specTimestamp, sigs: specSignature, body: body, now: specTime.Add(-6 * time.Minute), want: ErrTimestamp},
		{name: "not seconds", secret: specSecret, id: specID, ts: "1614265330.5", sigs: specSignature, body: body, now: specTime, want: ErrTimestamp},
		{name: "another body", secret: specSecret, id: specID, ts: specTimestamp, sigs: specSignature, body: []byte(`{"test": 2432232315}`), now: specTime, want: ErrSignature},
		{name: "another id", secret: specSecret, id: "msg_other", ts: specTimestamp, sigs: specSignature, body: body, now: specTime, want: ErrSignature},
		{name: "another secret", secret: "whsec_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", id: specID, ts: specTimestamp, sigs: specSignature, body: body, now: specTime, want: ErrSignature},
		{name: "the signature's version only", secret: specSecret, id: specID, ts: specTimestamp, sigs: "v1a" + specSignature[2:], body: body, now: specTime, want: ErrSignature},
		{name: "no signature", secret: specSecret, id: specID, ts: specTimestamp, body: body, now: specTime, want: ErrMissingHeaders},
		{name: "no id", secret: specSecret, ts: specTimestamp, sigs: specSignature, body: body, now: specTime, want: ErrMissingHeaders},
		{name: "a secret without its prefix", secret: strings.TrimPrefix(specSecret, "whsec_"), id: specID, ts: specTimestamp, sigs: specSignature, body: body, now: specTime, want: ErrSecret},
	}
	for _, tc := range tests {
		err := Verify(tc.secret, tc.id, tc.ts, tc.sigs, tc.body, tc.now, Tolerance)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: Verify = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func send(t *testing.T, r *Receiver, id string, ts time.Time, body string, sign bool) (int, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.URL()+"/hook?token=x", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	stamp := strconv.FormatInt(ts.Unix(), 10)
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", stamp)
	sig := "v1,bm9wZQ=="
	if sign {
		var err error
		if sig, err = Signature(specSecret, id, stamp, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	req.Header.Set("webhook-signature", sig)
	res, err := (&http.Client{Timeout: 500 * time.Millisecond}).Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

func TestReceiver(t *testing.T) {
	t.Parallel()
	r := New(specSecret)
	t.Cleanup(r.Close)
	now := time.Now()
	if code, err := send(t, r, "msg_1", now, `{"a":1}`, false); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("unsigned: %d %v", code, err)
	}
	r.SetFailFirst(1)
	if code, _ := send(t, r, "msg_1", now, `{"a":1}`, true); code != http.StatusServiceUnavailable {
		t.Fatalf("failing first: %d", code)
	}
	if code, _ := send(t, r, "msg_1", now, `{"a":1}`, true); code != http.StatusOK {
		t.Fatalf("signed: %d", code)
	}
	if code, _ := send(t, r, "msg_1", now, `{"a":1}`, true); code != http.StatusOK {
		t.Fatalf("a duplicate: %d", code)
	}
	if code, _ := send(t, r, "msg_2", now.Add(-10*time.Minute), `{"a":2}`, true); code != http.StatusUnauthorized {
		t.Fatalf("stale: %d", code)
	}
	r.SetLateAnswers(1)
	if _, err := send(t, r, "msg_3", now, `{"a":3}`, true); !httpfault.IsTimeout(err) {
		t.Fatalf("a late answer: %v", err)
	}
	r.SetAnswer(func(Delivery) *Answer { return &Answer{Status: http.StatusGone} })
	if code, _ := send(t, r, "msg_4", now, `{"a":4}`, true); code != http.StatusGone {
		t.Fatalf("scripted: %d", code)
	}
	if got := r.Taken(); strings.Join(got, " ") != "msg_1 msg_3" {
		t.Errorf("taken %v, want msg_1 then msg_3, each once", got)
	}
	ds := r.Deliveries()
	if len(ds) != 7 || ds[0].Verified || !ds[2].Verified || ds[2].Duplicate || !ds[3].Duplicate || ds[4].Verified || ds[5].Code != 0 ||
		ds[2].Query != "token=x" || ds[2].Path != "/hook" {
		t.Errorf("deliveries %+v", ds)
	}
}
