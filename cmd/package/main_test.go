package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunRefusesStrayArguments(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"package", "extra"}, nil, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "unexpected arguments") {
		t.Errorf("run error = %v, want unexpected arguments", err)
	}
}

func TestRunReportsABrokenApp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"package", "-root", t.TempDir(), "-o", filepath.Join(t.TempDir(), "x.zip")}, nil, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "host.json") {
		t.Errorf("run error = %v, want one naming host.json", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want nothing on failure", stdout.String())
	}
}
