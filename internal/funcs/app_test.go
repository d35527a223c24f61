package funcs

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const testHostJSON = `{
  "version": "2.0",
  "functionTimeout": "00:05:00",
  "logging": {"logLevel": {"default": "Information"}},
  "extensionBundle": {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"},
  "customHandler": {
    "description": {"defaultExecutablePath": "handler", "workingDirectory": "", "arguments": []},
    "enableForwardingHttpRequest": true
  }
}`

func TestLoadApp(t *testing.T) {
	root := writeFiles(t, map[string]string{
		"host.json": testHostJSON,
		"WeatherHttp/function.json": `{"bindings":[
			{"authLevel":"anonymous","type":"httpTrigger","direction":"in","name":"req","methods":["get"]},
			{"type":"http","direction":"out","name":"res"}]}`,
		"CallerTimer/function.json": `{"bindings":[{"name":"myTimer","type":"timerTrigger","direction":"in","schedule":"0 */5 * * * *","runOnStartup":true,"useMonitor":false}]}`,
		"cmd/handler/main.go":       "package main",
		".git/function.json":        "not a function",
	})
	cfg, fns, err := LoadApp(root)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Version != "2.0" || cfg.CustomHandler.DefaultExecutablePath != "handler" || !cfg.CustomHandler.EnableForwardingHTTPRequest ||
		cfg.ExtensionBundle.ID != "Microsoft.Azure.Functions.ExtensionBundle" || cfg.ExtensionBundle.Version != "[4.*, 5.0.0)" || cfg.RoutePrefix != "api" {
		t.Errorf("cfg = %+v", cfg)
	}
	if d, err := cfg.Timeout(); err != nil || d != 5*time.Minute {
		t.Errorf("Timeout() = %v, %v", d, err)
	}
	off := false
	want := []Function{
		{Name: "CallerTimer", Bindings: []Binding{{Type: "timerTrigger", Direction: "in", Name: "myTimer", Schedule: "0 */5 * * * *", RunOnStartup: true, UseMonitor: &off}}},
		{Name: "WeatherHttp", Bindings: []Binding{
			{Type: "httpTrigger", Direction: "in", Name: "req", AuthLevel: "anonymous", Methods: []string{"get"}},
			{Type: "http", Direction: "out", Name: "res"}}},
	}
	if !reflect.DeepEqual(fns, want) {
		t.Errorf("functions = %+v\nwant %+v", fns, want)
	}
	if tr, ok := fns[1].Trigger(); !ok || tr.Name != "req" {
		t.Errorf("Trigger() = %+v, %v", tr, ok)
	}
}

func TestLoadAppErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"no host.json", map[string]string{"A/function.json": `{}`}, "host.json"},
		{"host.json with comments", map[string]string{"host.json": "// c\n" + testHostJSON}, "host.json"},
		{"wrong version", map[string]string{"host.json": `{"version":"1.0"}`}, "version"},
		{"bad timeout", map[string]string{"host.json": `{"version":"2.0","functionTimeout":"5m"}`}, "functionTimeout"},
		{"bad function.json", map[string]string{"host.json": testHostJSON, "A/function.json": `{"bindings":[`}, "A/function.json"},
		{"no trigger", map[string]string{"host.json": testHostJSON, "A/function.json": `{"bindings":[{"type":"http","direction":"out","name":"res"}]}`}, "trigger"},
		{"bad direction", map[string]string{"host.json": testHostJSON, "A/function.json": `{"bindings":[{"type":"timerTrigger","direction":"sideways","name":"t"}]}`}, "direction"},
		{"bad name", map[string]string{"host.json": testHostJSON, "9lives/function.json": `{"bindings":[{"type":"timerTrigger","direction":"in","name":"t"}]}`}, "function name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := LoadApp(writeFiles(t, tc.files))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestParseTimeSpan(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "00:05:00", want: 5 * time.Minute},
		{in: "00:00:30.5", want: 30*time.Second + 500*time.Millisecond},
		{in: "1.02:00:00", want: 26 * time.Hour},
		{in: "02:30", want: 2*time.Hour + 30*time.Minute},
		{in: "00:00:00.0000001", want: 100 * time.Nanosecond},
		{in: "24:00:00", wantErr: true},
		{in: "00:60:00", wantErr: true},
		{in: "5m", wantErr: true},
		{in: "", wantErr: true},
		{in: "106750.00:00:00", want: 106750 * 24 * time.Hour},
		{in: "9999999.00:00:00", wantErr: true}, // would wrap time.Duration negative
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseTimeSpan(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ParseTimeSpan(%q) = %v, %v", tc.in, got, err)
			}
		})
	}
	for in, want := range map[string]time.Duration{"": DefaultFunctionTimeout, "-1": 0, "00:10:00": 10 * time.Minute} {
		if got, err := (HostConfig{FunctionTimeout: in}).Timeout(); err != nil || got != want {
			t.Errorf("Timeout(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func FuzzParseTimeSpan(f *testing.F) {
	for _, s := range []string{"00:05:00", "1.02:00:00", "9999999.23:59:59.9999999", "02:30", "-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseTimeSpan(s); err == nil && d < 0 {
			t.Errorf("ParseTimeSpan(%q) = %v, negative", s, d)
		}
	})
}

func ExampleInvocationRequest_Timer() {
	body := `{"Data":{"myTimer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}},` +
		`"Metadata":{"sys":{"MethodName":"\"CallerTimer\"","UtcNow":"2024-05-14T15:14:15.1289190+00:00","RandGuid":"7a85f722-f6ba-4add-9a45-7ed862be02ae"}}}`
	req, err := DecodeInvocation(strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	sys, _ := req.Sys()
	timer, _ := req.Timer("myTimer")
	fmt.Println(sys.MethodName, sys.UtcNow.Format(time.RFC3339Nano))
	fmt.Println("first run:", timer.Status == nil, "past due:", timer.IsPastDue)
	// Output:
	// CallerTimer 2024-05-14T15:14:15.128919Z
	// first run: true past due: false
}
