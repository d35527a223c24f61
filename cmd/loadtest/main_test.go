package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // "" = accepted
	}{
		{"defaults", nil, ""},
		{"cold start", []string{"-coldstart", "20"}, ""},
		{"non-loopback host address", []string{"-addr", "0.0.0.0:7071"}, "-addr"},
		{"remote host address", []string{"-addr", "192.0.2.1:7071"}, "-addr"},
		{"duration past the bound", []string{"-d", "6m"}, "-d"},
		{"zero duration", []string{"-d", "0"}, "-d"},
		{"no clients", []string{"-c", "0"}, "-c"},
		{"negative request bound", []string{"-n", "-1"}, "-n"},
		{"too many launches", []string{"-coldstart", "1000"}, "-coldstart"},
		{"stray argument", []string{"http://example.com/"}, "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseFlags(tt.args, io.Discard)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("parseFlags: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("parseFlags = %v, want an error naming %s", err, tt.want)
			}
			if tt.name == "defaults" && (c.concurrency != 64 || c.duration != 10*time.Second || c.addr != "127.0.0.1:0") {
				t.Errorf("defaults = %+v", c)
			}
		})
	}
}

func TestTailKeepsLastLines(t *testing.T) {
	tl := &tail{max: 2}
	_, _ = io.WriteString(tl, "one\ntwo\nthr")
	_, _ = io.WriteString(tl, "ee\nfour")
	if got := tl.String(); got != "two\nthree" {
		t.Errorf("tail = %q", got)
	}
}
