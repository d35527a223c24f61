package logctx

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestFrom(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, nil)).With("invocation_id", "abc")
	From(With(context.Background(), l), nil).Info("hello")
	if !strings.Contains(buf.String(), `"invocation_id":"abc"`) {
		t.Errorf("logger from context lost its attributes: %s", buf.String())
	}
	fallback := slog.New(slog.NewJSONHandler(&buf, nil))
	if From(context.Background(), fallback) != fallback {
		t.Error("From without a logger in ctx did not return the fallback")
	}
	From(context.Background(), nil).Info("discarded") // must not panic
}

// The host logs stdout at Information and stderr at Error (Warning when the
// line contains "warn"): warnings and errors must reach stderr, one JSON
// object per line, and nothing else may.
func TestHostHandlerSplitsByLevel(t *testing.T) {
	var out, errw bytes.Buffer
	l := slog.New(NewHostHandler(&out, &errw, slog.LevelDebug)).With("function", "CallerTimer").WithGroup("g")
	l.Debug("d")
	l.Info("i")
	l.Warn("w")
	l.Error("e")
	if got := strings.Count(out.String(), "\n"); got != 2 || strings.Contains(out.String(), `"WARN"`) {
		t.Errorf("stdout = %q, want the debug and info lines only", out.String())
	}
	if got := strings.Count(errw.String(), "\n"); got != 2 || !strings.Contains(errw.String(), `"level":"WARN"`) {
		t.Errorf("stderr = %q, want the warn and error lines", errw.String())
	}
	if !strings.Contains(errw.String(), `"function":"CallerTimer"`) {
		t.Errorf("attributes lost on stderr: %s", errw.String())
	}
	if NewHostHandler(&out, &errw, slog.LevelInfo).Enabled(context.Background(), slog.LevelDebug) {
		t.Error("debug enabled at info level")
	}
}
