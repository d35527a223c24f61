package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/weatherfunc/handler/internal/logctx"
	"github.com/weatherfunc/handler/internal/problem"
)

// retryAfter is the Retry-After of a 503 while keys are not loaded: the
// longest interval between two load attempts.
var retryAfter = strconv.Itoa(int(retryMax.Seconds()))

// Authorize decides whether verified claims (from Verify) admit the caller.
// An app-only token must hold RequiredRole in roles (and, when it carries
// idtyp, idtyp must be "app"); a delegated token must hold RequiredScope in
// scp — an app role never admits a delegated token.
// A token with neither, or without azp/appid (an ID token), is refused.
// Refusals wrap ErrInsufficientScope.
func (v *Verifier) Authorize(c *Claims) error {
	_, err := v.authorize(c)
	return err
}

// authorize also returns the permission the token needed, for the
// scope="…" of the challenge.
func (v *Verifier) authorize(c *Claims) (needed string, err error) {
	if c == nil {
		return v.cfg.requiredRole, invalid("no claims")
	}
	if c.AppOnly() {
		needed = v.cfg.requiredRole
	} else {
		needed = v.cfg.requiredScope
	}
	// NOTE: stricter than Microsoft.Identity.Web: every Entra access token
	// names its client (azp in "2.0", appid in "1.0"); ID tokens do not, and
	// an ID token with an app role must not pass as an app-only token.
	if c.AuthorizedParty == "" {
		return needed, fail(ErrInsufficientScope, "not an access token (no azp or appid)")
	}
	if c.AppOnly() {
		// NOTE: stricter than DESIGN's app-only definition alone: when the
		// optional idtyp claim is present it must say "app" for the role
		// to count (an unknown token type is never promoted to a daemon).
		if c.hasIDType && c.IDType != "app" {
			return needed, fail(ErrInsufficientScope, "idtyp is not app")
		}
		if !slices.Contains(c.Roles, needed) {
			return needed, fail(ErrInsufficientScope, "app role missing")
		}
		return needed, nil
	}
	if !slices.Contains(c.Scopes, needed) {
		return needed, fail(ErrInsufficientScope, "delegated scope missing")
	}
	return needed, nil
}

// maxAuthorization caps the Authorization header value: a MaxTokenSize
// token plus the scheme and some whitespace.
const maxAuthorization = MaxTokenSize + 64

// BearerToken returns the access token of r's Authorization header
// (RFC 6750 §2.1). The scheme matches case-insensitively. It returns
// ErrNoToken when there is no Authorization header or it is not a Bearer
// credential, and an error wrapping ErrInvalidRequest for "Bearer" without a
// token, more than one token, or more than one Authorization header. A
// header value longer than MaxTokenSize plus 64 bytes is refused with an
// error wrapping ErrInvalidToken ("token too large") before it is looked
// at. A token in the query or body is never looked at.
func BearerToken(r *http.Request) (string, error) {
	vals := r.Header.Values("Authorization")
	switch {
	case len(vals) == 0:
		return "", ErrNoToken
	case len(vals) > 1:
		return "", fail(ErrInvalidRequest, "more than one Authorization header")
	case len(vals[0]) > maxAuthorization:
		// NOTE: stricter than RFC 6750, which sets no size limit: the cap
		// applies before the header is split or the token decoded.
		return "", invalid("token too large")
	}
	v := strings.Trim(vals[0], " \t")
	if v == "" {
		return "", fail(ErrInvalidRequest, "empty Authorization header")
	}
	scheme, rest := v, ""
	if i := strings.IndexAny(v, " \t"); i >= 0 {
		scheme, rest = v[:i], v[i+1:]
	}
	if !strings.EqualFold(scheme, "Bearer") {
		return "", ErrNoToken
	}
	tok := strings.Trim(rest, " \t")
	switch {
	case tok == "":
		return "", fail(ErrInvalidRequest, "bearer token missing")
	case strings.ContainsAny(tok, " \t,"):
		return "", fail(ErrInvalidRequest, "more than one token")
	}
	return tok, nil
}

type claimsKey struct{}

// ClaimsFrom returns the claims Middleware stored in the request context of
// an admitted request.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}

