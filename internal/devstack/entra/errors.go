package entra

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/weatherfunc/handler/internal/devstack/standin"
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
	trace := standin.GUID()
	corr := r.Header.Get("Client-Request-Id")
	if !guidRE.MatchString(corr) {
		corr = standin.GUID()
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

// The client-assertion errors. AADSTS700027 (key not found), AADSTS70021 and
// AADSTS700024 follow texts quoted in public issue threads (see
// testdata/aadsts_error_messages_attested.txt); the others are marked.

// assertionTimeLayout is how Entra prints times in AADSTS700024.
const assertionTimeLayout = "2006-01-02T15:04:05.0000000Z"

func errAssertionKeyNotFound(thumbprint, clientID string) aadError {
	return aadError{http.StatusUnauthorized, "invalid_client", 700027,
		fmt.Sprintf("Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '%s', "+
			"Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '%s'. "+
			"Review the documentation at https://docs.microsoft.com/en-us/graph/deployments to determine the corresponding service endpoint and "+
			"https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a query request URL, "+
			"such as 'https://graph.microsoft.com/beta/applications/%s'].", thumbprint, clientID, clientID)}
}

// errAssertionBadSignature: the reason text is attested under AADSTS50013
// (the same check for other assertions); NOTE: its use with 700027 is ours.
func errAssertionBadSignature(thumbprint string, cert *x509.Certificate) aadError {
	const layout = "01/02/2006 15:04:05"
	return aadError{http.StatusUnauthorized, "invalid_client", 700027,
		fmt.Sprintf("Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value., "+
			"Thumbprint of key used by client: '%s', Found key 'Start=%s, End=%s'].",
			thumbprint, cert.NotBefore.UTC().Format(layout), cert.NotAfter.UTC().Format(layout))}
}

// errFederatedSignature: NOTE: the reason text is not attested.
func errFederatedSignature(issuer string) aadError {
	return aadError{http.StatusUnauthorized, "invalid_client", 700027,
		fmt.Sprintf("Client assertion contains an invalid signature. [Reason - No key of the issuer '%s' verifies the assertion's signature.]", issuer)}
}

func errNoFederatedMatch(issuer, subject, audience string) aadError {
	return aadError{http.StatusBadRequest, "invalid_request", 70021,
		fmt.Sprintf("No matching federated identity record found for presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'. Assertion Audience: '%s'. "+
			"https://docs.microsoft.com/en-us/azure/active-directory/develop/workload-identity-federation", issuer, subject, audience)}
}

func errAssertionTime(now, from, expiry time.Time) aadError {
	return aadError{http.StatusUnauthorized, "invalid_client", 700024,
		fmt.Sprintf("Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s. "+
			"Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
			now.UTC().Format(assertionTimeLayout), from.UTC().Format(assertionTimeLayout), expiry.UTC().Format(assertionTimeLayout))}
}

// errAssertionMalformed: NOTE: AADSTS50027 is Entra's code for an invalid JWT;
// this exact text is not attested.
func errAssertionMalformed() aadError {
	return aadError{http.StatusUnauthorized, "invalid_client", 50027, "JWT token is invalid or malformed."}
}

// errAssertionNoThumbprint follows the older attested "AADSTS50027: Invalid
// JWT token. No certificate thumbprint specified in token header.".
func errAssertionNoThumbprint() aadError {
	return aadError{http.StatusUnauthorized, "invalid_client", 50027, "Invalid JWT token. No certificate thumbprint specified in token header."}
}

// errAssertionAudience: NOTE: code and text not attested.
func errAssertionAudience() aadError {
	return aadError{http.StatusUnauthorized, "invalid_client", 700212,
		"The audience claim of the client assertion does not match the token endpoint. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials ."}
}

// errAssertionSubject: NOTE: text written from memory, not attested.
func errAssertionSubject() aadError {
	return aadError{http.StatusUnauthorized, "invalid_client", 700021,
		"Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials ."}
}

// errAssertionNoJTI: NOTE: code and text not attested.
func errAssertionNoJTI() aadError {
	return aadError{http.StatusUnauthorized, "invalid_client", 50027, "Invalid JWT token. The token has no 'jti' claim."}
}

// errAssertionReplayed: NOTE: code and text not attested.
func errAssertionReplayed() aadError {
	return aadError{http.StatusUnauthorized, "invalid_client", 50027,
		"Invalid JWT token. The client assertion has already been used (its 'jti' was seen before)."}
}

// errAssertionTooLong: NOTE: code and text not attested, and Entra's exact
// limit on a client assertion's lifetime is not documented.
func errAssertionTooLong() aadError {
	return aadError{http.StatusUnauthorized, "invalid_client", 700024,
		"Client assertion is not within its valid time range: it is valid for longer than the authority accepts."}
}

// errAssertionType: NOTE: code and text not attested.
func errAssertionType(given string) aadError {
	return aadError{http.StatusBadRequest, "invalid_request", 50027,
		fmt.Sprintf("The client_assertion_type '%s' is not supported; it must be '%s'.", given, ClientAssertionType)}
}

// errTwoCredentials: NOTE: code and text not attested; RFC 6749 §2.3 says a
// client must not use more than one authentication method per request.
func errTwoCredentials() aadError {
	return aadError{http.StatusBadRequest, "invalid_request", 90023,
		"Only one of 'client_secret' and 'client_assertion' may be presented."}
}
