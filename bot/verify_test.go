package bot

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/slacktest"
)

// Slack's documented example (reference/slack.md).
const (
	vectorSecret    = "8f742231b10e8888abcd99yyyzzz85a5"
	vectorTimestamp = "1531420618"
	vectorBody      = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	vectorSignature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
)

var vectorTime = time.Unix(1531420618, 0)

// sign is the shared fake's signature of body sent with timestamp ts.
func sign(secret, ts string, body []byte) string {
	return slacktest.Signature(secret, ts, string(body))
}

func slackHeaders(ts, sig string) http.Header {
	h := http.Header{}
	if ts != "" {
		h.Set("X-Slack-Request-Timestamp", ts)
	}
	if sig != "" {
		h.Set("X-Slack-Signature", sig)
	}
	return h
}

func TestVerifySlackVector(t *testing.T) {
	t.Parallel()
	v := NewVerifier(vectorSecret, func() time.Time { return vectorTime })
	if err := v.Verify(slackHeaders(vectorTimestamp, vectorSignature), []byte(vectorBody)); err != nil {
		t.Fatalf("Slack's documented example is refused: %v", err)
	}
	if got := sign(vectorSecret, vectorTimestamp, []byte(vectorBody)); got != vectorSignature {
		t.Fatalf("slacktest.Signature = %s, want %s", got, vectorSignature)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	flipped := []byte(vectorBody)
	flipped[len(flipped)/2] ^= 0x01
	upper := "v0=" + strings.ToUpper(strings.TrimPrefix(vectorSignature, "v0="))
	future := strconv.FormatInt(vectorTime.Unix()+300, 10)

	tests := []struct {
		name    string
		secret  string
		now     time.Time
		headers http.Header
		body    []byte
		ok      bool
		why     string
	}{
		{name: "vector", ok: true},
		{name: "5 minutes later", now: vectorTime.Add(5 * time.Minute), ok: true},
		{name: "5 minutes earlier", now: vectorTime.Add(-5 * time.Minute), ok: true},
		{name: "5 minutes 1 second later", now: vectorTime.Add(5*time.Minute + time.Second), why: "timestamp"},
		{name: "5 minutes 1 second earlier", now: vectorTime.Add(-5*time.Minute - time.Second), why: "timestamp"},
		{name: "a day later", now: vectorTime.Add(24 * time.Hour), why: "timestamp"},
		{name: "wall clock", now: time.Now(), why: "timestamp"},
		{name: "signed in the future within skew", headers: slackHeaders(future, sign(vectorSecret, future, []byte(vectorBody))), ok: true},
		{name: "one byte changed", body: flipped, why: "does not match"},
		{name: "empty body", body: []byte{}, why: "does not match"},
		{name: "wrong secret", secret: "8f742231b10e8888abcd99yyyzzz85a6", why: "does not match"},
		{name: "no secret configured", secret: "-", why: "no signing secret"},
		{name: "missing timestamp", headers: slackHeaders("", vectorSignature), why: "missing X-Slack-Request-Timestamp"},
		{name: "missing signature", headers: slackHeaders(vectorTimestamp, ""), why: "missing X-Slack-Signature"},
		{name: "missing both", headers: http.Header{}, why: "missing"},
		{name: "non-numeric timestamp", headers: slackHeaders("15314206l8", vectorSignature), why: "not a number"},
		{name: "signed timestamp", headers: slackHeaders("+1531420618", vectorSignature), why: "not a number"},
		{name: "huge timestamp", headers: slackHeaders("99999999999999999999", vectorSignature), why: "not a number"},
		{name: "negative timestamp", headers: slackHeaders("-1", vectorSignature), why: "not a number"},
		{name: "timestamp with a space", headers: slackHeaders(" 1531420618", vectorSignature), why: "not a number"},
		{name: "wrong version", headers: slackHeaders(vectorTimestamp, "v1="+strings.TrimPrefix(vectorSignature, "v0=")), why: "version"},
		{name: "no version", headers: slackHeaders(vectorTimestamp, strings.TrimPrefix(vectorSignature, "v0=")), why: "version"},
		{name: "not hex", headers: slackHeaders(vectorTimestamp, "v0=zz"+strings.TrimPrefix(vectorSignature, "v0=ab")), why: "hex"},
		{name: "short", headers: slackHeaders(vectorTimestamp, vectorSignature[:40]), why: "hex"},
		{name: "empty hex", headers: slackHeaders(vectorTimestamp, "v0="), why: "hex"},
		{name: "upper-case hex", headers: slackHeaders(vectorTimestamp, upper), ok: true},
		{name: "other timestamp, same signature", headers: slackHeaders("1531420619", vectorSignature), why: "does not match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			secret, now, headers, body := vectorSecret, vectorTime, tc.headers, tc.body
			if tc.secret == "-" {
				secret = ""
			} else if tc.secret != "" {
				secret = tc.secret
			}
			if !tc.now.IsZero() {
				now = tc.now
			}
			if headers == nil {
				headers = slackHeaders(vectorTimestamp, vectorSignature)
			}
			if body == nil {
				body = []byte(vectorBody)
			}
			err := NewVerifier(secret, func() time.Time { return now }).Verify(headers, body)
			if tc.ok {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Verify accepted the request")
			}
			if !errors.Is(err, ErrBadSignature) {
				t.Errorf("error %v does not wrap ErrBadSignature", err)
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Errorf("error %q does not say %q", err, tc.why)
			}
			for _, secretish := range []string{vectorSecret, strings.TrimPrefix(vectorSignature, "v0=")[:16]} {
				if strings.Contains(err.Error(), secretish) {
					t.Errorf("error %q echoes a secret or signature", err)
				}
			}
		})
	}
}

func TestVerifyDefaultClock(t *testing.T) {
	t.Parallel()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	body := []byte("payload=%7B%7D")
	if err := NewVerifier("s3cret", nil).Verify(slackHeaders(ts, sign("s3cret", ts, body)), body); err != nil {
		t.Fatalf("a fresh request is refused with the wall clock: %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(vectorTimestamp, vectorSignature, []byte(vectorBody))
	f.Add(vectorTimestamp, "v0=", []byte(""))
	f.Add("", "", []byte("payload="))
	f.Add("1531420618", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b50", []byte(vectorBody))
	f.Add("-9223372036854775808", "v0=00", []byte{0xff, 0x00})
	f.Add("9223372036854775807", "v1=abc", []byte("x"))
	f.Add("1531420618", "v0=A2114D57B48EAC39B9AD189DD8316235A7B4A8D21A10BD27519666489C69B503", []byte(vectorBody))
	v := NewVerifier(vectorSecret, func() time.Time { return vectorTime })
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		err := v.Verify(slackHeaders(ts, sig), body)
		if err == nil {
			// Accepted: it must be the real signature of a fresh request.
			want := sign(vectorSecret, ts, body)
			if !strings.EqualFold(sig, want) {
				t.Fatalf("accepted signature %q for ts %q, want %q", sig, ts, want)
			}
			n, perr := strconv.ParseInt(ts, 10, 64)
			if perr != nil || n < vectorTime.Unix()-300 || n > vectorTime.Unix()+300 {
				t.Fatalf("accepted stale or garbled timestamp %q", ts)
			}
		} else if !errors.Is(err, ErrBadSignature) {
			t.Fatalf("error %v does not wrap ErrBadSignature", err)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	v := NewVerifier(vectorSecret, func() time.Time { return vectorTime })
	h := slackHeaders(vectorTimestamp, vectorSignature)
	body := []byte(vectorBody)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := v.Verify(h, body); err != nil {
			b.Fatal(err)
		}
	}
}
