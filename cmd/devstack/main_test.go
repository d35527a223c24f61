package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Bad flags stop the command before anything is built or started.
func TestRunRefusesBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown credential", []string{"-credential", "password"}, "-credential must be managed-identity, certificate or secret"},
		{"negative period", []string{"-every", "-1s"}, "-every must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%q) = %v, want %q", tt.args, err, tt.want)
			}
			if strings.Contains(stdout.String(), "building handler") {
				t.Error("started building despite a bad flag")
			}
		})
	}
}
