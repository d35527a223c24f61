package weather

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestParseQuery(t *testing.T) {
	type want struct {
		city   string
		coords *Coordinates
		units  Units
		lang   string
	}
	ok := func(city string, units Units, lang string) want { return want{city: city, units: units, lang: lang} }
	at := func(lat, lon float64) want {
		return want{coords: &Coordinates{Lat: lat, Lon: lon}, units: Metric, lang: "en"}
	}
	tests := []struct {
		name    string
		raw     string
		want    want
		wantBad []string // "name: reason substring"
	}{
		{"plain city, defaults", "city=London", ok("London", Metric, "en"), nil},
		{"trimmed and collapsed", "city=%20%20New%20%20%20York%20,%20NY%20,US%20", ok("New York,NY,US", Metric, "en"), nil},
		{"city,country", "city=London,GB", ok("London,GB", Metric, "en"), nil},
		{"polish letters", "city=" + url.QueryEscape("Mrągowo"), ok("Mrągowo", Metric, "en"), nil},
		{"polish letters decomposed (combining ogonek)", "city=" + url.QueryEscape("Mra\u0328gowo"), ok("Mra\u0328gowo", Metric, "en"), nil},
		{"cyrillic", "city=" + url.QueryEscape("Москва"), ok("Москва", Metric, "en"), nil},
		{"devanagari with vowel signs", "city=" + url.QueryEscape("लंदन"), ok("लंदन", Metric, "en"), nil},
		{"japanese", "city=" + url.QueryEscape("ロンドン"), ok("ロンドン", Metric, "en"), nil},
		{"apostrophe dot hyphen", "city=" + url.QueryEscape("St. John's,Winston-Salem"), ok("St. John's,Winston-Salem", Metric, "en"), nil},
		{"digits", "city=10115,DE", ok("10115,DE", Metric, "en"), nil},
		{"100 cyrillic characters", "city=" + url.QueryEscape(strings.Repeat("Ж", 100)), ok(strings.Repeat("Ж", 100), Metric, "en"), nil},
		{"101 characters", "city=" + strings.Repeat("a", 101), want{}, []string{"city: at most 100"}},
		{"100 after trimming", "city=" + url.QueryEscape("  "+strings.Repeat("a", 100)+"  "), ok(strings.Repeat("a", 100), Metric, "en"), nil},
		{"script tag", "city=%3Cscript%3E", want{}, []string{"city: may contain only"}},
		{"semicolon", "city=" + url.QueryEscape("London;DROP"), want{}, []string{"city: may contain only"}},
		{"tab", "city=Lon%09don", want{}, []string{"city: may contain only"}},
		{"no-break space", "city=Lon%C2%A0don", want{}, []string{"city: may contain only"}},
		{"nul", "city=Lon%00don", want{}, []string{"city: may contain only"}},
		{"invalid utf-8", "city=Lon%FFdon", want{}, []string{"city: UTF-8"}},
		{"leading combining mark", "city=%CC%A8abc", want{}, []string{"city: may contain only"}},
		{"four parts", "city=a,b,c,d", want{}, []string{"city: city,state,country"}},
		{"empty part", "city=London,", want{}, []string{"city: each comma-separated part"}},
		{"only punctuation", "city=-.'", want{}, []string{"city: each comma-separated part"}},
		{"empty city", "city=", want{}, []string{"city: must not be empty"}},
		{"blank city", "city=%20%20", want{}, []string{"city: must not be empty"}},
		{"neither", "", want{}, []string{"city: required"}},
		{"neither, unknown params only", "q=London&code=abc", want{}, []string{"city: required"}},
		{"lat lon", "lat=51.51&lon=-0.13", at(51.51, -0.13), nil},
		{"lat lon edges", "lat=-90&lon=180", at(-90, 180), nil},
		{"lat lon other edges", "lat=90.0&lon=-180", at(90, -180), nil},
		{"lat lon leading dot and plus", "lat=.5&lon=%2B7", at(0.5, 7), nil},
		{"lat out of range", "lat=90.0001&lon=0", want{}, []string{"lat: between -90 and 90"}},
		{"lon out of range", "lat=0&lon=-180.5", want{}, []string{"lon: between -180 and 180"}},
		{"lat NaN", "lat=NaN&lon=0", want{}, []string{"lat: decimal number"}},
		{"lon Inf", "lat=0&lon=Inf", want{}, []string{"lon: decimal number"}},
		{"exponent", "lat=1e1&lon=0", want{}, []string{"lat: decimal number"}},
		{"hex", "lat=0x10&lon=0", want{}, []string{"lat: decimal number"}},
		{"empty lat", "lat=&lon=1", want{}, []string{"lat: decimal number"}},
		{"lat without lon", "lat=1", want{}, []string{"lon: required together with lat"}},
		{"lon without lat", "lon=1", want{}, []string{"lat: required together with lon"}},
		{"city and coordinates", "city=London&lat=1&lon=2", want{}, []string{"city: not both"}},
		{"city and lat only", "city=London&lat=1", want{}, []string{"city: not both", "lon: required together with lat"}},
		{"repeated city", "city=London&city=Paris", want{}, []string{"city: at most once"}},
		{"repeated lat", "lat=1&lat=2&lon=3", want{}, []string{"lat: at most once"}},
		{"repeated units", "city=London&units=metric&units=metric", want{}, []string{"units: at most once"}},
		{"repeated lang", "city=London&lang=en&lang=de", want{}, []string{"lang: at most once"}},
		{"repeated unknown ignored", "city=London&x=1&x=2", ok("London", Metric, "en"), nil},
		{"units imperial", "city=London&units=imperial", ok("London", Imperial, "en"), nil},
		{"units standard, any case", "city=London&units=Standard", ok("London", Standard, "en"), nil},
		{"units kelvin", "city=London&units=kelvin", want{}, []string{"units: one of metric, imperial, standard"}},
		{"units empty", "city=London&units=", want{}, []string{"units: one of"}},
		{"lang ru", "city=London&lang=ru", ok("London", Metric, "ru"), nil},
		{"lang pt_BR", "city=London&lang=pt_BR", ok("London", Metric, "pt_br"), nil},
		{"lang alias se", "city=London&lang=se", ok("London", Metric, "sv"), nil},
		{"lang alias ua", "city=London&lang=ua", ok("London", Metric, "uk"), nil},
		{"lang alias sp", "city=London&lang=sp", ok("London", Metric, "es"), nil},
		{"lang unknown", "city=London&lang=xx", want{}, []string{"lang: language codes"}},
		{"lang BCP 47 form", "city=London&lang=zh-CN", want{}, []string{"lang: language codes"}},
		{"everything wrong", "city=a&city=b&units=x&lang=y", want{}, []string{"city: at most once", "units: one of", "lang: language codes"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := url.ParseQuery(tc.raw)
			if err != nil {
				t.Fatalf("bad test query: %v", err)
			}
			q, bad := ParseQuery(v)
			var got []string
			for _, b := range bad {
				got = append(got, b.Name+": "+b.Reason)
			}
			if len(got) != len(tc.wantBad) {
				t.Fatalf("invalid params = %q, want %q", got, tc.wantBad)
			}
			for i, w := range tc.wantBad {
				name, reason, _ := strings.Cut(w, ": ")
				if bad[i].Name != name || !strings.Contains(bad[i].Reason, reason) {
					t.Errorf("invalid param %d = %q, want name %q with %q", i, got[i], name, reason)
				}
			}
			if len(bad) > 0 {
				return
			}
			if q.City != tc.want.city || q.Units != tc.want.units || q.Lang != tc.want.lang {
				t.Errorf("query = %+v, want %+v", q, tc.want)
			}
			if fmt.Sprint(q.Coordinates) != fmt.Sprint(tc.want.coords) {
				t.Errorf("coordinates = %v, want %v", q.Coordinates, tc.want.coords)
			}
		})
	}
}

