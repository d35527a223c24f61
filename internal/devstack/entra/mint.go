package entra

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MintOptions describe an access token for Server.Mint. The zero value (plus
// a ClientID) is an app-only v2 token for the API, exactly what the token
// endpoint issues.
type MintOptions struct {
	// ClientID is the client the token is issued to (azp in v2, appid in v1).
	ClientID string
	// Roles become the roles claim (omitted when empty).
	Roles []string
	// Scopes make a delegated (user) token: they become the space-separated
	// scp claim, and idtyp "app" is left out.
	Scopes []string
	// Version is "2.0" (default) or "1.0": it picks the claim set, the
	// issuer and the default audience.
	Version string
	// Audience overrides aud. Default API.ClientID for v2, API.AppIDURI for v1.
	Audience string
	// Lifetime overrides the server's TokenLifetime (exp = iat + Lifetime).
	Lifetime time.Duration
	// Key signs the token instead of the stand-in's key (a key the tests
	// generate, e.g. for a token whose key is not published).
	Key *rsa.PrivateKey
	// KeyID is the kid header. With Key nil it defaults to the stand-in's
	// kid; with Key set, an empty KeyID leaves the header out.
	KeyID string
	// Extra adds claims or overrides the ones above; a nil value removes the
	// claim (for tokens missing exp, say).
	Extra map[string]any
}

// Mint signs an access token shaped like Entra's (RS256, header typ/alg/kid)
// with the stand-in's clock. It is for tests and for the offline stack's
// ready-to-paste request; the token endpoint uses it too.
func (s *Server) Mint(o MintOptions) (string, error) {
	if o.ClientID == "" {
		return "", errors.New("entra: Mint needs a ClientID")
	}
	ver := o.Version
	if ver == "" {
		ver = "2.0"
	}
	life := o.Lifetime
	if life <= 0 {
		life = s.lifetime
	}
	now := s.now()
	delegated := len(o.Scopes) > 0
	uti, err := randomString(16, base64.RawURLEncoding)
	if err != nil {
		return "", err
	}
	aio, err := randomString(48, base64.StdEncoding)
	if err != nil {
		return "", err
	}
	oid := stableGUID(s.tenant, "sp", o.ClientID)
	sub := oid
	if delegated {
		oid = stableGUID(s.tenant, "user", o.ClientID)
		sub = base64.RawURLEncoding.EncodeToString([]byte(stableGUID(s.tenant, "pairwise", o.ClientID)))[:43]
	}

	c := jwt.MapClaims{
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(life).Unix(),
		"aio": aio,
		"oid": oid,
		"sub": sub,
		"tid": s.tenant,
		"uti": uti,
		"ver": ver,
	}
	switch ver {
	case "2.0":
		c["aud"] = s.api.ClientID
		c["iss"] = s.Issuer()
		c["azp"] = o.ClientID
		c["azpacr"] = "1"
	case "1.0":
		c["aud"] = s.api.AppIDURI
		c["iss"] = s.IssuerV1()
		c["appid"] = o.ClientID
		c["appidacr"] = "1"
	default:
		return "", fmt.Errorf("entra: unknown token version %q", ver)
	}
	if o.Audience != "" {
		c["aud"] = o.Audience
	}
	if delegated {
		c["scp"] = strings.Join(o.Scopes, " ")
	} else {
		c["idtyp"] = "app"
	}
	if len(o.Roles) > 0 {
		c["roles"] = append([]string(nil), o.Roles...)
	}
	for k, v := range o.Extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}

	t := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	t.Header["typ"] = "JWT"
	key, kid := s.key, s.kid
	if o.Key != nil {
		key, kid = o.Key, ""
	}
	if o.KeyID != "" {
		kid = o.KeyID
	}
	if kid != "" {
		t.Header["kid"] = kid
	}
	signed, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("entra: sign token: %w", err)
	}
	return signed, nil
}

func randomString(n int, enc *base64.Encoding) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("entra: random: %w", err)
	}
	return enc.EncodeToString(b), nil
}

// stableGUID derives a GUID-shaped ID from its parts, so that a client's
// object ID stays the same across tokens and runs.
func stableGUID(parts ...string) string {
	b := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
