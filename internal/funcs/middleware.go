package funcs

import (
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"runtime/debug"
	"strings"

	"github.com/weatherfunc/handler/internal/logctx"
	"github.com/weatherfunc/handler/internal/problem"
	"github.com/weatherfunc/handler/internal/tracing"
)

// HeaderInvocationID carries the host's invocation ID, on timer invocations
// and forwarded HTTP requests alike.
const HeaderInvocationID = "X-Azure-Functions-InvocationId"

// HeaderHostVersion carries the host's version.
const HeaderHostVersion = "X-Azure-Functions-HostVersion"

// maxInvocationIDLen bounds what a caller can put into every log line.
const maxInvocationIDLen = 128

// WithInvocation is the middleware around every function route. It puts a
// logger carrying invocation_id (from X-Azure-Functions-InvocationId) and
// function into the request context (logctx.With), reads the W3C trace
// context (traceparent, tracestate) into the request context
// (tracing.WithSpan) and adds trace_id to that logger when the header is
// valid (an invalid one is ignored, as the specification says), and turns a
// panic into a
// 500 with the stack logged: an InvocationResponse for POST /<Fn>, an
// application/problem+json reply for /api/... (what the caller of the API
// sees). function names the function; when empty it is the last element of
// the request path (/<Fn> or /api/<Fn>). A nil logger discards.
func WithInvocation(logger *slog.Logger, function string, next http.Handler) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fn := function
		if fn == "" {
			fn = path.Base(r.URL.Path)
		}
		id := r.Header.Get(HeaderInvocationID)
		if len(id) > maxInvocationIDLen {
			id = id[:maxInvocationIDLen]
		}
		l := logger.With(slog.String("invocation_id", id), slog.String("function", fn))
		ctx := r.Context()
		if sc, ok := tracing.FromRequest(r); ok {
			ctx = tracing.WithSpan(ctx, sc)
			l = l.With(slog.String("trace_id", sc.TraceIDString()))
		}
		r = r.WithContext(logctx.With(ctx, l))
		tw := &trackingWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			l.Error("panic in function handler",
				slog.String("panic", fmt.Sprint(v)),
				slog.String("stack", string(debug.Stack())))
			if tw.wrote {
				return // too late for a status; the host sees a truncated reply
			}
			if strings.HasPrefix(r.URL.Path, "/api/") {
				problem.Write(tw, problem.Details{Type: "internal", Status: http.StatusInternalServerError})
				return
			}
			WriteResponse(tw, http.StatusInternalServerError, InvocationResponse{
				Logs: []string{"internal error in " + fn},
			})
		}()
		next.ServeHTTP(tw, r)
	})
}

// trackingWriter records whether a status has been sent.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(code int) {
	if code >= 200 { // 1xx informational replies do not commit the status
		t.wrote = true
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(b []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }
