// Package owm is the offline stand-in for OpenWeatherMap's current-weather
// endpoint (GET /data/2.5/weather), used by cmd/devstack and by tests.
//
// It owns: replaying the recorded OpenWeatherMap bodies embedded from
// recordings/ (see recordings/SOURCES.md) with the status codes and the
// Content-Type the real service sends, checking appid (in constant time), and
// counting the calls it receives so that tests can prove the handler's cache
// and singleflight work.
//
// It does not own: any weather logic. A recording is in one unit system and
// one language; the stand-in picks the best-matching recording for a request
// and replays it byte for byte, whatever units the request asked for. It does
// not speak TLS itself (wrap Handler with tlsca.Listen for that) and it is
// never linked into the handler binary.
package owm
