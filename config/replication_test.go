package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// [replication] is off by default with the media package's log length;
// its keys are read from the file, its files taken relative to the file's
// directory, and a standby without a secret is refused with key and line.
func TestReplicationTable(t *testing.T) {
	if r := Default().Replication; r != (Replication{KeepChanges: DefaultKeepChanges}) {
		t.Errorf("default [replication] = %+v, want off, keep_changes %d", r, DefaultKeepChanges)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "mxcas.toml")
	text := "[replication]\nlisten = \"0.0.0.0:8009\"\nprimary = \"https://p.example:8009\"\nsecret_file = \"repl.secret\"\n" +
		"tls_cert = \"/etc/mxcas/cert.pem\"\ntls_key = \"key.pem\"\ntls_ca = \"ca.pem\"\nkeep_changes = 5000\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Replication{
		Listen: "0.0.0.0:8009", Primary: "https://p.example:8009", SecretFile: filepath.Join(dir, "repl.secret"),
		TLSCert: "/etc/mxcas/cert.pem", TLSKey: filepath.Join(dir, "key.pem"), TLSCA: filepath.Join(dir, "ca.pem"), KeepChanges: 5000,
	}
	if c.Replication != want {
		t.Errorf("[replication] = %+v\nwant %+v", c.Replication, want)
	}
	for _, tc := range []struct{ text, want string }{
		{"[replication]\nprimary = \"http://10.0.0.1:8009\"\n", "t.toml:2: replication.primary: needs [replication] secret_file"},
		{"[replication]\nkeep_changes = -1\n", "t.toml:2: replication.keep_changes: must be positive"},
		{"[replication]\nsecret = \"hunter2\"\n", `t.toml:2: unknown key "replication.secret"`},
	} {
		_, err := Parse(tc.text, "t.toml")
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want ErrInvalid containing %q", tc.text, err, tc.want)
		}
	}
}
