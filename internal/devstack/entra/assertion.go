package entra

import (
	"crypto/rsa"
	"crypto/sha1" // x5t is by definition a SHA-1 thumbprint (RFC 7517 §4.8): a label, not a security check
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ClientAssertionType is the only client_assertion_type Entra accepts (RFC 7523).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// TokenExchangeAudience is the audience of a managed-identity token presented
// as a federated credential, and the default audience of a FederatedCredential.
const TokenExchangeAudience = "api://AzureADTokenExchange"

// assertionLeeway is the clock skew allowed on an assertion's nbf and exp.
// NOTE: Entra's own leeway is not documented; five minutes is the common one.
const assertionLeeway = 5 * time.Minute

// FederatedCredential is a federated identity credential of an application:
// a token from Issuer with subject Subject and one of Audiences is accepted as
// the application's client assertion (DESIGN §9).
type FederatedCredential struct {
	// Issuer is the trusted issuer. Empty means this stand-in's own v2 issuer
	// (Server.Issuer), which is what a managed identity's token carries; only
	// tokens this stand-in signs can be verified, so any other issuer never
	// validates (its keys cannot be fetched offline).
	Issuer string
	// Subject is the expected sub claim: a managed identity's principal
	// (object) ID. Compared exactly (Entra matches case-sensitively).
	Subject string
	// Audiences are the accepted aud values. Default [TokenExchangeAudience].
	Audiences []string
}

// checkAssertion authenticates a client by its client_assertion: a JWT it
// signed with a registered certificate's key (iss = sub = client ID), or a
// token from a trusted issuer matching one of its federated credentials.
func (s *Server) checkAssertion(assertion, clientID string, c Client) *aadError {
	fail := func(e aadError) *aadError { return &e }
	claims := jwt.MapClaims{}
	tok, _, err := jwt.NewParser().ParseUnverified(assertion, claims)
	if err != nil {
		return fail(errAssertionMalformed())
	}
	iss, _ := claims["iss"].(string)
	if iss == clientID {
		return s.checkCertificateAssertion(assertion, tok, claims, clientID, c)
	}
	return s.checkFederatedAssertion(assertion, claims, iss, c)
}

// checkCertificateAssertion verifies a certificate-signed client assertion
// the way Entra does for private_key_jwt: the header's x5t#S256 (or x5t)
// names a registered certificate, whose key must verify the RS256 or PS256
// signature; aud is the token endpoint (or the issuer), iss = sub = client
// ID, exp is required and the time range holds, and a jti is present.
//
// A certificate outside its validity period is not a registered key any
// more; an assertion valid for longer than maxAssertionLifetime is refused;
// each jti is accepted once (until its exp).
func (s *Server) checkCertificateAssertion(assertion string, tok *jwt.Token, claims jwt.MapClaims, clientID string, c Client) *aadError {
	fail := func(e aadError) *aadError { return &e }
	thumb, sha256Thumb, ok := headerThumbprint(tok.Header)
	if !ok {
		return fail(errAssertionNoThumbprint())
	}
	shown := strings.ToUpper(hex.EncodeToString(thumb))
	var cert *x509.Certificate
	now := s.now()
	for _, cand := range c.Certificates {
		if now.Before(cand.NotBefore) || now.After(cand.NotAfter) {
			continue // an expired (or not yet valid) key credential signs nothing
		}
		var sum []byte
		if sha256Thumb {
			h := sha256.Sum256(cand.Raw)
			sum = h[:]
		} else {
			h := sha1.Sum(cand.Raw)
			sum = h[:]
		}
		if subtle.ConstantTimeCompare(sum, thumb) == 1 {
			cert = cand
			break
		}
	}
	if cert == nil {
		return fail(errAssertionKeyNotFound(shown, clientID))
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fail(errAssertionBadSignature(shown, cert))
	}
	_, err := jwt.NewParser(jwt.WithoutClaimsValidation(), jwt.WithValidMethods([]string{"RS256", "PS256"})).
		Parse(assertion, func(*jwt.Token) (any, error) { return pub, nil })
	if err != nil {
		return fail(errAssertionBadSignature(shown, cert))
	}
	endpoint := s.url + "/" + s.tenant + "/oauth2/v2.0/token"
	if !audienceHas(claims, endpoint) && !audienceHas(claims, s.Issuer()) {
		return fail(errAssertionAudience())
	}
	if sub, _ := claims["sub"].(string); sub != clientID {
		return fail(errAssertionSubject())
	}
	if e := s.checkAssertionTime(claims); e != nil {
		return e
	}
	exp, _ := claims.GetExpirationTime() // present: checkAssertionTime required it
	if exp.Sub(now) > maxAssertionLifetime {
		return fail(errAssertionTooLong())
	}
	jti, _ := claims["jti"].(string)
	if jti == "" {
		return fail(errAssertionNoJTI())
	}
	if !s.firstUse(jti, exp.Time) {
		return fail(errAssertionReplayed())
	}
	return nil
}

// maxAssertionLifetime bounds a certificate assertion's remaining lifetime
// (MSAL signs them for 10 minutes). NOTE: Entra's own limit is not
// documented; one hour is this stand-in's choice.
const maxAssertionLifetime = time.Hour

// firstUse records jti until exp and reports whether it was new.
func (s *Server) firstUse(jti string, exp time.Time) bool {
	s.jtiMu.Lock()
	defer s.jtiMu.Unlock()
	now := s.now()
	for k, until := range s.jtis {
		if now.After(until) {
			delete(s.jtis, k)
		}
	}
	if _, seen := s.jtis[jti]; seen {
		return false
	}
	if s.jtis == nil {
		s.jtis = make(map[string]time.Time)
	}
	s.jtis[jti] = exp
	return true
}

// checkFederatedAssertion verifies a federated credential: the assertion's
// iss, sub and aud must match one of the client's federated credentials
// (AADSTS70021 otherwise), its signature must verify with the issuer's key
// (this stand-in's own), and its time range must hold.
func (s *Server) checkFederatedAssertion(assertion string, claims jwt.MapClaims, iss string, c Client) *aadError {
	fail := func(e aadError) *aadError { return &e }
	sub, _ := claims["sub"].(string)
	matched := false
	for _, fc := range c.FederatedCredentials {
		want := fc.Issuer
		if want == "" {
			want = s.Issuer()
		}
		auds := fc.Audiences
		if len(auds) == 0 {
			auds = []string{TokenExchangeAudience}
		}
		if iss != want || sub == "" || sub != fc.Subject {
			continue
		}
		for _, a := range auds {
			if audienceHas(claims, a) {
				matched = true
			}
		}
	}
	if !matched {
		return fail(errNoFederatedMatch(echo(iss), echo(sub), echo(audienceText(claims))))
	}
	if iss != s.Issuer() {
		// A federated credential for a foreign issuer: its keys are out of reach.
		return fail(errFederatedSignature(echo(iss)))
	}
	_, err := jwt.NewParser(jwt.WithoutClaimsValidation(), jwt.WithValidMethods([]string{"RS256"})).
		Parse(assertion, func(t *jwt.Token) (any, error) {
			if kid, _ := t.Header["kid"].(string); kid != s.kid {
				return nil, errors.New("unknown kid")
			}
			return &s.key.PublicKey, nil
		})
	if err != nil {
		return fail(errFederatedSignature(echo(iss)))
	}
	return s.checkAssertionTime(claims)
}

// checkAssertionTime requires exp and checks nbf and exp against the clock,
// with assertionLeeway either side.
func (s *Server) checkAssertionTime(claims jwt.MapClaims) *aadError {
	now := s.now()
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		e := errAssertionMalformed()
		return &e
	}
	nbf, err := claims.GetNotBefore()
	if err != nil {
		e := errAssertionMalformed()
		return &e
	}
	from := time.Unix(0, 0)
	if nbf != nil {
		from = nbf.Time
	}
	if now.Add(assertionLeeway).Before(from) || !now.Add(-assertionLeeway).Before(exp.Time) {
		e := errAssertionTime(now, from, exp.Time)
		return &e
	}
	return nil
}

