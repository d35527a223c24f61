package weather

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseQuery: whatever the query string, ParseQuery does not panic, and
// an accepted Query is well formed, within limits, and stable under
// re-validation (what Current does with it).
func FuzzParseQuery(f *testing.F) {
	for _, seed := range []string{
		"city=London", "city=New+York,NY,US&units=imperial&lang=en", "lat=51.51&lon=-0.13",
		"city=" + url.QueryEscape("Mrągowo"), "city=" + url.QueryEscape("Москва") + "&lang=ru",
		"lat=90&lon=-180", "lat=NaN&lon=1", "city=a&city=b", "city=%00", "lang=pt_BR&city=x", "",
		"city=London&lat=1&lon=2", "city=,,,", "units=Metric&city=Oslo", "city=" + strings.Repeat("x", 101),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, bad := ParseQuery(v)
		if len(bad) > 0 {
			for _, b := range bad {
				if b.Name == "" || b.Reason == "" {
					t.Errorf("empty invalid param %+v", b)
				}
			}
			return
		}
		if (q.City == "") == (q.Coordinates == nil) {
			t.Fatalf("exactly one of City and Coordinates must be set: %+v", q)
		}
		if q.City != "" && (utf8.RuneCountInString(q.City) > MaxCityLen || !utf8.ValidString(q.City)) {
			t.Fatalf("city out of bounds: %q", q.City)
		}
		if c := q.Coordinates; c != nil && (c.Lat < -90 || c.Lat > 90 || c.Lon < -180 || c.Lon > 180) {
			t.Fatalf("coordinates out of range: %+v", c)
		}
		if q.Units != Metric && q.Units != Imperial && q.Units != Standard {
			t.Fatalf("units %q", q.Units)
		}
		if _, ok := languages[q.Lang]; !ok {
			t.Fatalf("lang %q", q.Lang)
		}
		again, bad := ParseQuery(q.values())
		if len(bad) > 0 || again.cacheKey() != q.cacheKey() {
			t.Fatalf("re-validation changed %+v into %+v (%v)", q, again, bad)
		}
	})
}

// FuzzParseObservation: whatever the upstream body, the parser does not
// panic, and an accepted body always yields an Observation we can encode
// and decode again.
func FuzzParseObservation(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "owm", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"cod":"200","dt":0,"main":{},"timezone":-64800,"sys":{"sunrise":-1}}`))
	f.Add([]byte(`{"cod":404}`))
	f.Add([]byte(`{"dt":253402300800,"main":{"temp":1e308}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := parseObservation(body, Metric)
		if err != nil {
			if o != nil {
				t.Fatal("observation with an error")
			}
			return
		}
		enc, err := json.Marshal(o)
		if err != nil {
			t.Fatalf("accepted body cannot be encoded: %v", err)
		}
		var back Observation
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("our JSON does not decode: %v", err)
		}
		if !back.ObservedAt.Equal(o.ObservedAt) {
			t.Fatalf("observed_at changed: %v → %v", o.ObservedAt, back.ObservedAt)
		}
	})
}
