package web

import (
	"testing"
)

// FuzzOpenCookie: a cookie value is outside input; whatever it is, opening
// it never panics, and only a value this key sealed opens.
func FuzzOpenCookie(f *testing.F) {
	key := newSigner([]byte("fuzz-session-key-0123456789abcdef")).session
	f.Add(seal(key, sessionCookie, session{ID: "s", User: "U1", Expires: 1}))
	f.Add("e30.AAAA")
	f.Add(".")
	f.Add("")
	f.Fuzz(func(t *testing.T, value string) {
		var s session
		if open(key, sessionCookie, value, &s) && seal(key, sessionCookie, s) == "" {
			t.Fatal("opened a value that seals to nothing")
		}
	})
}
