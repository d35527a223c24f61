package weather

import (
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// openAPIPath is the API's contract, at the module root (api/openapi.json).
const openAPIPath = "../../api/openapi.json"

// openAPI is the decoded OpenAPI document plus a validator for the small
// subset of JSON Schema 2020-12 it uses. We have no JSON Schema library (and
// add none); the subset is kept small on purpose, and lint refuses any
// keyword outside it so the file cannot silently rely on something this
// validator does not check.
type openAPI struct {
	doc map[string]any
}

// schemaKeywords is the supported subset: validation keywords first, then
// annotations (which validate nothing, but examples and defaults are checked
// against their schema by lint).
var schemaKeywords = map[string]bool{
	"type": true, "properties": true, "required": true, "additionalProperties": true,
	"items": true, "minItems": true, "enum": true, "const": true, "minimum": true, "maximum": true,
	"minLength": true, "maxLength": true, "pattern": true, "format": true, "$ref": true, "oneOf": true,
	"description": true, "title": true, "examples": true, "default": true,
}

var schemaTypes = map[string]bool{"object": true, "array": true, "string": true, "number": true, "integer": true, "boolean": true}

// schemaFormats are the formats we check; any other is a lint error.
var schemaFormats = map[string]func(string) bool{
	"date-time": func(s string) bool {
		// RFC 3339 §5.6, with a T, seconds and a zone; Go's parser also
		// takes a lower-case t and z, which the grammar allows too.
		_, err := time.Parse(time.RFC3339Nano, s)
		return err == nil
	},
	"uri": func(s string) bool {
		u, err := url.Parse(s)
		return err == nil && u.IsAbs()
	},
}

func loadOpenAPI(t *testing.T) *openAPI {
	t.Helper()
	b, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", openAPIPath, err)
	}
	return &openAPI{doc: doc}
}

// at follows a JSON pointer ("#/components/schemas/Observation") from the root.
func (o *openAPI) at(ptr string) (any, error) {
	rest, ok := strings.CutPrefix(ptr, "#")
	if !ok {
		return nil, fmt.Errorf("%q is not a local JSON pointer", ptr)
	}
	var cur any = o.doc
	for _, tok := range strings.Split(strings.TrimPrefix(rest, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: %q is not inside an object", ptr, tok)
		}
		if cur, ok = m[tok]; !ok {
			return nil, fmt.Errorf("%s: no %q", ptr, tok)
		}
	}
	return cur, nil
}

// object follows ptr and requires an object there.
func (o *openAPI) object(t *testing.T, ptr string) map[string]any {
	t.Helper()
	v, err := o.at(ptr)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s is not an object", ptr)
	}
	return m
}

// deref resolves an OpenAPI Reference Object ({"$ref": …}) of any kind.
func (o *openAPI) deref(m map[string]any) (map[string]any, error) {
	for range 8 {
		r, ok := m["$ref"].(string)
		if !ok {
			return m, nil
		}
		v, err := o.at(r)
		if err != nil {
			return nil, err
		}
		if m, ok = v.(map[string]any); !ok {
			return nil, fmt.Errorf("%s is not an object", r)
		}
	}
	return nil, fmt.Errorf("reference chain too long")
}

// lintAll lints every schema in the document: components/schemas and every
// "schema" member anywhere else (parameters, headers, media types), and
// checks each parameter's example(s) against its schema.
func (o *openAPI) lintAll() []string {
	var errs []string
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch x := v.(type) {
		case map[string]any:
			if s, ok := x["schema"].(map[string]any); ok {
				if ex, ok := x["example"]; ok {
					errs = append(errs, o.validate(s, ex, path+"/example")...)
				}
				if exs, ok := x["examples"].(map[string]any); ok {
					for k, e := range exs {
						if em, ok := e.(map[string]any); ok {
							errs = append(errs, o.validate(s, em["value"], path+"/examples/"+k)...)
						}
					}
				}
			}
			for _, k := range sortedKeys(x) {
				p := path + "/" + k
				switch s, isObj := x[k].(map[string]any); {
				case k == "schema" && isObj:
					errs = append(errs, o.lint(s, p)...)
				case k == "schema":
					errs = append(errs, p+": not a schema object")
				case path == "#/components" && k == "schemas":
					for _, name := range sortedKeys(s) {
						if sm, ok := s[name].(map[string]any); ok {
							errs = append(errs, o.lint(sm, p+"/"+name)...)
						} else {
							errs = append(errs, p+"/"+name+": not a schema object")
						}
					}
				default:
					walk(x[k], p)
				}
			}
		case []any:
			for i, c := range x {
				walk(c, path+"/"+strconv.Itoa(i))
			}
		}
	}
	walk(o.doc, "#")
	return errs
}

