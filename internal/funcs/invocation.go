package funcs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// MaxInvocationBytes caps the body DecodeInvocation reads. Our functions take
// a timer tick or a small GET; anything bigger is not from a host we serve.
const MaxInvocationBytes = 1 << 20

// ErrTooLarge is returned (wrapped) by DecodeInvocation for a body over
// MaxInvocationBytes.
var ErrTooLarge = errors.New("funcs: invocation body exceeds 1 MiB")

// InvocationRequest is the JSON the host POSTs to /<FunctionName> for
// non-HTTP triggers (and for HTTP triggers when forwarding is off). Values are
// kept raw: the host encodes many of them a second time as JSON strings, so
// read them through String, Sys, Timer or DecodeScalar.
type InvocationRequest struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

// DecodeInvocation reads one invocation request from r. It reads at most
// MaxInvocationBytes (ErrTooLarge beyond) and ignores unknown fields (the host
// adds some between versions).
//
// NOTE: stricter than encoding/json's Decoder, it refuses trailing data
// after the object: a host sends exactly one.
func DecodeInvocation(r io.Reader) (*InvocationRequest, error) {
	body, err := io.ReadAll(io.LimitReader(r, MaxInvocationBytes+1))
	if err != nil {
		return nil, fmt.Errorf("funcs: read invocation: %w", err)
	}
	if len(body) > MaxInvocationBytes {
		return nil, ErrTooLarge
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var req InvocationRequest
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("funcs: decode invocation: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("funcs: decode invocation: trailing data after the JSON object")
	}
	return &req, nil
}

// DecodeScalar unwraps one level of string-encoded JSON: when raw is a JSON
// string whose content is itself valid JSON (`"\"Oslo\""`, `"{\"a\":1}"`,
// `"1"`), it returns that content; otherwise it returns raw unchanged. The
// host serializes binding and metadata values before serializing the whole
// request, so one level of unwrapping recovers what the trigger produced.
func DecodeScalar(raw json.RawMessage) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return raw
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return raw
	}
	inner := strings.TrimSpace(s)
	if inner == "" || !json.Valid([]byte(inner)) {
		return raw
	}
	return json.RawMessage(inner)
}

// scalarString reports the value of a JSON scalar as text, unwrapping one
// level of double encoding: "\"Oslo\"" and "Oslo" both give Oslo, 1 gives
// "1", true gives "true". Objects, arrays and null are not scalars.
func scalarString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false
		}
		// A string whose content is a JSON string literal was encoded twice.
		if t := strings.TrimSpace(s); len(t) >= 2 && t[0] == '"' {
			var inner string
			if err := json.Unmarshal([]byte(t), &inner); err == nil {
				return inner, true
			}
		}
		return s, true
	case '{', '[', 'n':
		return "", false
	default: // number or boolean
		if !json.Valid(raw) {
			return "", false
		}
		return string(raw), true
	}
}

// String returns the Data (first) or Metadata value called name as plain
// text, unwrapped if it arrived double-encoded (C15: "\"Oslo\"" gives Oslo).
// Numbers and booleans come back as their JSON text. It reports false when
// there is no such value or the value is an object, an array or null. A string
// that carries an encoded object or array (Cosmos DB documents) gives the JSON
// text of that object or array.
func (r *InvocationRequest) String(name string) (string, bool) {
	if r == nil {
		return "", false
	}
	if raw, ok := r.Data[name]; ok {
		return scalarString(raw)
	}
	if raw, ok := r.Metadata[name]; ok {
		return scalarString(raw)
	}
	return "", false
}

// Sys is the host's Metadata.sys block.
type Sys struct {
	MethodName string    // the function name
	UtcNow     time.Time // when the host built the invocation, in UTC; zero when absent
	RandGuid   string    // a random GUID per invocation
}

// Sys decodes Metadata.sys. The block may itself arrive as an encoded string
// and each field may be double-encoded (C15); both are accepted.
func (r *InvocationRequest) Sys() (Sys, error) {
	if r == nil {
		return Sys{}, errors.New("funcs: nil invocation")
	}
	raw, ok := r.Metadata["sys"]
	if !ok {
		return Sys{}, errors.New("funcs: invocation has no Metadata.sys")
	}
	var wire struct {
		MethodName json.RawMessage
		UtcNow     json.RawMessage
		RandGuid   json.RawMessage
	}
	if err := json.Unmarshal(DecodeScalar(raw), &wire); err != nil {
		return Sys{}, fmt.Errorf("funcs: decode Metadata.sys: %w", err)
	}
	var sys Sys
	if wire.MethodName != nil {
		s, ok := scalarString(wire.MethodName)
		if !ok {
			return Sys{}, errors.New("funcs: Metadata.sys.MethodName is not a string")
		}
		sys.MethodName = s
	}
	if wire.RandGuid != nil {
		s, ok := scalarString(wire.RandGuid)
		if !ok {
			return Sys{}, errors.New("funcs: Metadata.sys.RandGuid is not a string")
		}
		sys.RandGuid = s
	}
	if wire.UtcNow != nil {
		t, err := timeField(wire.UtcNow)
		if err != nil {
			return Sys{}, fmt.Errorf("funcs: Metadata.sys.UtcNow: %w", err)
		}
		sys.UtcNow = t
	}
	return sys, nil
}

// TimerInfo is the value of a timer trigger binding.
type TimerInfo struct {
	AdjustForDST bool
	Status       *ScheduleStatus // nil when the host has no schedule status yet (first run)
	IsPastDue    bool            // this run makes up for a missed occurrence
}

