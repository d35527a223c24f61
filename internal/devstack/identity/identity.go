package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/weatherfunc/handler/internal/devstack/standin"
)

// APIVersion is the only protocol version served.
const APIVersion = "2019-08-01"

// DefaultLifetime is how long an issued token is valid when Options.Lifetime is zero.
const DefaultLifetime = 24 * time.Hour

// Options configures a Server.
type Options struct {
	// Header is the expected X-IDENTITY-HEADER value (what IDENTITY_HEADER
	// holds). Requests without it, or with another value, get 400. An empty
	// Header refuses every request (fail closed).
	Header string
	// ClientIDs are the known client IDs of user-assigned identities
	// (compared case-insensitively). An "" entry allows the system-assigned
	// identity (a request without client_id); without it such requests get
	// 400 "Unable to load the proper Managed Identity.".
	ClientIDs []string
	// PrincipalID is the object (principal) ID of the user-assigned identity
	// (the first non-empty ClientIDs entry); a request may name that identity
	// with principal_id or object_id instead of client_id. Empty: those
	// parameters always get 400.
	PrincipalID string
	// SystemPrincipalID is the object (principal) ID of the system-assigned
	// identity, passed to Mint for its tokens. Empty means a random GUID.
	SystemPrincipalID string
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Lifetime of the tokens issued. Zero means DefaultLifetime.
	Lifetime time.Duration
	// Mint, when set, makes the access token (for example a JWT that the Entra
	// stand-in signs for resource api://AzureADTokenExchange, the
	// federated-credential flow; RandomToken for the others). Nil means a
	// random opaque token (RandomToken) for every resource.
	Mint func(TokenRequest) (string, error)
}

// TokenRequest describes a token about to be issued (passed to Options.Mint).
type TokenRequest struct {
	Resource    string    // the resource asked for, e.g. "https://vault.azure.net"
	ClientID    string    // the identity's client ID
	PrincipalID string    // the identity's object (principal) ID
	ExpiresOn   time.Time // when the token expires
}

// Server is the managed-identity endpoint stand-in. It is safe for concurrent use.
type Server struct {
	header      string
	clientIDs   []string
	system      bool
	systemID    string
	systemPID   string
	principalID string
	now         func() time.Time
	lifetime    time.Duration
	mint        func(TokenRequest) (string, error)

	mu       sync.Mutex
	issued   map[string]grant // by token
	requests int
}

type grant struct {
	resource string
	expires  time.Time
}

// New returns a Server for opts.
func New(opts Options) *Server {
	s := &Server{
		header:      opts.Header,
		principalID: opts.PrincipalID,
		now:         opts.Now,
		lifetime:    opts.Lifetime,
		mint:        opts.Mint,
		systemID:    standin.GUID(),
		systemPID:   opts.SystemPrincipalID,
		issued:      make(map[string]grant),
	}
	for _, id := range opts.ClientIDs {
		if id == "" {
			s.system = true
			continue
		}
		s.clientIDs = append(s.clientIDs, id)
	}
	if s.systemPID == "" {
		s.systemPID = standin.GUID()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.lifetime <= 0 {
		s.lifetime = DefaultLifetime
	}
	return s
}

// Handler serves GET /msi/token (and the documentation's /MSI/token).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/msi/token", s.token)
	mux.HandleFunc("/MSI/token", s.token)
	return s.count(mux)
}

