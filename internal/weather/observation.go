package weather

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Observation is our response schema for the current weather at one place.
// Fields OpenWeatherMap did not send are omitted, never zero-filled; numbers
// are in the Units of the request, times are RFC 3339 in UTC.
type Observation struct {
	City           string         `json:"city,omitempty"`             // the provider's name for the place, in the request's language
	Country        string         `json:"country,omitempty"`          // ISO 3166 country code
	Coordinates    *Coordinates   `json:"coordinates,omitempty"`      // where the observation is for
	ObservedAt     time.Time      `json:"observed_at"`                // when the provider computed it (UTC)
	Units          Units          `json:"units"`                      // the unit system of every number below
	Temperature    *Temperature   `json:"temperature,omitempty"`      // °C, °F or K
	HumidityPct    *float64       `json:"humidity_percent,omitempty"` // relative humidity, %
	PressureHPa    *float64       `json:"pressure_hpa,omitempty"`     // sea-level pressure, hPa
	Wind           *Wind          `json:"wind,omitempty"`             // speed, direction, gust
	CloudsPct      *float64       `json:"clouds_percent,omitempty"`   // cloud cover, %
	VisibilityM    *float64       `json:"visibility_m,omitempty"`     // metres (the provider caps it at 10 km)
	Rain           *Precipitation `json:"rain,omitempty"`             // rain volume, mm
	Snow           *Precipitation `json:"snow,omitempty"`             // snow volume, mm
	Conditions     []Condition    `json:"conditions,omitempty"`       // weather conditions, most important first
	Sunrise        *time.Time     `json:"sunrise,omitempty"`          // UTC
	Sunset         *time.Time     `json:"sunset,omitempty"`           // UTC
	TimezoneOffset string         `json:"timezone_offset,omitempty"`  // the place's UTC offset, "+01:00"
}

// Coordinates is a position in decimal degrees.
type Coordinates struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// Temperature holds temperatures in the request's unit (°C, °F or K).
type Temperature struct {
	Current   *float64 `json:"current,omitempty"`
	FeelsLike *float64 `json:"feels_like,omitempty"`
	Min       *float64 `json:"min,omitempty"`
	Max       *float64 `json:"max,omitempty"`
}

// Wind holds speed and gust (m/s, or mph for imperial) and the direction it
// blows from, in degrees.
type Wind struct {
	Speed        *float64 `json:"speed,omitempty"`
	DirectionDeg *float64 `json:"direction_deg,omitempty"`
	Gust         *float64 `json:"gust,omitempty"`
}

// Precipitation is the volume in mm over the last hour and the last three hours.
type Precipitation struct {
	LastHour       *float64 `json:"1h,omitempty"`
	LastThreeHours *float64 `json:"3h,omitempty"`
}

// Condition is one OpenWeatherMap weather condition
// (https://openweathermap.org/weather-conditions); Description is in the
// request's language.
type Condition struct {
	ID          int    `json:"id"`
	Main        string `json:"main,omitempty"`
	Description string `json:"description,omitempty"`
	Icon        string `json:"icon,omitempty"`
}

// owmCode is OpenWeatherMap's "cod", which is a number in some bodies and a
// string in others (200, "404", 401, "400"). A value that is neither an
// integer nor an integer string decodes to 0 ("unknown").
type owmCode int

func (c *owmCode) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(s)
	}
	n, err := strconv.Atoi(string(b))
	if err != nil {
		n = 0
	}
	*c = owmCode(n)
	return nil
}

// owmBody is the subset of /data/2.5/weather we read. Every optional part is a
// pointer so that "absent" and "zero" stay apart.
type owmBody struct {
	Cod   owmCode `json:"cod"`
	Coord *struct {
		Lon *float64 `json:"lon"`
		Lat *float64 `json:"lat"`
	} `json:"coord"`
	Weather []struct {
		ID          int    `json:"id"`
		Main        string `json:"main"`
		Description string `json:"description"`
		Icon        string `json:"icon"`
	} `json:"weather"`
	Main *struct {
		Temp      *float64 `json:"temp"`
		FeelsLike *float64 `json:"feels_like"`
		TempMin   *float64 `json:"temp_min"`
		TempMax   *float64 `json:"temp_max"`
		Pressure  *float64 `json:"pressure"`
		Humidity  *float64 `json:"humidity"`
	} `json:"main"`
	Visibility *float64 `json:"visibility"`
	Wind       *struct {
		Speed *float64 `json:"speed"`
		Deg   *float64 `json:"deg"`
		Gust  *float64 `json:"gust"`
	} `json:"wind"`
	Rain   *owmPrecip `json:"rain"`
	Snow   *owmPrecip `json:"snow"`
	Clouds *struct {
		All *float64 `json:"all"`
	} `json:"clouds"`
	Dt  *int64 `json:"dt"`
	Sys *struct {
		Country string `json:"country"`
		Sunrise *int64 `json:"sunrise"`
		Sunset  *int64 `json:"sunset"`
	} `json:"sys"`
	Timezone *int64 `json:"timezone"`
	Name     string `json:"name"`
}

