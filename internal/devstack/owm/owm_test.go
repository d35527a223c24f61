package owm

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "standin-" + hex.EncodeToString(b)
}

func recording(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("recordings", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReplay(t *testing.T) {
	key := newKey(t)
	s := New(Options{APIKey: key})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	withKey := func(v url.Values) url.Values { v.Set("appid", key); return v }
	tests := []struct {
		name       string
		query      url.Values
		wantStatus int
		wantFile   string
	}{
		{"London", withKey(url.Values{"q": {"London"}}), 200, recLondonName},
		{"london lower case, standard asked", withKey(url.Values{"q": {"london"}, "units": {"standard"}}), 200, recLondonName},
		{"London,GB", withKey(url.Values{"q": {"London,GB"}}), 200, recLondonName},
		{"London, UK with spaces", withKey(url.Values{"q": {" London , UK "}}), 200, recLondonName},
		{"Moscow metric", withKey(url.Values{"q": {"Moscow"}, "units": {"metric"}}), 200, recMoscowMetric},
		{"Москва imperial", withKey(url.Values{"q": {"Москва"}, "units": {"imperial"}}), 200, recMoscowImperial},
		{"Moscow fr", withKey(url.Values{"q": {"Moscow,RU"}, "lang": {"fr"}, "units": {"metric"}}), 200, recMoscowFr},
		{"New York,NY,US", withKey(url.Values{"q": {"New York,NY,US"}}), 200, recNewYork},
		{"Zocca", withKey(url.Values{"q": {"Zocca"}}), 200, recZocca},
		{"lat lon", withKey(url.Values{"lat": {"51.51"}, "lon": {"-0.13"}}), 200, recLatLon},
		{"zip", withKey(url.Values{"zip": {"10001,us"}}), 200, recZip},
		{"id London ru", withKey(url.Values{"id": {"2643743"}, "lang": {"ru"}}), 200, recLondonIDRu},
		{"id London en", withKey(url.Values{"id": {"2643743"}, "lang": {"en"}}), 200, recLondonIDEn},
		{"id London", withKey(url.Values{"id": {"2643743"}}), 200, recLondonID},
		{"id Moscow imperial", withKey(url.Values{"id": {"524901"}, "units": {"imperial"}}), 200, recMoscowImperial},
		{"unknown city", withKey(url.Values{"q": {"Atlantis"}}), 404, recNotFound},
		{"unknown id", withKey(url.Values{"id": {"1"}}), 404, recNotFound},
		{"empty q", withKey(url.Values{"q": {""}}), 400, recNothing},
		{"no location", withKey(url.Values{}), 400, recNothing},
		{"lat without lon", withKey(url.Values{"lat": {"1"}}), 400, recNothing},
		{"lat out of range", withKey(url.Values{"lat": {"91"}, "lon": {"0"}}), 400, recWrongLat},
		{"lat not a number", withKey(url.Values{"lat": {"north"}, "lon": {"0"}}), 400, recWrongLat},
		{"lon out of range", withKey(url.Values{"lat": {"0"}, "lon": {"-181"}}), 400, recWrongLon},
		{"lon NaN", withKey(url.Values{"lat": {"0"}, "lon": {"NaN"}}), 400, recWrongLon},
		{"wrong appid", url.Values{"q": {"London"}, "appid": {key + "x"}}, 401, recWrongKey},
		{"wrong appid same length", url.Values{"q": {"London"}, "appid": {"x" + key[1:]}}, 401, recWrongKey},
		{"missing appid", url.Values{"q": {"London"}}, 401, recMissingKey},
		{"empty appid", url.Values{"q": {"London"}, "appid": {""}}, 401, recMissingKey},
		{"key checked before location", url.Values{"lat": {"999"}, "lon": {"0"}, "appid": {"nope"}}, 401, recWrongKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + Path + "?" + tc.query.Encode())
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if ct := resp.Header.Get("Content-Type"); ct != ContentType {
				t.Errorf("Content-Type = %q", ct)
			}
			if want := recording(t, tc.wantFile); string(body) != want {
				t.Errorf("body = %s, want %s (%s)", body, want, tc.wantFile)
			}
		})
	}
}

