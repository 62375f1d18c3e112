package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadS3Credentials(t *testing.T) {
	const secret = "s3cr3t-VALUE"
	for _, c := range []struct {
		name, text string
		mode       os.FileMode
		want       string // "" when it must be read as AKID/secret; else part of the error
	}{
		{"two lines", "# comment\naccess_key_id = AKID\n\nsecret_access_key=" + secret + "\n", 0o600, ""},
		{"aws file", "[other]\naws_access_key_id = NOPE\naws_secret_access_key = NOPE\n" +
			"[default]\naws_access_key_id = AKID\n; comment\naws_secret_access_key = " + secret + "\n", 0o640, ""},
		{"world readable", "access_key_id = AKID\nsecret_access_key = " + secret + "\n", 0o604, "readable by every user"},
		{"no secret", "access_key_id = AKID\n", 0o600, "want access_key_id and secret_access_key"},
		{"other profile only", "[prod]\naws_access_key_id = AKID\naws_secret_access_key = " + secret + "\n", 0o600, "want access_key_id"},
		{"not key = value", "access_key_id AKID\nsecret_access_key = " + secret + "\n", 0o600, ":1: want key = value"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "creds")
			if err := os.WriteFile(p, []byte(c.text), c.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, c.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			access, sec, err := readS3Credentials(p)
			if c.want == "" {
				if err != nil || access != "AKID" || sec != secret {
					t.Errorf("got %q, %q, %v; want AKID and the secret", access, sec, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error with %q", err, c.want)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("the error %q holds the secret", err)
			}
		})
	}
}

func TestS3CredentialsFromEnvironment(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	if _, _, _, err := s3Credentials(""); err == nil || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY") {
		t.Errorf("without a secret: %v, want an error naming AWS_SECRET_ACCESS_KEY", err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
	access, secret, from, err := s3Credentials("")
	if err != nil || access != "AKID" || secret != "env-secret" || from != "environment" {
		t.Errorf("got %q, %q, %q, %v", access, secret, from, err)
	}
}
