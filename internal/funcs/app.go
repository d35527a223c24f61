package funcs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DefaultFunctionTimeout is the host's functionTimeout when host.json sets none.
const DefaultFunctionTimeout = 5 * time.Minute

// maxConfigBytes bounds host.json and function.json reads.
const maxConfigBytes = 1 << 20

// Binding is one entry of a function.json "bindings" array.
type Binding struct {
	Type      string   // "httpTrigger", "http", "timerTrigger", …
	Direction string   // "in", "out" or "inout"
	Name      string   // the key under Data (in) or Outputs (out); "$return" for the return value
	Schedule  string   // timerTrigger: NCRONTAB expression or %AppSetting%
	AuthLevel string   // httpTrigger: "anonymous", "function", "admin"
	Methods   []string // httpTrigger: allowed methods as written ("get"); empty allows all
	Route     string   // httpTrigger: route template under the route prefix; empty = the function name
	// RunOnStartup (timerTrigger) asks for one run when the host starts.
	RunOnStartup bool
	// UseMonitor (timerTrigger) keeps the schedule status so that a missed
	// occurrence runs late with IsPastDue; nil means the host's default (on).
	UseMonitor *bool
}

// Function is one function folder: its name (the folder's) and bindings.
type Function struct {
	Name     string
	Bindings []Binding
}

// Trigger returns the function's trigger binding (direction in, type ending
// in "Trigger"), if any.
func (f Function) Trigger() (Binding, bool) {
	for _, b := range f.Bindings {
		if strings.EqualFold(b.Direction, "in") && strings.HasSuffix(strings.ToLower(b.Type), "trigger") {
			return b, true
		}
	}
	return Binding{}, false
}

// HostConfig is what this project reads from host.json.
type HostConfig struct {
	Version         string // must be "2.0"
	FunctionTimeout string // .NET TimeSpan ("00:05:00"); see Timeout
	CustomHandler   struct {
		DefaultExecutablePath       string   // customHandler.description.defaultExecutablePath
		WorkingDirectory            string   // customHandler.description.workingDirectory
		Arguments                   []string // customHandler.description.arguments
		EnableForwardingHTTPRequest bool     // customHandler.enableForwardingHttpRequest
	}
	ExtensionBundle struct{ ID, Version string }
	// RoutePrefix is extensions.http.routePrefix: "api" when absent, possibly "".
	RoutePrefix string
}

// Timeout returns functionTimeout as a duration: DefaultFunctionTimeout when
// unset, 0 for "-1" (no limit).
func (c HostConfig) Timeout() (time.Duration, error) {
	s := strings.TrimSpace(c.FunctionTimeout)
	switch s {
	case "":
		return DefaultFunctionTimeout, nil
	case "-1":
		return 0, nil
	}
	return ParseTimeSpan(s)
}

var timeSpanRE = regexp.MustCompile(`^(?:(\d{1,7})\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?$`)

