package tlsca

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

func TestListenAndTrust(t *testing.T) {
	ca, err := New()
	if err != nil {
		t.Fatal(err)
	}
	srv, url, err := ca.Listen("", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, err := ca.Client().Get(url)
	if err != nil {
		t.Fatalf("client trusting the CA: %v", err)
	}
	resp.Body.Close()
	// A client that does not trust the CA must refuse the server.
	if resp, err := http.Get(url); err == nil {
		resp.Body.Close()
		t.Error("an untrusting client accepted the local CA's certificate")
	}

	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := ca.WriteCertFile(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("CA file is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !cert.IsCA {
		t.Errorf("CA file: %v, IsCA=%v", err, cert != nil && cert.IsCA)
	}
}
