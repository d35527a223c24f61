package netcheck

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// IsLoopback reports whether host (a hostname or IP literal, without port or
// brackets) is a loopback address: "localhost" in any case, 127.0.0.0/8 or ::1.
// NOTE: no name resolution happens, so "localhost.example" or
// "127.0.0.1.nip.io" are not loopback, whatever they resolve to.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Errors returned by CheckURL; each reads well after "setting X ".
var (
	ErrNotAbsolute = errors.New("must be an absolute https URL")
	ErrInsecure    = errors.New("must use https (http is allowed only for loopback hosts)")
	ErrUserinfo    = errors.New("must not contain credentials")
	ErrHasPath     = errors.New("must not have a path, query or fragment")
)

// Rules tighten CheckURL.
type Rules struct {
	// NoPath refuses a path other than "/" and any query or fragment
	// (authority hosts and base URLs are joined with paths later).
	NoPath bool
}

// CheckURL parses raw and applies the rule: absolute, https (http only for a
// loopback host), no userinfo, and what rules add. The error never contains raw.
func CheckURL(raw string, rules Rules) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, ErrNotAbsolute
	}
	if u.User != nil {
		return nil, ErrUserinfo
	}
	if u.Scheme == "http" && !IsLoopback(u.Hostname()) {
		return nil, ErrInsecure
	}
	if rules.NoPath && ((u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery) {
		return nil, ErrHasPath
	}
	return u, nil
}
