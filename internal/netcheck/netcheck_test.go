package netcheck

import (
	"errors"
	"strings"
	"testing"
)

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"localhost", true}, {"LOCALHOST", true}, {"127.0.0.1", true}, {"127.5.6.7", true}, {"::1", true},
		{"localhost.", false}, {"localhost.evil.example", false}, {"127.0.0.1.nip.io", false},
		{"10.0.0.1", false}, {"0.0.0.0", false}, {"", false}, {"::", false}, {"[::1]", false},
	}
	for _, tt := range tests {
		if got := IsLoopback(tt.host); got != tt.want {
			t.Errorf("IsLoopback(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		raw   string
		rules Rules
		want  error
	}{
		{"https://login.microsoftonline.com", Rules{NoPath: true}, nil},
		{"https://login.microsoftonline.com/", Rules{NoPath: true}, nil},
		{"http://127.0.0.1:8080", Rules{NoPath: true}, nil},
		{"http://[::1]:8080/x", Rules{}, nil},
		{"http://LOCALHOST:1/x", Rules{}, nil},
		{"https://x.example/api/WeatherHttp", Rules{}, nil},
		{"http://login.example.com", Rules{}, ErrInsecure},
		{"http://127.0.0.1.nip.io", Rules{}, ErrInsecure},
		{"login.microsoftonline.com", Rules{}, ErrNotAbsolute},
		{"ftp://x.example", Rules{}, ErrNotAbsolute},
		{"https://", Rules{}, ErrNotAbsolute},
		{"https://user:pass@x.example", Rules{}, ErrUserinfo},
		{"https://x.example/tenant", Rules{NoPath: true}, ErrHasPath},
		{"https://x.example?q=1", Rules{NoPath: true}, ErrHasPath},
		{"https://x.example#f", Rules{NoPath: true}, ErrHasPath},
	}
	for _, tt := range tests {
		_, err := CheckURL(tt.raw, tt.rules)
		if !errors.Is(err, tt.want) {
			t.Errorf("CheckURL(%q) = %v, want %v", tt.raw, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), tt.raw) {
			t.Errorf("error for %q shows the URL", tt.raw)
		}
	}
}

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://a.example", "http://127.0.0.1:1/x?y", "http://[::1]", "%zz", "https://u@h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := CheckURL(raw, Rules{NoPath: true})
		if err == nil && u.Scheme == "http" && !IsLoopback(u.Hostname()) {
			t.Errorf("http to non-loopback %q accepted", raw)
		}
	})
}