func (s *Server) count(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests++
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// Requests returns how many requests the handler has received.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Valid reports whether this endpoint issued token for resource and the token
// has not expired (by Options.Now).
func (s *Server) Valid(token, resource string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.issued[token]
	return ok && g.resource == resource && s.now().Before(g.expires)
}

// The endpoint's error message for an identity it cannot find (recorded).
const msgUnknownIdentity = "Unable to load the proper Managed Identity."

// tokenResponse is the documented 200 body, fields in the documentation's order.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresOn   string `json:"expires_on"`
	Resource    string `json:"resource"`
	TokenType   string `json:"token_type"`
	ClientID    string `json:"client_id"`
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "Only GET is supported.")
		return
	}
	// The SSRF guard comes first: without the right header nothing else is looked at.
	got := r.Header.Values("X-IDENTITY-HEADER")
	if s.header == "" || len(got) != 1 || subtle.ConstantTimeCompare([]byte(got[0]), []byte(s.header)) != 1 {
		// NOTE: the real endpoint's text for this case is not recorded; the
		// status and body shape are those of its recorded 400.
		writeError(w, http.StatusBadRequest, "The X-IDENTITY-HEADER header is missing or invalid.")
		return
	}
	q := r.URL.Query()
	if v := q["api-version"]; len(v) != 1 || v[0] != APIVersion {
		writeError(w, http.StatusBadRequest, "The api-version must be "+APIVersion+".")
		return
	}
	resource := q.Get("resource")
	if len(q["resource"]) != 1 || !validResource(resource) {
		writeError(w, http.StatusBadRequest, "The resource parameter is missing or invalid.")
		return
	}
	clientID, principalID, ok := s.identity(q)
	if !ok {
		writeError(w, http.StatusBadRequest, msgUnknownIdentity)
		return
	}

	expires := s.now().Add(s.lifetime).Truncate(time.Second)
	tok, err := s.issue(TokenRequest{Resource: resource, ClientID: clientID, PrincipalID: principalID, ExpiresOn: expires})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "The token could not be issued.")
		return
	}
	writeJSON(w, http.StatusOK, "application/json", tokenResponse{
		AccessToken: tok,
		ExpiresOn:   strconv.FormatInt(expires.Unix(), 10),
		Resource:    resource,
		TokenType:   "Bearer",
		ClientID:    clientID,
	})
}

// validResource accepts a non-empty printable UTF-8 resource URI of sane length.
func validResource(r string) bool {
	if r == "" || len(r) > 2048 || !utf8.ValidString(r) {
		return false
	}
	for _, c := range r {
		if unicode.IsControl(c) {
			return false
		}
	}
	return true
}

// identity picks the identity a request names: client_id, principal_id or
// object_id (at most one of them; mi_res_id is not supported), or none for the
// system-assigned identity.
func (s *Server) identity(q map[string][]string) (clientID, principalID string, ok bool) {
	var named []string
	for _, k := range []string{"client_id", "principal_id", "object_id", "mi_res_id"} {
		if v, present := q[k]; present {
			if len(v) != 1 || v[0] == "" {
				return "", "", false
			}
			named = append(named, k)
		}
	}
	switch {
	case len(named) > 1:
		return "", "", false
	case len(named) == 0:
		return s.systemID, s.systemPID, s.system
	}
	switch k, v := named[0], q[named[0]][0]; k {
	case "client_id":
		for i, id := range s.clientIDs {
			if strings.EqualFold(id, v) {
				if i == 0 {
					return id, s.principalID, true
				}
				return id, stableGUID("principal", strings.ToLower(id)), true
			}
		}
	case "principal_id", "object_id":
		if s.principalID != "" && len(s.clientIDs) > 0 && strings.EqualFold(v, s.principalID) {
			return s.clientIDs[0], s.principalID, true
		}
	}
	return "", "", false
}

func (s *Server) issue(req TokenRequest) (string, error) {
	var tok string
	if s.mint != nil {
		t, err := s.mint(req)
		if err != nil {
			return "", err
		}
		tok = t
	} else {
		tok = RandomToken()
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, g := range s.issued { // bounded memory: forget expired tokens
		if !now.Before(g.expires) {
			delete(s.issued, t)
		}
	}
	s.issued[tok] = grant{resource: req.Resource, expires: req.ExpiresOn}
	return tok, nil
}

// RandomToken returns a random opaque access token (256 bits, base64url), the
// stand-in's default for every resource.
func RandomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// stableGUID derives a GUID-shaped ID from its parts (the principal ID of an
// additional user-assigned identity).
func stableGUID(parts ...string) string {
	b := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// errorResponse is the endpoint's recorded 400 body shape:
// {"statusCode":400,"message":"…","correlationId":"<guid>"}.
type errorResponse struct {
	StatusCode    int    `json:"statusCode"`
	Message       string `json:"message"`
	CorrelationID string `json:"correlationId"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	id := standin.GUID()
	w.Header().Set("X-CORRELATION-ID", id)
	writeJSON(w, status, "application/json; charset=utf-8", errorResponse{StatusCode: status, Message: msg, CorrelationID: id})
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	body, err := standin.CompactJSON(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Server", "Kestrel")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
