package keyvault

import (
	"crypto/rand"
	_ "embed" // the recorded challenge body
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weatherfunc/handler/internal/devstack/standin"
)

// Resource is the resource every Key Vault challenge names (public cloud).
const Resource = "https://vault.azure.net"

// DefaultTenantID is the tenant named in the challenge when Options.TenantID is
// empty (the zeroed tenant of the recordings).
const DefaultTenantID = "00000000-0000-0000-0000-000000000000"

// serviceVersion is the x-ms-keyvault-service-version of the api-7.4 captures.
const serviceVersion = "1.9.3019.1"

// challengeBody is the 401 body Key Vault sends to a request without a token,
// byte for byte as recorded (derived_go-TestCRUD_401_challenge.body.json).
//
//go:embed recordings/derived_go-TestCRUD_401_challenge.body.json
var challengeBody []byte

// Options configures a Server.
type Options struct {
	// TenantID is the tenant named by the challenge's authorization URI
	// (https://login.windows.net/<tenant>). Empty means DefaultTenantID.
	TenantID string
	// Secrets maps a secret name (case-insensitive, as in Key Vault) to the
	// value of its latest and only version.
	Secrets map[string]string
	// ContentTypes maps a secret name to its content type (the bundle's
	// contentType), e.g. "application/x-pem-file" or "application/x-pkcs12"
	// for the secret behind a Key Vault certificate. Absent: no contentType.
	ContentTypes map[string]string
	// Authorize reports whether a bearer token may read secrets, e.g.
	// func(tok string) bool { return mi.Valid(tok, keyvault.Resource) }.
	// Nil refuses every token (fail closed).
	Authorize func(bearer string) bool
	// Now is the clock (the created/updated attributes). Nil means time.Now.
	Now func() time.Time
}

// Server is the Key Vault secrets stand-in. It is safe for concurrent use.
type Server struct {
	tenant    string
	authorize func(string) bool
	secrets   map[string]secret // by lower-case name

	mu       sync.Mutex // guards secrets after New, vaultURL and reads
	vaultURL string
	reads    map[string]int // by lower-case name
}

type secret struct {
	name        string // as given
	value       string
	contentType string
	version     string // 32 hex digits, like Key Vault's
	created     int64
}

// New returns a Server for opts. Each secret gets a random 32-hex version.
func New(opts Options) *Server {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{
		tenant:    opts.TenantID,
		authorize: opts.Authorize,
		secrets:   make(map[string]secret, len(opts.Secrets)),
		reads:     make(map[string]int),
	}
	if s.tenant == "" {
		s.tenant = DefaultTenantID
	}
	created := now().Unix()
	types := make(map[string]string, len(opts.ContentTypes))
	for name, ct := range opts.ContentTypes {
		types[strings.ToLower(name)] = ct
	}
	for name, v := range opts.Secrets {
		s.secrets[strings.ToLower(name)] = secret{name: name, value: v, contentType: types[strings.ToLower(name)], version: newVersion(), created: created}
	}
	return s
}

// SetVaultURL sets the base URL used in the `id` of the bodies
// ("<vaultURL>/secrets/<name>/<version>"), typically the URL tlsca.Listen
// returned. Until it is called, the id is built from the request's Host.
func (s *Server) SetVaultURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vaultURL = strings.TrimSuffix(u, "/")
}

// Reads returns how many times the secret name (case-insensitive) was read
// successfully (200).
func (s *Server) Reads(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads[strings.ToLower(name)]
}

// Version returns the version of secret name, or "" when there is none.
func (s *Server) Version(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.secrets[strings.ToLower(name)].version
}

// SetSecret stores value as a new version of secret name (created when
// missing), as `az keyvault secret set` does: a rotation. NOTE: unlike Key
// Vault the stand-in keeps only the latest version, so the old version's URI
// answers 404 afterwards.
func (s *Server) SetSecret(name, value string) {
	s.mu.Lock()
	ct := s.secrets[strings.ToLower(name)].contentType
	s.mu.Unlock()
	s.SetSecretWithContentType(name, value, ct)
}

// SetSecretWithContentType is SetSecret with the new version's content type
// ("" for none).
func (s *Server) SetSecretWithContentType(name, value, contentType string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[strings.ToLower(name)] = secret{name: name, value: value, contentType: contentType, version: newVersion(), created: time.Now().Unix()}
}

// Handler serves GET /secrets/{name}[/{version}]?api-version=….
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/secrets/{name}", s.get)
	mux.HandleFunc("/secrets/{name}/{version...}", s.get)
	return mux
}

// apiVersion matches the versions Key Vault knows: 7.0-7.6 (with -preview) and
// the dated ones azsecrets uses since 2025 (2025-07-01, 2026-04-01, …).
var apiVersion = regexp.MustCompile(`^(7\.[0-6]|20[2-9][0-9]-[01][0-9]-[0-3][0-9])(-preview(\.[0-9]+)?)?$`)

