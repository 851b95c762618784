package tokens

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/approvalbot/approvalbot/approvals"
)

var (
	secret1 = bytes.Repeat([]byte{1}, 32)
	secret2 = bytes.Repeat([]byte{2}, 40)
	secret3 = bytes.Repeat([]byte{3}, 32)
)

// testNow is the clock of the tests: tokens expire an hour after it.
var testNow = time.Date(2026, 11, 22, 14, 2, 0, 0, time.UTC)

func newIssuer(t testing.TB, keys ...Key) *Issuer {
	t.Helper()
	if len(keys) == 0 {
		keys = []Key{{ID: "k1", Secret: secret1}}
	}
	iss, err := NewIssuer(keys)
	if err != nil {
		t.Fatalf("NewIssuer: %v", err)
	}
	return iss
}

func newTask(taskID string) *approvals.Task {
	return &approvals.Task{
		ID:        approvals.TaskRecordID("flexdeploy", taskID),
		Source:    "flexdeploy",
		TaskID:    taskID,
		Status:    approvals.StatusPending,
		CreatedAt: testNow,
		ExpiresAt: testNow.Add(time.Hour),
		Nonce:     bytes.Repeat([]byte{7}, NonceLen),
	}
}

func mint(t testing.TB, iss *Issuer, task *approvals.Task) string {
	t.Helper()
	tok, err := iss.Mint(task)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	return tok
}

// segments decodes a token's header and claims for tampering.
func segments(t *testing.T, tok string) (header, claims map[string]any, sig string) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments", len(parts))
	}
	decode := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("decode segment: %v", err)
		}
		m := map[string]any{}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("decode segment: %v", err)
		}
		return m
	}
	return decode(parts[0]), decode(parts[1]), parts[2]
}

func encode(t *testing.T, m map[string]any) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// sign returns header.claims signed with HMAC-SHA256 under secret, as an
// attacker who knows a secret (or a test that wants a well-formed token
// with odd contents) would.
func sign(t *testing.T, header, claims map[string]any, secret []byte) string {
	t.Helper()
	signing := encode(t, header) + "." + encode(t, claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// nonCanonical spells the same signature bytes differently: the last
// character of an unpadded 32-byte value carries 4 unused bits, which a lax
// decoder ignores.
func nonCanonical(t *testing.T, sig string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, sig[len(sig)-1])
	odd := sig[:len(sig)-1] + string(alphabet[last|1])
	lax, err := base64.RawURLEncoding.DecodeString(odd)
	if err != nil || odd == sig {
		t.Fatalf("nonCanonical: %v", err)
	}
	canon, _ := base64.RawURLEncoding.DecodeString(sig)
	if !bytes.Equal(lax, canon) {
		t.Fatalf("nonCanonical changed the bytes")
	}
	return odd
}

func TestNewIssuer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		keys    []Key
		wantErr string
	}{
		{"one key", []Key{{ID: "k1", Secret: secret1}}, ""},
		{"two keys", []Key{{ID: "k2", Secret: secret2}, {ID: "k1", Secret: secret1}}, ""},
		{"no key", nil, "no signing key"},
		{"empty id", []Key{{ID: "k1", Secret: secret1}, {ID: "", Secret: secret2}}, "no id"},
		{"duplicate id", []Key{{ID: "k1", Secret: secret1}, {ID: "k1", Secret: secret2}}, "used twice"},
		{"short secret", []Key{{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcde")}}, "shorter than 32 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewIssuer(tc.keys)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("NewIssuer: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewIssuer: err = %v, want %q", err, tc.wantErr)
			}
			for _, k := range tc.keys {
				if len(k.Secret) > 0 && strings.Contains(err.Error(), string(k.Secret)) {
					t.Errorf("error %q contains a secret", err)
				}
			}
		})
	}
}

