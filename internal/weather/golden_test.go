package weather

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

// goldenCases turns every recorded 200 body into our JSON. The request's
// units match the unit system the body was recorded in.
var goldenCases = []struct {
	name, file, query string
	wantUpstream      url.Values // without appid
}{
	{"london by name", "weather_weather_name.body.json", "city=London&units=standard",
		url.Values{"q": {"London"}, "units": {"standard"}, "lang": {"en"}}},
	{"london by id", "weather_weather_id.body.json", "city=london&units=standard",
		url.Values{"q": {"london"}, "units": {"standard"}, "lang": {"en"}}},
	{"london en", "weather_weather_id_en.body.json", "city=London,GB&units=standard&lang=en",
		url.Values{"q": {"London,GB"}, "units": {"standard"}, "lang": {"en"}}},
	{"london ru", "weather_weather_id_ru.body.json", "city=London&units=standard&lang=ru",
		url.Values{"q": {"London"}, "units": {"standard"}, "lang": {"ru"}}},
	{"moscow ru imperial", "weather_weather_id_ru_imperial.body.json", "city=" + url.QueryEscape("Москва") + "&units=imperial&lang=ru",
		url.Values{"q": {"Москва"}, "units": {"imperial"}, "lang": {"ru"}}},
	{"moscow ru metric", "weather_weather_id_ru_metric.body.json", "city=" + url.QueryEscape("Москва") + "&units=metric&lang=ru",
		url.Values{"q": {"Москва"}, "units": {"metric"}, "lang": {"ru"}}},
	{"moscow fr metric", "weather_weather_id_fr_metric.body.json", "city=Moscow&lang=fr",
		url.Values{"q": {"Moscow"}, "units": {"metric"}, "lang": {"fr"}}},
	{"lat lon", "weather_weather_lat_lon.body.json", "lat=51.51&lon=-0.13&units=standard",
		url.Values{"lat": {"51.51"}, "lon": {"-0.13"}, "units": {"standard"}, "lang": {"en"}}},
	{"zip id 0 wind without deg", "weather_weather_zip.body.json", "city=New+York,US&units=standard",
		url.Values{"q": {"New York,US"}, "units": {"standard"}, "lang": {"en"}}},
	{"new york state country", "weather_weather_name_state_country.body.json", "city=New%20York,%20NY,%20US&units=standard",
		url.Values{"q": {"New York,NY,US"}, "units": {"standard"}, "lang": {"en"}}},
	{"zocca docs every optional field", "openweathermap.org_current_example_zocca.json", "city=Zocca&units=standard",
		url.Values{"q": {"Zocca"}, "units": {"standard"}, "lang": {"en"}}},
	{"legacy 2014 ernakulam", "legacy-2014_current_geocode_ernakulam.body.json", "city=Ernakulam&units=standard",
		url.Values{"q": {"Ernakulam"}, "units": {"standard"}, "lang": {"en"}}},
}

// TestGolden sends each recorded body through the whole path (loopback
// upstream, Service, Handler) and compares our reply with testdata/golden.
func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			key := testKey(t)
			up := newScripted(t, reply{status: http.StatusOK, body: readOWM(t, tc.file)})
			s := newTestService(t, up.srv.URL, key, newClock(), Options{})
			rec := do(s, tc.query)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d, body %s", rec.Code, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			got := up.lastRequest().URL.Query()
			if got.Get("appid") != key {
				t.Errorf("upstream appid missing or wrong")
			}
			got.Del("appid")
			if got.Encode() != tc.wantUpstream.Encode() {
				t.Errorf("upstream query = %s, want %s", got.Encode(), tc.wantUpstream.Encode())
			}

			var pretty bytes.Buffer
			if err := json.Indent(&pretty, rec.Body.Bytes(), "", "  "); err != nil {
				t.Fatalf("reply is not JSON: %v", err)
			}
			pretty.WriteByte('\n')
			path := filepath.Join("testdata", "golden", strings.TrimSuffix(strings.TrimSuffix(tc.file, ".json"), ".body")+".json")
			if *update {
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("reply differs from %s:\n got: %s\nwant: %s", path, pretty.Bytes(), want)
			}
		})
	}
}

// TestObservationShape pins our JSON field names and nesting to the documented
// example (the one in the README and the daemon's decoder).
func TestObservationShape(t *testing.T) {
	const doc = `{"city":"London","country":"GB","coordinates":{"lat":51.51,"lon":-0.13},
 "observed_at":"2020-05-01T13:15:51Z","units":"metric",
 "temperature":{"current":14.08,"feels_like":10.7,"min":12.78,"max":16.67},
 "humidity_percent":66,"pressure_hpa":998,
 "wind":{"speed":4.1,"direction_deg":250,"gust":7.2},
 "clouds_percent":5,"visibility_m":10000,"rain":{"1h":0.3},"snow":{"3h":1},
 "conditions":[{"id":500,"main":"Rain","description":"light rain","icon":"10d"}],
 "sunrise":"2020-05-01T04:31:33Z","sunset":"2020-05-01T19:23:25Z","timezone_offset":"+01:00"}`
	var o Observation
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		t.Fatalf("documented example does not fit Observation: %v", err)
	}
	got, err := json.Marshal(&o)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, []byte(doc)); err != nil {
		t.Fatal(err)
	}
	if string(got) != want.String() {
		t.Errorf("Observation JSON\n got: %s\nwant: %s", got, want.String())
	}
}

// TestParseObservationOmitsAbsent checks that what upstream did not send is
// omitted, not zero-filled, and that zero values upstream did send survive.
func TestParseObservationOmitsAbsent(t *testing.T) {
	tests := []struct {
		name, file string
		absent     []string
		present    []string
	}{
		{"zip has no wind deg, no rain", "weather_weather_zip.body.json",
			[]string{`"direction_deg"`, `"rain"`, `"snow"`, `"gust"`}, []string{`"speed":2.6`, `"visibility_m":16093`}},
		{"legacy has no visibility, feels_like, timezone", "legacy-2014_current_geocode_ernakulam.body.json",
			[]string{`"visibility_m"`, `"feels_like"`, `"timezone_offset"`}, []string{`"pressure_hpa":1020.95`, `"city":"Ernākulam"`}},
		{"moscow clouds 0 kept", "weather_weather_id_ru_metric.body.json",
			[]string{`"rain"`}, []string{`"clouds_percent":0`, `"timezone_offset":"+03:00"`}},
		{"new york negative offset", "weather_weather_name_state_country.body.json",
			nil, []string{`"timezone_offset":"-04:00"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseObservation(readOWM(t, tc.file), Standard)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(o)
			for _, a := range tc.absent {
				if bytes.Contains(b, []byte(a)) {
					t.Errorf("%s present in %s", a, b)
				}
			}
			for _, p := range tc.present {
				if !bytes.Contains(b, []byte(p)) {
					t.Errorf("%s missing from %s", p, b)
				}
			}
		})
	}
}
