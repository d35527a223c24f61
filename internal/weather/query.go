package weather

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/weatherfunc/handler/internal/problem"
)

// Units is a unit system OpenWeatherMap understands.
type Units string

// The three unit systems. Temperatures are Celsius, Fahrenheit and Kelvin;
// wind speed is m/s, mph and m/s.
const (
	Metric   Units = "metric"
	Imperial Units = "imperial"
	Standard Units = "standard"
)

// DefaultUnits is used when the request names none.
const DefaultUnits = Metric

// DefaultLang is used when the request names no language (OpenWeatherMap's default).
const DefaultLang = "en"

// MaxCityLen is the longest city parameter accepted, in characters after trimming.
const MaxCityLen = 100

// Query is a validated request for the current weather at one location:
// either City or Coordinates is set, never both.
type Query struct {
	// City is "city", "city,country" or "city,state,country", trimmed, with
	// runs of spaces collapsed and no spaces around commas. It is sent upstream
	// as is (case preserved).
	City string
	// Coordinates is set for a lat/lon query.
	Coordinates *Coordinates
	// Units is the unit system; ParseQuery sets DefaultUnits when absent.
	Units Units
	// Lang is an OpenWeatherMap language code (lower case, aliases resolved:
	// "se"→"sv", "sp"→"es", "ua"→"uk"); ParseQuery sets DefaultLang when absent.
	Lang string
}

// cacheKey is the normalized location (case-folded, trimmed, spaces collapsed)
// plus units and lang. Coordinates are keyed by their decimal text, so
// "51.5" and "51.50" share an entry.
func (q Query) cacheKey() string {
	var loc string
	if q.Coordinates != nil {
		loc = "@" + strconv.FormatFloat(q.Coordinates.Lat, 'f', -1, 64) + "," + strconv.FormatFloat(q.Coordinates.Lon, 'f', -1, 64)
	} else {
		loc = "q:" + foldCase(q.City)
	}
	return loc + "|" + string(q.Units) + "|" + q.Lang
}

// languages lists OpenWeatherMap's documented language codes
// (https://openweathermap.org/current#multi), mapped to the code we send.
// Aliases the docs list side by side ("sv, se", "sp, es", "ua, uk") map to one
// code so that they share a cache entry.
var languages = map[string]string{
	"af": "af", "al": "al", "ar": "ar", "az": "az", "bg": "bg", "ca": "ca",
	"cz": "cz", "da": "da", "de": "de", "el": "el", "en": "en", "eu": "eu",
	"fa": "fa", "fi": "fi", "fr": "fr", "gl": "gl", "he": "he", "hi": "hi",
	"hr": "hr", "hu": "hu", "id": "id", "it": "it", "ja": "ja", "kr": "kr",
	"la": "la", "lt": "lt", "mk": "mk", "no": "no", "nl": "nl", "pl": "pl",
	"pt": "pt", "pt_br": "pt_br", "ro": "ro", "ru": "ru", "sv": "sv", "se": "sv",
	"sk": "sk", "sl": "sl", "sp": "es", "es": "es", "sr": "sr", "th": "th",
	"tr": "tr", "ua": "uk", "uk": "uk", "vi": "vi", "zh_cn": "zh_cn",
	"zh_tw": "zh_tw", "zu": "zu",
}