// headerThumbprint reads x5t#S256 (preferred, what MSAL sends) or x5t.
// MSAL encodes it with standard base64 where RFC 7515 says base64url, so
// both are accepted.
func headerThumbprint(h map[string]any) (thumb []byte, isSHA256 bool, ok bool) {
	if v, _ := h["x5t#S256"].(string); v != "" {
		if b, ok := decodeB64(v); ok && len(b) == sha256.Size {
			return b, true, true
		}
		return nil, false, false
	}
	if v, _ := h["x5t"].(string); v != "" {
		if b, ok := decodeB64(v); ok && len(b) == sha1.Size {
			return b, false, true
		}
	}
	return nil, false, false
}

func decodeB64(v string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.Strict().DecodeString(v); err == nil {
			return b, true
		}
	}
	return nil, false
}

// audienceHas reports whether aud (a string or an array of strings) holds want.
func audienceHas(claims jwt.MapClaims, want string) bool {
	auds, err := claims.GetAudience()
	if err != nil {
		return false
	}
	for _, a := range auds {
		if a == want {
			return true
		}
	}
	return false
}

func audienceText(claims jwt.MapClaims) string {
	auds, _ := claims.GetAudience()
	return strings.Join(auds, ",")
}

// CertificateThumbprint returns a certificate's SHA-1 thumbprint in the
// upper-case hex form Entra's messages and the portal show.
func CertificateThumbprint(cert *x509.Certificate) string {
	sum := sha1.Sum(cert.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// MintFederated signs the token a managed identity gets for resource
// api://AzureADTokenExchange, as Entra would issue it: v2 issuer
// (Server.Issuer), sub and oid = the identity's principal (object) ID, aud =
// TokenExchangeAudience, azp = the identity's client ID, expiring at expires
// (the managed-identity endpoint's expires_on). The identity stand-in calls it
// through identity.Options.Mint; the token endpoint accepts it as a client
// assertion of an application that has a matching FederatedCredential. The
// token is remembered for IssuedTokens.
func (s *Server) MintFederated(principalID, clientID string, expires time.Time) (string, error) {
	if principalID == "" || clientID == "" {
		return "", errors.New("entra: MintFederated needs a principal ID and a client ID")
	}
	life := expires.Sub(s.now())
	if life <= 0 {
		return "", errors.New("entra: MintFederated: expires is not in the future")
	}
	tok, err := s.Mint(MintOptions{
		ClientID: clientID,
		Audience: TokenExchangeAudience,
		Lifetime: life,
		Extra: map[string]any{
			"sub":    principalID,
			"oid":    principalID,
			"azpacr": "2", // a managed identity authenticates with a certificate
			"exp":    expires.Unix(),
		},
	})
	if err != nil {
		return "", err
	}
	s.recordIssued(tok)
	return tok, nil
}
