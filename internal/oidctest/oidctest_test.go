package oidctest

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
)

func TestDiscovery(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}); err == nil {
		t.Error("a provider without a client started")
	}
	p, err := New(Config{ClientID: "c", ClientSecret: "s", RedirectURIs: []string{"http://127.0.0.1:1/cb"},
		Users: []User{{Email: "a@example.com", Password: "p", EmailVerified: true}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	res, err := http.Get(p.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc struct {
		Issuer  string   `json:"issuer"`
		Methods []string `json:"code_challenge_methods_supported"`
		JWKS    string   `json:"jwks_uri"`
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.Issuer != p.Issuer() || !slices.Contains(doc.Methods, "S256") || doc.JWKS == "" {
		t.Errorf("discovery %+v, issuer %s", doc, p.Issuer())
	}
}