// TestParseQueryNoUpstreamCall: a 400 for bad input never reaches the provider.
func TestParseQueryNoUpstreamCall(t *testing.T) {
	up := newScripted(t, reply{status: 200, body: readOWM(t, "weather_weather_name.body.json")})
	s := newTestService(t, up.srv.URL, testKey(t), newClock(), Options{})
	for _, raw := range []string{"", "city=%3Cx%3E", "lat=100&lon=0", "city=London&units=kelvin", "city=London&city=Paris", "city=%zz"} {
		rec := do(s, raw)
		if rec.Code != 400 {
			t.Errorf("%q: status %d, want 400", raw, rec.Code)
		}
		decodeProblem(t, rec)
	}
	if n := up.calls.Load(); n != 0 {
		t.Errorf("upstream calls = %d, want 0", n)
	}
}

func TestCacheKeyNormalization(t *testing.T) {
	key := func(raw string) string {
		v, _ := url.ParseQuery(raw)
		q, bad := ParseQuery(v)
		if len(bad) > 0 {
			t.Fatalf("%q: %v", raw, bad)
		}
		return q.cacheKey()
	}
	same := [][]string{
		{"city=London", "city=london", "city=LONDON", "city=%20London%20", "city=London&units=metric&lang=en"},
		{"city=New+York,NY,US", "city=new%20%20york,%20ny,%20us"},
		{"city=" + url.QueryEscape("Москва"), "city=" + url.QueryEscape("МОСКВА")},
		{"city=" + url.QueryEscape("Σίσσα"), "city=" + url.QueryEscape("ΣΊΣΣΑ")},
		{"lat=51.5&lon=0", "lat=51.50&lon=0.0"},
		{"city=London&lang=se", "city=London&lang=sv"},
	}
	for _, group := range same {
		for _, raw := range group[1:] {
			if key(raw) != key(group[0]) {
				t.Errorf("keys differ: %q → %q, %q → %q", group[0], key(group[0]), raw, key(raw))
			}
		}
	}
	different := [][2]string{
		{"city=London", "city=London&units=imperial"},
		{"city=London", "city=London&lang=ru"},
		{"city=London", "city=London,GB"},
		{"lat=1&lon=2", "lat=2&lon=1"},
	}
	for _, d := range different {
		if key(d[0]) == key(d[1]) {
			t.Errorf("%q and %q share a key", d[0], d[1])
		}
	}
}

func TestLanguages(t *testing.T) {
	// OpenWeatherMap's documented list (https://openweathermap.org/current#multi).
	doc := strings.Fields("af al ar az bg ca cz da de el en eu fa fi fr gl he hi hr hu id it ja kr la lt mk no nl pl pt pt_br ro ru sv se sk sl sp es sr th tr ua uk vi zh_cn zh_tw zu")
	got := Languages()
	slices.Sort(doc)
	if !slices.Equal(got, doc) {
		t.Errorf("Languages() = %v\nwant %v", got, doc)
	}
}