func TestNewIssuerCopiesSecrets(t *testing.T) {
	t.Parallel()
	secret := bytes.Clone(secret1)
	iss := newIssuer(t, Key{ID: "k1", Secret: secret})
	tok := mint(t, iss, newTask("1"))
	secret[0] ^= 0xff // a caller reusing its buffer must not change the key
	if _, err := iss.Verify(tok, testNow); err != nil {
		t.Errorf("Verify after the caller changed its secret buffer: %v", err)
	}
}

func TestMintVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	task := newTask("8900")
	tok := mint(t, iss, task)
	if task.KeyID != "k1" {
		t.Errorf("KeyID = %q, want k1", task.KeyID)
	}
	id, err := iss.Verify(tok, testNow)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if id != task.ID {
		t.Errorf("Verify = %q, want %q", id, task.ID)
	}
	task.TokenHash = approvals.HashToken(tok)
	if !task.TokenMatches(tok) {
		t.Errorf("stored hash does not match the token")
	}

	header, claims, _ := segments(t, tok)
	if header["alg"] != "HS256" || header["kid"] != "k1" {
		t.Errorf("header = %v, want alg HS256 kid k1", header)
	}
	if claims["tid"] != task.ID || claims["exp"] != float64(task.ExpiresAt.Unix()) {
		t.Errorf("claims = %v", claims)
	}
	// jti is HMAC(signing secret, key \x00 nonce): 256 bits nobody without
	// the secret can compute.
	mac := hmac.New(sha256.New, secret1)
	mac.Write([]byte(task.Key() + "\x00"))
	mac.Write(task.Nonce)
	if want := base64.RawURLEncoding.EncodeToString(mac.Sum(nil)); claims["jti"] != want {
		t.Errorf("jti = %v, want %v", claims["jti"], want)
	}
}

func TestMintDeterministic(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	tests := []struct {
		name   string
		change func(*approvals.Task)
		same   bool
	}{
		{"same task", func(*approvals.Task) {}, true},
		{"unrelated field", func(t *approvals.Task) { t.Status = approvals.StatusApproved; t.Description = "x" }, true},
		{"other nonce", func(t *approvals.Task) { t.Nonce = bytes.Repeat([]byte{8}, NonceLen) }, false},
		{"other task id", func(t *approvals.Task) { t.TaskID = "8901" }, false},
		{"other source", func(t *approvals.Task) { t.Source = "azure-devops" }, false},
		{"other expiry", func(t *approvals.Task) { t.ExpiresAt = t.ExpiresAt.Add(time.Second) }, false},
	}
	base := mint(t, iss, newTask("8900"))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			task := newTask("8900")
			tc.change(task)
			if got := mint(t, iss, task); (got == base) != tc.same {
				t.Errorf("same token = %v, want %v", got == base, tc.same)
			}
		})
	}
}

