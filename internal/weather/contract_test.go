package weather

import (
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weatherfunc/handler/internal/problem"
	"github.com/weatherfunc/handler/internal/secrets"
)

// TestOpenAPILint: the file is OpenAPI 3.1 for exactly GET and HEAD of
// Path, uses only the schema subset our validator checks, and every
// example and default in it is valid.
func TestOpenAPILint(t *testing.T) {
	o := loadOpenAPI(t)
	if v := o.doc["openapi"]; v != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", v)
	}
	for _, e := range o.lintAll() {
		t.Error(e)
	}
	paths := o.object(t, "#/paths")
	if keys := sortedKeys(paths); !slices.Equal(keys, []string{Path}) {
		t.Errorf("paths = %v, want [%s]", keys, Path)
	}
	var ops []string
	for _, k := range sortedKeys(o.object(t, "#/paths/~1api~1WeatherHttp")) {
		if slices.Contains([]string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}, k) {
			ops = append(ops, k)
		}
	}
	if !slices.Equal(ops, []string{"get", "head"}) {
		t.Errorf("operations = %v, want [get head]", ops)
	}
	sch := o.object(t, "#/components/securitySchemes/entraId")
	if sch["type"] != "http" || sch["scheme"] != "bearer" {
		t.Errorf("security scheme = %v, want http bearer", sch)
	}
	sec, _ := json.Marshal(o.doc["security"])
	if string(sec) != `[{"entraId":["access_as_application"]},{"entraId":["access_as_user"]}]` {
		t.Errorf("security = %s, want the app role or the delegated scope", sec)
	}
}

// TestOpenAPIParametersMatchCode keeps the documented parameter rules equal
// to the ones ParseQuery applies.
func TestOpenAPIParametersMatchCode(t *testing.T) {
	o := loadOpenAPI(t)
	for _, name := range []string{"get", "head"} {
		op := o.object(t, "#/paths/~1api~1WeatherHttp/"+name)
		var got []string
		for _, p := range op["parameters"].([]any) {
			pm, err := o.deref(p.(map[string]any))
			if err != nil {
				t.Fatal(err)
			}
			if pm["in"] == "query" {
				got = append(got, pm["name"].(string))
			}
		}
		if !slices.Equal(got, params) {
			t.Errorf("%s query parameters = %v, want %v", name, got, params)
		}
	}
	strs := func(v any) []string {
		var out []string
		for _, x := range v.([]any) {
			out = append(out, x.(string))
		}
		return out
	}
	schema := func(name string) map[string]any {
		return o.object(t, "#/components/parameters/"+name+"/schema")
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"units enum", strs(schema("units")["enum"]), []string{string(Metric), string(Imperial), string(Standard)}},
		{"units default", schema("units")["default"], string(DefaultUnits)},
		{"lang enum", strs(schema("lang")["enum"]), Languages()},
		{"lang default", schema("lang")["default"], DefaultLang},
		{"city maxLength", schema("city")["maxLength"], float64(MaxCityLen)},
		{"lat pattern", schema("lat")["pattern"], coordRE.String()},
		{"lon pattern", schema("lon")["pattern"], coordRE.String()},
		{"Units schema", strs(o.object(t, "#/components/schemas/Units")["enum"]), []string{string(Metric), string(Imperial), string(Standard)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, _ := json.Marshal(tc.got)
			w, _ := json.Marshal(tc.want)
			if string(g) != string(w) {
				t.Errorf("OpenAPI says %s, the code %s", g, w)
			}
		})
	}
}

// TestOpenAPIGolden checks every golden reply (one per recorded
// OpenWeatherMap body) against the 200 schema.
func TestOpenAPIGolden(t *testing.T) {
	o := loadOpenAPI(t)
	schema := o.object(t, "#/paths/~1api~1WeatherHttp/get/responses/200")
	resp, err := o.deref(schema)
	if err != nil {
		t.Fatal(err)
	}
	s := resp["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	if err != nil || len(files) != len(goldenCases) {
		t.Fatalf("%d golden files for %d golden cases (%v)", len(files), len(goldenCases), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatal(err)
			}
			for _, e := range o.validate(s, v, filepath.Base(f)) {
				t.Error(e)
			}
		})
	}
}

