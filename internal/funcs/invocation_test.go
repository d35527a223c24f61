package funcs

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustDecode(t *testing.T, body string) *InvocationRequest {
	t.Helper()
	req, err := DecodeInvocation(strings.NewReader(body))
	if err != nil {
		t.Fatalf("DecodeInvocation: %v", err)
	}
	return req
}

func TestDecodeInvocation(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr bool
	}{
		{"empty object", `{}`, false},
		{"unknown fields ignored", `{"Data":{},"Metadata":{},"Extra":1}`, false},
		{"lower-case keys", `{"data":{"a":"1"},"metadata":{}}`, false},
		{"trailing garbage", `{"Data":{}} {"Data":{}}`, true},
		{"not an object", `[1,2]`, true},
		{"empty body", ``, true},
		{"truncated", `{"Data":{"a":`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeInvocation(strings.NewReader(tc.body))
			if (err != nil) != tc.wantErr {
				t.Errorf("err = %v, want error: %v", err, tc.wantErr)
			}
		})
	}
	t.Run("size cap", func(t *testing.T) {
		big := `{"Data":{"x":"` + strings.Repeat("a", MaxInvocationBytes) + `"}}`
		_, err := DecodeInvocation(strings.NewReader(big))
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("err = %v, want ErrTooLarge", err)
		}
		justFits := `{"Data":{"x":"` + strings.Repeat("a", MaxInvocationBytes-20) + `"}}`
		if _, err := DecodeInvocation(strings.NewReader(justFits)); err != nil {
			t.Errorf("body under the cap: %v", err)
		}
	})
}