// A recording is in one unit system; other units are converted the way
// OpenWeatherMap converts server-side, and everything else keeps its value.
func TestUnitConversion(t *testing.T) {
	key := newKey(t)
	srv := httptest.NewServer(New(Options{APIKey: key}).Handler())
	defer srv.Close()
	tests := []struct {
		name, q, units string
		temp, feels    float64
		tmin, tmax     float64
		wind           float64
	}{
		{"London metric (recorded in Kelvin)", "London", "metric", 9.42, 4.58, 8.33, 10, 5.7},
		{"London imperial", "London", "imperial", 48.96, 40.24, 46.99, 50, 12.75},
		{"London default units are standard", "London", "", 282.57, 277.73, 281.48, 283.15, 5.7},
		{"Moscow standard (recorded in metric)", "Moscow", "standard", 285.15, 280.3, 285.15, 285.15, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := url.Values{"q": {tc.q}, "appid": {key}}
			if tc.units != "" {
				v.Set("units", tc.units)
			}
			resp, err := http.Get(srv.URL + Path + "?" + v.Encode())
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var raw struct {
				Main map[string]float64 `json:"main"`
				Wind map[string]float64 `json:"wind"`
				Name string             `json:"name"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
				t.Fatal(err)
			}
			got := []float64{raw.Main["temp"], raw.Main["feels_like"], raw.Main["temp_min"], raw.Main["temp_max"], raw.Wind["speed"]}
			want := []float64{tc.temp, tc.feels, tc.tmin, tc.tmax, tc.wind}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("field %d = %v, want %v (all: %v)", i, got[i], want[i], got)
				}
			}
			if raw.Main["humidity"] == 0 || raw.Name == "" {
				t.Errorf("unconverted fields lost: %+v", raw)
			}
		})
	}
}

func TestCalls(t *testing.T) {
	key := newKey(t)
	s := New(Options{APIKey: key})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	get := func(q url.Values) {
		resp, err := http.Get(srv.URL + Path + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get(url.Values{"q": {"London"}, "appid": {key}})
	get(url.Values{"q": {"LONDON"}, "appid": {key}})
	get(url.Values{"q": {" london "}, "appid": {"wrong"}}) // counted: the upstream received it
	get(url.Values{"q": {"London,GB"}, "appid": {key}})
	get(url.Values{"lat": {"1"}, "lon": {"2"}, "appid": {key}})
	if got := s.Calls(); got != 5 {
		t.Errorf("Calls() = %d, want 5", got)
	}
	if got := s.CallsFor("London"); got != 3 {
		t.Errorf("CallsFor(London) = %d, want 3", got)
	}
	if got := s.CallsFor("london,gb"); got != 1 {
		t.Errorf("CallsFor(london,gb) = %d, want 1", got)
	}
	if got := s.CallsFor("Paris"); got != 0 {
		t.Errorf("CallsFor(Paris) = %d, want 0", got)
	}
}

func TestEmptyKeyAcceptsNothing(t *testing.T) {
	s := New(Options{})
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Path+"?q=London&appid=", nil))
	if rec.Code != 401 {
		t.Errorf("status %d, want 401", rec.Code)
	}
	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Path+"?q=London&appid=anything", nil))
	if rec.Code != 401 {
		t.Errorf("status %d, want 401", rec.Code)
	}
}

func TestRoutes(t *testing.T) {
	s := New(Options{APIKey: "k"})
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, Path, 405},
		{http.MethodGet, "/data/2.5/forecast", 404},
		{http.MethodHead, Path + "?q=London&appid=k", 200},
	} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, rec.Code, tc.want)
		}
	}
}

// TestRecordingsMatchSources: every embedded recording is named in SOURCES.md.
func TestRecordingsMatchSources(t *testing.T) {
	src := recording(t, "SOURCES.md")
	entries, err := recordings.ReadDir("recordings")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.Contains(src, e.Name()) {
			t.Errorf("%s is not described in recordings/SOURCES.md", e.Name())
		}
	}
}