// TestSchemaValidator proves the validator refuses what the schema forbids
// (so a passing golden check means something) and that lint refuses
// keywords outside the subset.
func TestSchemaValidator(t *testing.T) {
	o := loadOpenAPI(t)
	obs := o.object(t, "#/components/schemas/Observation")
	valid := `{"observed_at":"2020-05-01T13:15:51Z","units":"metric","wind":{"speed":0},"conditions":[{"id":500}],"rain":{"1h":0.3},"timezone_offset":"+01:00"}`
	tests := []struct {
		name, doc string
		want      string // substring of the first error; "" for valid
	}{
		{"minimal valid", valid, ""},
		{"unknown field", `{"observed_at":"2020-05-01T13:15:51Z","units":"metric","temp":1}`, `property "temp" is not in the schema`},
		{"unknown nested field", `{"observed_at":"2020-05-01T13:15:51Z","units":"metric","wind":{"deg":1}}`, `property "deg"`},
		{"missing observed_at", `{"units":"metric"}`, `required property "observed_at"`},
		{"observed_at not RFC 3339", `{"observed_at":"2020-05-01 13:15:51","units":"metric"}`, "date-time"},
		{"observed_at a number", `{"observed_at":1588338951,"units":"metric"}`, "want string"},
		{"units kelvin", `{"observed_at":"2020-05-01T13:15:51Z","units":"kelvin"}`, "is not one of"},
		{"humidity a string", `{"observed_at":"2020-05-01T13:15:51Z","units":"metric","humidity_percent":"66"}`, "want number"},
		{"condition id fractional", `{"observed_at":"2020-05-01T13:15:51Z","units":"metric","conditions":[{"id":1.5}]}`, "want integer"},
		{"condition without id", `{"observed_at":"2020-05-01T13:15:51Z","units":"metric","conditions":[{"main":"Rain"}]}`, `required property "id"`},
		{"bad offset", `{"observed_at":"2020-05-01T13:15:51Z","units":"metric","timezone_offset":"+1"}`, "does not match"},
		{"null rain", `{"observed_at":"2020-05-01T13:15:51Z","units":"metric","rain":null}`, "want object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(tc.doc), &v); err != nil {
				t.Fatal(err)
			}
			errs := o.validate(obs, v, "$")
			switch {
			case tc.want == "" && len(errs) > 0:
				t.Errorf("unexpected errors: %v", errs)
			case tc.want != "" && (len(errs) == 0 || !strings.Contains(errs[0], tc.want)):
				t.Errorf("errors = %v, want one containing %q", errs, tc.want)
			}
		})
	}

	prob := o.object(t, "#/components/schemas/Problem")
	for _, tc := range []struct {
		name, doc string
		ok        bool
	}{
		{"documented type", `{"type":"` + problem.TypeBase + `location-not-found","title":"x","status":404}`, true},
		{"undocumented type", `{"type":"` + problem.TypeBase + `no-such-slug","title":"x","status":404}`, false},
		{"about:blank", `{"type":"about:blank","title":"x","status":500}`, false},
		{"empty invalid-params", `{"type":"` + problem.TypeBase + `invalid-params","title":"x","status":400,"invalid-params":[]}`, false},
		{"status 200", `{"type":"` + problem.TypeBase + `invalid-params","title":"x","status":200}`, false},
		{"unknown param name", `{"type":"` + problem.TypeBase + `invalid-params","title":"x","status":400,"invalid-params":[{"name":"q","reason":"r"}]}`, false},
	} {
		var v any
		if err := json.Unmarshal([]byte(tc.doc), &v); err != nil {
			t.Fatal(err)
		}
		if errs := o.validate(prob, v, "$"); (len(errs) == 0) != tc.ok {
			t.Errorf("problem %s: errors %v, want ok=%v", tc.name, errs, tc.ok)
		}
	}

	for _, tc := range []struct {
		name, schema string
	}{
		{"unknown keyword", `{"type":"string","nullable":true}`},
		{"anyOf", `{"anyOf":[{"type":"string"}]}`},
		{"exclusiveMinimum", `{"type":"number","exclusiveMinimum":0}`},
		{"type list", `{"type":["string","null"]}`},
		{"additionalProperties true", `{"type":"object","additionalProperties":true}`},
		{"unchecked format", `{"type":"string","format":"email"}`},
		{"external ref", `{"$ref":"other.json#/Foo"}`},
		{"dangling ref", `{"$ref":"#/components/schemas/Nope"}`},
		{"required undeclared", `{"type":"object","required":["a"],"properties":{}}`},
		{"invalid example", `{"type":"integer","examples":["x"]}`},
		{"nested unknown keyword", `{"type":"object","properties":{"a":{"type":"string","format":"date-time","x-unchecked":1}}}`},
	} {
		var s map[string]any
		if err := json.Unmarshal([]byte(tc.schema), &s); err != nil {
			t.Fatal(err)
		}
		if errs := o.lint(s, "$"); len(errs) == 0 {
			t.Errorf("lint accepted %s: %s", tc.name, tc.schema)
		}
	}
}