// ParseTimeSpan parses a non-negative .NET TimeSpan in the forms host.json
// uses: "[d.]hh:mm[:ss[.fffffff]]".
func ParseTimeSpan(s string) (time.Duration, error) {
	m := timeSpanRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("funcs: %q is not a TimeSpan like 00:05:00", truncate(s, 40))
	}
	num := func(v string) int64 {
		if v == "" {
			return 0
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	days, h, mi, sec := num(m[1]), num(m[2]), num(m[3]), num(m[4])
	// time.Duration holds about 106751 days; more would wrap negative.
	const maxDays = int64(math.MaxInt64/int64(24*time.Hour)) - 1
	if h > 23 || mi > 59 || sec > 59 || days > maxDays {
		return 0, fmt.Errorf("funcs: %q is not a TimeSpan: field out of range", truncate(s, 40))
	}
	frac := m[5]
	var ns int64
	if frac != "" {
		ns = num((frac + "000000000")[:9])
	}
	d := time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour +
		time.Duration(mi)*time.Minute + time.Duration(sec)*time.Second + time.Duration(ns)
	return d, nil
}

// LoadHostConfig reads root/host.json. It is plain JSON (the host accepts no
// comments there either); unknown sections are ignored.
func LoadHostConfig(root string) (HostConfig, error) {
	b, err := readConfig(filepath.Join(root, "host.json"))
	if err != nil {
		return HostConfig{}, err
	}
	var wire struct {
		Version         string
		FunctionTimeout string
		CustomHandler   struct {
			Description struct {
				DefaultExecutablePath string
				WorkingDirectory      string
				Arguments             []string
			}
			EnableForwardingHTTPRequest bool `json:"enableForwardingHttpRequest"`
		}
		ExtensionBundle struct {
			ID      string `json:"id"`
			Version string `json:"version"`
		}
		Extensions struct {
			HTTP struct {
				RoutePrefix *string `json:"routePrefix"`
			} `json:"http"`
		}
	}
	if err := json.Unmarshal(b, &wire); err != nil {
		return HostConfig{}, fmt.Errorf("funcs: host.json: %w", err)
	}
	var c HostConfig
	c.Version = wire.Version
	c.FunctionTimeout = wire.FunctionTimeout
	c.CustomHandler.DefaultExecutablePath = wire.CustomHandler.Description.DefaultExecutablePath
	c.CustomHandler.WorkingDirectory = wire.CustomHandler.Description.WorkingDirectory
	c.CustomHandler.Arguments = wire.CustomHandler.Description.Arguments
	c.CustomHandler.EnableForwardingHTTPRequest = wire.CustomHandler.EnableForwardingHTTPRequest
	c.ExtensionBundle.ID = wire.ExtensionBundle.ID
	c.ExtensionBundle.Version = wire.ExtensionBundle.Version
	c.RoutePrefix = "api"
	if p := wire.Extensions.HTTP.RoutePrefix; p != nil {
		c.RoutePrefix = strings.Trim(*p, "/")
	}
	var problems []error
	if c.Version != "2.0" {
		problems = append(problems, errors.New(`funcs: host.json: version must be "2.0"`))
	}
	if _, err := c.Timeout(); err != nil {
		problems = append(problems, fmt.Errorf("funcs: host.json: functionTimeout: %w", err))
	}
	return c, errors.Join(problems...)
}

// functionNameRE is the host's rule for function names.
var functionNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_\-]{0,127}$`)

// LoadApp reads root/host.json and every function folder under root (a
// direct subfolder holding function.json), sorted by name. Folders without
// function.json are not functions and are skipped; a malformed function.json
// or an invalid function name is an error.
//
// NOTE: it fails where the host would only log and skip a function (no
// trigger or several, a bad direction, two names differing only in case):
// a function silently missing in Azure is worse than a failed start.
func LoadApp(root string) (HostConfig, []Function, error) {
	cfg, err := LoadHostConfig(root)
	if err != nil {
		return HostConfig{}, nil, err
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return HostConfig{}, nil, fmt.Errorf("funcs: read app root: %w", err)
	}
	var fns []Function
	seen := map[string]string{}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := readConfig(filepath.Join(root, e.Name(), "function.json"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return HostConfig{}, nil, err
		}
		name := e.Name()
		if !functionNameRE.MatchString(name) {
			return HostConfig{}, nil, fmt.Errorf("funcs: %q is not a valid function name", name)
		}
		if other, dup := seen[strings.ToLower(name)]; dup {
			return HostConfig{}, nil, fmt.Errorf("funcs: functions %q and %q differ only in case", other, name)
		}
		seen[strings.ToLower(name)] = name
		fn, err := parseFunction(name, b)
		if err != nil {
			return HostConfig{}, nil, err
		}
		fns = append(fns, fn)
	}
	sort.Slice(fns, func(i, j int) bool { return fns[i].Name < fns[j].Name })
	return cfg, fns, nil
}

func parseFunction(name string, b []byte) (Function, error) {
	var wire struct {
		Bindings []struct {
			Type      string   `json:"type"`
			Direction string   `json:"direction"`
			Name      string   `json:"name"`
			Schedule  string   `json:"schedule"`
			AuthLevel string   `json:"authLevel"`
			Methods   []string `json:"methods"`
			Route     string   `json:"route"`

			RunOnStartup bool  `json:"runOnStartup"`
			UseMonitor   *bool `json:"useMonitor"`
		} `json:"bindings"`
	}
	if err := json.Unmarshal(b, &wire); err != nil {
		return Function{}, fmt.Errorf("funcs: %s/function.json: %w", name, err)
	}
	fn := Function{Name: name}
	triggers := 0
	for i, w := range wire.Bindings {
		if w.Type == "" || w.Name == "" {
			return Function{}, fmt.Errorf("funcs: %s/function.json: binding %d needs a type and a name", name, i)
		}
		switch strings.ToLower(w.Direction) {
		case "in", "out", "inout":
		default:
			return Function{}, fmt.Errorf("funcs: %s/function.json: binding %q: direction must be in, out or inout", name, w.Name)
		}
		b := Binding(w)
		fn.Bindings = append(fn.Bindings, b)
		if strings.EqualFold(b.Direction, "in") && strings.HasSuffix(strings.ToLower(b.Type), "trigger") {
			triggers++
		}
	}
	if triggers != 1 {
		return Function{}, fmt.Errorf("funcs: %s/function.json: want exactly one trigger binding, found %d", name, triggers)
	}
	return fn, nil
}

func readConfig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("funcs: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("funcs: read %s: %w", filepath.Base(path), err)
	}
	if len(b) > maxConfigBytes {
		return nil, fmt.Errorf("funcs: %s is larger than 1 MiB", filepath.Base(path))
	}
	return b, nil
}