// lint checks that s uses only the supported subset, well formed, and that
// its examples, default, enum and const values are valid against it.
func (o *openAPI) lint(s map[string]any, path string) []string {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	for _, k := range sortedKeys(s) {
		if !schemaKeywords[k] {
			bad("keyword %q is outside the subset the schema test checks (extend the validator first)", k)
		}
	}
	if r, ok := s["$ref"]; ok {
		rs, _ := r.(string)
		if !strings.HasPrefix(rs, "#/components/schemas/") {
			bad("$ref %v: only #/components/schemas/… is supported", r)
		} else if v, err := o.at(rs); err != nil {
			bad("%v", err)
		} else if _, ok := v.(map[string]any); !ok {
			bad("$ref %s is not a schema object", rs)
		}
		for k := range s {
			if k != "$ref" && k != "description" && k != "title" {
				bad("%q next to $ref is not supported", k)
			}
		}
		return errs
	}
	if typ, ok := s["type"]; ok {
		if ts, _ := typ.(string); !schemaTypes[ts] {
			bad("type %v is not one of the supported single types", typ)
		}
	}
	if ap, ok := s["additionalProperties"]; ok && ap != false {
		bad("additionalProperties must be false")
	}
	if props, ok := s["properties"]; ok {
		pm, ok := props.(map[string]any)
		if !ok {
			bad("properties is not an object")
		}
		for _, name := range sortedKeys(pm) {
			if ps, ok := pm[name].(map[string]any); ok {
				errs = append(errs, o.lint(ps, path+"/properties/"+name)...)
			} else {
				bad("property %q is not a schema object", name)
			}
		}
	}
	if req, ok := s["required"]; ok {
		pm, _ := s["properties"].(map[string]any)
		rl, ok := req.([]any)
		if !ok {
			bad("required is not an array")
		}
		for _, r := range rl {
			if name, ok := r.(string); !ok || pm[name] == nil {
				bad("required %v is not a declared property", r)
			}
		}
	}
	if items, ok := s["items"]; ok {
		if is, ok := items.(map[string]any); ok {
			errs = append(errs, o.lint(is, path+"/items")...)
		} else {
			bad("items is not a schema object")
		}
	}
	if one, ok := s["oneOf"]; ok {
		ol, ok := one.([]any)
		if !ok || len(ol) == 0 {
			bad("oneOf is not a non-empty array")
		}
		for i, sub := range ol {
			if ss, ok := sub.(map[string]any); ok {
				errs = append(errs, o.lint(ss, path+"/oneOf/"+strconv.Itoa(i))...)
			} else {
				bad("oneOf/%d is not a schema object", i)
			}
		}
	}
	for _, k := range []string{"minimum", "maximum", "minLength", "maxLength", "minItems"} {
		if v, ok := s[k]; ok {
			if _, ok := v.(float64); !ok {
				bad("%s is not a number", k)
			}
		}
	}
	if p, ok := s["pattern"]; ok {
		ps, _ := p.(string)
		if _, err := regexp.Compile(ps); err != nil {
			bad("pattern %v: %v", p, err)
		}
	}
	if f, ok := s["format"]; ok {
		if fs, _ := f.(string); schemaFormats[fs] == nil {
			bad("format %v is not one the validator checks", f)
		}
	}
	if e, ok := s["enum"]; ok {
		el, ok := e.([]any)
		if !ok || len(el) == 0 {
			bad("enum is not a non-empty array")
		}
		for i, v := range el {
			errs = append(errs, o.validate(withoutKey(s, "enum"), v, path+"/enum/"+strconv.Itoa(i))...)
		}
	}
	if c, ok := s["const"]; ok {
		errs = append(errs, o.validate(withoutKey(s, "const"), c, path+"/const")...)
	}
	if d, ok := s["default"]; ok {
		errs = append(errs, o.validate(s, d, path+"/default")...)
	}
	if ex, ok := s["examples"]; ok {
		el, ok := ex.([]any)
		if !ok {
			bad("examples is not an array")
		}
		for i, v := range el {
			errs = append(errs, o.validate(s, v, path+"/examples/"+strconv.Itoa(i))...)
		}
	}
	return errs
}