// TestOpenAPIReplies drives the handler through every reply it can make —
// 200 (miss, hit, stale), HEAD, 304, and every problem type — and checks
// each against the OpenAPI file: status, headers, media type and body. It
// also checks that the cases cover every problem slug this package emits.
func TestOpenAPIReplies(t *testing.T) {
	o := loadOpenAPI(t)
	london := readOWM(t, "weather_weather_name.body.json")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	type step struct {
		method, query string
		header        http.Header
		ctx           context.Context
		advance       time.Duration
		then          []reply // upstream script after this step
	}
	get := func(q string) step { return step{method: http.MethodGet, query: q} }
	tests := []struct {
		name   string
		script []reply
		opts   func(*Options)
		hang   bool   // the upstream never answers
		steps  []step // the last one is checked (and every earlier one too)
		status int
		slug   string // problem slug, "" for a 200 or 304
	}{
		{"200 miss", []reply{{status: 200, body: london}}, nil, false, []step{get("city=London")}, 200, ""},
		{"200 hit", []reply{{status: 200, body: london}}, nil, false, []step{get("city=London"), {method: "GET", query: "city=london", advance: 90 * time.Second}}, 200, ""},
		{"200 stale", []reply{{status: 200, body: london}}, func(o *Options) { o.CacheTTL = time.Minute },
			false, []step{{method: "GET", query: "city=London", then: []reply{{status: 500}}}, {method: "GET", query: "city=London", advance: 2 * time.Minute}}, 200, ""},
		{"200 HEAD", []reply{{status: 200, body: london}}, nil, false, []step{{method: http.MethodHead, query: "city=London"}}, 200, ""},
		{"304 If-None-Match", []reply{{status: 200, body: london}}, nil, false,
			[]step{get("city=London"), {method: "GET", query: "city=London", header: http.Header{"If-None-Match": {"*"}}}}, 304, ""},
		{"304 HEAD", []reply{{status: 200, body: london}}, nil, false,
			[]step{{method: http.MethodHead, query: "city=London", header: http.Header{"If-None-Match": {"*"}}}}, 304, ""},
		{"400 invalid input", nil, nil, false, []step{get("city=%3Cx%3E&lat=100")}, 400, "invalid-params"},
		{"400 malformed query", nil, nil, false, []step{get("city=%zz")}, 400, "invalid-params"},
		{"400 HEAD invalid input", nil, nil, false, []step{{method: http.MethodHead, query: "units=kelvin"}}, 400, "invalid-params"},
		{"400 provider refused", []reply{{status: 400, body: readOWM(t, "400_wrong_latitude.body.json")}}, nil, false, []step{get("lat=1&lon=2")}, 400, "invalid-params"},
		{"404 provider", []reply{{status: 404, body: readOWM(t, "404_city_not_found.body.json")}}, nil, false, []step{get("city=Atlantis")}, 404, "location-not-found"},
		{"404 legacy 2014 with HTTP 200", []reply{{status: 200, body: readOWM(t, "legacy-2014_not_found_http200.body.json")}}, nil, false, []step{get("city=Atlantis")}, 404, "location-not-found"},
		{"404 negative cache hit", []reply{{status: 404, body: readOWM(t, "404_city_not_found.body.json")}}, nil, false,
			[]step{get("city=Atlantis"), {method: "GET", query: "city=Atlantis", advance: 10 * time.Second}}, 404, "location-not-found"},
		{"405", nil, nil, false, []step{{method: http.MethodPost, query: "city=London"}}, 405, "method-not-allowed"},
		{"502 credentials", []reply{{status: 401, body: readOWM(t, "errors_access_denied.body.json")}}, nil, false, []step{get("city=London")}, 502, "upstream-credentials"},
		{"502 upstream failed", []reply{{status: 500}}, nil, false, []step{get("city=London")}, 502, "upstream-failed"},
		{"503 key not ready", nil, func(o *Options) { o.APIKey = secrets.NewCell() }, false, []step{get("city=London")}, 503, "weather-unavailable"},
		{"503 provider 429", []reply{{status: 429, header: http.Header{"Retry-After": {"120"}}}}, nil, false, []step{get("city=London")}, 503, "upstream-rate-limited"},
		{"503 local rate limit", []reply{{status: 200, body: london}}, func(o *Options) { o.RatePerMinute = 1 }, false,
			[]step{get("city=London"), get("city=Paris")}, 503, "upstream-rate-limited"},
		{"503 canceled", nil, nil, true, []step{{method: "GET", query: "city=London", ctx: canceled}}, 503, "request-canceled"},
		{"504 provider", []reply{{status: 504}}, nil, false, []step{get("city=London")}, 504, "upstream-timeout"},
		{"504 HEAD", []reply{{status: 504}}, nil, false, []step{{method: http.MethodHead, query: "city=London"}}, 504, "upstream-timeout"},
	}
	covered := make(map[string]bool)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var base string
			var up *scripted
			if tc.hang {
				release := make(chan struct{})
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					select {
					case <-r.Context().Done():
					case <-release:
					}
				}))
				t.Cleanup(srv.Close)
				t.Cleanup(func() { close(release) })
				base = srv.URL
			} else {
				script := tc.script
				if script == nil {
					script = []reply{{status: 200, body: london}}
				}
				up = newScripted(t, script...)
				base = up.srv.URL
			}
			opts := Options{}
			if tc.opts != nil {
				tc.opts(&opts)
			}
			clk := newClock()
			s := newTestService(t, base, testKey(t), clk, opts)
			var rec *httptest.ResponseRecorder
			for i, st := range tc.steps {
				clk.Advance(st.advance)
				ctx := st.ctx
				if ctx == nil {
					ctx = context.Background()
				}
				req := httptest.NewRequestWithContext(ctx, st.method, Path+"?"+st.query, nil)
				for k, vs := range st.header {
					req.Header[k] = vs
				}
				rec = httptest.NewRecorder()
				s.Handler().ServeHTTP(rec, req)
				for _, e := range o.checkReply(st.method, rec.Code, rec.Header(), rec.Body.Bytes()) {
					t.Errorf("step %d: %s", i, e)
				}
				if st.then != nil {
					up.set(st.then...)
				}
			}
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tc.status, rec.Body)
			}
			if tc.slug == "" {
				return
			}
			last := tc.steps[len(tc.steps)-1]
			if last.method == http.MethodHead {
				covered[tc.slug] = true // the GET twin's body is checked elsewhere
				return
			}
			var p problem.Details
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			slug, ok := strings.CutPrefix(p.Type, problem.TypeBase)
			if !ok || slug != tc.slug {
				t.Errorf("type = %q, want %s%s", p.Type, problem.TypeBase, tc.slug)
			}
			covered[slug] = true
		})
	}

	emitted := problemSlugs(t, ".")
	for slug, where := range emitted {
		if !covered[slug] {
			t.Errorf("problem type %q (emitted at %s) has no case in TestOpenAPIReplies", slug, where)
		}
	}
}

