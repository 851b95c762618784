package azuredevops

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// testKey is a fixed key: 0x00, 0x01, … 0x1f.
func testKey() []byte {
	key := make([]byte, KeySize)
	for i := range key {
		key[i] = byte(i)
	}
	return key
}

func testSealer(t testing.TB) *Sealer {
	t.Helper()
	s, err := NewSealer(testKey())
	if err != nil {
		t.Fatalf("NewSealer: %v", err)
	}
	return s
}

func TestSealerRoundTrip(t *testing.T) {
	t.Parallel()
	s := testSealer(t)
	tests := []struct {
		name      string
		plain     string
		aad       string
		wantBytes int
	}{
		{name: "job token", plain: "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ4In0.sig", aad: "azure-devops-e2d1c0b9", wantBytes: 12 + 38 + 16},
		{name: "empty", plain: "", aad: "azure-devops-1", wantBytes: 12 + 16},
		{name: "no aad", plain: "token", aad: "", wantBytes: 12 + 5 + 16},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sealed, err := s.Seal([]byte(tc.plain), []byte(tc.aad))
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if len(sealed) != tc.wantBytes {
				t.Errorf("sealed is %d bytes, want %d (nonce, ciphertext, tag)", len(sealed), tc.wantBytes)
			}
			if tc.plain != "" && bytes.Contains(sealed, []byte(tc.plain)) {
				t.Error("sealed holds the plain text")
			}
			plain, err := s.Open(sealed, []byte(tc.aad))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if string(plain) != tc.plain {
				t.Errorf("Open = %q, want %q", plain, tc.plain)
			}
			// Another sealer with the same key opens it too (a restart, a replica).
			plain, err = testSealer(t).Open(sealed, []byte(tc.aad))
			if err != nil || string(plain) != tc.plain {
				t.Errorf("second sealer: Open = %q, %v", plain, err)
			}
		})
	}
}

func TestSealUsesAFreshNonce(t *testing.T) {
	t.Parallel()
	s := testSealer(t)
	a, err := s.Seal([]byte("same"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Seal([]byte("same"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a[:12], b[:12]) || bytes.Equal(a, b) {
		t.Errorf("two seals share their nonce: %x and %x", a[:12], b[:12])
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	s := testSealer(t)
	const plain = "the-job-token-SECRET"
	aad := []byte("azure-devops-task-a")
	sealed, err := s.Seal([]byte(plain), aad)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(sealed)
		c[i] ^= 0x01
		return c
	}
	otherKey := testKey()
	otherKey[0] ^= 0xff
	other, err := NewSealer(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		sealer *Sealer
		sealed []byte
		aad    []byte
	}{
		{name: "nonce tampered", sealer: s, sealed: flip(0), aad: aad},
		{name: "ciphertext tampered", sealer: s, sealed: flip(14), aad: aad},
		{name: "tag tampered", sealer: s, sealed: flip(len(sealed) - 1), aad: aad},
		{name: "truncated", sealer: s, sealed: sealed[:len(sealed)-1], aad: aad},
		{name: "too short", sealer: s, sealed: sealed[:20], aad: aad},
		{name: "empty", sealer: s, sealed: nil, aad: aad},
		{name: "extended", sealer: s, sealed: append(bytes.Clone(sealed), 0), aad: aad},
		{name: "another task's record", sealer: s, sealed: sealed, aad: []byte("azure-devops-task-b")},
		{name: "no aad", sealer: s, sealed: sealed, aad: nil},
		{name: "another key", sealer: other, sealed: sealed, aad: aad},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.sealer.Open(tc.sealed, tc.aad)
			if err == nil {
				t.Fatalf("Open = %q, want an error", got)
			}
			if got != nil {
				t.Errorf("Open returned %q with its error", got)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error holds the plain text: %v", err)
			}
		})
	}
}

func TestNilSealer(t *testing.T) {
	t.Parallel()
	var s *Sealer
	if _, err := s.Seal([]byte("x"), nil); err == nil {
		t.Error("nil sealer sealed")
	}
	if _, err := s.Open(make([]byte, 64), nil); err == nil {
		t.Error("nil sealer opened")
	}
}

func TestNewSealerKeyLength(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := NewSealer(make([]byte, n)); err == nil {
			t.Errorf("NewSealer accepted a %d-byte key", n)
		}
	}
	if _, err := NewSealer(make([]byte, 32)); err != nil {
		t.Errorf("NewSealer refused a 32-byte key: %v", err)
	}
}

func TestSealerPrintsWithoutKey(t *testing.T) {
	t.Parallel()
	s := testSealer(t)
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(format, s)
		if strings.Contains(out, string(testKey())) || strings.Contains(out, hex.EncodeToString(testKey())) {
			t.Errorf("%s prints the key: %s", format, out)
		}
	}
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	key := testKey()
	// A key whose base64 forms use + and / (standard) or - and _ (URL).
	urlish := bytes.Repeat([]byte{0xfb, 0xff, 0xbf}, 11)[:32]
	tests := []struct {
		name string
		in   string
		want []byte
	}{
		{name: "hex", in: hex.EncodeToString(key), want: key},
		{name: "hex upper case", in: strings.ToUpper(hex.EncodeToString(key)), want: key},
		{name: "base64 std", in: base64.StdEncoding.EncodeToString(key), want: key},
		{name: "base64 std unpadded", in: base64.RawStdEncoding.EncodeToString(key), want: key},
		{name: "base64 url", in: base64.URLEncoding.EncodeToString(key), want: key},
		{name: "base64 url unpadded", in: base64.RawURLEncoding.EncodeToString(key), want: key},
		{name: "base64 std with + and /", in: base64.StdEncoding.EncodeToString(urlish), want: urlish},
		{name: "base64 url with - and _", in: base64.RawURLEncoding.EncodeToString(urlish), want: urlish},
		{name: "surrounding space and newline", in: "  " + base64.StdEncoding.EncodeToString(key) + "\n", want: key},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseKey(tc.in)
			if err != nil {
				t.Fatalf("ParseKey: %v", err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("ParseKey = %x, want %x", got, tc.want)
			}
		})
	}
}

func TestParseKeyRefuses(t *testing.T) {
	t.Parallel()
	const marker = "SeCrEtKeY"
	tests := []struct{ name, in string }{
		{name: "empty", in: ""},
		{name: "blank", in: "   "},
		{name: "16 bytes base64", in: base64.StdEncoding.EncodeToString(make([]byte, 16))},
		{name: "31 bytes hex", in: hex.EncodeToString(make([]byte, 31))},
		{name: "33 bytes base64", in: base64.StdEncoding.EncodeToString(make([]byte, 33))},
		{name: "48 bytes base64", in: base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 48))},
		{name: "raw 32 characters", in: marker + strings.Repeat("x", 32-len(marker))},
		{name: "not an encoding", in: marker + "!!!!" + strings.Repeat("A", 40)},
		{name: "hex with a stray character", in: marker + hex.EncodeToString(make([]byte, 28))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseKey(tc.in)
			if err == nil {
				t.Fatalf("ParseKey(%q) = %x, want an error", tc.in, got)
			}
			if strings.Contains(err.Error(), marker) || (strings.TrimSpace(tc.in) != "" && strings.Contains(err.Error(), tc.in)) {
				t.Errorf("error echoes the key: %v", err)
			}
		})
	}
}
