package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Verifier validates Entra ID access tokens for one API in one tenant and
// makes the authorization decision. It is safe for concurrent use. Create it
// with New, then call Start once.
type Verifier struct {
	cfg    config
	parser *jwt.Parser
	cache  *tokenCache // nil when Options.CacheSize is negative

	meta atomic.Pointer[metadata] // nil until the discovery documents load
	keys atomic.Pointer[keySet]   // nil until a keys document loads

	startOnce sync.Once

	mu             sync.Mutex      // guards the fields below
	runCtx         context.Context // Start's context; key fetches run on it
	inflight       *flight         // the keys fetch in progress, if any
	kidRefetched   bool            // an unknown-kid refetch has happened
	lastKIDRefetch time.Time       // when it started (injected clock)
	refetchWait    time.Duration   // how long a request waits for it
}

// New validates opts and returns a Verifier. It does no network I/O: the
// metadata and keys are loaded by Start. Every problem with opts is reported,
// each naming the field.
func New(opts Options) (*Verifier, error) {
	cfg, err := opts.config()
	if err != nil {
		return nil, err
	}
	v := &Verifier{
		cfg:         cfg,
		cache:       newTokenCache(cfg.cacheSize),
		runCtx:      context.Background(),
		refetchWait: unknownKIDWait,
	}
	// The library's own checks stay on as a second line behind ours.
	// NOTE: WithStrictDecoding refuses padded and non-canonical base64url,
	// which RFC 7515 §2 leaves to the implementation.
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithStrictDecoding(),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.leeway),
		jwt.WithTimeFunc(cfg.now),
	)
	return v, nil
}

// Verify authenticates raw, a compact JWS access token, and returns its
// claims. It does not decide permissions: call Authorize for that.
//
// It checks, cheapest first, and refuses on the first failure:
//   - size: at most MaxTokenSize bytes, before any decoding;
//   - encoding: three strict base64url segments (no padding, canonical
//     trailing bits), JSON objects, no duplicate claim names;
//   - header: alg exactly RS256; kid present and of plain syntax; no crit,
//     jku, x5u, jwk, x5c or nonce (a Microsoft Graph token) parameter;
//   - ver "1.0" or "2.0", which selects the issuer and audience:
//     "2.0" → the v2 issuer from the tenant's v2 metadata and aud ClientID;
//     "1.0" → the v1 issuer from the v1 metadata and aud AppIDURI;
//     iss and aud compared byte for byte, aud a single JSON string;
//   - tid equal to TenantID;
//   - exp present; exp, nbf and iat JSON numbers, checked against the
//     injected clock with Leeway;
//   - the key: known kid (one rate-limited refetch on a miss), a published
//     per-key issuer, when there is one, naming our tenant; then the RSA
//     PKCS#1 v1.5 SHA-256 signature.
//
// It does NOT check: typ (Entra writes "JWT" for ID and access tokens alike),
// whether the token is an access token rather than an ID token (Authorize
// refuses tokens without azp/appid), sub, oid, azp/appid values (which client
// called is the caller's business; it is logged), acr/amr, x5t, revocation,
// or token binding. It never fetches a key from a URL in the token.
//
// A token that passed every check is remembered (see Options.CacheSize) by
// the SHA-256 of its text: presented again, it is accepted with the same
// claims after a hash and a map lookup, until the first of its exp, a
// reload of the metadata or keys, or eviction. Authorize is not cached.
//
// Errors wrap ErrInvalidToken, or ErrKeysUnavailable while nothing is
// loaded; Reason(err) names the failed check and is safe to show clients.
// The returned claims are the caller's: changing them changes nothing here.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if len(raw) > MaxTokenSize {
		return nil, invalid("token too large")
	}
	if raw == "" {
		return nil, invalid("empty token")
	}
	m, ks := v.meta.Load(), v.keys.Load()
	if m == nil || ks == nil {
		return nil, unavailable("signing keys not loaded yet")
	}
	var h tokenHash
	if v.cache != nil {
		h = sha256.Sum256([]byte(raw))
		if c, ok := v.cache.get(h, v.cfg.now(), v.cfg.leeway, m, ks); ok {
			return c, nil
		}
	}
	var (
		wc     wireClaims
		usedKS *keySet // the key set the signature was checked against
		kid    string
	)
	tok, err := v.parser.ParseWithClaims(raw, &wc, func(t *jwt.Token) (any, error) {
		// golang-jwt calls this after decoding and the alg allow-list but
		// before the RSA verification: the place for the cheap checks.
		if err := checkHeader(t.Header); err != nil {
			return nil, err
		}
		if err := v.checkClaims(m, &wc); err != nil {
			return nil, err
		}
		k, used, id, err := v.key(ctx, m, t)
		usedKS, kid = used, id
		return k, err
	})
	if err != nil {
		return nil, classify(tok, err)
	}
	if !tok.Valid {
		return nil, invalid("token rejected")
	}
	c := wc.claims()
	if v.cache != nil {
		v.cache.put(h, c, v.cfg.now(), m, usedKS, kid)
	}
	return c, nil
}