// TestOpenAPIProblemTypesDocumented: every problem type the API can emit —
// this package's, the token gate's (internal/auth) and the host glue's
// (internal/funcs), found in their source — is documented in the OpenAPI
// file with a description, and nothing documented is emitted by no one.
func TestOpenAPIProblemTypesDocumented(t *testing.T) {
	o := loadOpenAPI(t)
	documented := o.problemTypes(t)
	emitted := make(map[string]string)
	for _, dir := range []string{".", "../auth", "../funcs"} {
		for slug, where := range problemSlugs(t, dir) {
			emitted[slug] = where
		}
	}
	if len(problemSlugs(t, ".")) < 9 {
		t.Fatalf("found only %v in this package: the source scan is broken", problemSlugs(t, "."))
	}
	for slug, where := range emitted {
		if !documented[problem.TypeBase+slug] {
			t.Errorf("problem type %q (emitted at %s) is not documented in %s", slug, where, openAPIPath)
		}
	}
	for uri := range documented {
		if _, ok := emitted[strings.TrimPrefix(uri, problem.TypeBase)]; !ok {
			t.Errorf("%s documents %s, which no code emits", openAPIPath, uri)
		}
	}
}

// problemSlugs scans the non-test Go files of dir for problem type slugs:
// string literals given as the Type of a problem.Details literal, as the
// slug of one of our *Error literals, or assigned to a .Type field.
func problemSlugs(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	out := make(map[string]string)
	record := func(e ast.Expr) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return
		}
		s, err := strconv.Unquote(lit.Value)
		if err != nil {
			t.Fatal(err)
		}
		p := fset.Position(lit.Pos())
		out[s] = filepath.Base(p.Filename) + ":" + strconv.Itoa(p.Line)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				for _, el := range n.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					key, _ := kv.Key.(*ast.Ident)
					if key == nil {
						continue
					}
					if (key.Name == "Type" && isProblemDetails(n.Type)) || (key.Name == "slug" && isIdent(n.Type, "Error")) {
						record(kv.Value)
					}
				}
			case *ast.AssignStmt:
				if len(n.Lhs) != len(n.Rhs) {
					return true
				}
				for i, lhs := range n.Lhs {
					if sel, ok := lhs.(*ast.SelectorExpr); ok && sel.Sel.Name == "Type" {
						record(n.Rhs[i])
					}
				}
			}
			return true
		})
	}
	return out
}

func isProblemDetails(e ast.Expr) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	return ok && x.Name == "problem" && sel.Sel.Name == "Details"
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}
