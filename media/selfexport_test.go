package media_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/media/mediatest"
)

// readUserExport reads every part of ex through OpenUserExportPart into a
// directory and returns the archive's media, by media ID (of server).
func readUserExport(t *testing.T, s *media.Store, ex media.UserExport) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	for _, p := range ex.Parts {
		f, err := s.OpenUserExportPart(ex.User, ex.ID, p.Name)
		if err != nil {
			t.Fatalf("OpenUserExportPart(%s): %v", p.Name, err)
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil || int64(len(b)) != p.Size {
			t.Fatalf("part %s: %d bytes, %v; want %d", p.Name, len(b), err, p.Size)
		}
		if err := os.WriteFile(filepath.Join(dir, p.Name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string][]byte{}
	for mxc, b := range mediatest.ReadArchive(t, os.DirFS(dir)) {
		got[strings.TrimPrefix(mxc, "mxc://"+server+"/")] = b
	}
	return got
}

// A user's export holds their media and no one else's, its parts open only
// for them and by their exact names; a second export replaces the first
// (whose directory is gone); once expired the export is refused at once,
// and removed by GC or by the next Open of the store.
func TestUserExport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	clk := newClock()
	opts := media.Options{Create: true, Dir: dir, Chunker: smallParams, Now: clk.Now}
	s := openStore(t, opts)
	ctx := context.Background()
	want := map[string][]byte{"a1": randBytes(1, 100<<10), "a2": randBytes(2, 10)}
	for id, b := range want {
		upload(t, s, id, "@alice:server", b)
	}
	upload(t, s, "b1", "@bob:server", randBytes(3, 500))

	ex, err := s.CreateUserExport(ctx, "@alice:server", 32<<10, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Media != 2 || ex.Bytes != 100<<10+10 || len(ex.Parts) < 2 || !ex.Expires.Equal(ex.Created.Add(time.Hour)) {
		t.Fatalf("export %+v: want alice's 2 media, several parts, expiring in an hour", ex)
	}
	got := readUserExport(t, s, ex)
	if len(got) != len(want) {
		t.Errorf("archive holds %d media, want %d", len(got), len(want))
	}
	for id, b := range want {
		if !bytes.Equal(got[id], b) {
			t.Errorf("media %s: %d bytes in the archive, want its %d", id, len(got[id]), len(b))
		}
	}
	for _, tc := range []struct{ user, id, name string }{
		{"@bob:server", ex.ID, ex.Parts[0].Name},
		{"@alice:server", ex.ID, media.ExportMetaName},
		{"@alice:server", ex.ID, "../" + ex.ID + "/" + ex.Parts[0].Name},
		{"@alice:server", ex.ID, ""},
		{"@alice:server", "../exports", ex.Parts[0].Name},
		{"@alice:server", ex.ID[1:] + "A", ex.Parts[0].Name},
	} {
		if f, err := s.OpenUserExportPart(tc.user, tc.id, tc.name); !errors.Is(err, media.ErrNotFound) {
			if f != nil {
				f.Close()
			}
			t.Errorf("OpenUserExportPart(%q, %q, %q) = %v, want ErrNotFound", tc.user, tc.id, tc.name, err)
		}
	}

	// Replacement: the first export's directory goes.
	ex2, err := s.CreateUserExport(ctx, "@alice:server", 0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, media.ExportsDir, ex.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("replaced export's directory: %v, want it gone", err)
	}
	if f, err := s.OpenUserExportPart("@alice:server", ex.ID, ex.Parts[0].Name); !errors.Is(err, media.ErrNotFound) {
		f.Close()
		t.Errorf("replaced export: %v, want ErrNotFound", err)
	}
	if len(ex2.Parts) != 2 { // one part under the default size, and the manifest
		t.Errorf("default part size: parts %v, want one part and the manifest", ex2.Parts)
	}
	bobEx, err := s.CreateUserExport(ctx, "@bob:server", 0, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	// Expiry: refused at once, removed at read, by GC and at Open.
	clk.Advance(time.Hour)
	exDir := filepath.Join(dir, media.ExportsDir, ex2.ID)
	if _, err := os.Stat(exDir); err != nil {
		t.Fatalf("export before anyone looks: %v", err)
	}
	if _, err := s.OpenUserExportPart("@alice:server", ex2.ID, ex2.Parts[0].Name); !errors.Is(err, media.ErrNotFound) {
		t.Errorf("expired export: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(exDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("expired export after a read: %v, want it removed", err)
	}
	if got := readUserExport(t, s, bobEx); len(got) != 1 {
		t.Errorf("bob's export, not yet expired: %d media, want 1", len(got))
	}
	ex3, err := s.CreateUserExport(ctx, "@alice:server", 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	st, err := s.RunGC(ctx, media.GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.ExportsExpired != 1 {
		t.Errorf("GC removed %d exports, want alice's expired one", st.ExportsExpired)
	}
	if _, err := os.Stat(filepath.Join(dir, media.ExportsDir, ex3.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("expired export after GC: %v, want it removed", err)
	}
	if _, err := os.Stat(filepath.Join(dir, media.ExportsDir, bobEx.ID)); err != nil {
		t.Errorf("bob's export after GC: %v, want it kept", err)
	}

	// At Open: bob's expires while the store is closed; an unfinished
	// export's temp directory goes too.
	closeStore(t, s)
	unfinished := filepath.Join(dir, media.ExportsDir, ".tmp-x")
	if err := os.Mkdir(unfinished, 0o750); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	s = openStore(t, opts)
	ents, err := os.ReadDir(filepath.Join(dir, media.ExportsDir))
	if err != nil || len(ents) != 0 {
		t.Errorf("DATA/exports after Open: %v, %v; want it empty", ents, err)
	}

	// Exports are derived data: fsck does not see them.
	if _, err := s.CreateUserExport(ctx, "@bob:server", 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Fsck(ctx)
	if err != nil || !rep.Healthy() {
		t.Errorf("fsck with an export in place: %+v, %v; want healthy", rep, err)
	}
	dest := filepath.Join(t.TempDir(), "backup")
	if _, err := s.Backup(ctx, dest); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dest, media.ExportsDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("backup holds DATA/exports: %v", err)
	}
}

// Bad arguments change nothing.
func TestUserExportRefusesBadInput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := openStore(t, media.Options{Create: true, Dir: dir, Chunker: smallParams, Now: newClock().Now})
	for _, tc := range []struct {
		user string
		ttl  time.Duration
		part int64
	}{{"server", time.Hour, 0}, {"@alice", time.Hour, 0}, {"@alice:server", 0, 0}, {"@alice:server", time.Hour, -1}} {
		if _, err := s.CreateUserExport(context.Background(), tc.user, tc.part, tc.ttl); err == nil {
			t.Errorf("CreateUserExport(%q, %d, %v) succeeded", tc.user, tc.part, tc.ttl)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, media.ExportsDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("DATA/exports after refused exports: %v, want none", err)
	}
}
