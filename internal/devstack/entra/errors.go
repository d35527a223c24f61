package entra

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
)

// aadError is one Entra error answer before it is rendered.
type aadError struct {
	status int    // HTTP status
	code   string // OAuth error code ("invalid_client")
	aadsts int    // AADSTS number
	msg    string // message after "AADSTSnnnn: "
}

// errorBody is Entra's error JSON, with the recorded field order.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri"`
}

// guidRE matches a GUID as clients send it in client-request-id.
var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// body renders e the way Entra does. Entra reuses the client's
// client-request-id (MSAL sends one) as the correlation ID; anything that is
// not a GUID is replaced, so the body never echoes arbitrary input.
func (s *Server) body(r *http.Request, e aadError) errorBody {
	ts := s.now().UTC().Format("2006-01-02 15:04:05Z")
	trace := newGUID()
	corr := r.Header.Get("Client-Request-Id")
	if !guidRE.MatchString(corr) {
		corr = newGUID()
	}
	return errorBody{
		Error: e.code,
		ErrorDescription: fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
			e.aadsts, e.msg, trace, corr, ts),
		ErrorCodes:    []int{e.aadsts},
		Timestamp:     ts,
		TraceID:       trace,
		CorrelationID: corr,
		ErrorURI:      s.url + "/error?code=" + strconv.Itoa(e.aadsts),
	}
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e aadError) {
	writeJSON(w, e.status, "no-store", s.body(r, e))
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// The errors the stand-in answers. Client-supplied values that appear in a
// message (client ID, scope, resource) are quoted like Entra quotes them; they
// come from the request and are never secrets. The request's secret never
// appears anywhere.

func errMissingParam(name string) aadError {
	return aadError{http.StatusBadRequest, "invalid_request", 900144,
		fmt.Sprintf("The request body must contain the following parameter: '%s'.", name)}
}

func errDuplicateParam(name string) aadError {
	return aadError{http.StatusBadRequest, "invalid_request", 9000411,
		fmt.Sprintf("The request is not properly formatted. The parameter '%s' is duplicated.", name)}
}

func errMalformedBody() aadError {
	return aadError{http.StatusBadRequest, "invalid_request", 900144,
		"The request body must contain the following parameter: 'grant_type'."}
}

func errUnsupportedGrant(grant string) aadError {
	return aadError{http.StatusBadRequest, "unsupported_grant_type", 70003,
		fmt.Sprintf("The app requested an unsupported grant type '%s'.", grant)}
}

func errUnknownClient(clientID, tenant string) aadError {
	return aadError{http.StatusBadRequest, "unauthorized_client", 700016,
		fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, tenant)}
}

func errNoCredential() aadError {
	return aadError{http.StatusUnauthorized, "invalid_client", 7000218,
		"The request body must contain the following parameter: 'client_assertion' or 'client_secret'."}
}

func errWrongSecret() aadError {
	return aadError{http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret is provided."}
}

func errScopeNotDefault(scope string) aadError {
	return aadError{http.StatusBadRequest, "invalid_scope", 1002012,
		fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope)}
}

func errInvalidScope(scope string) aadError {
	return aadError{http.StatusBadRequest, "invalid_scope", 70011,
		fmt.Sprintf("The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", scope)}
}

func errUnknownResource(resource, tenant string) aadError {
	return aadError{http.StatusBadRequest, "invalid_resource", 500011,
		fmt.Sprintf("The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", resource, tenant)}
}

func errUnknownTenant(tenant string) aadError {
	return aadError{http.StatusBadRequest, "invalid_tenant", 90002,
		fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant)}
}

func errInvalidInstance() aadError {
	return aadError{http.StatusBadRequest, "invalid_instance", 50049, "Unknown or invalid instance."}
}
