package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/cas/s3store"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
)

// s3Config writes a configuration with data in dataDir and chunks in
// srv's bucket, and puts srv's credentials in the environment.
func s3Config(t *testing.T, srv *testkit.S3, dataDir string) string {
	t.Helper()
	return s3ConfigAt(t, srv, dataDir, "m")
}

// s3ConfigAt is s3Config with the chunks under prefix, and extra lines
// (tables) after [storage].
func s3ConfigAt(t *testing.T, srv *testkit.S3, dataDir, prefix string, extra ...string) string {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	lines := []string{"[storage]", `backend = "s3"`, fmt.Sprintf("endpoint = %q", srv.Endpoint),
		fmt.Sprintf("bucket = %q", srv.Bucket), fmt.Sprintf("prefix = %q", prefix), "use_ssl = false"}
	return writeConfig(t, dataDir, append(lines, extra...)...)
}

// checkBodies opens the store in dir (on srv's bucket when srv is not nil)
// and fails unless it serves bodies byte for byte.
func checkBodies(t *testing.T, dir string, srv *testkit.S3, bodies map[string][]byte) {
	t.Helper()
	opts := media.Options{Dir: dir}
	if srv != nil {
		cs, err := s3store.Open(s3store.Options{Endpoint: srv.Endpoint, Bucket: srv.Bucket, Prefix: "m",
			AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
		if err != nil {
			t.Fatal(err)
		}
		opts.Chunks, opts.ChunksAt = cs, "s3 "+srv.Bucket+"/m/"
	}
	st, err := media.Open(opts)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	defer st.Close()
	for id, want := range bodies {
		r, _, err := st.Open(mustMXC(t, testServer, id))
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: read %d bytes (%v), want the %d uploaded", id, len(got), err, len(want))
		}
	}
}

func TestMigrateCommand(t *testing.T) {
	srv := testkit.StartS3(t)
	data := filepath.Join(t.TempDir(), "data")
	bodies := map[string][]byte{"AAAA": content(1, 300<<10), "BBBB": content(2, 10), "CCCC": content(3, 0)}
	uploadMedia(t, data, bodies)
	local := writeConfig(t, data)
	s3Dir := filepath.Join(t.TempDir(), "s3data")
	onS3 := s3Config(t, srv, s3Dir)

	// A server serving the source: refused, nothing written.
	admin, _ := json.Marshal(adminInfo{Addr: "127.0.0.1:1", Secret: "x", PID: os.Getpid()})
	if err := os.WriteFile(filepath.Join(data, adminFile), admin, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runMain(t, "migrate", "-config", local, "-to", onS3)
	if code != 2 || !strings.Contains(stderr, "stop it first") {
		t.Errorf("migrate of a served store: exit %d, stderr %q; want 2 and stop it first", code, stderr)
	}
	if err := os.Remove(filepath.Join(data, adminFile)); err != nil {
		t.Fatal(err)
	}
	// A process holding the store: refused too.
	held, err := media.Open(media.Options{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runMain(t, "migrate", "-config", local, "-to", onS3)
	held.Close()
	if code != 2 || !strings.Contains(stderr, "stop the server first") {
		t.Errorf("migrate of a held store: exit %d, stderr %q; want 2 and stop the server first", code, stderr)
	}
	if _, err := os.Stat(s3Dir); !os.IsNotExist(err) || len(srv.Objects()) != 0 {
		t.Fatalf("refused migrations left %s (%v) or %d objects", s3Dir, err, len(srv.Objects()))
	}

	code, out, stderr := runMain(t, "migrate", "-config", local, "-to", onS3)
	if code != 0 || !strings.Contains(out, "migration complete") {
		t.Fatalf("migrate to S3: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if want := fmt.Sprintf("copied %d chunks", len(srv.Objects())); !strings.Contains(out, want) || len(srv.Objects()) == 0 {
		t.Errorf("migrate to S3 printed %q, want %q", out, want)
	}
	checkBodies(t, s3Dir, srv, bodies)
	// Finished: a second run is refused.
	if code, _, stderr = runMain(t, "migrate", "-config", local, "-to", onS3); code != 2 {
		t.Errorf("second migrate into the same destination: exit %d, stderr %q; want 2", code, stderr)
	}

	backDir := filepath.Join(t.TempDir(), "back")
	code, out, stderr = runMain(t, "migrate", "-config", onS3, "-to", writeConfig(t, backDir))
	if code != 0 || !strings.Contains(out, "migration complete") {
		t.Fatalf("migrate back: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	checkBodies(t, backDir, nil, bodies)
}
