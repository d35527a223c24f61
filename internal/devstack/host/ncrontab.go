package host

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed six-field NCRONTAB expression, the timer-trigger
// schedule format: "second minute hour day month day-of-week", evaluated in
// UTC (as on Flex Consumption). Each field takes "*", a value, a range "a-b",
// a step "*/n", "a-b/n" or "a/n", or a comma-separated list of those; months
// and days of the week also take English names (Jan, January, Mon, Monday).
// Day of week runs 0-6 from Sunday.
//
// NOTE: like NCrontab and unlike Vixie cron, a time must match both the day
// of month and the day of week when both are restricted ("0 0 0 13 * Fri" is
// Friday the 13th only).
type Schedule struct {
	expr                                  string
	second, minute, hour, dom, month, dow uint64 // bit i set = value i allowed
}

type cronField struct {
	name     string
	min, max int
	names    []string // index = value - min offset handled by nameBase
	nameBase int
}

var cronFields = [6]cronField{
	{name: "second", min: 0, max: 59},
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day", min: 1, max: 31},
	{name: "month", min: 1, max: 12, nameBase: 1, names: []string{"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"}},
	{name: "day of week", min: 0, max: 6, nameBase: 0, names: []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}},
}

// maxScheduleExprLen bounds what ParseSchedule reads.
const maxScheduleExprLen = 512

// ParseSchedule parses a six-field NCRONTAB expression.
func ParseSchedule(expr string) (Schedule, error) {
	if len(expr) > maxScheduleExprLen {
		return Schedule{}, errors.New("host: NCRONTAB expression too long")
	}
	parts := strings.Fields(expr)
	if len(parts) != 6 {
		return Schedule{}, fmt.Errorf("host: NCRONTAB %q: want 6 fields (second minute hour day month day-of-week), got %d", expr, len(parts))
	}
	s := Schedule{expr: strings.Join(parts, " ")}
	dst := [6]*uint64{&s.second, &s.minute, &s.hour, &s.dom, &s.month, &s.dow}
	for i, p := range parts {
		bits, err := parseCronField(cronFields[i], p)
		if err != nil {
			return Schedule{}, fmt.Errorf("host: NCRONTAB %q: %w", expr, err)
		}
		*dst[i] = bits
	}
	return s, nil
}

// String returns the expression, fields separated by single spaces.
func (s Schedule) String() string { return s.expr }

func parseCronField(f cronField, text string) (uint64, error) {
	var bits uint64
	for _, item := range strings.Split(text, ",") {
		if item == "" {
			return 0, fmt.Errorf("%s: empty list item", f.name)
		}
		rangePart, stepPart, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepPart)
			if err != nil || n < 1 || n > f.max-f.min+1 {
				return 0, fmt.Errorf("%s: bad step %q", f.name, stepPart)
			}
			step = n
		}
		lo, hi := f.min, f.max
		switch {
		case rangePart == "*":
		default:
			a, b, isRange := strings.Cut(rangePart, "-")
			var err error
			if lo, err = f.value(a); err != nil {
				return 0, err
			}
			switch {
			case isRange:
				if hi, err = f.value(b); err != nil {
					return 0, err
				}
				if hi < lo {
					return 0, fmt.Errorf("%s: range %q runs backwards", f.name, rangePart)
				}
			case hasStep: // "a/n" runs from a to the field's maximum
			default:
				hi = lo
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, nil
}

func (f cronField) value(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < f.min || n > f.max {
			return 0, fmt.Errorf("%s: %d is outside %d-%d", f.name, n, f.min, f.max)
		}
		return n, nil
	}
	ls := strings.ToLower(s)
	for i, name := range f.names {
		if len(ls) >= 3 && (ls == name || ls == name[:3]) {
			return i + f.nameBase, nil
		}
	}
	return 0, fmt.Errorf("%s: %q is not a value", f.name, s)
}

// scheduleHorizon bounds the search for a next occurrence: long enough for
// "29 February on a Monday" (which recurs within 28 years).
const scheduleHorizon = 30

// Next returns the first whole second strictly after t, in UTC, that the
// schedule matches; false when there is none within 30 years (31 February).
func (s Schedule) Next(t time.Time) (time.Time, bool) {
	t = t.UTC().Truncate(time.Second).Add(time.Second)
	limit := t.AddDate(scheduleHorizon, 0, 0)
	has := func(bits uint64, v int) bool { return bits&(1<<uint(v)) != 0 }
	for t.Before(limit) {
		y, mo, d := t.Date()
		switch {
		case !has(s.month, int(mo)):
			t = time.Date(y, mo+1, 1, 0, 0, 0, 0, time.UTC)
		case !has(s.dom, d) || !has(s.dow, int(t.Weekday())):
			t = time.Date(y, mo, d+1, 0, 0, 0, 0, time.UTC)
		case !has(s.hour, t.Hour()):
			t = time.Date(y, mo, d, t.Hour()+1, 0, 0, 0, time.UTC)
		case !has(s.minute, t.Minute()):
			t = time.Date(y, mo, d, t.Hour(), t.Minute()+1, 0, 0, time.UTC)
		case !has(s.second, t.Second()):
			t = t.Add(time.Second)
		default:
			return t, true
		}
	}
	return time.Time{}, false
}
