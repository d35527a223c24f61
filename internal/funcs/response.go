package funcs

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ContentType is the media type of every reply to the host (C11).
const ContentType = "application/json"

// InvocationResponse is the reply to an invocation request. Outputs maps
// output binding names to values (for an HTTP output, see HTTPInvocation);
// each Logs entry becomes an Information trace of the invocation; ReturnValue
// feeds a "$return" binding, if any.
type InvocationResponse struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// WriteResponse writes resp with the given status. It always sets
// Content-Type: application/json (the host fails an invocation whose reply
// lacks it: C11) and writes Outputs as {} and Logs as [] rather than null.
// The host honours Logs only on a 2xx reply: on any other status it drops
// them, so anything an operator must see on failure goes to stderr too.
// A response that cannot be encoded is replaced by a 500 whose one log line
// says so.
func WriteResponse(w http.ResponseWriter, status int, resp InvocationResponse) {
	if resp.Outputs == nil {
		resp.Outputs = map[string]any{}
	}
	if resp.Logs == nil {
		resp.Logs = []string{}
	}
	body, err := json.Marshal(resp)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"Outputs":{},"Logs":["funcs: the invocation response could not be encoded"],"ReturnValue":null}`)
	}
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
