package main

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/media"
)

// fsck -repair-from URL: refused (exit 2, store untouched) while no
// remote chunk source is built in, or without -secret-file; with a source
// (here a stand-in reading a backup's chunks) it repairs, both offline and
// through the admin endpoint of a server holding the store.
func TestFsckRepairFromPeer(t *testing.T) {
	bodies := map[string][]byte{"AAAA": content(11, 300<<10), "BBBB": content(12, 400<<10)}
	data, cfg, backup := storeWithBackup(t, bodies)
	secretFile := filepath.Join(t.TempDir(), "repl.secret")
	if err := os.WriteFile(secretFile, []byte("0123456789abcdef-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const peer = "http://peer.example:8009"
	a, b := chunkHashes(t, data, bodies["AAAA"]), chunkHashes(t, data, bodies["BBBB"])
	corrupt := onlyIn(t, a, b)
	damage := func() {
		t.Helper()
		if err := os.WriteFile(chunkFile(data, corrupt), []byte("not it"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	damage()

	var opened atomic.Int64
	real := newRemoteChunkSource
	newRemoteChunkSource = func(base string, secret []byte) (cas.Reader, error) {
		if base != peer || string(secret) != "0123456789abcdef-secret" {
			return nil, errors.New("stand-in source: wrong base or secret")
		}
		opened.Add(1)
		return cas.OpenLayout(backup, cas.LayoutFlat, true) // closed by the repair
	}
	t.Cleanup(func() { newRemoteChunkSource = real })

	for _, args := range [][]string{
		{"-repair-from", peer},                                  // no secret
		{"-repair-from", "http://", "-secret-file", secretFile}, // no host
		{"-repair-from", backup, "-secret-file", secretFile},    // a secret for a directory
	} {
		code, out, errs := runMain(t, append([]string{"fsck", "-config", cfg}, args...)...)
		if code != 2 || !strings.Contains(errs, "mxcas fsck:") {
			t.Errorf("fsck %v: exit %d, want 2 and a reason\n%s%s", args, code, out, errs)
		}
	}

	code, out, errs := runMain(t, "fsck", "-config", cfg, "-repair-from", peer, "-secret-file", secretFile)
	if code != 0 || !strings.Contains(out, "repaired: chunk "+corrupt.String()+" copied from "+peer) || !strings.Contains(out, "healthy") {
		t.Fatalf("fsck -repair-from URL: exit %d, want 0, the chunk repaired, healthy:\n%s%s", code, out, errs)
	}

	// The same through the admin endpoint of a server holding the store.
	damage()
	st, err := media.Open(media.Options{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	adm := &adminServer{st: st, secret: "admin-secret", log: slog.New(slog.DiscardHandler)}
	srv := httptest.NewServer(adm)
	info, _ := json.Marshal(adminInfo{Addr: strings.TrimPrefix(srv.URL, "http://"), Secret: adm.secret, PID: os.Getpid()})
	if err := st.WriteDataFile(adminFile, info); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runMain(t, "fsck", "-config", cfg, "-repair-from", peer, "-secret-file", secretFile)
	srv.Close()
	os.Remove(filepath.Join(data, adminFile))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if code != 0 || !strings.Contains(out, "repaired: chunk "+corrupt.String()) || !strings.Contains(out, "healthy") {
		t.Fatalf("fsck -repair-from URL through the server: exit %d, want 0, the chunk repaired, healthy:\n%s%s", code, out, errs)
	}
	if opened.Load() != 2 {
		t.Errorf("the remote source was made %d times, want 2", opened.Load())
	}
	checkStore(t, data, bodies)
}