// validate checks instance v (as decoded by encoding/json) against schema s
// and returns one line per violation, each starting with its path.
func (o *openAPI) validate(s map[string]any, v any, path string) []string {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	if r, ok := s["$ref"].(string); ok {
		target, err := o.at(r)
		if err != nil {
			return []string{path + ": " + err.Error()}
		}
		ts, ok := target.(map[string]any)
		if !ok {
			return []string{path + ": $ref " + r + " is not a schema"}
		}
		return o.validate(ts, v, path)
	}
	if typ, ok := s["type"].(string); ok && !hasType(typ, v) {
		bad("want %s, got %s", typ, jsonType(v))
		return errs
	}
	if e, ok := s["enum"].([]any); ok && !slices.ContainsFunc(e, func(x any) bool { return reflect.DeepEqual(x, v) }) {
		bad("%v is not one of %v", v, e)
	}
	if c, ok := s["const"]; ok && !reflect.DeepEqual(c, v) {
		bad("%v is not %v", v, c)
	}
	switch x := v.(type) {
	case float64:
		if m, ok := s["minimum"].(float64); ok && x < m {
			bad("%v < minimum %v", x, m)
		}
		if m, ok := s["maximum"].(float64); ok && x > m {
			bad("%v > maximum %v", x, m)
		}
	case string:
		n := utf8.RuneCountInString(x)
		if m, ok := s["minLength"].(float64); ok && float64(n) < m {
			bad("%q shorter than %v", x, m)
		}
		if m, ok := s["maxLength"].(float64); ok && float64(n) > m {
			bad("%q longer than %v", x, m)
		}
		if p, ok := s["pattern"].(string); ok {
			if re, err := regexp.Compile(p); err != nil || !re.MatchString(x) {
				bad("%q does not match %s", x, p)
			}
		}
		if f, ok := s["format"].(string); ok {
			if check := schemaFormats[f]; check == nil || !check(x) {
				bad("%q is not a valid %s", x, f)
			}
		}
	case []any:
		if m, ok := s["minItems"].(float64); ok && float64(len(x)) < m {
			bad("%d items, fewer than %v", len(x), m)
		}
		if is, ok := s["items"].(map[string]any); ok {
			for i, item := range x {
				errs = append(errs, o.validate(is, item, path+"/"+strconv.Itoa(i))...)
			}
		}
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				name, _ := r.(string)
				if _, present := x[name]; !present {
					bad("required property %q missing", name)
				}
			}
		}
		for _, k := range sortedKeys(x) {
			ps, ok := props[k].(map[string]any)
			switch {
			case ok:
				errs = append(errs, o.validate(ps, x[k], path+"/"+k)...)
			case s["additionalProperties"] == false:
				bad("property %q is not in the schema", k)
			}
		}
	}
	if one, ok := s["oneOf"].([]any); ok {
		n := 0
		for _, sub := range one {
			if ss, ok := sub.(map[string]any); ok && len(o.validate(ss, v, path)) == 0 {
				n++
			}
		}
		if n != 1 {
			bad("%v matches %d of the oneOf alternatives, want exactly 1", v, n)
		}
	}
	return errs
}

func hasType(typ string, v any) bool {
	switch x := v.(type) {
	case map[string]any:
		return typ == "object"
	case []any:
		return typ == "array"
	case string:
		return typ == "string"
	case bool:
		return typ == "boolean"
	case float64:
		return typ == "number" || (typ == "integer" && x == math.Trunc(x) && !math.IsInf(x, 0))
	}
	return false
}

