package problem

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
	Write(rec, Details{Type: "invalid-params", Title: "Bad request", Status: http.StatusBadRequest,
		InvalidParams: []InvalidParam{{Name: "city", Reason: "too long"}}})
	if rec.Code != http.StatusBadRequest {
		t.Errorf("status = %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != ContentType {
		t.Errorf("Content-Type = %q", ct)
	}
	if rec.Header().Get("WWW-Authenticate") == "" {
		t.Error("a header set before Write was dropped")
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["type"] != TypeBase+"invalid-params" || got["status"] != float64(400) {
		t.Errorf("body = %v", got)
	}
	if ps, ok := got["invalid-params"].([]any); !ok || len(ps) != 1 {
		t.Errorf("invalid-params = %v", got["invalid-params"])
	}
}

func TestWriteDefaults(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, Details{})
	var got Details
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 500 || got.Type != "about:blank" || got.Title != "Internal Server Error" {
		t.Errorf("defaults = %d %+v", rec.Code, got)
	}
}