// ScheduleStatus is the host's record of a timer's schedule. Zero times stand
// for .NET's DateTime.MinValue ("0001-01-01T00:00:00+00:00").
type ScheduleStatus struct {
	Last, Next, LastUpdated time.Time
}

// Timer decodes Data[binding] as a timer trigger value. The value may be the
// object itself or a JSON string carrying it (double-encoded); booleans may
// arrive as strings; dates are parsed with ParseTime (C14).
func (r *InvocationRequest) Timer(binding string) (TimerInfo, error) {
	if r == nil {
		return TimerInfo{}, errors.New("funcs: nil invocation")
	}
	raw, ok := r.Data[binding]
	if !ok {
		return TimerInfo{}, fmt.Errorf("funcs: invocation has no Data.%s", binding)
	}
	raw = DecodeScalar(raw)
	raw = DecodeScalar(raw) // tolerate one more level (value encoded by a worker, then by the host)
	var wire struct {
		Schedule       json.RawMessage
		ScheduleStatus json.RawMessage
		IsPastDue      json.RawMessage
	}
	if err := json.Unmarshal(raw, &wire); err != nil {
		return TimerInfo{}, fmt.Errorf("funcs: decode Data.%s as a timer: %w", binding, err)
	}
	var info TimerInfo
	var err error
	if info.IsPastDue, err = boolField(wire.IsPastDue); err != nil {
		return TimerInfo{}, fmt.Errorf("funcs: Data.%s.IsPastDue: %w", binding, err)
	}
	if sched := DecodeScalar(wire.Schedule); len(sched) > 0 && !isNull(sched) {
		var s struct{ AdjustForDST json.RawMessage }
		if err := json.Unmarshal(sched, &s); err != nil {
			return TimerInfo{}, fmt.Errorf("funcs: Data.%s.Schedule: %w", binding, err)
		}
		if info.AdjustForDST, err = boolField(s.AdjustForDST); err != nil {
			return TimerInfo{}, fmt.Errorf("funcs: Data.%s.Schedule.AdjustForDST: %w", binding, err)
		}
	}
	if st := DecodeScalar(wire.ScheduleStatus); len(st) > 0 && !isNull(st) {
		var s struct{ Last, Next, LastUpdated json.RawMessage }
		if err := json.Unmarshal(st, &s); err != nil {
			return TimerInfo{}, fmt.Errorf("funcs: Data.%s.ScheduleStatus: %w", binding, err)
		}
		status := &ScheduleStatus{}
		for _, f := range []struct {
			name string
			raw  json.RawMessage
			dst  *time.Time
		}{{"Last", s.Last, &status.Last}, {"Next", s.Next, &status.Next}, {"LastUpdated", s.LastUpdated, &status.LastUpdated}} {
			if f.raw == nil {
				continue
			}
			if *f.dst, err = timeField(f.raw); err != nil {
				return TimerInfo{}, fmt.Errorf("funcs: Data.%s.ScheduleStatus.%s: %w", binding, f.name, err)
			}
		}
		info.Status = status
	}
	return info, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// boolField reads an absent/null value as false, and true/false also when
// encoded as a string ("true", "True").
func boolField(raw json.RawMessage) (bool, error) {
	if len(raw) == 0 || isNull(raw) {
		return false, nil
	}
	s, ok := scalarString(raw)
	if !ok {
		return false, errors.New("not a boolean")
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, errors.New("not a boolean")
	}
	return b, nil
}

// timeField reads a (possibly double-encoded) date string; null is the zero time.
func timeField(raw json.RawMessage) (time.Time, error) {
	if isNull(raw) {
		return time.Time{}, nil
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return time.Time{}, errors.New("not a date string")
	}
	s, ok := scalarString(raw)
	if !ok {
		return time.Time{}, errors.New("not a date string")
	}
	return ParseTime(s)
}

// ParseTime parses a .NET round-trip date leniently, as the host writes them:
// "2022-10-11T10:52:00.003967+02:00", "2024-05-14T15:14:15.128919Z",
// "2024-05-14T15:14:15" (no offset: taken as UTC) and DateTime.MinValue
// "0001-01-01T00:00:00+00:00" (the zero time). It accepts 0 to 7 fractional
// digits (.NET's tick resolution) and a "Z" or ±hh:mm offset. The result is in UTC.
//
// NOTE: more than 7 fractional digits, a comma as decimal separator, an
// offset without its colon and surrounding spaces are refused, though Go's
// time.Parse would take some of them: no .NET serializer writes them.
func ParseTime(s string) (time.Time, error) {
	const datePart = len("2006-01-02T15:04:05")
	bad := fmt.Errorf("funcs: %q is not a .NET round-trip date", truncate(s, 40))
	if len(s) < datePart {
		return time.Time{}, bad
	}
	rest := s[datePart:]
	// Fraction: '.' and 1..7 digits.
	if strings.HasPrefix(rest, ".") {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if digits := n - 1; digits < 1 || digits > 7 {
			return time.Time{}, bad
		}
		rest = rest[n:]
	}
	// Zone: none, Z, or ±hh:mm.
	layout := "2006-01-02T15:04:05"
	switch {
	case rest == "":
	case rest == "Z":
		layout += "Z07:00"
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
		isDigits(rest[1:3]) && isDigits(rest[4:6]):
		layout += "Z07:00"
	default:
		return time.Time{}, bad
	}
	// Go's parser itself accepts the fraction after the seconds.
	t, err := time.Parse(layout, s)
	if err != nil {
		return time.Time{}, bad
	}
	return t.UTC(), nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