// secretName is Key Vault's rule for secret names.
var secretName = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		s.writeError(w, http.StatusMethodNotAllowed, "BadRequest", "This stand-in serves GET only.")
		return
	}
	// NOTE: the texts of the 400 answers below are not recorded; the codes
	// and the body shape are Key Vault's.
	if v := r.URL.Query()["api-version"]; len(v) != 1 || v[0] == "" {
		s.writeError(w, http.StatusBadRequest, "BadParameter", "The api-version query parameter is required.")
		return
	} else if !apiVersion.MatchString(v[0]) {
		s.writeError(w, http.StatusBadRequest, "BadParameter", fmt.Sprintf("The specified version (%s) is not recognized.", v[0]))
		return
	}
	tok, present := bearer(r)
	if !present {
		s.challenge(w, challengeBody)
		return
	}
	if s.authorize == nil || !s.authorize(tok) {
		// NOTE: not recorded; Key Vault's own texts name the failed check
		// (AKV10022 audience, AKV10032 issuer, …), which an opaque token lacks.
		body, _ := standin.CompactJSON(errorBody("Unauthorized", "AKV10000: The bearer token is not valid for this vault."))
		s.challenge(w, body)
		return
	}

	name, version := r.PathValue("name"), r.PathValue("version")
	version = strings.TrimSuffix(version, "/") // azsecrets asks for /secrets/{name}/ for the latest
	if !secretName.MatchString(name) || strings.Contains(version, "/") {
		s.writeError(w, http.StatusBadRequest, "BadParameter", "The request URI contains an invalid name or version.")
		return
	}
	s.mu.Lock()
	sec, ok := s.secrets[strings.ToLower(name)]
	s.mu.Unlock()
	if !ok || (version != "" && !strings.EqualFold(version, sec.version)) {
		id := name
		if version != "" {
			id += "/" + version
		}
		s.writeError(w, http.StatusNotFound, "SecretNotFound", notFoundMessage(id))
		return
	}

	s.mu.Lock()
	base := s.vaultURL
	s.reads[strings.ToLower(name)]++
	s.mu.Unlock()
	if base == "" {
		base = "https://" + r.Host
	}
	s.writeJSON(w, http.StatusOK, secretBundle{
		Value:       sec.value,
		ContentType: sec.contentType,
		ID:          base + "/secrets/" + sec.name + "/" + sec.version,
		Attributes: attributes{
			Enabled:         true,
			Created:         sec.created,
			Updated:         sec.created,
			RecoveryLevel:   "Recoverable+Purgeable",
			RecoverableDays: 90,
		},
	})
}

// bearer returns the token of a single "Bearer <token>" Authorization header.
// present is false when there is no usable header, which gets the challenge.
func bearer(r *http.Request) (tok string, present bool) {
	h := r.Header.Values("Authorization")
	if len(h) != 1 {
		return "", len(h) > 1
	}
	scheme, t, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(t) == "" {
		return "", false
	}
	return strings.TrimSpace(t), true
}

// notFoundMessage is Key Vault's SecretNotFound text for id ("name" or "name/version").
func notFoundMessage(id string) string {
	return "A secret with (name/id) " + id + " was not found in this key vault. " +
		"If you recently deleted this secret you may be able to recover it using the correct recovery command. " +
		"For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
}

// secretBundle is the 200 body (fields in Key Vault's order: contentType
// between value and id, as in derived_go-TestCRUD_GET_secret_200.body.json).
type secretBundle struct {
	Value       string     `json:"value"`
	ContentType string     `json:"contentType,omitempty"`
	ID          string     `json:"id"`
	Attributes  attributes `json:"attributes"`
}

type attributes struct {
	Enabled         bool   `json:"enabled"`
	Created         int64  `json:"created"`
	Updated         int64  `json:"updated"`
	RecoveryLevel   string `json:"recoveryLevel"`
	RecoverableDays int    `json:"recoverableDays"`
}

type kvError struct {
	Error kvErrorDetail `json:"error"`
}

type kvErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func errorBody(code, msg string) kvError {
	return kvError{Error: kvErrorDetail{Code: code, Message: msg}}
}

// challenge answers 401 with Key Vault's bearer challenge.
func (s *Server) challenge(w http.ResponseWriter, body []byte) {
	w.Header().Set("WWW-Authenticate",
		`Bearer authorization="https://login.windows.net/`+s.tenant+`", resource="`+Resource+`"`)
	s.write(w, http.StatusUnauthorized, body)
}

func (s *Server) writeError(w http.ResponseWriter, status int, code, msg string) {
	s.writeJSON(w, status, errorBody(code, msg))
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := standin.CompactJSON(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	s.write(w, status, body)
}

// write sends body with the response headers of the api-7.4 captures.
func (s *Server) write(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Expires", "-1")
	h.Set("x-ms-keyvault-region", "local")
	h.Set("x-ms-request-id", standin.GUID())
	h.Set("x-ms-keyvault-service-version", serviceVersion)
	h.Set("x-ms-keyvault-network-info", "conn_type=Ipv4;addr=127.0.0.1;act_addr_fam=InterNetwork;")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Strict-Transport-Security", "max-age=31536000;includeSubDomains")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// newVersion returns a random 32-hex-digit secret version, like Key Vault's.
func newVersion() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
