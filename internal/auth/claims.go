package auth

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are the claims of a verified access token that the API uses. They
// are decoded from the token's JSON with exact (case-sensitive) claim names.
type Claims struct {
	Issuer          string    // iss
	Subject         string    // sub
	Audience        string    // aud (always one string)
	TenantID        string    // tid
	ObjectID        string    // oid: the user's or service principal's object ID
	AuthorizedParty string    // azp ("2.0") or appid ("1.0"): the calling client
	Version         string    // ver: "1.0" or "2.0"
	IDType          string    // idtyp: "app" or "user" when the optional claim is configured
	Roles           []string  // roles: app roles granted to the caller
	Scopes          []string  // scp, split at spaces: delegated permissions
	IssuedAt        time.Time // iat; zero when absent
	NotBefore       time.Time // nbf; zero when absent
	ExpiresAt       time.Time // exp (always present in a verified token)

	hasScope  bool // scp was present, even if empty
	hasIDType bool // idtyp was present, even if empty
}

// AppOnly reports whether the token was issued to an application acting as
// itself (client credentials) rather than on behalf of a user. A token is
// delegated when it carries scp or idtyp "user"; app-only otherwise.
func (c *Claims) AppOnly() bool {
	return !(c.hasScope || len(c.Scopes) > 0 || c.IDType == "user")
}

// numericDate is a JWT NumericDate that was present in the claims.
type numericDate struct {
	t   time.Time
	set bool
}

// maxNumericDate is 9999-12-31T23:59:59Z; larger values are refused so a
// float never overflows a conversion.
const maxNumericDate = 253402300799

// wireClaims is the claims object as sent. golang-jwt decodes it (through
// UnmarshalJSON) and validates it through the jwt.Claims methods.
type wireClaims struct {
	decoded                                  bool
	iss, sub, aud, tid, oid, azp, appid, ver string
	idtyp, scp                               string
	hasAud, hasScp, hasIdtyp                 bool
	roles                                    []string
	exp, nbf, iat                            numericDate
}

var _ jwt.Claims = (*wireClaims)(nil)

// UnmarshalJSON decodes the claims object member by member.
//
// NOTE: stricter than encoding/json and RFC 7519: claim names match exactly
// (encoding/json would take "EXP" for exp), a duplicate claim name is refused
// (RFC 7519 §4 allows taking the last), exp/nbf/iat must be JSON numbers
// (golang-jwt's NumericDate also takes a numeric string) and aud must be one
// string (RFC 7519 §4.1.3 allows an array).
func (w *wireClaims) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return invalid("claims are not a JSON object")
	}
	seen := make(map[string]struct{}, 24)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return invalid("malformed claims")
		}
		name, _ := t.(string)
		if _, dup := seen[name]; dup {
			return invalid("duplicate claim name")
		}
		seen[name] = struct{}{}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return invalid("malformed claims")
		}
		if err := w.set(name, raw); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return invalid("malformed claims")
	}
	w.decoded = true
	return nil
}

func (w *wireClaims) set(name string, raw json.RawMessage) error {
	var err error
	switch name {
	case "iss":
		w.iss, err = jsonString(name, raw)
	case "sub":
		w.sub, err = jsonString(name, raw)
	case "aud":
		if len(raw) == 0 || raw[0] != '"' {
			return invalid("aud is not a single string")
		}
		w.aud, err = jsonString(name, raw)
		w.hasAud = true
	case "tid":
		w.tid, err = jsonString(name, raw)
	case "oid":
		w.oid, err = jsonString(name, raw)
	case "azp":
		w.azp, err = jsonString(name, raw)
	case "appid":
		w.appid, err = jsonString(name, raw)
	case "ver":
		w.ver, err = jsonString(name, raw)
	case "idtyp":
		w.idtyp, err = jsonString(name, raw)
		w.hasIdtyp = true
	case "scp":
		w.scp, err = jsonString(name, raw)
		w.hasScp = true
	case "roles":
		if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &w.roles) != nil {
			return invalid("roles is not an array of strings")
		}
	case "exp":
		w.exp, err = jsonDate(name, raw)
	case "nbf":
		w.nbf, err = jsonDate(name, raw)
	case "iat":
		w.iat, err = jsonDate(name, raw)
	}
	return err
}

// jsonString decodes a claim that must be a JSON string. name is one of the
// fixed claim names above, so the reason carries no token content.
func jsonString(name string, raw json.RawMessage) (string, error) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", invalid(name + " is not a string")
	}
	return s, nil
}

// jsonDate decodes a NumericDate that must be a JSON number (RFC 7519 §2).
func jsonDate(name string, raw json.RawMessage) (numericDate, error) {
	if len(raw) == 0 || !(raw[0] == '-' || '0' <= raw[0] && raw[0] <= '9') {
		return numericDate{}, invalid(name + " is not a number")
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f < 0 || f > maxNumericDate {
		return numericDate{}, invalid(name + " out of range")
	}
	sec, frac := math.Modf(f)
	return numericDate{t: time.Unix(int64(sec), int64(frac*1e9)), set: true}, nil
}

func (w *wireClaims) claims() *Claims {
	c := &Claims{
		Issuer:          w.iss,
		Subject:         w.sub,
		Audience:        w.aud,
		TenantID:        w.tid,
		ObjectID:        w.oid,
		AuthorizedParty: w.azp,
		Version:         w.ver,
		IDType:          w.idtyp,
		Roles:           w.roles,
		Scopes:          strings.Fields(w.scp),
		IssuedAt:        w.iat.t,
		NotBefore:       w.nbf.t,
		ExpiresAt:       w.exp.t,
		hasScope:        w.hasScp,
		hasIDType:       w.hasIdtyp,
	}
	if c.AuthorizedParty == "" {
		c.AuthorizedParty = w.appid
	}
	return c
}

func (d numericDate) jwt() *jwt.NumericDate {
	if !d.set {
		return nil
	}
	return &jwt.NumericDate{Time: d.t}
}

// GetExpirationTime implements jwt.Claims.
func (w *wireClaims) GetExpirationTime() (*jwt.NumericDate, error) { return w.exp.jwt(), nil }

// GetIssuedAt implements jwt.Claims.
func (w *wireClaims) GetIssuedAt() (*jwt.NumericDate, error) { return w.iat.jwt(), nil }

// GetNotBefore implements jwt.Claims.
func (w *wireClaims) GetNotBefore() (*jwt.NumericDate, error) { return w.nbf.jwt(), nil }

// GetIssuer implements jwt.Claims.
func (w *wireClaims) GetIssuer() (string, error) { return w.iss, nil }

// GetSubject implements jwt.Claims.
func (w *wireClaims) GetSubject() (string, error) { return w.sub, nil }

// GetAudience implements jwt.Claims.
func (w *wireClaims) GetAudience() (jwt.ClaimStrings, error) {
	if !w.hasAud {
		return nil, nil
	}
	return jwt.ClaimStrings{w.aud}, nil
}