// Middleware admits a request to next only with a valid bearer token that
// holds the required role or scope, and stores its claims for ClaimsFrom.
// Otherwise it answers per RFC 6750 §3 with a problem+json body:
//
//   - no bearer token → 401, WWW-Authenticate: Bearer realm="<AppIDURI>"
//   - malformed Authorization → 400, error="invalid_request"
//   - invalid or expired token → 401, error="invalid_token" and a short
//     error_description naming the failed check
//   - missing role or scope → 403, error="insufficient_scope", scope="…"
//   - keys not loaded yet → 503 with Retry-After, never an accept
//
// It logs one line per decision (outcome, reason, and for verified tokens
// azp/appid, oid, tid, roles, scopes) through logctx.From(r.Context(),
// Options.Logger); never the token. X-MS-CLIENT-PRINCIPAL* headers are
// ignored and removed before next sees the request.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		log := logctx.From(ctx, v.cfg.logger)
		raw, err := BearerToken(r)
		if err != nil {
			v.refuse(w, r, log, err, nil, "")
			return
		}
		claims, err := v.Verify(ctx, raw)
		if err != nil {
			v.refuse(w, r, log, err, nil, "")
			return
		}
		if needed, err := v.authorize(claims); err != nil {
			v.refuse(w, r, log, err, claims, needed)
			return
		}
		log.LogAttrs(ctx, slog.LevelInfo, "auth: request admitted",
			append([]slog.Attr{slog.String("outcome", "allow")}, claimAttrs(claims)...)...)
		next.ServeHTTP(w, admitted(r, claims))
	})
}

// principalPrefix starts the App Service authentication headers
// (X-MS-CLIENT-PRINCIPAL, -ID, -NAME, -IDP), which any client can send.
const principalPrefix = "X-Ms-Client-Principal"

// admitted returns r carrying claims, without any App Service
// authentication header (a downstream handler cannot be tempted by one) and
// without the Authorization header (the token has done its job here; nothing
// downstream can log or forward it by accident).
func admitted(r *http.Request, c *Claims) *http.Request {
	r2 := r.WithContext(context.WithValue(r.Context(), claimsKey{}, c))
	h := r.Header.Clone()
	h.Del("Authorization")
	for name := range h {
		if len(name) >= len(principalPrefix) && strings.EqualFold(name[:len(principalPrefix)], principalPrefix) {
			delete(h, name)
		}
	}
	r2.Header = h
	return r2
}

func claimAttrs(c *Claims) []slog.Attr {
	return []slog.Attr{
		slog.String("azp", c.AuthorizedParty),
		slog.String("oid", c.ObjectID),
		slog.String("tid", c.TenantID),
		slog.String("ver", c.Version),
		slog.Bool("app_only", c.AppOnly()),
		slog.Any("roles", c.Roles),
		slog.Any("scopes", c.Scopes),
	}
}

// refuse writes the one reply for every refusal and logs the decision.
func (v *Verifier) refuse(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error, c *Claims, needed string) {
	reason := Reason(err)
	realm := `Bearer realm="` + v.cfg.appIDURI + `"`
	d := problem.Details{Detail: reason}
	level := slog.LevelInfo
	h := w.Header()
	switch {
	case errors.Is(err, ErrNoToken):
		d.Status, d.Type, d.Title = http.StatusUnauthorized, "missing-token", "Authentication required"
		d.Detail = "send an access token in the Authorization header with the Bearer scheme"
		h.Set("WWW-Authenticate", realm)
	case errors.Is(err, ErrInvalidRequest):
		d.Status, d.Type, d.Title = http.StatusBadRequest, "invalid-request", "Malformed Authorization header"
		h.Set("WWW-Authenticate", realm+`, error="invalid_request", error_description="`+reason+`"`)
	case errors.Is(err, ErrKeysUnavailable):
		d.Status, d.Type, d.Title = http.StatusServiceUnavailable, "auth-unavailable", "Token validation temporarily unavailable"
		h.Set("Retry-After", retryAfter)
		level = slog.LevelWarn
	case errors.Is(err, ErrInsufficientScope):
		d.Status, d.Type, d.Title = http.StatusForbidden, "insufficient-scope", "Permission missing"
		h.Set("WWW-Authenticate", realm+`, error="insufficient_scope", error_description="`+reason+`", scope="`+needed+`"`)
	default: // ErrInvalidToken, and anything unexpected: fail closed.
		if reason == "" {
			reason = "token rejected"
			d.Detail = reason
		}
		d.Status, d.Type, d.Title = http.StatusUnauthorized, "invalid-token", "Invalid access token"
		h.Set("WWW-Authenticate", realm+`, error="invalid_token", error_description="`+reason+`"`)
	}
	attrs := []slog.Attr{
		slog.String("outcome", "deny"),
		slog.Int("status", d.Status),
		slog.String("reason", d.Detail),
	}
	if c != nil { // only verified claims are logged
		attrs = append(attrs, claimAttrs(c)...)
	}
	log.LogAttrs(r.Context(), level, "auth: request refused", attrs...)
	problem.Write(w, d)
}