type owmPrecip struct {
	H1 *float64 `json:"1h"`
	H3 *float64 `json:"3h"`
}

func (p *owmPrecip) convert() *Precipitation {
	if p == nil || (p.H1 == nil && p.H3 == nil) {
		return nil
	}
	return &Precipitation{LastHour: p.H1, LastThreeHours: p.H3}
}

// errBadBody marks an upstream body we cannot use; the service answers 502.
var errBadBody = errors.New("unusable upstream body")

// errNotFoundBody marks a 200 body that says "not found" (the 2014 format
// answered an unknown city with HTTP 200 and "cod":"404").
var errNotFoundBody = errors.New("upstream body says not found")

// parseObservation turns a 200 body of /data/2.5/weather into an Observation
// in units. It requires at least the observation time and the main block;
// everything else is optional. It never panics, whatever body it gets.
func parseObservation(body []byte, units Units) (*Observation, error) {
	var b owmBody
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadBody, err)
	}
	switch b.Cod {
	case 0, 200: // 0: absent or unreadable; the HTTP status said 200
	case 404:
		return nil, errNotFoundBody
	default:
		return nil, fmt.Errorf("%w: cod %d in a 200 body", errBadBody, int(b.Cod))
	}
	if b.Dt == nil || b.Main == nil {
		return nil, fmt.Errorf("%w: no dt or main", errBadBody)
	}
	observed, ok := unixUTC(*b.Dt)
	if !ok {
		return nil, fmt.Errorf("%w: dt out of range", errBadBody)
	}
	o := &Observation{
		City:        b.Name,
		ObservedAt:  observed,
		Units:       units,
		HumidityPct: b.Main.Humidity,
		PressureHPa: b.Main.Pressure,
		VisibilityM: b.Visibility,
		Rain:        b.Rain.convert(),
		Snow:        b.Snow.convert(),
	}
	if b.Coord != nil && b.Coord.Lat != nil && b.Coord.Lon != nil {
		o.Coordinates = &Coordinates{Lat: *b.Coord.Lat, Lon: *b.Coord.Lon}
	}
	if m := b.Main; m.Temp != nil || m.FeelsLike != nil || m.TempMin != nil || m.TempMax != nil {
		o.Temperature = &Temperature{Current: m.Temp, FeelsLike: m.FeelsLike, Min: m.TempMin, Max: m.TempMax}
	}
	if w := b.Wind; w != nil && (w.Speed != nil || w.Deg != nil || w.Gust != nil) {
		o.Wind = &Wind{Speed: w.Speed, DirectionDeg: w.Deg, Gust: w.Gust}
	}
	if b.Clouds != nil {
		o.CloudsPct = b.Clouds.All
	}
	for _, c := range b.Weather {
		o.Conditions = append(o.Conditions, Condition{ID: c.ID, Main: c.Main, Description: c.Description, Icon: c.Icon})
	}
	if s := b.Sys; s != nil {
		o.Country = s.Country
		o.Sunrise = unixUTCPtr(s.Sunrise)
		o.Sunset = unixUTCPtr(s.Sunset)
	}
	if b.Timezone != nil {
		o.TimezoneOffset = formatOffset(*b.Timezone)
	}
	return o, nil
}

// maxUnix is 9999-12-31T23:59:59Z, the last instant RFC 3339 can write.
const maxUnix = 253402300799

// unixUTC converts epoch seconds, refusing instants RFC 3339 cannot express
// (and anything before 1970, which no observation is).
func unixUTC(sec int64) (time.Time, bool) {
	if sec < 0 || sec > maxUnix {
		return time.Time{}, false
	}
	return time.Unix(sec, 0).UTC(), true
}

func unixUTCPtr(sec *int64) *time.Time {
	if sec == nil {
		return nil
	}
	t, ok := unixUTC(*sec)
	if !ok {
		return nil
	}
	return &t
}

// formatOffset renders a UTC offset in seconds as RFC 3339 "±hh:mm", or ""
// when it is not a plausible offset (beyond ±18 h). Seconds are dropped.
func formatOffset(sec int64) string {
	if sec < -18*3600 || sec > 18*3600 {
		return ""
	}
	sign := '+'
	if sec < 0 {
		sign, sec = '-', -sec
	}
	return fmt.Sprintf("%c%02d:%02d", sign, sec/3600, sec%3600/60)
}

// owmError is the body of an OpenWeatherMap error ({"cod":"404","message":"city not found"}).
type owmError struct {
	Cod     owmCode `json:"cod"`
	Message string  `json:"message"`
}

// parseError reads an error body; a body that is not one yields the zero value.
func parseError(body []byte) owmError {
	var e owmError
	_ = json.Unmarshal(body, &e) // best effort: the HTTP status decides, the body only refines
	return e
}
