package teams

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Bot Framework's token facts (reference: "Authentication with the Bot
// Connector API").
const (
	// DefaultOpenIDMetadata is the channel's OpenID metadata document.
	DefaultOpenIDMetadata = "https://login.botframework.com/v1/.well-known/openidconfiguration"
	// ChannelIssuer is the iss of every token the channel signs.
	ChannelIssuer = "https://api.botframework.com"
	// clockSkew is how far exp and nbf may be off.
	clockSkew = 5 * time.Minute
	// keysMaxAge is how long fetched keys are used before they are fetched
	// again: they rotate, and Microsoft says to cache them a day at most.
	keysMaxAge = 24 * time.Hour
	// refetchEvery bounds the fetches an unknown kid causes: a flood of
	// forged tokens naming random kids fetches the keys once a minute.
	refetchEvery = time.Minute
	// channelTeams is Teams' channel id: a key with endorsements must list it.
	channelTeams = "msteams"
)

// Verifier checks the bearer token the Bot Framework channel sends with
// every activity.
type Verifier struct {
	metadataURL string
	appID       string
	client      *http.Client
	now         func() time.Time

	mu        sync.Mutex
	keys      map[string]channelKey
	fetchedAt time.Time
	triedAt   time.Time
}

// channelKey is one signing key of the channel.
type channelKey struct {
	pub          *rsa.PublicKey
	endorsements []string
}

// NewVerifier returns a Verifier of tokens for appID whose keys come from
// the metadata document at metadataURL (DefaultOpenIDMetadata when "").
func NewVerifier(metadataURL, appID string, client *http.Client, now func() time.Time) *Verifier {
	if metadataURL == "" {
		metadataURL = DefaultOpenIDMetadata
	}
	if now == nil {
		now = time.Now
	}
	return &Verifier{metadataURL: metadataURL, appID: appID, client: client, now: now}
}

// Identity is what a verified token says about the activity it came with.
type Identity struct {
	// ServiceURL is the token's serviceurl claim: the activity's serviceUrl
	// must be the same.
	ServiceURL string
	// Endorsements are the channels the signing key is endorsed for; when
	// there are any, the activity's channelId must be among them.
	Endorsements []string
}

// ErrUnauthorized is every failed check of a token; its wrapped text says
// which, for the log, and never quotes the token.
var ErrUnauthorized = errors.New("teams: token refused")

type channelClaims struct {
	jwt.RegisteredClaims
	ServiceURL string `json:"serviceurl"`
}

// Verify checks the Authorization header: RS256 by a key of the channel's,
// iss, aud, exp and nbf (5 minutes' skew).
func (v *Verifier) Verify(ctx context.Context, authorization string) (Identity, error) {
	raw, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok || raw == "" {
		return Identity{}, fmt.Errorf("%w: no bearer token", ErrUnauthorized)
	}
	var used channelKey
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithIssuer(ChannelIssuer),
		jwt.WithAudience(v.appID),
		jwt.WithLeeway(clockSkew),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(v.now),
	)
	var claims channelClaims
	_, err := parser.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid")
		}
		k, err := v.key(ctx, kid)
		if err != nil {
			return nil, err
		}
		used = k
		return k.pub, nil
	})
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	if v.appID == "" {
		return Identity{}, fmt.Errorf("%w: no app id configured", ErrUnauthorized)
	}
	if claims.ServiceURL == "" {
		return Identity{}, fmt.Errorf("%w: no serviceurl claim", ErrUnauthorized)
	}
	return Identity{ServiceURL: claims.ServiceURL, Endorsements: used.endorsements}, nil
}

// Check holds a parsed activity to what its token said.
func (id Identity) Check(a *Activity) error {
	if !sameServiceURL(id.ServiceURL, a.ServiceURL) {
		return fmt.Errorf("%w: serviceUrl is not the token's", ErrUnauthorized)
	}
	if len(id.Endorsements) > 0 && !slices.Contains(id.Endorsements, a.ChannelID) {
		return fmt.Errorf("%w: the key is not endorsed for channel %q", ErrUnauthorized, oneLine(a.ChannelID, 40))
	}
	if a.ChannelID != channelTeams {
		return fmt.Errorf("%w: channel %q is not Teams", ErrUnauthorized, oneLine(a.ChannelID, 40))
	}
	return nil
}

func sameServiceURL(a, b string) bool {
	return a != "" && strings.EqualFold(strings.TrimSuffix(a, "/"), strings.TrimSuffix(b, "/"))
}

// key returns the key named kid, fetching the keys when they are old or
// kid is unknown (at most once a refetchEvery).
func (v *Verifier) key(ctx context.Context, kid string) (channelKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	k, ok := v.keys[kid]
	fresh := now.Sub(v.fetchedAt) < keysMaxAge
	if ok && fresh {
		return k, nil
	}
	if !fresh || now.Sub(v.triedAt) >= refetchEvery {
		v.triedAt = now
		keys, err := v.fetch(ctx)
		if err != nil {
			if ok {
				return k, nil // old keys are better than none while the fetch fails
			}
			return channelKey{}, err
		}
		v.keys, v.fetchedAt = keys, now
		k, ok = keys[kid]
	}
	if !ok {
		return channelKey{}, errors.New("unknown kid")
	}
	return k, nil
}

// fetch reads the metadata document, then its JWKS.
func (v *Verifier) fetch(ctx context.Context) (map[string]channelKey, error) {
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := v.getJSON(ctx, v.metadataURL, &meta); err != nil {
		return nil, fmt.Errorf("openid metadata: %w", err)
	}
	if meta.JWKSURI == "" {
		return nil, errors.New("openid metadata: no jwks_uri")
	}
	var set struct {
		Keys []struct {
			Kty          string   `json:"kty"`
			Kid          string   `json:"kid"`
			N            string   `json:"n"`
			E            string   `json:"e"`
			Endorsements []string `json:"endorsements"`
		} `json:"keys"`
	}
	if err := v.getJSON(ctx, meta.JWKSURI, &set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	keys := map[string]channelKey{}
	for _, k := range set.Keys {
		if k.Kty != "RSA" || k.Kid == "" {
			continue
		}
		n, errN := base64.RawURLEncoding.DecodeString(strings.TrimRight(k.N, "="))
		e, errE := base64.RawURLEncoding.DecodeString(strings.TrimRight(k.E, "="))
		if errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
			continue
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < 2048 {
			continue
		}
		keys[k.Kid] = channelKey{pub: pub, endorsements: k.Endorsements}
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks: no usable RSA key")
	}
	return keys, nil
}

func (v *Verifier) getJSON(ctx context.Context, url string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return fmt.Errorf("answered %d", resp.StatusCode)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(into)
}

// oneLine is s on one line, cut to most runes: for quoting outside input in
// errors and logs.
func oneLine(s string, most int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > most {
		return string(r[:most-1]) + "…"
	}
	return s
}
