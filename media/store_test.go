package media_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/chunker"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/media/mediatest"
)

func TestFormatParams(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first := chunker.Params{Min: 4096, Avg: 16384, Max: 65536}
	s := openStore(t, media.Options{Create: true, Dir: dir, Chunker: first})
	if got := s.Params(); got != first {
		t.Errorf("Params() = %v, want %v", got, first)
	}
	closeStore(t, s)

	for _, other := range []chunker.Params{
		{Min: 8192, Avg: 32768, Max: 131072},
		chunker.DefaultParams,
		{Min: 4096, Avg: 16384, Max: 65537},
	} {
		s, err := media.Open(media.Options{Create: true, Dir: dir, Chunker: other, Logger: quietLogger()})
		if err == nil {
			closeStore(t, s)
			t.Errorf("Open with %v on a store made with %v succeeded", other, first)
			continue
		}
		if !errors.Is(err, media.ErrFormat) {
			t.Errorf("Open with %v: error %v does not wrap media.ErrFormat", other, err)
		}
		for _, p := range []chunker.Params{first, other} {
			if !strings.Contains(err.Error(), p.String()) {
				t.Errorf("Open with %v: error %q does not name %q", other, err, p)
			}
		}
	}

	// A refused open leaves the store usable (and unlocked).
	for _, p := range []chunker.Params{{}, first} {
		s := openStore(t, media.Options{Create: true, Dir: dir, Chunker: p})
		if got := s.Params(); got != first {
			t.Errorf("Open with %v: Params() = %v, want the stored %v", p, got, first)
		}
		closeStore(t, s)
	}
	f, err := media.ReadFormat(dir)
	if err != nil {
		t.Fatalf("ReadFormat: %v", err)
	}
	if len(f.ID) != 32 {
		t.Errorf("FORMAT has store ID %q, want 32 hex digits", f.ID)
	}
	f.ID = ""
	if want := (media.StoreFormat{Version: media.FormatVersion, Hash: media.HashName, Chunker: first.String(), Layout: media.LayoutInline}); f != want {
		t.Errorf("FORMAT = %+v, want %+v", f, want)
	}
}

// TestFormatChunksAt: a new store takes NewChunker and records ChunksAt;
// reopened, it keeps FORMAT's parameters whatever NewChunker says, and is
// refused with its chunks said to be elsewhere; its backup is a local store.
func TestFormatChunksAt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	big := chunker.Params{Min: 256 << 10, Avg: 1 << 20, Max: 4 << 20}
	const at = "s3 127.0.0.1:9000/media/prod/"
	s := openStore(t, media.Options{Create: true, Dir: dir, NewChunker: big, ChunksAt: at})
	if got := s.Params(); got != big {
		t.Errorf("new store: Params() = %v, want NewChunker %v", got, big)
	}
	closeStore(t, s)
	f, err := media.ReadFormat(dir)
	if err != nil || f.Chunks != at || f.Chunker != big.String() {
		t.Fatalf("FORMAT = %+v, %v; want chunks %q and chunker %v", f, err, at, big)
	}

	s = openStore(t, media.Options{Dir: dir, NewChunker: chunker.DefaultParams, ChunksAt: at})
	if got := s.Params(); got != big {
		t.Errorf("reopened with another NewChunker: Params() = %v, want FORMAT's %v", got, big)
	}
	backup := filepath.Join(t.TempDir(), "backup")
	if _, err := s.Backup(t.Context(), backup); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	closeStore(t, s)
	if bf, err := media.ReadFormat(backup); err != nil || bf.Chunks != "" || bf.ID != f.ID {
		t.Errorf("backup FORMAT = %+v, %v; want store %s with its chunks local", bf, err, f.ID)
	}

	for _, other := range []string{"", "s3 127.0.0.1:9000/other/prod/"} {
		s, err := media.Open(media.Options{Dir: dir, ChunksAt: other, Logger: quietLogger()})
		if err == nil {
			closeStore(t, s)
			t.Errorf("Open with ChunksAt %q of a store whose chunks are in %q succeeded", other, at)
			continue
		}
		if !errors.Is(err, media.ErrFormat) || !strings.Contains(err.Error(), at) {
			t.Errorf("Open with ChunksAt %q: %v, want ErrFormat naming %q", other, err, at)
		}
	}
}

func TestOpenDefaults(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := openStore(t, media.Options{Create: true, Dir: dir})
	if got := s.Params(); got != chunker.DefaultParams {
		t.Errorf("new store: Params() = %v, want %v", got, chunker.DefaultParams)
	}
	if got := s.Dir(); got != dir {
		t.Errorf("Dir() = %q, want %q", got, dir)
	}
	for _, d := range []string{"cas", "index", "tmp", "FORMAT"} {
		if _, err := os.Stat(filepath.Join(dir, d)); err != nil {
			t.Errorf("new store: %v", err)
		}
	}
}

func TestOpenInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opts media.Options
	}{
		{"no dir", media.Options{}},
		{"negative grace", media.Options{Create: true, Dir: t.TempDir(), GCGrace: -1}},
		{"invalid params", media.Options{Create: true, Dir: t.TempDir(), Chunker: chunker.Params{Min: 100, Avg: 1000, Max: 5000}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Logger = quietLogger()
			if s, err := media.Open(tt.opts); err == nil {
				closeStore(t, s)
				t.Errorf("Open(%+v) succeeded, want an error", tt.opts)
			}
		})
	}
}

func TestOpenLocked(t *testing.T) {
	s, dir := newStore(t, nil)
	s2, err := media.Open(media.Options{Create: true, Dir: dir, Logger: quietLogger()})
	if err == nil {
		closeStore(t, s2)
		t.Fatalf("second Open of %s succeeded", dir)
	}
	if !errors.Is(err, media.ErrLocked) {
		t.Errorf("second Open: %v, want ErrLocked", err)
	}
	closeStore(t, s)
	s3 := openStore(t, media.Options{Create: true, Dir: dir})
	closeStore(t, s3)
}

func TestRestart(t *testing.T) {
	clk := newClock()
	s, dir := newStore(t, clk)
	want := map[string][]byte{
		"A":     randBytes(150, 700_000),
		"B":     randBytes(151, 10),
		"empty": nil,
	}
	recs := make(map[string]media.Media)
	for id, data := range want {
		recs[id] = upload(t, s, id, "@u:server", data)
	}
	closeStore(t, s)

	// A temp file left by a crash is removed at open.
	stale := filepath.Join(dir, "tmp", "chunk-stale")
	if err := os.WriteFile(stale, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, media.Options{Create: true, Dir: dir, Now: clk.Now})
	checkTmpEmpty(t, dir)
	for id, data := range want {
		got, err := s.Stat(mxc(id))
		if err != nil {
			t.Fatalf("Stat(%s) after restart: %v", id, err)
		}
		if got != recs[id] {
			t.Errorf("record of %s after restart = %+v, want %+v", id, got, recs[id])
		}
		checkContent(t, s, id, data)
	}
	mediatest.CheckHealthy(t, s)
	// The reopened store deduplicates against what it held before.
	before := len(chunkFiles(t, dir))
	upload(t, s, "A-again", "@v:server", want["A"])
	if got := len(chunkFiles(t, dir)); got != before {
		t.Errorf("re-upload after restart: %d chunk files, want %d", got, before)
	}
}