func TestDecodeScalar(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"C15 double-encoded string", `"\"Oslo\""`, `"Oslo"`},
		{"plain string stays", `"Oslo"`, `"Oslo"`},
		{"encoded object", `"{\"a\":1}"`, `{"a":1}`},
		{"encoded number", `"1"`, `1`},
		{"number stays", `1`, `1`},
		{"object stays", `{"a":"\"x\""}`, `{"a":"\"x\""}`},
		{"empty string stays", `""`, `""`},
		{"only one level", `"\"\\\"x\\\"\""`, `"\"x\""`},
		{"invalid JSON stays", `"{not json"`, `"{not json"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(DecodeScalar(json.RawMessage(tc.in))); got != tc.want {
				t.Errorf("DecodeScalar(%s) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestC15_DoubleEncodedScalars(t *testing.T) {
	body := `{"Data":{"city":"\"Oslo\"","plain":"Bergen","count":"3","flag":true,"obj":{"a":1}},` +
		`"Metadata":{"region":"\"norway-east\"","sys":{"MethodName":"\"CallerTimer\"","UtcNow":"\"2024-05-14T15:14:15.1289190Z\"","RandGuid":"\"7a85f722-f6ba-4add-9a45-7ed862be02ae\""}}}`
	req := mustDecode(t, body)

	sys, err := req.Sys()
	if err != nil {
		t.Fatalf("Sys: %v", err)
	}
	if sys.MethodName != "CallerTimer" {
		t.Errorf("MethodName = %q, want CallerTimer", sys.MethodName)
	}
	if sys.RandGuid != "7a85f722-f6ba-4add-9a45-7ed862be02ae" {
		t.Errorf("RandGuid = %q", sys.RandGuid)
	}
	if want := time.Date(2024, 5, 14, 15, 14, 15, 128919000, time.UTC); !sys.UtcNow.Equal(want) {
		t.Errorf("UtcNow = %v, want %v", sys.UtcNow, want)
	}

	tests := []struct {
		name   string
		want   string
		wantOK bool
	}{
		{"city", "Oslo", true},
		{"plain", "Bergen", true},
		{"count", "3", true},
		{"flag", "true", true},
		{"obj", "", false},
		{"region", "norway-east", true}, // from Metadata
		{"missing", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := req.String(tc.name)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("String(%q) = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.wantOK)
			}
		})
	}

	t.Run("sys block itself encoded", func(t *testing.T) {
		req := mustDecode(t, `{"Metadata":{"sys":"{\"MethodName\":\"\\\"CallerTimer\\\"\"}"}}`)
		sys, err := req.Sys()
		if err != nil || sys.MethodName != "CallerTimer" {
			t.Errorf("Sys() = %+v, %v", sys, err)
		}
	})
	t.Run("no sys", func(t *testing.T) {
		if _, err := mustDecode(t, `{"Metadata":{}}`).Sys(); err == nil {
			t.Error("want an error")
		}
	})
}

func TestRecorded01_QueueTrigger(t *testing.T) {
	req, err := DecodeInvocation(bytes.NewReader(readTestdata(t, "01-queue-trigger-request.docs.json")))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := req.String("myQueueItem"); got != `{ message: "Message sent" }` {
		t.Errorf("myQueueItem = %q", got)
	}
	if got, _ := req.String("DequeueCount"); got != "1" {
		t.Errorf("DequeueCount = %q", got)
	}
	sys, err := req.Sys()
	if err != nil {
		t.Fatal(err)
	}
	if sys.MethodName != "QueueTrigger" || sys.UtcNow.IsZero() {
		t.Errorf("sys = %+v", sys)
	}
}

func TestRecorded03_CosmosDBDoubleEncoded(t *testing.T) {
	req, err := DecodeInvocation(bytes.NewReader(readTestdata(t, "03-cosmosdb-trigger-request.go-test.json")))
	if err != nil {
		t.Fatal(err)
	}
	docsJSON, ok := req.String("documents")
	if !ok {
		t.Fatal("no documents")
	}
	var docs []struct {
		ID       string `json:"id"`
		City     string `json:"city"`
		Rooms    int    `json:"roomCount"`
		ETag     string `json:"_etag"`
		SaleNull *int   `json:"salePrice"`
	}
	if err := json.Unmarshal([]byte(docsJSON), &docs); err != nil {
		t.Fatalf("documents are not the JSON array they encode: %v\n%s", err, docsJSON)
	}
	if len(docs) != 1 || docs[0].ID != "ArtHabitat_AHProj055_AHFlat681" || docs[0].City != "Salzburg" || docs[0].Rooms != 2 || docs[0].SaleNull != nil {
		t.Errorf("docs = %+v", docs)
	}
	if docs[0].ETag != `"0000fe06-0000-1500-0000-661c2c970000"` {
		t.Errorf("_etag = %q (embedded quotes must survive)", docs[0].ETag)
	}
	// The same through DecodeScalar twice: string → string → array.
	if got := DecodeScalar(DecodeScalar(req.Data["documents"])); len(got) == 0 || got[0] != '[' {
		t.Errorf("DecodeScalar twice = %.20s…", got)
	}
	sys, err := req.Sys()
	if err != nil || sys.MethodName != "CosmosTrigger" {
		t.Errorf("Sys() = %+v, %v", sys, err)
	}
}

func TestRecorded05_TimerInfo(t *testing.T) {
	value := readTestdata(t, "05-timerinfo-value.log-capture.json")
	encoded, err := json.Marshal(string(bytes.TrimSpace(value)))
	if err != nil {
		t.Fatal(err)
	}
	cet := time.FixedZone("", 2*3600)
	for _, tc := range []struct{ name, data string }{
		{"as an object", string(value)},
		{"double-encoded", string(encoded)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := mustDecode(t, `{"Data":{"myTimer":`+tc.data+`},"Metadata":{}}`)
			info, err := req.Timer("myTimer")
			if err != nil {
				t.Fatalf("Timer: %v", err)
			}
			if !info.AdjustForDST || info.IsPastDue || info.Status == nil {
				t.Fatalf("info = %+v", info)
			}
			if want := time.Date(2022, 10, 11, 10, 52, 0, 3967000, cet); !info.Status.Last.Equal(want) {
				t.Errorf("Last = %v, want %v", info.Status.Last, want)
			}
			if want := time.Date(2022, 10, 11, 10, 53, 0, 0, cet); !info.Status.Next.Equal(want) {
				t.Errorf("Next = %v, want %v", info.Status.Next, want)
			}
			if !info.Status.LastUpdated.Equal(info.Status.Last) {
				t.Errorf("LastUpdated = %v", info.Status.LastUpdated)
			}
		})
	}
}

func TestC14_TimerDates(t *testing.T) {
	tests := []struct {
		name      string
		value     string
		wantErr   bool
		wantPast  bool
		wantNil   bool
		wantLast  time.Time
		wantNext  time.Time
		wantAdjst bool
	}{
		{name: "C14 ScheduleStatus null (first run)",
			value:   `{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}`,
			wantNil: true, wantAdjst: true},
		{name: "C14 ScheduleStatus absent", value: `{"IsPastDue":false}`, wantNil: true},
		{name: "C14 Last is DateTime.MinValue",
			value:    `{"Schedule":{"AdjustForDST":false},"ScheduleStatus":{"Last":"0001-01-01T00:00:00+00:00","Next":"2024-05-14T15:15:00+00:00","LastUpdated":"0001-01-01T00:00:00+00:00"},"IsPastDue":false}`,
			wantLast: time.Time{}, wantNext: time.Date(2024, 5, 14, 15, 15, 0, 0, time.UTC)},
		{name: "C14 seven fractional digits",
			value:    `{"ScheduleStatus":{"Last":"2024-05-14T15:14:00.1234567+00:00","Next":"2024-05-14T15:15:00.0000000+00:00","LastUpdated":"2024-05-14T15:14:00.1234567Z"}}`,
			wantLast: time.Date(2024, 5, 14, 15, 14, 0, 123456700, time.UTC), wantNext: time.Date(2024, 5, 14, 15, 15, 0, 0, time.UTC)},
		{name: "C14 dates without offset are UTC",
			value:    `{"ScheduleStatus":{"Last":"2024-05-14T15:14:00","Next":"2024-05-14T15:15:00.5","LastUpdated":"2024-05-14T15:14:00"}}`,
			wantLast: time.Date(2024, 5, 14, 15, 14, 0, 0, time.UTC), wantNext: time.Date(2024, 5, 14, 15, 15, 0, 500000000, time.UTC)},
		{name: "C14 IsPastDue true honoured",
			value:    `{"Schedule":{"AdjustForDST":true},"ScheduleStatus":{"Last":"2024-05-14T15:10:00+00:00","Next":"2024-05-14T15:11:00+00:00","LastUpdated":"2024-05-14T15:10:00+00:00"},"IsPastDue":true}`,
			wantPast: true, wantAdjst: true,
			wantLast: time.Date(2024, 5, 14, 15, 10, 0, 0, time.UTC), wantNext: time.Date(2024, 5, 14, 15, 11, 0, 0, time.UTC)},
		{name: "C14 IsPastDue as a string", value: `{"IsPastDue":"True"}`, wantPast: true, wantNil: true},
		{name: "C15 whole value double-encoded",
			value:    `"{\"ScheduleStatus\":{\"Last\":\"0001-01-01T00:00:00+00:00\",\"Next\":\"2024-01-01T00:00:00Z\",\"LastUpdated\":\"0001-01-01T00:00:00+00:00\"},\"IsPastDue\":true}"`,
			wantPast: true, wantNext: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
		{name: "bad date", value: `{"ScheduleStatus":{"Last":"yesterday"}}`, wantErr: true},
		{name: "date as number", value: `{"ScheduleStatus":{"Last":1715699655}}`, wantErr: true},
		{name: "IsPastDue not a boolean", value: `{"IsPastDue":"maybe"}`, wantErr: true},
		{name: "not an object", value: `[true]`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := mustDecode(t, `{"Data":{"myTimer":`+tc.value+`}}`)
			info, err := req.Timer("myTimer")
			if tc.wantErr {
				if err == nil {
					t.Errorf("want an error, got %+v", info)
				}
				return
			}
			if err != nil {
				t.Fatalf("Timer: %v", err)
			}
			if info.IsPastDue != tc.wantPast || info.AdjustForDST != tc.wantAdjst {
				t.Errorf("IsPastDue=%v AdjustForDST=%v, want %v %v", info.IsPastDue, info.AdjustForDST, tc.wantPast, tc.wantAdjst)
			}
			if tc.wantNil {
				if info.Status != nil {
					t.Errorf("Status = %+v, want nil", info.Status)
				}
				return
			}
			if info.Status == nil {
				t.Fatal("Status is nil")
			}
			if !info.Status.Last.Equal(tc.wantLast) || (tc.wantLast.IsZero() && !info.Status.Last.IsZero()) {
				t.Errorf("Last = %v, want %v", info.Status.Last, tc.wantLast)
			}
			if !info.Status.Next.Equal(tc.wantNext) {
				t.Errorf("Next = %v, want %v", info.Status.Next, tc.wantNext)
			}
		})
	}
	t.Run("missing binding", func(t *testing.T) {
		if _, err := mustDecode(t, `{"Data":{}}`).Timer("myTimer"); err == nil {
			t.Error("want an error")
		}
	})
}

func TestC14_ParseTime(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "0001-01-01T00:00:00+00:00", want: time.Time{}},
		{in: "0001-01-01T00:00:00", want: time.Time{}},
		{in: "2022-10-11T10:52:00.003967+02:00", want: time.Date(2022, 10, 11, 8, 52, 0, 3967000, time.UTC)},
		{in: "2024-05-14T15:14:15.128919Z", want: time.Date(2024, 5, 14, 15, 14, 15, 128919000, time.UTC)},
		{in: "2024-05-14T15:14:15.1289190Z", want: time.Date(2024, 5, 14, 15, 14, 15, 128919000, time.UTC)},
		{in: "2024-05-14T15:14:15.1234567-05:30", want: time.Date(2024, 5, 14, 20, 44, 15, 123456700, time.UTC)},
		{in: "2024-05-14T15:14:15", want: time.Date(2024, 5, 14, 15, 14, 15, 0, time.UTC)},
		{in: "2024-05-14T15:14:15.5", want: time.Date(2024, 5, 14, 15, 14, 15, 500000000, time.UTC)},
		{in: "2024-05-14T15:14:15.12345678Z", wantErr: true}, // beyond .NET's tick resolution
		{in: "2024-05-14T15:14:15.Z", wantErr: true},
		{in: "2024-05-14 15:14:15Z", wantErr: true},
		{in: "2024-05-14T15:14:15+0200", wantErr: true},
		{in: "2024-05-14T15:14:15,5Z", wantErr: true},
		{in: "2024-05-14", wantErr: true},
		{in: "2024-13-14T15:14:15Z", wantErr: true},
		{in: "", wantErr: true},
		{in: " 2024-05-14T15:14:15Z", wantErr: true},
	}
	for _, tc := range tests {
		t.Run("C14 "+tc.in, func(t *testing.T) {
			got, err := ParseTime(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Errorf("ParseTime(%q) = %v, want an error", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTime(%q): %v", tc.in, err)
			}
			if !got.Equal(tc.want) || got.Location() != time.UTC {
				t.Errorf("ParseTime(%q) = %v, want %v in UTC", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzDecodeInvocation(f *testing.F) {
	for _, name := range []string{"01-queue-trigger-request.docs.json", "02-http-trigger-request.core-tools-trace.json", "03-cosmosdb-trigger-request.go-test.json"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"Data":{"t":"{\"IsPastDue\":\"true\"}"},"Metadata":{"sys":"{}"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeInvocation(bytes.NewReader(body))
		if err != nil {
			return
		}
		_, _ = req.Sys()
		for k := range req.Data {
			_, _ = req.String(k)
			_, _ = req.Timer(k)
			_ = DecodeScalar(req.Data[k])
		}
		for k := range req.Metadata {
			_, _ = req.String(k)
		}
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"0001-01-01T00:00:00+00:00", "2022-10-11T10:52:00.003967+02:00", "2024-05-14T15:14:15.128919Z", "2024-05-14T15:14:15", "9999-12-31T23:59:59.9999999-14:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s)
		if err != nil {
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("ParseTime(%q) not in UTC", s)
		}
		if got.Year() < 1 || got.Year() > 9999 {
			return // an offset pushed it out of four-digit years; nothing to round-trip
		}
		// Round trip through the format the host stand-in writes.
		again, err := ParseTime(got.Format("2006-01-02T15:04:05.0000000Z07:00"))
		if err != nil || !again.Equal(got) {
			t.Fatalf("round trip of %q: %v, %v", s, again, err)
		}
	})
}

func FuzzTimer(f *testing.F) {
	b, err := os.ReadFile("testdata/05-timerinfo-value.log-capture.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"ScheduleStatus":null,"IsPastDue":true}`))
	f.Add([]byte(`"{\"ScheduleStatus\":{\"Last\":\"0001-01-01T00:00:00+00:00\"}}"`))
	f.Fuzz(func(t *testing.T, value []byte) {
		req := &InvocationRequest{Data: map[string]json.RawMessage{"t": value}}
		info, err := req.Timer("t")
		if err == nil && info.Status != nil {
			for _, tm := range []time.Time{info.Status.Last, info.Status.Next, info.Status.LastUpdated} {
				if tm.Location() != time.UTC {
					t.Fatalf("time not in UTC: %v", tm)
				}
			}
		}
	})
}
