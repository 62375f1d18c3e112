package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/matrix"
)

func TestKeygen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "example.org.signing.key")
	var out, errb bytes.Buffer
	if code := run([]string{"keygen", "-version", "k1", path}, &out, &errb); code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, errb.String())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := matrix.ParseSigningKeyFile(data)
	if err != nil || k.ID != "ed25519:k1" {
		t.Fatalf("written key: %+v, %v", k, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	// Never overwritten.
	if code := run([]string{"keygen", path}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "never overwritten") {
		t.Errorf("second keygen: exit %d, %q", code, errb.String())
	}
	again, _ := os.ReadFile(path)
	if !bytes.Equal(again, data) {
		t.Error("the key file changed")
	}
	// A default version looks like Synapse's.
	p2 := filepath.Join(t.TempDir(), "k")
	run([]string{"keygen", p2}, &out, &errb)
	d2, _ := os.ReadFile(p2)
	if k2, err := matrix.ParseSigningKeyFile(d2); err != nil || !strings.HasPrefix(k2.ID, "ed25519:a_") {
		t.Errorf("default version: %+v, %v", k2, err)
	}
}