func TestMintErrors(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	tests := []struct {
		name   string
		change func(*approvals.Task)
	}{
		{"no id", func(t *approvals.Task) { t.ID = "" }},
		{"no nonce", func(t *approvals.Task) { t.Nonce = nil }},
		{"no expiry", func(t *approvals.Task) { t.ExpiresAt = time.Time{} }},
		{"retired key", func(t *approvals.Task) { t.KeyID = "k0" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			task := newTask("8900")
			tc.change(task)
			if tok, err := iss.Mint(task); err == nil {
				t.Errorf("Mint = %q, want an error", tok)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	old := newIssuer(t, Key{ID: "k1", Secret: secret1})
	oldTask := newTask("8900")
	oldTok := mint(t, old, oldTask)

	rotated := newIssuer(t, Key{ID: "k2", Secret: secret2}, Key{ID: "k1", Secret: secret1})
	if _, err := rotated.Verify(oldTok, testNow); err != nil {
		t.Errorf("token of k1 after rotation to [k2 k1]: %v", err)
	}
	// The task keeps its key: re-minting after the rotation gives the token
	// the buttons already carry.
	if again := mint(t, rotated, oldTask); again != oldTok {
		t.Errorf("re-mint after rotation gave another token")
	}
	newTok := mint(t, rotated, newTask("8901"))
	if header, _, _ := segments(t, newTok); header["kid"] != "k2" {
		t.Errorf("new token kid = %v, want k2", header["kid"])
	}
	if _, err := rotated.Verify(newTok, testNow); err != nil {
		t.Errorf("new token: %v", err)
	}

	retired := newIssuer(t, Key{ID: "k2", Secret: secret2})
	if _, err := retired.Verify(oldTok, testNow); !errors.Is(err, approvals.ErrBadToken) {
		t.Errorf("token of retired k1: err = %v, want ErrBadToken", err)
	}
	if _, err := retired.Mint(oldTask); err == nil {
		t.Errorf("Mint with retired k1 succeeded")
	}

	// A key id naming a configured key with another secret is a forgery.
	impostor := newIssuer(t, Key{ID: "k1", Secret: secret3})
	if _, err := impostor.Verify(oldTok, testNow); !errors.Is(err, approvals.ErrBadToken) {
		t.Errorf("token verified under another secret of the same kid: err = %v", err)
	}
}

func TestVerifyExpiry(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	task := newTask("8900")
	tok := mint(t, iss, task)
	tests := []struct {
		name string
		now  time.Time
		want error
	}{
		{"long before", testNow.Add(-24 * time.Hour), nil},
		{"a second before exp", task.ExpiresAt.Add(-time.Second), nil},
		{"a nanosecond before exp", task.ExpiresAt.Add(-time.Nanosecond), nil},
		{"at exp", task.ExpiresAt, approvals.ErrExpired},
		{"after exp", task.ExpiresAt.Add(time.Second), approvals.ErrExpired},
		{"at exp, other zone", task.ExpiresAt.In(time.FixedZone("X", -7*3600)), approvals.ErrExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := iss.Verify(tok, tc.now)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("Verify: err = %v, want %v", err, tc.want)
			}
			if errors.Is(err, approvals.ErrBadToken) {
				t.Errorf("an expired genuine token is ErrExpired, not ErrBadToken: %v", err)
			}
		})
	}

	// exp is in whole seconds, rounded down: the token never outlives the task.
	frac := newTask("8901")
	frac.ExpiresAt = frac.ExpiresAt.Add(500 * time.Millisecond)
	if _, err := iss.Verify(mint(t, iss, frac), frac.ExpiresAt.Add(-time.Millisecond)); !errors.Is(err, approvals.ErrExpired) {
		t.Errorf("token outlives its task: err = %v", err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t, Key{ID: "k1", Secret: secret1}, Key{ID: "k2", Secret: secret2})
	task := newTask("8900")
	tok := mint(t, iss, task)
	header, claims, sig := segments(t, tok)
	parts := strings.Split(tok, ".")

	with := func(m map[string]any, k string, v any) map[string]any {
		c := map[string]any{}
		for key, val := range m {
			c[key] = val
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims(claims)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	hs512 := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims(claims))
	hs512.Header["kid"] = "k1"
	hs512Tok, err := hs512.SignedString(secret1)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"garbage", "not a token"},
		{"two segments", parts[0] + "." + parts[1]},
		{"four segments", tok + "." + sig},
		{"payload: other task", parts[0] + "." + encode(t, with(claims, "tid", "flexdeploy-8901")) + "." + sig},
		{"payload: later exp", parts[0] + "." + encode(t, with(claims, "exp", float64(task.ExpiresAt.Unix()+3600))) + "." + sig},
		{"payload: one char", parts[0] + "." + flip(parts[1], 5) + "." + sig},
		{"signature: first char", parts[0] + "." + parts[1] + "." + flip(sig, 0)},
		{"signature: last char", parts[0] + "." + parts[1] + "." + flip(sig, len(sig)-1)},
		{"signature: non-canonical base64", parts[0] + "." + parts[1] + "." + nonCanonical(t, sig)},
		{"signature: padded", tok + "="},
		{"signature: truncated", tok[:len(tok)-2]},
		{"signature: empty", parts[0] + "." + parts[1] + "."},
		{"header: other kid", encode(t, with(header, "kid", "k2")) + "." + parts[1] + "." + sig},
		{"header: one char", flip(parts[0], 3) + "." + parts[1] + "." + sig},
		{"header: alg none", noneTok},
		{"header: alg none, kid, no signature", encode(t, with(header, "alg", "none")) + "." + parts[1] + "."},
		{"header: alg none, kept signature", encode(t, with(header, "alg", "none")) + "." + parts[1] + "." + sig},
		{"header: alg HS512 with the right key", hs512Tok},
		{"header: alg RS256, HMAC signature", sign(t, with(header, "alg", "RS256"), claims, secret1)},
		{"header: no kid", sign(t, with(header, "kid", nil), claims, secret1)},
		{"header: kid not a string", sign(t, with(header, "kid", 1), claims, secret1)},
		{"header: unknown kid", sign(t, with(header, "kid", "k9"), claims, secret1)},
		{"header: no alg", sign(t, with(header, "alg", nil), claims, secret1)},
		{"forged with a guessed secret", sign(t, header, claims, secret3)},
		{"claims: no tid", sign(t, header, with(claims, "tid", nil), secret1)},
		{"claims: empty tid", sign(t, header, with(claims, "tid", ""), secret1)},
		{"claims: no jti", sign(t, header, with(claims, "jti", nil), secret1)},
		{"claims: no exp", sign(t, header, with(claims, "exp", nil), secret1)},
		{"claims: exp a string", sign(t, header, with(claims, "exp", "soon"), secret1)},
		{"claims: not an object", encode(t, header) + ".WzFd." + sig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, err := iss.Verify(tc.token, testNow)
			if !errors.Is(err, approvals.ErrBadToken) {
				t.Fatalf("Verify = %q, %v; want ErrBadToken", id, err)
			}
			if id != "" {
				t.Errorf("Verify returned task id %q with an error", id)
			}
			if tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
}

// TestErrorsHideToken checks every kind of error against the genuine token's
// pieces: no error may quote the token or its signature.
func TestErrorsHideToken(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	tok := mint(t, iss, newTask("8900"))
	parts := strings.Split(tok, ".")
	other := newIssuer(t, Key{ID: "k1", Secret: secret3})
	retired := newIssuer(t, Key{ID: "k2", Secret: secret2})
	errs := []error{}
	for _, v := range []struct {
		iss *Issuer
		now time.Time
	}{{iss, testNow.Add(2 * time.Hour)}, {other, testNow}, {retired, testNow}} {
		_, err := v.iss.Verify(tok, v.now)
		errs = append(errs, err)
	}
	_, err := iss.Verify(parts[0]+"."+parts[1]+".", testNow)
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			t.Fatal("Verify accepted a token it must refuse")
		}
		for _, p := range append(parts, tok) {
			if strings.Contains(err.Error(), p) {
				t.Errorf("error %q quotes the token", err)
			}
		}
	}
}

func FuzzVerify(f *testing.F) {
	iss := newIssuer(f)
	other := newIssuer(f, Key{ID: "k1", Secret: secret3})
	foreign := mint(f, other, newTask("8900"))
	expired := newTask("8901")
	expired.ExpiresAt = testNow.Add(-time.Hour)
	for _, seed := range []string{
		"",
		".",
		"..",
		"a.b.c",
		foreign,
		foreign + "=",
		strings.Replace(foreign, ".", "..", 1),
		mint(f, other, expired),
		"eyJhbGciOiJub25lIiwia2lkIjoiazEifQ.eyJ0aWQiOiJ4IiwianRpIjoieSIsImV4cCI6OTk5OTk5OTk5OX0.",
		"eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.e30.AAAA",
		"eyJhbGciOiJIUzI1NiJ9.eyJ0aWQiOjF9.",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		id, err := iss.Verify(token, testNow)
		if err == nil {
			t.Fatalf("Verify accepted %q as the token of %q", token, id)
		}
		if !errors.Is(err, approvals.ErrBadToken) && !errors.Is(err, approvals.ErrExpired) {
			t.Fatalf("Verify: err = %v, want ErrBadToken or ErrExpired", err)
		}
		// Error texts hold no dot, so one that contains a dotted token
		// quotes it.
		if strings.Contains(token, ".") && strings.Contains(err.Error(), token) {
			t.Fatalf("error %q contains the token", err)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	iss := newIssuer(b, Key{ID: "k2", Secret: secret2}, Key{ID: "k1", Secret: secret1})
	tok := mint(b, iss, newTask("8900"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iss.Verify(tok, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMint(b *testing.B) {
	iss := newIssuer(b)
	task := newTask("8900")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iss.Mint(task); err != nil {
			b.Fatal(err)
		}
	}
}

// jwtGoToken is a task's token as jwt-go writes it (NewWithClaims for
// HS256, the kid set, SignedString): how tokens were minted before Mint
// built them itself, and so the bytes the store's hashes of tokens already
// handed out are of.
func jwtGoToken(t testing.TB, secret []byte, keyID string, task *approvals.Task) string {
	t.Helper()
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(task.Source + "/" + task.TaskID))
	mac.Write([]byte{0})
	mac.Write(task.Nonce)
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, &claims{
		TaskID:    task.ID,
		ID:        base64.RawURLEncoding.EncodeToString(mac.Sum(nil)),
		ExpiresAt: task.ExpiresAt.Unix(),
	})
	tok.Header["kid"] = keyID
	signed, err := tok.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// TestMintWritesWhatJWTGoWrites: Mint's tokens are byte for byte what
// jwt-go wrote, for ids and key ids JSON must escape too, so that a
// pending task's buttons (whose token's hash the store keeps) still work
// after the upgrade, and every later post and update shows the same token.
func TestMintWritesWhatJWTGoWrites(t *testing.T) {
	t.Parallel()
	for _, keyID := range []string{"k1", `k"1`, "k<&>1", "ключ", "k\u2028"} {
		iss := newIssuer(t, Key{ID: keyID, Secret: secret2})
		for _, taskID := range []string{"8900", "a b", `q"uote`, "<script>&", "zażółć", "line\nbreak", "\u2028"} {
			for _, exp := range []time.Time{testNow.Add(time.Hour), time.Unix(0, 0), time.Unix(-1, 0), time.Unix(1<<40, 0)} {
				task := newTask(taskID)
				task.ExpiresAt = exp
				task.ID = "flexdeploy-" + taskID // as it comes, unhashed: the claims escape it
				got := mint(t, iss, task)
				if want := jwtGoToken(t, secret2, keyID, task); got != want {
					t.Errorf("kid %q, task %q, exp %v:\n got %s\nwant %s", keyID, taskID, exp, got, want)
				}
			}
		}
	}
}

func FuzzMintWritesWhatJWTGoWrites(f *testing.F) {
	f.Add("k1", "flexdeploy-8900", "8900", int64(1795441092))
	f.Add(`k"<>&`, "x\u2028\"", "\x00\xff", int64(-1))
	f.Fuzz(func(t *testing.T, keyID, id, taskID string, exp int64) {
		if keyID == "" || id == "" || exp == 0 {
			return // refused by NewIssuer and Mint
		}
		iss := newIssuer(t, Key{ID: keyID, Secret: secret1})
		task := newTask(taskID)
		task.ID, task.ExpiresAt = id, time.Unix(exp, 0)
		if task.ExpiresAt.IsZero() {
			return
		}
		got, err := iss.Mint(task)
		if err != nil {
			t.Fatal(err)
		}
		if want := jwtGoToken(t, secret1, keyID, task); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	})
}
