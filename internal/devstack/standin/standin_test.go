package standin

import (
	"regexp"
	"testing"
)

func TestGUID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := GUID(), GUID()
	if !re.MatchString(a) || a == b {
		t.Errorf("GUID() = %q, %q", a, b)
	}
}

func TestCompactJSON(t *testing.T) {
	got, err := CompactJSON(map[string]string{"url": "https://x/?a=1&b=<2>"})
	if err != nil || string(got) != `{"url":"https://x/?a=1&b=<2>"}` {
		t.Errorf("CompactJSON = %s, %v", got, err)
	}
}
