package caller

import (
	"fmt"
	"strconv"
	"time"
)

// CityResult is one city's outcome in a tick.
type CityResult struct {
	// City is the name asked for, or the API's spelling of it on success.
	City string
	// Status is the API's HTTP status; 0 when it was not reached.
	Status int
	// Latency is the time from sending the (last attempt's) request to
	// reading its reply.
	Latency time.Duration
	// Attempts is how many requests were made (0 when the city was not
	// called); Elapsed is the time from the first to the end of the last,
	// waits included, when there was more than one.
	Attempts int
	Elapsed  time.Duration
	// Temperature is the current temperature in Units; nil when not reported.
	Temperature *float64
	// Units, Conditions and Country are as the API reported them.
	Units, Conditions, Country string
	// ObservedAt is when the observation was made (zero when not reported).
	ObservedAt time.Time
	// Err is why the city failed: ErrNoToken, an *APIError, a transport or
	// parse error. Nil on success.
	Err error
}

// Report is the outcome of one tick.
type Report struct {
	// Results has one entry per configured city, in configuration order.
	Results []CityResult
	// TokenErr is why no token could be had (then no city was called).
	TokenErr error
	// TokenAttempts is how many token acquisitions were made (each one is
	// answered from MSAL's cache while the token is fresh); TokenDuration is
	// how long getting the token took, retries included.
	TokenAttempts int
	TokenDuration time.Duration
	// Duration is the whole tick's duration.
	Duration time.Duration
}

// Lines returns one human line per city: the city, its temperature with
// units, conditions, the HTTP status and the latency; failures say which
// dependency failed. When no token could be had, a first line says why.
func (r Report) Lines() []string {
	lines := make([]string, 0, len(r.Results)+1)
	if r.TokenErr != nil {
		lines = append(lines, "token (Entra ID): "+r.TokenErr.Error())
	}
	for _, c := range r.Results {
		lines = append(lines, c.line())
	}
	return lines
}

func (c CityResult) line() string {
	name := c.City
	if c.Country != "" {
		name += ", " + c.Country
	}
	tries := ""
	if c.Attempts > 1 {
		tries = fmt.Sprintf(", %d attempts in %s", c.Attempts, ms(c.Elapsed))
	}
	if c.Err != nil {
		if c.Status == 0 && c.Latency == 0 && c.Attempts <= 1 {
			return fmt.Sprintf("%s: FAILED: %s", name, c.Err)
		}
		return fmt.Sprintf("%s: FAILED: %s (%s%s)", name, c.Err, ms(c.Latency), tries)
	}
	weather := "no temperature"
	if c.Temperature != nil {
		weather = strconv.FormatFloat(*c.Temperature, 'f', -1, 64) + unitSymbol(c.Units)
	}
	if c.Conditions != "" {
		weather += ", " + c.Conditions
	}
	return fmt.Sprintf("%s: %s (HTTP %d, %s%s)", name, weather, c.Status, ms(c.Latency), tries)
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }

// unitSymbol maps the API's units to a temperature symbol.
func unitSymbol(units string) string {
	switch units {
	case "metric":
		return " °C"
	case "imperial":
		return " °F"
	case "standard":
		return " K"
	case "":
		return ""
	}
	return " " + units
}

// Succeeded counts the cities that answered.
func (r Report) Succeeded() int {
	n := 0
	for _, c := range r.Results {
		if c.Err == nil {
			n++
		}
	}
	return n
}

// Failed counts the cities that did not answer (all of them when no token
// could be had).
func (r Report) Failed() int { return len(r.Results) - r.Succeeded() }

// Summary is the tick's ReturnValue for the Functions host: counts (cities,
// succeeded, failed, retried), durations (the tick's, the token's, the
// slowest city's), whether a token was had, and each city's short outcome
// with its attempts and latency.
func (r Report) Summary() map[string]any {
	cities := make([]map[string]any, 0, len(r.Results))
	retried := 0
	var slowest time.Duration
	for _, c := range r.Results {
		m := map[string]any{"city": c.City, "ok": c.Err == nil}
		if c.Status != 0 {
			m["status"] = c.Status
		}
		if c.Status != 0 || c.Latency != 0 {
			m["latency_ms"] = c.Latency.Milliseconds()
		}
		if c.Attempts > 0 {
			m["attempts"] = c.Attempts
		}
		if c.Attempts > 1 {
			m["elapsed_ms"] = c.Elapsed.Milliseconds()
			retried++
		}
		slowest = max(slowest, c.Latency, c.Elapsed)
		if c.Temperature != nil {
			m["temperature"] = *c.Temperature
			m["units"] = c.Units
		}
		if c.Err != nil {
			m["error"] = c.Err.Error()
		}
		cities = append(cities, m)
	}
	s := map[string]any{
		"cities":          len(r.Results),
		"succeeded":       r.Succeeded(),
		"failed":          r.Failed(),
		"retried":         retried,
		"duration_ms":     r.Duration.Milliseconds(),
		"token_ms":        r.TokenDuration.Milliseconds(),
		"token_attempts":  r.TokenAttempts,
		"slowest_city_ms": slowest.Milliseconds(),
		"token_ok":        r.TokenErr == nil,
		"results":         cities,
	}
	if r.TokenErr != nil {
		s["token_error"] = r.TokenErr.Error()
	}
	return s
}