// refusedHeaders are JOSE header parameters we never honour. jku, x5u, jwk
// and x5c would let a token name its own key; crit asks for extensions we do
// not implement (RFC 7515 §4.1.11); nonce marks a Microsoft Graph token,
// whose signature only Graph can check.
var refusedHeaders = [...]string{"crit", "jku", "x5u", "jwk", "x5c", "nonce"}

func checkHeader(h map[string]any) error {
	for _, p := range refusedHeaders {
		if _, ok := h[p]; ok {
			return invalid("header parameter " + p + " not allowed")
		}
	}
	raw, ok := h["kid"]
	if !ok {
		return invalid("kid missing")
	}
	kid, ok := raw.(string)
	if !ok || !validKID(kid) {
		return invalid("kid malformed")
	}
	return nil
}

// validKID accepts 1 to 128 characters of [A-Za-z0-9._-]: Entra kids are
// base64url thumbprints.
//
// NOTE: stricter than RFC 7515 §4.1.4 (any string): a kid is looked up and
// logged, and a path or control character in one is never legitimate.
func validKID(kid string) bool {
	if kid == "" || len(kid) > 128 {
		return false
	}
	for i := 0; i < len(kid); i++ {
		c := kid[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func (v *Verifier) checkClaims(m *metadata, wc *wireClaims) error {
	if !wc.decoded {
		return invalid("claims are not a JSON object")
	}
	var wantIss, wantAud string
	switch wc.ver {
	case "2.0":
		wantIss, wantAud = m.v2Issuer, v.cfg.clientID
	case "1.0":
		wantIss, wantAud = m.v1Issuer, v.cfg.appIDURI
	case "":
		return invalid("ver missing")
	default:
		return invalid("ver unsupported")
	}
	switch {
	case wc.iss == "":
		return invalid("iss missing")
	case wc.iss != wantIss:
		return invalid("issuer mismatch")
	case !wc.hasAud:
		return invalid("aud missing")
	case wc.aud != wantAud:
		return invalid("audience mismatch")
	case wc.tid == "":
		return invalid("tid missing")
	case wc.tid != v.cfg.tenantID:
		return invalid("tenant mismatch")
	case !wc.exp.set:
		return invalid("exp missing")
	}
	now, leeway := v.cfg.now(), v.cfg.leeway
	switch {
	case !now.Before(wc.exp.t.Add(leeway)):
		return invalid("token expired")
	case wc.nbf.set && now.Add(leeway).Before(wc.nbf.t):
		return invalid("token not yet valid")
	case wc.iat.set && now.Add(leeway).Before(wc.iat.t):
		return invalid("token issued in the future")
	}
	return nil
}

// key returns the public key for t's kid and the key set it came from,
// refetching the keys document once (rate limited) when the kid is unknown.
func (v *Verifier) key(ctx context.Context, m *metadata, t *jwt.Token) (any, *keySet, string, error) {
	kid, _ := t.Header["kid"].(string) // checked by checkHeader
	ks := v.keys.Load()
	keyIss, ok := ks.issuers[kid]
	if !ok {
		v.refetchForUnknownKID(ctx)
		ks = v.keys.Load()
		if keyIss, ok = ks.issuers[kid]; !ok {
			return nil, nil, "", invalid("unknown signing key")
		}
	}
	// A key may publish the issuer it signs for (Entra's per-key "issuer",
	// templated for multi-tenant keys). A key of another tenant — the
	// consumer tenant's keys share the /common document — never verifies a
	// token for ours.
	if !v.keyIssuerAllowed(keyIss, m) {
		return nil, nil, "", invalid("signing key belongs to another issuer")
	}
	k, err := ks.kf.KeyfuncCtx(ctx)(t)
	if err != nil {
		return nil, nil, "", invalid("signing key unusable")
	}
	return k, ks, kid, nil
}

// keyIssuerAllowed reports whether a key whose keys-document entry publishes
// issuer keyIss may sign our tokens: no published issuer, or one that is our
// v2 or v1 issuer once the {tenantid} template is filled in. Entra publishes
// v2-form issuers for keys that also sign v1 tokens, so either form admits
// a token of either version.
func (v *Verifier) keyIssuerAllowed(keyIss string, m *metadata) bool {
	if keyIss == "" {
		return true
	}
	keyIss = strings.ReplaceAll(keyIss, tenantTemplate, v.cfg.tenantID)
	return keyIss == m.v2Issuer || keyIss == m.v1Issuer
}

// classify turns a golang-jwt error into one of ours with a safe reason.
// Reasons from our own checks pass through unchanged.
func classify(tok *jwt.Token, err error) error {
	var f *failure
	if errors.As(err, &f) {
		return f
	}
	if errors.Is(err, jwt.ErrTokenMalformed) {
		return invalid("malformed token")
	}
	if tok != nil {
		if alg, _ := tok.Header["alg"].(string); alg != jwt.SigningMethodRS256.Alg() {
			return invalid("alg not allowed")
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return invalid("exp missing")
	case errors.Is(err, jwt.ErrTokenExpired):
		return invalid("token expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return invalid("token not yet valid")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return invalid("token issued in the future")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return invalid("signature invalid")
	}
	return invalid("token rejected")
}
