package auth

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// attack is one row of the attack suite: a request and the exact reply the
// Middleware must give it.
type attack struct {
	name  string
	token string   // sent as "Authorization: Bearer <token>" unless hdr is set
	hdr   []string // request headers (name, value, …) instead of the token
	query string   // raw query instead of city=London
	v     *Verifier
	// The expected reply. code is the RFC 6750 error code ("" for none);
	// reason is the exact error_description and, for token rows, the
	// Reason of Verify's or Authorize's error; scope the scope attribute
	// of a 403.
	status int
	code   string
	reason string
	scope  string
}

// b64alphabet is the base64url alphabet in index order.
const b64alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// nonCanonical sets unused low bits of seg's last character, so a lax
// decoder yields the same bytes; ok is false when seg has no unused bits.
func nonCanonical(seg string) (string, bool) {
	if len(seg)%4 == 0 || seg == "" {
		return seg, false
	}
	i := strings.IndexByte(b64alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(b64alphabet[i|1]), true
}

// spaced inserts spaces after the opening brace of a JSON object until its
// raw base64url encoding has a partial last group (len % 4 != 0), so that
// padding and trailing bits exist to be abused.
func spaced(b []byte) []byte {
	for len(b64(b))%4 == 0 {
		b = append([]byte("{ "), b[1:]...)
	}
	return b
}

// signText returns text + "." + the RS256 signature of text by s.
func signText(t testing.TB, s signer, text string) string {
	t.Helper()
	sig, err := jwt.SigningMethodRS256.Sign(text, s.priv)
	if err != nil {
		t.Fatal(err)
	}
	return text + "." + b64(sig)
}

// TestAttackSuite sends every attack through Middleware and asserts the
// exact status and WWW-Authenticate challenge (error code and
// error_description); for token rows it also asserts the Reason of Verify
// (or Authorize). It covers every row of
// testdata/observed.golang-jwt-v5.3.1_keyfunc-v3.9.2.attack-matrix.txt
// (named "matrix: <row>"; none may pass where the libraries' defaults let
// them), the field cases C01–C07, alg confusion, tenant and key-scope
// attacks, v1/v2 crossings, ID token replay, lifetime edges at and past the
// leeway, size, segment count and non-canonical base64. No reply header or
// body and no log line may contain any part of a token. Every request is
// sent twice, so each accepted token is also judged from the verified-token
// cache (and every refused one is proved never to enter it).
//
// The keys document served is hostile: besides our RSA keys it carries an
// "oct" key, an EC key, a PS256-tagged RSA key and a key whose published
// issuer is another tenant.
func TestAttackSuite(t *testing.T) {
	k0, k1, foreign := testSigner(0), testSigner(1), testSigner(2)
	foreign.kid = "foreign-tenant-key"
	p := newIDP(t)
	k1.issuer = p.srv.URL + "/{tenantid}/v2.0" // Entra's templated multi-tenant issuer
	foreign.issuer = p.srv.URL + "/" + otherTenant + "/v2.0"
	p.setSigners(k0, k1, foreign)

	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPoint, err := ec.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	octSecret := []byte("a-symmetric-key-slipped-into-the-keys-document")
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(jwksDoc(k0, k1, foreign), &doc); err != nil {
		t.Fatal(err)
	}
	doc.Keys = append(doc.Keys,
		map[string]any{"kty": "oct", "use": "sig", "alg": "HS256", "kid": "oct-key", "k": b64(octSecret)},
		map[string]any{"kty": "EC", "use": "sig", "alg": "ES256", "crv": "P-256", "kid": "ec-key", "x": b64(ecPoint[1:33]), "y": b64(ecPoint[33:])},
		map[string]any{"kty": "RSA", "use": "sig", "alg": "PS256", "kid": "pss-key", "n": b64(k1.priv.N.Bytes()), "e": "AQAB"},
	)
	hostile, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	p.setJWKSHook(func(w http.ResponseWriter, _ int64) bool {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(hostile)
		return true
	})

	clk := newClock()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	v := p.started(t, clk, func(o *Options) { o.Logger = logger })
	v5 := p.started(t, clk, func(o *Options) { o.Logger = logger; o.Leeway = MaxLeeway })
	cold := p.newVerifier(t, clk, nil) // never started: no keys (C05)
	now := clk.Now().Unix()
	fnow := float64(now)

	// with copies base and applies changes (a nil value deletes a claim).
	with := func(base map[string]any, changes map[string]any) map[string]any {
		c := make(map[string]any, len(base)+len(changes))
		for k, val := range base {
			c[k] = val
		}
		for k, val := range changes {
			if val == nil {
				delete(c, k)
			} else {
				c[k] = val
			}
		}
		return c
	}
	app, user, v1 := p.appClaims(clk), p.userClaims(clk), v1Claims(clk)
	appJSON, _ := json.Marshal(app)
	valid := mint(t, k0, app, nil)
	h, pl, sig := segments(valid)
	sigBytes, _ := base64.RawURLEncoding.DecodeString(sig)

	// signed signs claims with any golang-jwt method and key, header kid.
	signed := func(m jwt.SigningMethod, key any, kid string, claims map[string]any) string {
		tok := jwt.NewWithClaims(m, jwt.MapClaims(claims))
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&k0.priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	// unsigned builds alg none-style tokens: header with alg as given, the
	// valid claims, and sig as the third segment.
	unsigned := func(alg, sig string) string {
		hb, _ := json.Marshal(map[string]any{"typ": "JWT", "alg": alg, "kid": k0.kid})
		return b64(hb) + "." + pl + "." + sig
	}
	rsHeader := func() []byte {
		hb, _ := json.Marshal(map[string]any{"typ": "JWT", "alg": "RS256", "kid": k0.kid})
		return hb
	}
	rawPayload := func(payload string) string { return mintRaw(t, k0, rsHeader(), []byte(payload)) }

	// Properly signed tokens whose segments are not canonical base64url:
	// only the strict decoder stands between them and acceptance.
	hdrJ, payJ := spaced(rsHeader()), spaced(appJSON)
	hdrTrail, ok1 := nonCanonical(b64(hdrJ))
	payTrail, ok2 := nonCanonical(b64(payJ))
	sigTrail, ok3 := nonCanonical(sig)
	if !ok1 || !ok2 || !ok3 {
		t.Fatal("no unused bits to set")
	}
	qPayload, _ := json.Marshal(with(app, map[string]any{"note": "?????"})) // "???" encodes to Pz8_ / Pz8/
	stdPay := base64.RawStdEncoding.EncodeToString(qPayload)
	stdSig := base64.RawStdEncoding.EncodeToString(sigBytes)
	if !strings.ContainsAny(stdPay, "+/") || !strings.ContainsAny(stdSig, "+/") {
		t.Fatal("standard-alphabet segments have no + or /")
	}

	// A signed token of exactly size bytes: a "pad" claim sized so that
	// the payload's base64url length fills what header and signature leave
	// (raw base64url lengths are never 1 mod 4, so the header's x-pad
	// parameter shifts the remainder when needed).
	sized := func(size int) string {
		for hx := range 4 {
			hb, _ := json.Marshal(map[string]any{"typ": "JWT", "alg": "RS256", "kid": k0.kid, "x-pad": strings.Repeat("x", hx)})
			want := size - len(b64(hb)) - 2 - len(sig) // payload segment length
			if want%4 == 1 {
				continue
			}
			m := want / 4 * 3 // payload bytes
			if want%4 != 0 {
				m += want%4 - 1
			}
			empty, _ := json.Marshal(with(app, map[string]any{"pad": ""}))
			pb, _ := json.Marshal(with(app, map[string]any{"pad": strings.Repeat("p", m-len(empty))}))
			return mintRaw(t, k0, hb, pb)
		}
		t.Fatalf("no token of %d bytes", size)
		return ""
	}
	atLimit, pastLimit := sized(MaxTokenSize), sized(MaxTokenSize+1)
	if len(atLimit) != MaxTokenSize || len(pastLimit) != MaxTokenSize+1 {
		t.Fatalf("sized tokens of %d and %d bytes", len(atLimit), len(pastLimit))
	}

	// An ID token as Entra issues it to a client: aud is that client, a
	// nonce claim, no azp/appid, no scp, no idtyp.
	idToken := func(aud string, roles []string) map[string]any {
		c := with(app, map[string]any{"aud": aud, "azp": nil, "idtyp": nil, "roles": nil,
			"nonce": "n-0S6_WzA2Mj", "name": "Test User", "preferred_username": "user@example.com"})
		if roles != nil {
			c["roles"] = roles
		}
		return c
	}
	role, scope := DefaultRequiredRole, DefaultRequiredScope
	const (
		bad = "invalid_token"
		req = "invalid_request"
		ins = "insufficient_scope"
	)
	lifetime := func(claim string, offset float64) map[string]any {
		return with(app, map[string]any{claim: fnow + offset})
	}

	tests := []attack{
		// Every row of the observed attack matrix.
		{name: "matrix: valid", token: valid, status: 200},
		{name: "matrix: alg none", token: signed(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, k0.kid, app), status: 401, code: bad, reason: "alg not allowed"},
		{name: "matrix: HS256 with pubkey DER as secret", token: signed(jwt.SigningMethodHS256, pubDER, k0.kid, app), status: 401, code: bad, reason: "alg not allowed"},
		{name: "matrix: no kid (signed by k2, other key in set)", token: mint(t, k1, app, map[string]any{"kid": nil}), status: 401, code: bad, reason: "kid missing"},
		{name: "matrix: kid path traversal", token: mint(t, k0, app, map[string]any{"kid": "../../etc/passwd"}), status: 401, code: bad, reason: "kid malformed"},
		{name: "matrix: jku header to attacker", token: mint(t, k0, app, map[string]any{"jku": "https://attacker.example/keys"}), status: 401, code: bad, reason: "header parameter jku not allowed"},
		{name: "matrix: embedded jwk header", token: mint(t, k0, app, map[string]any{"jwk": map[string]any{"kty": "RSA", "n": b64(k0.priv.N.Bytes()), "e": "AQAB"}}), status: 401, code: bad, reason: "header parameter jwk not allowed"},
		{name: "matrix: crit header unknown ext", token: mint(t, k0, app, map[string]any{"crit": []string{"exp"}, "exp": now}), status: 401, code: bad, reason: "header parameter crit not allowed"},
		{name: "matrix: exp missing", token: mint(t, k0, with(app, map[string]any{"exp": nil}), nil), status: 401, code: bad, reason: "exp missing"},
		{name: "matrix: exp = 0", token: mint(t, k0, with(app, map[string]any{"exp": 0}), nil), status: 401, code: bad, reason: "token expired"},
		{name: "matrix: exp as string", token: mint(t, k0, with(app, map[string]any{"exp": "99999999999"}), nil), status: 401, code: bad, reason: "exp is not a number"},
		{name: "matrix: expired 4 min ago", token: mint(t, k0, lifetime("exp", -240), nil), status: 401, code: bad, reason: "token expired"},
		{name: "matrix: nbf 10 min future", token: mint(t, k0, lifetime("nbf", 600), nil), status: 401, code: bad, reason: "token not yet valid"},
		{name: "matrix: iat 10 min future", token: mint(t, k0, lifetime("iat", 600), nil), status: 401, code: bad, reason: "token issued in the future"},
		{name: "matrix: aud array incl ours", token: mint(t, k0, with(app, map[string]any{"aud": []string{testClient}}), nil), status: 401, code: bad, reason: "aud is not a single string"},
		{name: "matrix: aud other", token: mint(t, k0, with(app, map[string]any{"aud": "00000003-0000-0000-c000-000000000000"}), nil), status: 401, code: bad, reason: "audience mismatch"},
		{name: "matrix: iss trailing slash", token: mint(t, k0, with(app, map[string]any{"iss": p.v2Iss() + "/"}), nil), status: 401, code: bad, reason: "issuer mismatch"},
		{name: "matrix: iss uppercase host", token: mint(t, k0, with(app, map[string]any{"iss": strings.Replace(p.v2Iss(), "https://", "HTTPS://", 1)}), nil), status: 401, code: bad, reason: "issuer mismatch"},
		{name: "matrix: signature segment with padding", token: valid + "==", status: 401, code: bad, reason: "malformed token"},
		{name: "matrix: sig non-canonical trailing bits", token: h + "." + pl + "." + sigTrail, status: 401, code: bad, reason: "malformed token"},

		// Field cases C01–C07 (C05 and C06 also have their own tests).
		{name: "C01 v1 token: sts issuer, App ID URI audience", token: mint(t, k0, v1, map[string]any{"x5t": k0.kid}), status: 200},
		{name: "C02 ver 1.0 delegated token from the v2 endpoint", token: mint(t, k0, with(v1, map[string]any{"scp": scope, "roles": nil}), nil), status: 200},
		{name: "C03 ver 2.0 with the v1 issuer", token: mint(t, k0, with(app, map[string]any{"iss": v1Issuer}), nil), status: 401, code: bad, reason: "issuer mismatch"},
		{name: "C03 ver 1.0 with the v2 issuer", token: mint(t, k0, with(v1, map[string]any{"iss": p.v2Iss()}), nil), status: 401, code: bad, reason: "issuer mismatch"},
		{name: "C04 Microsoft Graph token (nonce header, Graph audience)", token: mint(t, k0, with(app, map[string]any{"aud": "https://graph.microsoft.com"}), map[string]any{"nonce": "bm9uY2U"}), status: 401, code: bad, reason: "header parameter nonce not allowed"},
		{name: "C04 Graph token under an unknown kid", token: mint(t, foreign, with(app, map[string]any{"aud": "https://graph.microsoft.com"}), map[string]any{"nonce": "bm9uY2U", "kid": "graph-kid"}), status: 401, code: bad, reason: "header parameter nonce not allowed"},
		{name: "C04 Graph audience without nonce", token: mint(t, k0, with(app, map[string]any{"aud": "https://graph.microsoft.com"}), nil), status: 401, code: bad, reason: "audience mismatch"},
		{name: "C05 keys not loaded yet (cold start)", token: valid, v: cold, status: 503},
		{name: "C06 app-only token with neither roles nor scp", token: mint(t, k0, with(app, map[string]any{"roles": nil, "idtyp": nil}), nil), status: 403, code: ins, reason: "app role missing", scope: role},
		{name: "C07 delegated token holding the app role, scp without the scope", token: mint(t, k0, with(user, map[string]any{"scp": "User.Read", "roles": []string{role}}), nil), status: 403, code: ins, reason: "delegated scope missing", scope: scope},

		// Alg confusion: only RS256, whatever key the set holds.
		{name: "alg HS256 signed with the public key PEM", token: signed(jwt.SigningMethodHS256, pubPEM, k0.kid, app), status: 401, code: bad, reason: "alg not allowed"},
		{name: "alg HS256 signed with the modulus bytes", token: signed(jwt.SigningMethodHS256, k0.priv.N.Bytes(), k0.kid, app), status: 401, code: bad, reason: "alg not allowed"},
		{name: "oct key in the key set: HS256 token signed with it", token: signed(jwt.SigningMethodHS256, octSecret, "oct-key", app), status: 401, code: bad, reason: "alg not allowed"},
		{name: "oct key in the key set: its kid under alg RS256 (key never loaded)", token: mint(t, k0, app, map[string]any{"kid": "oct-key"}), status: 401, code: bad, reason: "unknown signing key"},
		{name: "PS256 signed with an RSA key of the set (its kid)", token: signed(jwt.SigningMethodPS256, k0.priv, k0.kid, app), status: 401, code: bad, reason: "alg not allowed"},
		{name: "PS256 signed with the PS256-tagged key of the set", token: signed(jwt.SigningMethodPS256, k1.priv, "pss-key", app), status: 401, code: bad, reason: "alg not allowed"},
		{name: "ES256 signed with the EC key of the set", token: signed(jwt.SigningMethodES256, ec, "ec-key", app), status: 401, code: bad, reason: "alg not allowed"},
		{name: "ES256 signed with the EC key under an RSA kid", token: signed(jwt.SigningMethodES256, ec, k0.kid, app), status: 401, code: bad, reason: "alg not allowed"},
		{name: "RS256 token under the EC key's kid (key never loaded)", token: mint(t, k0, app, map[string]any{"kid": "ec-key"}), status: 401, code: bad, reason: "unknown signing key"},
		{name: "alg RS512", token: signed(jwt.SigningMethodRS512, k0.priv, k0.kid, app), status: 401, code: bad, reason: "alg not allowed"},
		{name: "alg rs256 (lower case)", token: unsigned("rs256", sig), status: 401, code: bad, reason: "alg not allowed"},
		{name: "alg missing", token: mint(t, k0, app, map[string]any{"alg": nil}), status: 401, code: bad, reason: "alg not allowed"},
		{name: "alg none, empty signature", token: unsigned("none", ""), status: 401, code: bad, reason: "alg not allowed"},
		{name: "alg none, with a signature", token: unsigned("none", sig), status: 401, code: bad, reason: "alg not allowed"},
		{name: "alg None, empty signature", token: unsigned("None", ""), status: 401, code: bad, reason: "alg not allowed"},
		{name: "alg None, with a signature", token: unsigned("None", sig), status: 401, code: bad, reason: "alg not allowed"},
		{name: "alg NONE, empty signature", token: unsigned("NONE", ""), status: 401, code: bad, reason: "alg not allowed"},
		{name: "alg NONE, with a signature", token: unsigned("NONE", sig), status: 401, code: bad, reason: "alg not allowed"},
		{name: "alg nOnE, empty signature", token: unsigned("nOnE", ""), status: 401, code: bad, reason: "alg not allowed"},
		{name: "alg nOnE, with a signature", token: unsigned("nOnE", sig), status: 401, code: bad, reason: "alg not allowed"},

		// Header parameters.
		{name: "kid not a string", token: mint(t, k0, app, map[string]any{"kid": 7}), status: 401, code: bad, reason: "kid malformed"},
		{name: "kid of 129 characters", token: mint(t, k0, app, map[string]any{"kid": strings.Repeat("k", 129)}), status: 401, code: bad, reason: "kid malformed"},
		{name: "x5u header", token: mint(t, k0, app, map[string]any{"x5u": "https://attacker.example/cert"}), status: 401, code: bad, reason: "header parameter x5u not allowed"},
		{name: "x5c header", token: mint(t, k0, app, map[string]any{"x5c": []string{"MIIB"}}), status: 401, code: bad, reason: "header parameter x5c not allowed"},
		{name: "unknown kid", token: mint(t, k0, app, map[string]any{"kid": "not-in-the-set"}), status: 401, code: bad, reason: "unknown signing key"},
		{name: "signed by another key under a known kid", token: mint(t, foreign, app, map[string]any{"kid": k0.kid}), status: 401, code: bad, reason: "signature invalid"},
		{name: "tampered payload (role added)", token: h + "." + b64([]byte(strings.Replace(string(appJSON), `"roles":["access_as_application"]`, `"roles":["access_as_application","admin"]`, 1))) + "." + sig, status: 401, code: bad, reason: "signature invalid"},

		// Tenant and key scope.
		{name: "token of another tenant (its issuer and tid)", token: mint(t, k0, with(app, map[string]any{"tid": otherTenant, "iss": p.srv.URL + "/" + otherTenant + "/v2.0"}), nil), status: 401, code: bad, reason: "issuer mismatch"},
		{name: "tid of another tenant under our issuer", token: mint(t, k0, with(app, map[string]any{"tid": otherTenant}), nil), status: 401, code: bad, reason: "tenant mismatch"},
		{name: "tid ours in upper case", token: mint(t, k0, with(app, map[string]any{"tid": strings.ToUpper(testTenant)}), nil), status: 401, code: bad, reason: "tenant mismatch"},
		{name: "tid missing", token: mint(t, k0, with(app, map[string]any{"tid": nil}), nil), status: 401, code: bad, reason: "tid missing"},
		{name: "key of another tenant (per-key issuer) signs a v2 token for ours", token: mint(t, foreign, app, nil), status: 401, code: bad, reason: "signing key belongs to another issuer"},
		{name: "key of another tenant (per-key issuer) signs a v1 token for ours", token: mint(t, foreign, v1, nil), status: 401, code: bad, reason: "signing key belongs to another issuer"},
		{name: "key with the templated {tenantid} issuer signs for ours", token: mint(t, k1, app, nil), status: 200},

		// Version, issuer and audience crossings.
		{name: "ver 1.0 with the v2 audience (client ID)", token: mint(t, k0, with(v1, map[string]any{"aud": testClient}), nil), status: 401, code: bad, reason: "audience mismatch"},
		{name: "ver 2.0 with the v1 audience (App ID URI)", token: mint(t, k0, with(app, map[string]any{"aud": testAppURI}), nil), status: 401, code: bad, reason: "audience mismatch"},
		{name: "ver 2.0 with the v1 issuer and v1 audience", token: mint(t, k0, with(app, map[string]any{"iss": v1Issuer, "aud": testAppURI}), nil), status: 401, code: bad, reason: "issuer mismatch"},
		{name: "aud ours in upper case", token: mint(t, k0, with(app, map[string]any{"aud": strings.ToUpper(testClient)}), nil), status: 401, code: bad, reason: "audience mismatch"},
		{name: "aud missing", token: mint(t, k0, with(app, map[string]any{"aud": nil}), nil), status: 401, code: bad, reason: "aud missing"},
		{name: "iss missing", token: mint(t, k0, with(app, map[string]any{"iss": nil}), nil), status: 401, code: bad, reason: "iss missing"},
		{name: "ver missing", token: mint(t, k0, with(app, map[string]any{"ver": nil}), nil), status: 401, code: bad, reason: "ver missing"},
		{name: "ver 3.0", token: mint(t, k0, with(app, map[string]any{"ver": "3.0"}), nil), status: 401, code: bad, reason: "ver unsupported"},
		{name: "ver a number", token: mint(t, k0, with(app, map[string]any{"ver": 2.0}), nil), status: 401, code: bad, reason: "ver is not a string"},

		// ID tokens replayed as access tokens.
		{name: "ID token issued to the daemon (aud = its client ID)", token: mint(t, k0, idToken(testCaller, nil), nil), status: 401, code: bad, reason: "audience mismatch"},
		{name: "ID token issued to our API (nonce claim, no azp, no roles or scp)", token: mint(t, k0, idToken(testClient, nil), nil), status: 403, code: ins, reason: "not an access token (no azp or appid)", scope: role},
		{name: "ID token issued to our API holding the app role", token: mint(t, k0, idToken(testClient, []string{role}), nil), status: 403, code: ins, reason: "not an access token (no azp or appid)", scope: role},

		// Authorization: app-only and delegated told apart.
		{name: "delegated token with the scope", token: mint(t, k0, user, nil), status: 200},
		{name: "app-only token without idtyp holding the role", token: mint(t, k0, with(app, map[string]any{"idtyp": nil}), nil), status: 200},
		{name: "idtyp user without scp holding the app role", token: mint(t, k0, with(app, map[string]any{"idtyp": "user"}), nil), status: 403, code: ins, reason: "delegated scope missing", scope: scope},
		{name: "idtyp device holding the app role", token: mint(t, k0, with(app, map[string]any{"idtyp": "device"}), nil), status: 403, code: ins, reason: "idtyp is not app", scope: role},
		{name: "idtyp empty holding the app role", token: mint(t, k0, with(app, map[string]any{"idtyp": ""}), nil), status: 403, code: ins, reason: "idtyp is not app", scope: role},
		{name: "app-only token with the scope name as a role", token: mint(t, k0, with(app, map[string]any{"roles": []string{scope}}), nil), status: 403, code: ins, reason: "app role missing", scope: role},
		{name: "delegated token with an empty scp holding the app role", token: mint(t, k0, with(user, map[string]any{"scp": "", "roles": []string{role}}), nil), status: 403, code: ins, reason: "delegated scope missing", scope: scope},
		{name: "delegated token with the scope as a prefix only", token: mint(t, k0, with(user, map[string]any{"scp": scope + "_admin"}), nil), status: 403, code: ins, reason: "delegated scope missing", scope: scope},
		{name: "roles not an array", token: mint(t, k0, with(app, map[string]any{"roles": role}), nil), status: 401, code: bad, reason: "roles is not an array of strings"},

		// Lifetime at and past the 60 s default leeway. exp is the first
		// instant the token is invalid (RFC 7519 §4.1.4), so a token
		// expired exactly one leeway ago is refused and one a millisecond
		// younger passes; nbf and iat exactly one leeway ahead pass.
		{name: "exp 59.999 s ago (inside the leeway)", token: mint(t, k0, lifetime("exp", -59.999), nil), status: 200},
		{name: "exp exactly 60 s ago (at the leeway: expired)", token: mint(t, k0, lifetime("exp", -60), nil), status: 401, code: bad, reason: "token expired"},
		{name: "exp 61 s ago (past the leeway)", token: mint(t, k0, lifetime("exp", -61), nil), status: 401, code: bad, reason: "token expired"},
		{name: "nbf exactly 60 s ahead (at the leeway)", token: mint(t, k0, lifetime("nbf", 60), nil), status: 200},
		{name: "nbf 61 s ahead (past the leeway)", token: mint(t, k0, lifetime("nbf", 61), nil), status: 401, code: bad, reason: "token not yet valid"},
		{name: "iat exactly 60 s ahead (at the leeway)", token: mint(t, k0, lifetime("iat", 60), nil), status: 200},
		{name: "iat 61 s ahead (past the leeway)", token: mint(t, k0, lifetime("iat", 61), nil), status: 401, code: bad, reason: "token issued in the future"},
		{name: "leeway 5 min: exp 299 s ago", token: mint(t, k0, lifetime("exp", -299), nil), v: v5, status: 200},
		{name: "leeway 5 min: exp exactly 300 s ago", token: mint(t, k0, lifetime("exp", -300), nil), v: v5, status: 401, code: bad, reason: "token expired"},
		{name: "leeway 5 min: nbf exactly 300 s ahead", token: mint(t, k0, lifetime("nbf", 300), nil), v: v5, status: 200},
		{name: "leeway 5 min: nbf 301 s ahead", token: mint(t, k0, lifetime("nbf", 301), nil), v: v5, status: 401, code: bad, reason: "token not yet valid"},
		{name: "leeway 5 min: iat exactly 300 s ahead", token: mint(t, k0, lifetime("iat", 300), nil), v: v5, status: 200},
		{name: "leeway 5 min: iat 301 s ahead", token: mint(t, k0, lifetime("iat", 301), nil), v: v5, status: 401, code: bad, reason: "token issued in the future"},
		{name: "nbf as string", token: mint(t, k0, with(app, map[string]any{"nbf": "1"}), nil), status: 401, code: bad, reason: "nbf is not a number"},
		{name: "iat as string", token: mint(t, k0, with(app, map[string]any{"iat": "1"}), nil), status: 401, code: bad, reason: "iat is not a number"},
		{name: "exp out of range", token: mint(t, k0, with(app, map[string]any{"exp": 1e300}), nil), status: 401, code: bad, reason: "exp out of range"},
		{name: "claim names differ in case only (EXP)", token: mint(t, k0, with(app, map[string]any{"exp": nil, "EXP": now + 3600}), nil), status: 401, code: bad, reason: "exp missing"},

		// Claims object.
		{name: "duplicate aud claim", token: rawPayload(strings.TrimSuffix(string(appJSON), "}") + `,"aud":"https://graph.microsoft.com"}`), status: 401, code: bad, reason: "duplicate claim name"},
		{name: "claims an array", token: rawPayload(`["aud"]`), status: 401, code: bad, reason: "claims are not a JSON object"},
		{name: "claims null", token: rawPayload(`null`), status: 401, code: bad, reason: "claims are not a JSON object"},

		// Size: the cap comes before any decoding.
		{name: "signed token of exactly 16 KiB", token: atLimit, status: 200},
		{name: "signed token of 16 KiB + 1 byte", token: pastLimit, status: 401, code: bad, reason: "token too large"},
		{name: "16 KiB + 1 byte of garbage", token: strings.Repeat("a", MaxTokenSize+1), status: 401, code: bad, reason: "token too large"},
		{name: "Authorization header of 64 KiB (capped before it is split)", hdr: []string{"Authorization", "Bearer " + strings.Repeat("a ", 32<<10)}, status: 401, code: bad, reason: "token too large"},

		// Segment count.
		{name: "2 segments (1 dot)", token: h + "." + pl, status: 401, code: bad, reason: "malformed token"},
		{name: "4 segments (3 dots)", token: valid + "." + sig, status: 401, code: bad, reason: "malformed token"},
		{name: "5 segments (4 dots, JWE compact shape)", token: b64([]byte(`{"alg":"RSA-OAEP","enc":"A256GCM","kid":"`+k0.kid+`"}`)) + "." + sig + "." + b64([]byte("iv-iv-iv-iv")) + "." + pl + "." + b64([]byte("tag-tag-tag-tag")), status: 401, code: bad, reason: "malformed token"},
		{name: "1 segment", token: pl, status: 401, code: bad, reason: "malformed token"},
		{name: "3 empty segments", token: "..", status: 401, code: bad, reason: "malformed token"},
		{name: "5 empty segments", token: "....", status: 401, code: bad, reason: "malformed token"},

		// Non-canonical base64url, each signed over its exact text.
		{name: "padded header segment", token: signText(t, k0, base64.URLEncoding.EncodeToString(hdrJ)+"."+b64(payJ)), status: 401, code: bad, reason: "malformed token"},
		{name: "padded payload segment", token: signText(t, k0, b64(hdrJ)+"."+base64.URLEncoding.EncodeToString(payJ)), status: 401, code: bad, reason: "malformed token"},
		{name: "padded signature segment (one =)", token: h + "." + pl + "." + sig + "=", status: 401, code: bad, reason: "malformed token"},
		{name: "header segment with trailing bits set", token: signText(t, k0, hdrTrail+"."+b64(payJ)), status: 401, code: bad, reason: "malformed token"},
		{name: "payload segment with trailing bits set", token: signText(t, k0, b64(hdrJ)+"."+payTrail), status: 401, code: bad, reason: "malformed token"},
		{name: "payload in the standard alphabet (+ /)", token: signText(t, k0, h+"."+stdPay), status: 401, code: bad, reason: "malformed token"},
		{name: "signature in the standard alphabet (+ /)", token: h + "." + pl + "." + stdSig, status: 401, code: bad, reason: "malformed token"},
		{name: "control: the same tokens canonically encoded pass", token: signText(t, k0, b64(hdrJ)+"."+b64(payJ)), status: 200},

		// The Authorization header and other channels.
		{name: "no credentials", hdr: []string{}, status: 401},
		{name: "forged X-MS-CLIENT-PRINCIPAL headers without a token", hdr: []string{
			"X-MS-CLIENT-PRINCIPAL", b64([]byte(`{"auth_typ":"aad","claims":[{"typ":"roles","val":"access_as_application"}]}`)),
			"X-MS-CLIENT-PRINCIPAL-NAME", "admin@example.com", "X-MS-CLIENT-PRINCIPAL-ID", testCaller, "X-MS-CLIENT-PRINCIPAL-IDP", "aad"}, status: 401},
		{name: "forged X-MS-CLIENT-PRINCIPAL with a token lacking the role", hdr: []string{
			"Authorization", "Bearer " + mint(t, k0, with(app, map[string]any{"roles": nil}), nil),
			"X-MS-CLIENT-PRINCIPAL-NAME", "admin@example.com"}, status: 403, code: ins, reason: "app role missing", scope: role},
		{name: "valid token only in the query", hdr: []string{}, query: "city=London&access_token=" + url.QueryEscape(valid), status: 401},
		{name: "Bearer without a token", hdr: []string{"Authorization", "Bearer"}, status: 400, code: req, reason: "bearer token missing"},
		{name: "two tokens in one header", hdr: []string{"Authorization", "Bearer " + valid + " " + valid}, status: 400, code: req, reason: "more than one token"},
		{name: "two Authorization headers", hdr: []string{"Authorization", "Bearer " + valid, "Authorization", "Bearer " + valid}, status: 400, code: req, reason: "more than one Authorization header"},
		{name: "garbage token", token: "not-a-token", status: 401, code: bad, reason: "malformed token"},
	}

	realm := `Bearer realm="` + testAppURI + `"`
	ctx := context.Background()
	names := make(map[string]bool, len(tests))
	var sent []string // every token, for the leak check
	for _, tt := range tests {
		if names[tt.name] {
			t.Fatalf("duplicate case name %q", tt.name)
		}
		names[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			rv := tt.v
			if rv == nil {
				rv = v
			}
			target := "/api/WeatherHttp?city=London"
			if tt.query != "" {
				target = "/api/WeatherHttp?" + tt.query
			}
			// Twice: the second pass of an accepted token comes from the
			// verified-token cache and must give the very same reply.
			for _, pass := range []string{"first", "again"} {
				t.Run(pass, func(t *testing.T) {
					r := httptest.NewRequest(http.MethodGet, target, nil)
					var mine []string // the tokens this request carries
					if tt.hdr == nil {
						r.Header.Set("Authorization", "Bearer "+tt.token)
						mine = append(mine, tt.token)
					}
					for i := 0; i+1 < len(tt.hdr); i += 2 {
						r.Header.Add(tt.hdr[i], tt.hdr[i+1])
						if tt.hdr[i] == "Authorization" {
							mine = append(mine, tt.hdr[i+1])
						}
					}
					sent = append(sent, mine...)
					reached := false
					next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						reached = true
						if c, ok := ClaimsFrom(r.Context()); !ok || c.TenantID != testTenant {
							t.Errorf("admitted without claims: %+v", c)
						}
						if len(r.Header.Values("X-Ms-Client-Principal-Name")) != 0 {
							t.Error("principal header reached next")
						}
						w.WriteHeader(http.StatusOK)
					})
					rec := httptest.NewRecorder()
					rv.Middleware(next).ServeHTTP(rec, r)

					want := ""
					switch {
					case tt.status == 200 || tt.status == 503:
					case tt.code == "":
						want = realm
					case tt.code == ins:
						want = realm + `, error="` + tt.code + `", error_description="` + tt.reason + `", scope="` + tt.scope + `"`
					default:
						want = realm + `, error="` + tt.code + `", error_description="` + tt.reason + `"`
					}
					if rec.Code != tt.status {
						t.Errorf("status = %d, want %d (WWW-Authenticate %q)", rec.Code, tt.status, rec.Header().Get("WWW-Authenticate"))
					}
					if got := rec.Header().Values("WWW-Authenticate"); strings.Join(got, "\n") != want {
						t.Errorf("WWW-Authenticate = %q\n                     want %q", got, want)
					}
					if reached != (tt.status == 200) {
						t.Errorf("next reached = %v with status %d", reached, rec.Code)
					}
					if tt.status == 503 && rec.Header().Get("Retry-After") != "10" {
						t.Errorf("Retry-After = %q", rec.Header().Get("Retry-After"))
					}
					if tt.status != 200 {
						var prob struct {
							Status int    `json:"status"`
							Detail string `json:"detail"`
						}
						if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
							t.Errorf("Content-Type = %q", ct)
						}
						if err := json.Unmarshal(rec.Body.Bytes(), &prob); err != nil || prob.Status != tt.status {
							t.Errorf("problem body %q (%v)", rec.Body.String(), err)
						}
						if tt.reason != "" && prob.Detail != tt.reason {
							t.Errorf("problem detail = %q, want %q", prob.Detail, tt.reason)
						}
					}

					// Nothing of the token in any reply header or the body.
					var reply strings.Builder
					reply.Write(rec.Body.Bytes())
					for k, vs := range rec.Header() {
						reply.WriteString("\n" + k + ": " + strings.Join(vs, ", "))
					}
					for _, tok := range mine {
						if leaked := leak(tok, reply.String()); leaked != "" {
							t.Errorf("reply contains token material %q", leaked)
						}
					}
				})
			}

			// A refused token is never remembered; the control token is.
			if tt.token != "" && rv.cache != nil {
				_, cached := rv.cache.get(sha256.Sum256([]byte(tt.token)), clk.Now(), rv.cfg.leeway, rv.meta.Load(), rv.keys.Load())
				if refused := tt.status != 200 && tt.status != 403; refused && cached {
					t.Errorf("refused token (%d) is in the verified-token cache", tt.status)
				}
				if tt.name == "matrix: valid" && !cached {
					t.Error("valid token is not in the verified-token cache")
				}
			}

			// The same decision at the Verify/Authorize level.
			if tt.hdr != nil || tt.status == 400 {
				return
			}
			c, err := rv.Verify(ctx, tt.token)
			switch tt.status {
			case 503:
				if !errors.Is(err, ErrKeysUnavailable) {
					t.Errorf("Verify = %v, want ErrKeysUnavailable", err)
				}
			case 401:
				if !errors.Is(err, ErrInvalidToken) || c != nil || Reason(err) != tt.reason {
					t.Errorf("Verify = %v (reason %q), want ErrInvalidToken %q", err, Reason(err), tt.reason)
				}
			case 200, 403:
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				err = rv.Authorize(c)
				if tt.status == 200 && err != nil {
					t.Errorf("Authorize: %v", err)
				}
				if tt.status == 403 && (!errors.Is(err, ErrInsufficientScope) || Reason(err) != tt.reason) {
					t.Errorf("Authorize = %v, want ErrInsufficientScope %q", err, tt.reason)
				}
			}
		})
	}
	if len(tests) < 40 {
		t.Errorf("%d cases, want at least 40", len(tests))
	}

	t.Run("every row of the attack matrix has a case", func(t *testing.T) {
		f, err := os.Open("testdata/observed.golang-jwt-v5.3.1_keyfunc-v3.9.2.attack-matrix.txt")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rows := 0
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			i := strings.Index(line, " default=")
			if i < 0 || strings.HasPrefix(line, " ") {
				continue
			}
			rows++
			if row := strings.TrimSpace(line[:i]); !names["matrix: "+row] {
				t.Errorf("matrix row %q has no case named %q", row, "matrix: "+row)
			}
		}
		if err := sc.Err(); err != nil || rows < 20 {
			t.Errorf("read %d matrix rows (%v)", rows, err)
		}
	})

	t.Run("logs carry decisions, never token or key material", func(t *testing.T) {
		out := logs.String()
		for _, tok := range sent {
			if leaked := leak(tok, out); leaked != "" {
				t.Fatalf("log contains token material %q", leaked)
			}
		}
		if strings.Contains(out, b64(octSecret)) || strings.Contains(out, string(octSecret)) || strings.Contains(out, b64(k0.priv.N.Bytes())[:32]) {
			t.Error("log contains key material")
		}
		for _, want := range []string{`"outcome":"allow"`, `"outcome":"deny"`, `"reason":"alg not allowed"`, `"azp":"` + testCaller + `"`, `"oid":"`, `"tid":"` + testTenant + `"`, `"roles":["access_as_application"]`, `"scopes":["User.Read","access_as_user"]`} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %s", want)
			}
		}
	})
}

// leak returns the first piece of tok found in s: a whole segment of 8 or
// more characters, or its first or last 16 characters; "" when none is.
func leak(tok, s string) string {
	for seg := range strings.SplitSeq(strings.TrimPrefix(tok, "Bearer "), ".") {
		if len(seg) < 8 {
			continue
		}
		pieces := []string{seg}
		if len(seg) > 16 {
			pieces = append(pieces, seg[:16], seg[len(seg)-16:])
		}
		for _, p := range pieces {
			if strings.Contains(s, p) {
				return p
			}
		}
	}
	return ""
}