func jsonType(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func withoutKey(m map[string]any, key string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

// apiHeaders are the response headers the contract speaks about: when a
// reply carries one, the OpenAPI response must document it.
var apiHeaders = []string{"Cache-Status", "Age", "ETag", "Cache-Control", "Retry-After", "WWW-Authenticate", "Allow"}

// checkReply checks one reply of the operation against the OpenAPI file:
// the status is documented for the method, every documented header is
// present when required and valid when present, every API header sent is
// documented, and the body matches the media type's schema (no body for
// HEAD and for responses without content).
//
// A method other than GET and HEAD has no operation in OpenAPI; its reply
// is checked against components/responses/MethodNotAllowed, which the path
// item's description points to.
func (o *openAPI) checkReply(method string, status int, h http.Header, body []byte) []string {
	where := fmt.Sprintf("%s %d", method, status)
	var rm map[string]any
	if method == http.MethodGet || method == http.MethodHead {
		op, err := o.at("#/paths/~1api~1WeatherHttp/" + strings.ToLower(method))
		if err != nil {
			return []string{where + ": " + err.Error()}
		}
		resps, _ := op.(map[string]any)["responses"].(map[string]any)
		if rm, _ = resps[strconv.Itoa(status)].(map[string]any); rm == nil {
			return []string{where + ": status not documented"}
		}
	} else {
		if status != http.StatusMethodNotAllowed {
			return []string{where + ": want 405"}
		}
		rm = map[string]any{"$ref": "#/components/responses/MethodNotAllowed"}
	}
	resp, err := o.deref(rm)
	if err != nil {
		return []string{where + ": " + err.Error()}
	}
	var errs []string
	documented, _ := resp["headers"].(map[string]any)
	for _, name := range sortedKeys(documented) {
		hm, _ := documented[name].(map[string]any)
		hd, err := o.deref(hm)
		if err != nil {
			errs = append(errs, where+" header "+name+": "+err.Error())
			continue
		}
		vals := h.Values(name)
		if len(vals) == 0 {
			if hd["required"] == true {
				errs = append(errs, where+": required header "+name+" missing")
			}
			continue
		}
		if len(vals) > 1 {
			errs = append(errs, fmt.Sprintf("%s: header %s sent %d times", where, name, len(vals)))
		}
		hs, _ := hd["schema"].(map[string]any)
		var v any = vals[0]
		if hs["type"] == "integer" {
			n, err := strconv.ParseInt(vals[0], 10, 64)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: header %s = %q is not an integer", where, name, vals[0]))
				continue
			}
			v = float64(n)
		}
		errs = append(errs, o.validate(hs, v, where+" header "+name)...)
	}
	for _, name := range apiHeaders {
		if _, ok := documented[name]; !ok && len(h.Values(name)) > 0 {
			errs = append(errs, fmt.Sprintf("%s: sends %s: %q, which the OpenAPI response does not document", where, name, h.Values(name)))
		}
	}

	content, _ := resp["content"].(map[string]any)
	switch {
	case method == "HEAD" || status == 304:
		if len(body) > 0 {
			errs = append(errs, where+": a body was sent")
		}
		if status == 304 || resp["content"] == nil {
			return errs
		}
		// HEAD still sends the Content-Type GET would.
		fallthrough
	default:
		ct := h.Get("Content-Type")
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return append(errs, fmt.Sprintf("%s: Content-Type %q: %v", where, ct, err))
		}
		media, ok := content[mt].(map[string]any)
		if !ok {
			return append(errs, fmt.Sprintf("%s: media type %s not documented", where, mt))
		}
		if method == "HEAD" {
			return errs
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return append(errs, fmt.Sprintf("%s: body is not JSON: %v", where, err))
		}
		s, _ := media["schema"].(map[string]any)
		errs = append(errs, o.validate(s, v, where+" body")...)
	}
	return errs
}

// problemTypes returns the documented problem type URIs.
func (o *openAPI) problemTypes(t *testing.T) map[string]bool {
	t.Helper()
	pt := o.object(t, "#/components/schemas/ProblemType")
	alts, _ := pt["oneOf"].([]any)
	out := make(map[string]bool)
	for _, a := range alts {
		am, _ := a.(map[string]any)
		c, _ := am["const"].(string)
		if d, _ := am["description"].(string); c == "" || d == "" {
			t.Errorf("ProblemType alternative %v needs a const and a description", a)
		}
		out[c] = true
	}
	return out
}
