package entra

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// maxFormBytes caps the token request body. Real requests are a few hundred
// bytes (a client assertion a few KiB).
const maxFormBytes = 64 << 10

// maxEcho caps how much of a client-supplied value an error message repeats.
const maxEcho = 256

// tokenRequest is the parsed form of a token request.
type tokenRequest struct {
	grantType           string
	clientID            string
	clientSecret        string
	clientAssertion     string
	clientAssertionType string
	scope               string
}

// tokenParams are the form parameters read; each may appear at most once.
var tokenParams = []string{"grant_type", "client_id", "client_secret", "client_assertion", "client_assertion_type", "scope"}

// parseTokenForm parses an untrusted token request body. A body that is not
// application/x-www-form-urlencoded reads as empty (Entra then misses
// grant_type), as does one that does not parse.
//
// NOTE: stricter than Entra, which is lenient with repeated parameters:
// RFC 6749 §3.2 says parameters MUST NOT be included more than once, so a
// repeated known parameter is refused (AADSTS9000411).
func parseTokenForm(contentType string, body []byte) (tokenRequest, *aadError) {
	if len(body) > maxFormBytes {
		e := errMalformedBody()
		return tokenRequest{}, &e
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		body = nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		e := errMalformedBody()
		return tokenRequest{}, &e
	}
	for _, p := range tokenParams {
		if len(form[p]) > 1 {
			e := errDuplicateParam(p)
			return tokenRequest{}, &e
		}
	}
	return tokenRequest{
		grantType:           form.Get("grant_type"),
		clientID:            form.Get("client_id"),
		clientSecret:        form.Get("client_secret"),
		clientAssertion:     form.Get("client_assertion"),
		clientAssertionType: form.Get("client_assertion_type"),
		scope:               form.Get("scope"),
	}, nil
}

// tokenResponse is Entra's successful token response, field order as recorded.
type tokenResponse struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	ExtExpiresIn int64  `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
}

func (s *Server) handleToken() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.tokenHits.Add(1)
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			if !errors.As(err, &tooBig) {
				return // client went away
			}
			body = make([]byte, maxFormBytes+1)
		}
		req, aerr := parseTokenForm(r.Header.Get("Content-Type"), body)
		if aerr == nil {
			var resp tokenResponse
			resp, aerr = s.issue(req)
			if aerr == nil {
				s.log.Info("entra: token issued", "client_id", echo(req.clientID))
				s.recordIssued(resp.AccessToken)
				writeJSON(w, http.StatusOK, "no-store", resp)
				return
			}
		}
		s.log.Info("entra: token refused", "client_id", echo(req.clientID),
			"error", aerr.code, "aadsts", aerr.aadsts, "status", aerr.status)
		s.writeError(w, r, *aerr)
	})
}

// issue runs the checks of a client-credentials request in Entra's order:
// grant, client, client authentication, scope; then mints the token.
func (s *Server) issue(req tokenRequest) (tokenResponse, *aadError) {
	fail := func(e aadError) (tokenResponse, *aadError) { return tokenResponse{}, &e }
	switch req.grantType {
	case "":
		return fail(errMissingParam("grant_type"))
	case "client_credentials":
	default:
		return fail(errUnsupportedGrant(echo(req.grantType)))
	}
	if req.clientID == "" {
		return fail(errMissingParam("client_id"))
	}
	client, ok := s.clients[req.clientID]
	if !ok {
		return fail(errUnknownClient(echo(req.clientID), s.tenant))
	}
	if e := s.authenticate(req, req.clientID, client); e != nil {
		return fail(*e)
	}
	if e := s.checkScope(req.scope); e != nil {
		return fail(*e)
	}
	tok, err := s.Mint(MintOptions{ClientID: req.clientID, Roles: client.Roles})
	if err != nil {
		return fail(aadError{http.StatusInternalServerError, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again."})
	}
	secs := int64(s.lifetime.Seconds()) - 1
	return tokenResponse{TokenType: "Bearer", ExpiresIn: secs, ExtExpiresIn: secs, AccessToken: tok}, nil
}

// authenticate checks the client's credential: a client secret, or a client
// assertion (a JWT signed with a registered certificate's key, or a token of a
// trusted issuer matching a federated credential; see checkAssertion).
func (s *Server) authenticate(req tokenRequest, clientID string, c Client) *aadError {
	fail := func(e aadError) *aadError { return &e }
	switch {
	case req.clientSecret != "" && req.clientAssertion != "":
		return fail(errTwoCredentials())
	case req.clientSecret != "":
		if !secretEqual(req.clientSecret, c.Secret) {
			return fail(errWrongSecret())
		}
		return nil
	case req.clientAssertion != "":
		switch req.clientAssertionType {
		case ClientAssertionType:
		case "":
			return fail(errMissingParam("client_assertion_type"))
		default:
			return fail(errAssertionType(echo(req.clientAssertionType)))
		}
		return s.checkAssertion(req.clientAssertion, clientID, c)
	default:
		return fail(errNoCredential())
	}
}

// secretEqual compares two secrets in constant time; hashing first makes the
// time independent of the lengths too. An unset registered secret matches
// nothing.
func secretEqual(got, want string) bool {
	if want == "" {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// oidcScopes are the scopes MSAL adds to every request ("openid
// offline_access profile"); Entra ignores them in a client-credentials request.
var oidcScopes = map[string]bool{"openid": true, "offline_access": true, "profile": true, "email": true}

// checkScope accepts exactly one resource scope "<resource>/.default" where
// resource is the API's App ID URI or client ID.
func (s *Server) checkScope(scope string) *aadError {
	var resources []string
	for _, f := range strings.Fields(scope) {
		if !oidcScopes[f] {
			resources = append(resources, f)
		}
	}
	var e aadError
	switch {
	case strings.TrimSpace(scope) == "":
		e = errMissingParam("scope")
	case len(resources) != 1:
		e = errInvalidScope(echo(scope))
	case !strings.HasSuffix(resources[0], "/.default"):
		e = errScopeNotDefault(echo(resources[0]))
	default:
		res := strings.TrimSuffix(resources[0], "/.default")
		if res == s.api.AppIDURI || res == s.api.ClientID {
			return nil
		}
		e = errUnknownResource(echo(res), s.tenant)
	}
	return &e
}

// echo bounds a client-supplied value repeated in a message or log line.
func echo(v string) string {
	if len(v) > maxEcho {
		return v[:maxEcho] + "…"
	}
	return v
}
