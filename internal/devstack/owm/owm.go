package owm

import (
	"crypto/subtle"
	"embed"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

//go:embed recordings/*.json
var recordings embed.FS

// Recording file names, as in recordings/SOURCES.md.
const (
	recLondonName     = "weather_weather_name.body.json"
	recLondonID       = "weather_weather_id.body.json"
	recLondonIDEn     = "weather_weather_id_en.body.json"
	recLondonIDRu     = "weather_weather_id_ru.body.json"
	recMoscowMetric   = "weather_weather_id_ru_metric.body.json"
	recMoscowImperial = "weather_weather_id_ru_imperial.body.json"
	recMoscowFr       = "weather_weather_id_fr_metric.body.json"
	recLatLon         = "weather_weather_lat_lon.body.json"
	recZip            = "weather_weather_zip.body.json"
	recNewYork        = "weather_weather_name_state_country.body.json"
	recZocca          = "openweathermap.org_current_example_zocca.json"
	recWrongKey       = "errors_access_denied.body.json"
	recMissingKey     = "401_invalid_api_key_https_variant.body.json"
	recNotFound       = "404_city_not_found.body.json"
	recNothing        = "400_nothing_to_geocode.body.json"
	recWrongLat       = "400_wrong_latitude.body.json"
	recWrongLon       = "400_wrong_longitude.body.json"
)

// Path is the only route the stand-in serves.
const Path = "/data/2.5/weather"

// ContentType is what OpenWeatherMap sends with every body, errors included.
const ContentType = "application/json; charset=utf-8"

// Options configures a Server.
type Options struct {
	// APIKey is the only appid the stand-in accepts. Empty accepts nothing
	// (every call gets 401), so a misconfigured stack fails closed.
	APIKey string
	// Logger receives one debug line per call (never the appid). Nil discards.
	Logger *slog.Logger
}

// Server replays recorded OpenWeatherMap responses. It is safe for concurrent use.
type Server struct {
	key    []byte
	log    *slog.Logger
	bodies map[string][]byte

	mu      sync.Mutex
	calls   int
	perCity map[string]int
}

// New returns a stand-in that accepts opts.APIKey.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bodies := make(map[string][]byte)
	entries, err := recordings.ReadDir("recordings")
	if err != nil {
		panic("owm: embedded recordings missing: " + err.Error()) // a build defect, not a run-time condition
	}
	for _, e := range entries {
		b, err := recordings.ReadFile("recordings/" + e.Name())
		if err != nil {
			panic("owm: embedded recording unreadable: " + err.Error())
		}
		bodies[e.Name()] = b
	}
	return &Server{key: []byte(opts.APIKey), log: log, bodies: bodies, perCity: make(map[string]int)}
}

// SetAPIKey makes key the only accepted appid from now on: the key was
// rotated at the provider.
func (s *Server) SetAPIKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.key = []byte(key)
}

func (s *Server) validKey(appid string) bool {
	s.mu.Lock()
	key := s.key
	s.mu.Unlock()
	return len(key) > 0 && subtle.ConstantTimeCompare([]byte(appid), key) == 1
}

// Handler serves GET (and HEAD) /data/2.5/weather; everything else is 404 or 405.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Path, s.serveWeather)
	return mux
}

// Calls reports how many requests reached /data/2.5/weather, whatever their outcome.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// CallsFor reports how many requests asked for city by q (compared
// case-insensitively, with spaces trimmed and collapsed; "London" and
// "London,GB" are different queries), whatever their outcome.
func (s *Server) CallsFor(city string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perCity[normalize(city)]
}

func (s *Server) serveWeather(w http.ResponseWriter, r *http.Request) {
	// url.ParseQuery keeps what it could parse; OpenWeatherMap is lenient too.
	v, _ := url.ParseQuery(r.URL.RawQuery)
	q := normalize(v.Get("q"))

	s.mu.Lock()
	s.calls++
	if v.Has("q") {
		s.perCity[q]++
	}
	s.mu.Unlock()

	status, name := s.route(v, q)
	s.log.Debug("owm stand-in call", "q", q, "status", status, "recording", name)
	body := s.bodies[name]
	if status == http.StatusOK {
		body = inUnits(name, body, strings.ToLower(v.Get("units")))
	}
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// route picks the status and the recording for a request, checking the key first
// as OpenWeatherMap does.
func (s *Server) route(v url.Values, q string) (int, string) {
	appid, ok := v["appid"]
	switch {
	case !ok || len(appid) == 0 || appid[0] == "":
		return http.StatusUnauthorized, recMissingKey
	case !s.validKey(appid[0]):
		return http.StatusUnauthorized, recWrongKey
	}
	units, lang := strings.ToLower(v.Get("units")), strings.ToLower(v.Get("lang"))
	switch {
	case v.Has("q"):
		if name := cityRecording(q, units, lang); name != "" {
			return http.StatusOK, name
		}
		if q == "" {
			return http.StatusBadRequest, recNothing
		}
		return http.StatusNotFound, recNotFound
	case v.Has("lat") || v.Has("lon"):
		if !v.Has("lat") || !v.Has("lon") {
			return http.StatusBadRequest, recNothing
		}
		if !inRange(v.Get("lat"), 90) {
			return http.StatusBadRequest, recWrongLat
		}
		if !inRange(v.Get("lon"), 180) {
			return http.StatusBadRequest, recWrongLon
		}
		return http.StatusOK, recLatLon
	case v.Has("zip"):
		if strings.TrimSpace(v.Get("zip")) == "" {
			return http.StatusBadRequest, recNothing
		}
		return http.StatusOK, recZip
	case v.Has("id"):
		switch strings.TrimSpace(v.Get("id")) {
		case "2643743":
			return http.StatusOK, londonByID(lang)
		case "524901":
			return http.StatusOK, moscow(units, lang)
		}
		return http.StatusNotFound, recNotFound
	}
	return http.StatusBadRequest, recNothing
}

// cityRecording maps a normalized q to a recording, or "" for an unknown city.
func cityRecording(q, units, lang string) string {
	switch q {
	case "london", "london,gb", "london,uk":
		return recLondonName
	case "moscow", "moscow,ru", "москва", "москва,ru", "moscou", "moscou,ru":
		return moscow(units, lang)
	case "new york", "new york,us", "new york,ny,us":
		return recNewYork
	case "zocca", "zocca,it":
		return recZocca
	}
	return ""
}

func moscow(units, lang string) string {
	switch {
	case units == "imperial":
		return recMoscowImperial
	case lang == "fr":
		return recMoscowFr
	}
	return recMoscowMetric
}

func londonByID(lang string) string {
	switch lang {
	case "en":
		return recLondonIDEn
	case "ru":
		return recLondonIDRu
	}
	return recLondonID
}

// inRange reports whether s is a decimal number in [-limit, limit].
func inRange(s string, limit float64) bool {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return err == nil && f >= -limit && f <= limit
}

// normalize case-folds q, trims it and collapses runs of spaces, also around commas.
func normalize(q string) string {
	parts := strings.Split(q, ",")
	for i, p := range parts {
		parts[i] = strings.Join(strings.Fields(p), " ")
	}
	return strings.ToLower(strings.Join(parts, ","))
}
