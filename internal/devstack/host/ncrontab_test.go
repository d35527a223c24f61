package host

import (
	"testing"
	"time"
)

func utc(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}

func TestNCRONTABNext(t *testing.T) {
	from := utc(2024, time.May, 14, 15, 14, 15) // a Tuesday
	tests := []struct {
		name string
		expr string
		from time.Time
		want []time.Time // successive occurrences
	}{
		{"every five minutes", "0 */5 * * * *", from, []time.Time{utc(2024, 5, 14, 15, 15, 0), utc(2024, 5, 14, 15, 20, 0), utc(2024, 5, 14, 15, 25, 0)}},
		{"every second", "* * * * * *", from, []time.Time{utc(2024, 5, 14, 15, 14, 16), utc(2024, 5, 14, 15, 14, 17)}},
		{"strictly after an occurrence", "0 */5 * * * *", utc(2024, 5, 14, 15, 15, 0), []time.Time{utc(2024, 5, 14, 15, 20, 0)}},
		{"fraction of a second rounds up", "0 */5 * * * *", utc(2024, 5, 14, 15, 14, 59).Add(999 * time.Millisecond), []time.Time{utc(2024, 5, 14, 15, 15, 0)}},
		{"daily at 09:30", "0 30 9 * * *", from, []time.Time{utc(2024, 5, 15, 9, 30, 0), utc(2024, 5, 16, 9, 30, 0)}},
		{"list of hours", "0 0 8,12,18 * * *", from, []time.Time{utc(2024, 5, 14, 18, 0, 0), utc(2024, 5, 15, 8, 0, 0), utc(2024, 5, 15, 12, 0, 0)}},
		{"range with step", "0 0 9-17/4 * * *", from, []time.Time{utc(2024, 5, 14, 17, 0, 0), utc(2024, 5, 15, 9, 0, 0), utc(2024, 5, 15, 13, 0, 0)}},
		{"weekdays by range", "0 0 9 * * 1-5", utc(2024, 5, 17, 10, 0, 0), []time.Time{utc(2024, 5, 20, 9, 0, 0), utc(2024, 5, 21, 9, 0, 0)}},
		{"weekday names", "0 0 9 * * Mon,FRI", from, []time.Time{utc(2024, 5, 17, 9, 0, 0), utc(2024, 5, 20, 9, 0, 0)}},
		{"month names", "0 0 0 1 jan,July *", from, []time.Time{utc(2024, 7, 1, 0, 0, 0), utc(2025, 1, 1, 0, 0, 0)}},
		{"day and weekday both apply (NCrontab)", "0 0 0 13 * 5", from, []time.Time{utc(2024, 9, 13, 0, 0, 0), utc(2024, 12, 13, 0, 0, 0)}},
		{"29 February", "0 0 12 29 2 *", from, []time.Time{utc(2028, 2, 29, 12, 0, 0), utc(2032, 2, 29, 12, 0, 0)}},
		{"31st skips short months", "0 0 0 31 * *", from, []time.Time{utc(2024, 5, 31, 0, 0, 0), utc(2024, 7, 31, 0, 0, 0), utc(2024, 8, 31, 0, 0, 0)}},
		{"year rollover", "0 0 0 1 1 *", utc(2024, 12, 31, 23, 59, 59), []time.Time{utc(2025, 1, 1, 0, 0, 0)}},
		{"value with step runs to the maximum", "10/20 * * * * *", from, []time.Time{utc(2024, 5, 14, 15, 14, 30), utc(2024, 5, 14, 15, 14, 50), utc(2024, 5, 14, 15, 15, 10)}},
		{"extra spaces", "0  */5 *  * * *", from, []time.Time{utc(2024, 5, 14, 15, 15, 0)}},
		{"non-UTC input", "0 0 12 * * *", time.Date(2024, 5, 14, 13, 0, 0, 0, time.FixedZone("CEST", 2*3600)), []time.Time{utc(2024, 5, 14, 12, 0, 0)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSchedule(tc.expr)
			if err != nil {
				t.Fatalf("ParseSchedule(%q): %v", tc.expr, err)
			}
			at := tc.from
			for i, want := range tc.want {
				got, ok := s.Next(at)
				if !ok || !got.Equal(want) || got.Location() != time.UTC {
					t.Fatalf("occurrence %d after %v = %v, %v; want %v", i, at, got, ok, want)
				}
				at = got
			}
		})
	}
	t.Run("never", func(t *testing.T) {
		s, err := ParseSchedule("0 0 0 30 2 *")
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := s.Next(from); ok {
			t.Errorf("Next = %v, want none", got)
		}
	})
}

func TestNCRONTABParseErrors(t *testing.T) {
	for _, expr := range []string{
		"", "* * * * *", "* * * * * * *", "60 * * * * *", "* 60 * * * *", "* * 24 * * *", "* * * 0 * *",
		"* * * 32 * *", "* * * * 13 *", "* * * * * 7", "*/0 * * * * *", "5-1 * * * * *", "a * * * * *",
		"1,,2 * * * * *", "* * * * Ja *", "*/61 * * * * *", "1-2-3 * * * * *", "- * * * * *",
	} {
		if _, err := ParseSchedule(expr); err == nil {
			t.Errorf("ParseSchedule(%q) accepted", expr)
		}
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"0 */5 * * * *", "0 0 9 * * Mon-Fri", "10/20 1-5 */2 1,15 jan-jun 0", "0 0 0 29 2 *", "* * * * * *"} {
		f.Add(s, int64(1715699655))
	}
	f.Fuzz(func(t *testing.T, expr string, unix int64) {
		s, err := ParseSchedule(expr)
		if err != nil {
			return
		}
		from := time.Unix(unix%(1<<34), 0).UTC() // years 1970..2514
		next, ok := s.Next(from)
		if !ok {
			return
		}
		if !next.After(from) || !s.matches(next) || next.Nanosecond() != 0 {
			t.Fatalf("%q: Next(%v) = %v does not match or is not after", expr, from, next)
		}
		if next.Sub(from) <= 2*time.Hour { // nothing in between matches
			for at := from.Truncate(time.Second).Add(time.Second); at.Before(next); at = at.Add(time.Second) {
				if s.matches(at) {
					t.Fatalf("%q: Next(%v) = %v skips %v", expr, from, next, at)
				}
			}
		}
	})
}

// matches reports whether t (to the second, in UTC) is an occurrence.
func (s Schedule) matches(t time.Time) bool {
	t = t.UTC()
	has := func(bits uint64, v int) bool { return bits&(1<<uint(v)) != 0 }
	return has(s.month, int(t.Month())) && has(s.dom, t.Day()) && has(s.dow, int(t.Weekday())) &&
		has(s.hour, t.Hour()) && has(s.minute, t.Minute()) && has(s.second, t.Second())
}
