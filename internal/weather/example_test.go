package weather_test

import (
	"fmt"
	"net/url"

	"github.com/weatherfunc/handler/internal/weather"
)

func ExampleParseQuery() {
	v, _ := url.ParseQuery("city=%20new%20%20york,%20NY,US&units=imperial&code=ignored")
	q, bad := weather.ParseQuery(v)
	fmt.Println(q.City, q.Units, q.Lang, len(bad))

	_, bad = weather.ParseQuery(url.Values{"lat": {"91"}, "units": {"kelvin"}})
	for _, b := range bad {
		fmt.Printf("%s: %s\n", b.Name, b.Reason)
	}
	// Output:
	// new york,NY,US imperial en 0
	// lat: must be between -90 and 90
	// lon: required together with lat
	// units: must be one of metric, imperial, standard
}

func ExampleCacheState_CacheStatus() {
	fmt.Println(weather.CacheState{}.CacheStatus())
	// Output: weatherhttp; fwd=miss
}