// Languages returns the accepted language codes, aliases included, sorted.
func Languages() []string {
	out := make([]string, 0, len(languages))
	for k := range languages {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// params are the parameters ParseQuery reads; any other is ignored.
var params = []string{"city", "lat", "lon", "units", "lang"}

// coordRE is the accepted shape of lat and lon: a plain decimal number.
// NOTE: stricter than strconv.ParseFloat, which also takes "NaN", "Inf",
// hex floats and exponents; none of them is a coordinate a client means.
var coordRE = regexp.MustCompile(`^[+-]?(?:[0-9]{1,3}(?:\.[0-9]{0,20})?|\.[0-9]{1,20})$`)

// ParseQuery validates the WeatherHttp query parameters without any I/O. It
// returns every problem found, one InvalidParam per parameter, in a fixed
// order (city, lat, lon, units, lang); the Query is usable only when the
// slice is empty. Unknown parameters are ignored; a known one given twice is
// an error.
func ParseQuery(v url.Values) (Query, []problem.InvalidParam) {
	var bad []problem.InvalidParam
	fail := func(name, reason string) { bad = append(bad, problem.InvalidParam{Name: name, Reason: reason}) }

	one := make(map[string]string, len(params))
	repeated := make(map[string]bool)
	for _, p := range params {
		vs, ok := v[p]
		switch {
		case !ok:
		case len(vs) != 1:
			repeated[p] = true
		default:
			one[p] = strings.TrimSpace(vs[0])
		}
	}
	has := func(p string) bool { _, ok := v[p]; return ok }

	q := Query{Units: DefaultUnits, Lang: DefaultLang}
	hasCity, hasLat, hasLon := has("city"), has("lat"), has("lon")

	// city
	switch {
	case repeated["city"]:
		fail("city", "must be given at most once")
	case hasCity && (hasLat || hasLon):
		fail("city", "give either city or lat and lon, not both")
	case hasCity:
		city, reason := normalizeCity(one["city"])
		if reason != "" {
			fail("city", reason)
		}
		q.City = city
	case !hasLat && !hasLon:
		fail("city", "required (or give lat and lon)")
	}

	// lat, lon
	if !hasCity || hasLat || hasLon {
		lat, latOK := parseCoord("lat", one["lat"], hasLat, hasLon, repeated["lat"], 90, fail)
		lon, lonOK := parseCoord("lon", one["lon"], hasLon, hasLat, repeated["lon"], 180, fail)
		if latOK && lonOK && !hasCity {
			q.Coordinates = &Coordinates{Lat: lat, Lon: lon}
		}
	}

	// units
	switch {
	case repeated["units"]:
		fail("units", "must be given at most once")
	case has("units"):
		switch u := Units(strings.ToLower(one["units"])); u {
		case Metric, Imperial, Standard:
			q.Units = u
		default:
			fail("units", "must be one of metric, imperial, standard")
		}
	}

	// lang
	switch {
	case repeated["lang"]:
		fail("lang", "must be given at most once")
	case has("lang"):
		code, ok := languages[strings.ToLower(one["lang"])]
		if !ok {
			fail("lang", "must be one of OpenWeatherMap's language codes (en, de, fr, ru, pt_br, zh_cn, …)")
		}
		q.Lang = code
	}

	if len(bad) > 0 {
		return Query{}, bad
	}
	return q, nil
}

// parseCoord validates lat or lon. other reports whether the partner
// parameter is present (both or neither).
func parseCoord(name, s string, present, other, repeated bool, limit float64, fail func(string, string)) (float64, bool) {
	switch {
	case repeated:
		fail(name, "must be given at most once")
		return 0, false
	case !present && other:
		partner := "lat"
		if name == "lat" {
			partner = "lon"
		}
		fail(name, "required together with "+partner)
		return 0, false
	case !present:
		return 0, false
	}
	if !coordRE.MatchString(s) {
		fail(name, "must be a decimal number")
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < -limit || f > limit {
		fail(name, fmt.Sprintf("must be between -%g and %g", limit, limit))
		return 0, false
	}
	return f, true
}

// normalizeCity checks a trimmed city parameter and returns its normalized
// form (spaces collapsed, no spaces around commas), or a reason it is refused.
//
// NOTE: stricter than OpenWeatherMap, which geocodes almost anything: we
// accept letters of any script (with their combining marks, so decomposed
// "Mrągowo" and Devanagari names pass), digits, spaces and , . ' - only, at
// most three comma-separated parts, none empty.
func normalizeCity(s string) (string, string) {
	if s == "" {
		return "", "must not be empty"
	}
	if !utf8.ValidString(s) {
		return "", "must be valid UTF-8"
	}
	if n := utf8.RuneCountInString(s); n > MaxCityLen {
		return "", fmt.Sprintf("must be at most %d characters (got %d)", MaxCityLen, n)
	}
	prevLetter := false
	for _, r := range s {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r):
			prevLetter = true
			continue
		case unicode.Is(unicode.M, r) && prevLetter:
			continue // a combining mark on a letter or digit
		case r == ' ', r == ',', r == '.', r == '\'', r == '-':
		default:
			return "", fmt.Sprintf("may contain only letters, digits, spaces and , . ' - (found %q)", r)
		}
		prevLetter = false
	}
	parts := strings.Split(s, ",")
	if len(parts) > 3 {
		return "", "must be city, city,country or city,state,country"
	}
	for i, p := range parts {
		p = strings.Join(strings.Fields(p), " ")
		if !strings.ContainsFunc(p, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) {
			return "", "each comma-separated part must contain a letter or digit"
		}
		parts[i] = p
	}
	return strings.Join(parts, ","), ""
}

// foldCase maps every rune to the smallest member of its Unicode simple case
// folding orbit, so that two strings equal under strings.EqualFold get the
// same key ("LONDON", "london", "London" → one entry; "Σ", "σ", "ς" too).
func foldCase(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		b.WriteRune(min)
	}
	return b.String()
}

// String renders q for log lines.
func (q Query) String() string {
	if q.Coordinates != nil {
		return fmt.Sprintf("lat=%g lon=%g units=%s lang=%s", q.Coordinates.Lat, q.Coordinates.Lon, q.Units, q.Lang)
	}
	return fmt.Sprintf("city=%q units=%s lang=%s", q.City, q.Units, q.Lang)
}

// upstreamValues is the OpenWeatherMap query for q, without the key.
func (q Query) upstreamValues() url.Values {
	v := url.Values{}
	if q.Coordinates != nil {
		v.Set("lat", strconv.FormatFloat(q.Coordinates.Lat, 'f', -1, 64))
		v.Set("lon", strconv.FormatFloat(q.Coordinates.Lon, 'f', -1, 64))
	} else {
		v.Set("q", q.City)
	}
	v.Set("units", string(q.Units))
	v.Set("lang", q.Lang)
	return v
}

// values renders q as request parameters, for re-validation.
func (q Query) values() url.Values {
	v := url.Values{}
	if q.Coordinates != nil {
		v.Set("lat", strconv.FormatFloat(q.Coordinates.Lat, 'f', -1, 64))
		v.Set("lon", strconv.FormatFloat(q.Coordinates.Lon, 'f', -1, 64))
	}
	if q.City != "" || q.Coordinates == nil {
		v.Set("city", q.City)
	}
	if q.Units != "" {
		v.Set("units", string(q.Units))
	}
	if q.Lang != "" {
		v.Set("lang", q.Lang)
	}
	return v
}
