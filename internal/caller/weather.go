package caller

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// maxReplyBytes caps a weather API reply the daemon reads.
const maxReplyBytes = 1 << 20

// observation is what the daemon reports from a 200 reply.
type observation struct {
	City        string
	Country     string
	Temperature *float64
	Units       string
	Conditions  string
	ObservedAt  time.Time
}

// weatherReply is the part of the API's documented JSON the daemon reads.
type weatherReply struct {
	City        string `json:"city"`
	Country     string `json:"country"`
	Temperature *struct {
		Current *float64 `json:"current"`
	} `json:"temperature"`
	Units      string `json:"units"`
	Conditions []struct {
		Description string `json:"description"`
		Main        string `json:"main"`
	} `json:"conditions"`
	ObservedAt json.RawMessage `json:"observed_at"`
}

// errMalformedReply is a 200 reply that is not the API's JSON.
var errMalformedReply = errors.New("weather API: malformed reply")

// parseObservation reads a 200 reply of the weather API. Only a body that is
// not a JSON object fails; missing fields stay empty. observed_at is read as
// RFC 3339 text (or Unix seconds) and left zero otherwise.
func parseObservation(body []byte) (observation, error) {
	var r weatherReply
	if err := json.Unmarshal(body, &r); err != nil {
		return observation{}, errMalformedReply
	}
	o := observation{
		City:    printable(r.City, 100),
		Country: printable(r.Country, 10),
		Units:   printable(r.Units, 20),
	}
	if r.Temperature != nil {
		o.Temperature = r.Temperature.Current
	}
	var conds []string
	for _, c := range r.Conditions {
		d := c.Description
		if d == "" {
			d = c.Main
		}
		if d = printable(d, 60); d != "" {
			conds = append(conds, d)
		}
		if len(conds) == 3 {
			break
		}
	}
	o.Conditions = strings.Join(conds, ", ")
	o.ObservedAt = parseTime(r.ObservedAt)
	return o, nil
}

func parseTime(raw json.RawMessage) time.Time {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t
		}
		return time.Time{}
	}
	var n int64
	if json.Unmarshal(raw, &n) == nil && n > 0 && n < 1<<40 {
		return time.Unix(n, 0).UTC()
	}
	return time.Time{}
}

// APIError is a reply of the weather API other than 200.
type APIError struct {
	// Status is the HTTP status.
	Status int
	// Type and Title come from the problem+json body, when there is one.
	Type, Title string
	// AuthError is the error parameter of a Bearer WWW-Authenticate challenge
	// ("invalid_token", "insufficient_scope"), when there is one.
	AuthError string
}

// Error implements error. It says which dependency failed, as far as the
// status tells: the API's own token check, the city, or the API's upstream.
func (e *APIError) Error() string {
	var what string
	switch {
	case e.Status == http.StatusUnauthorized:
		what = "the API refused the token, not retried: check that CALLER_SCOPE names the API (API_APP_ID_URI) and AZURE_TENANT_ID is the API's tenant"
	case e.Status == http.StatusForbidden:
		what = "the token lacks the API's app role, not retried: grant the role (API_REQUIRED_ROLE) to CALLER_CLIENT_ID"
	case e.Status == http.StatusNotFound:
		what = "unknown city"
	case e.Status == http.StatusTooManyRequests:
		what = "rate limited"
	case e.Status == http.StatusBadGateway || e.Status == http.StatusServiceUnavailable || e.Status == http.StatusGatewayTimeout:
		what = "the API or its upstream weather service is unavailable"
	case e.Status >= 500:
		what = "the API failed"
	}
	var details []string
	for _, d := range []string{e.AuthError, e.Type, e.Title} {
		if d != "" {
			details = append(details, d)
		}
	}
	detail := strings.Join(details, ", ")
	msg := fmt.Sprintf("weather API: HTTP %d", e.Status)
	switch {
	case what != "" && detail != "":
		return msg + " (" + what + ": " + detail + ")"
	case what != "":
		return msg + " (" + what + ")"
	case detail != "":
		return msg + " (" + detail + ")"
	}
	return msg
}

// bearerErrorRE finds the error parameter of a Bearer challenge.
var bearerErrorRE = regexp.MustCompile(`(?i)\berror\s*=\s*"?([A-Za-z_]+)`)

// parseAPIError reads a non-200 reply: its problem+json type and title, and
// the Bearer challenge's error code. Everything is optional.
func parseAPIError(status int, wwwAuthenticate string, body []byte) *APIError {
	e := &APIError{Status: status}
	var p struct {
		Type  string `json:"type"`
		Title string `json:"title"`
	}
	if json.Unmarshal(body, &p) == nil {
		e.Type = printable(p.Type, 100)
		e.Title = printable(p.Title, 100)
	}
	if m := bearerErrorRE.FindStringSubmatch(wwwAuthenticate); m != nil {
		e.AuthError = safeToken(m[1], 40)
	}
	return e
}

// printable trims s, drops control and format characters (a reply cannot
// break a log line) and caps it at max runes.
func printable(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return s
}
