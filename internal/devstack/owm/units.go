package owm

import (
	"bytes"
	"encoding/json"
	"math"
)

// nativeUnits is the unit system each 200 recording was made in (read off
// the bodies: Kelvin temperatures are "standard"). OpenWeatherMap converts
// the same observation server-side for the units a request asks for; the
// stand-in does the same arithmetic, so that a daemon asking for metric never
// shows a Kelvin reading labelled °C. The recording's bytes are served
// unchanged whenever the requested units match.
var nativeUnits = map[string]string{
	recLondonName:     "standard",
	recLondonID:       "standard",
	recLondonIDEn:     "standard",
	recLondonIDRu:     "standard",
	recMoscowMetric:   "metric",
	recMoscowImperial: "imperial",
	recMoscowFr:       "metric",
	recLatLon:         "standard",
	recZip:            "standard",
	recNewYork:        "standard",
	recZocca:          "standard",
}

// inUnits returns body converted from the recording's native units to want
// ("" = standard, OpenWeatherMap's default). Unknown units, and bodies that
// do not decode, are returned unchanged: the real service ignores an unknown
// units value too.
func inUnits(name string, body []byte, want string) []byte {
	from, ok := nativeUnits[name]
	if want == "" {
		want = "standard"
	}
	if !ok || from == want || (want != "standard" && want != "metric" && want != "imperial") {
		return body
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // every number we do not convert keeps its recorded text
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return body
	}
	if m, ok := doc["main"].(map[string]any); ok {
		for _, k := range []string{"temp", "feels_like", "temp_min", "temp_max"} {
			convertField(m, k, func(v float64) float64 { return fromKelvin(toKelvin(v, from), want) })
		}
	}
	if w, ok := doc["wind"].(map[string]any); ok {
		for _, k := range []string{"speed", "gust"} {
			convertField(w, k, func(v float64) float64 { return fromMPS(toMPS(v, from), want) })
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return body
	}
	return out
}

func convertField(m map[string]any, key string, f func(float64) float64) {
	n, ok := m[key].(json.Number)
	if !ok {
		return
	}
	v, err := n.Float64()
	if err != nil {
		return
	}
	m[key] = math.Round(f(v)*100) / 100
}

func toKelvin(v float64, units string) float64 {
	switch units {
	case "metric":
		return v + 273.15
	case "imperial":
		return (v-32)*5/9 + 273.15
	}
	return v
}

func fromKelvin(k float64, units string) float64 {
	switch units {
	case "metric":
		return k - 273.15
	case "imperial":
		return (k-273.15)*9/5 + 32
	}
	return k
}

const metersPerSecondInMPH = 0.44704

func toMPS(v float64, units string) float64 {
	if units == "imperial" {
		return v * metersPerSecondInMPH
	}
	return v
}

func fromMPS(v float64, units string) float64 {
	if units == "imperial" {
		return v / metersPerSecondInMPH
	}
	return v
}
