package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
	"github.com/mxcas/mxcas/thumbgen"
)

// pgMigrateThumb is the thumbnail the migration tests make and compare.
var pgMigrateThumb = media.ThumbnailRequest{Width: 32, Height: 32, Method: thumbgen.Scale}

var discardLog = slog.New(slog.DiscardHandler)

// pgMigrateUsers own the media of the migration tests.
var pgMigrateUsers = []string{"@u:example.org", "@v:example.org"}

// storeState is what a migration must carry over: every media's bytes,
// the thumbnail of IMG, the usage counters (per user and the server's),
// what each user owns, and the quarantine of QQQQ.
type storeState struct {
	bodies   map[string][]byte
	thumb    []byte
	counters map[string]index.Usage
	owned    map[string]media.Usage
	qBy      string
}

// fillPGMigrateStore makes a local store in dir with media of two users,
// an image with a thumbnail, and a quarantined media.
func fillPGMigrateStore(t *testing.T, dir string) {
	t.Helper()
	img, err := os.ReadFile(filepath.Join("..", "..", "thumbgen", "testdata", "gopher-doc.with-alpha.png"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := media.Open(media.Options{Create: true, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	for i, id := range []string{"AAAA", "BBBB", "CCCC", "IMG", "QQQQ"} {
		body, ctype := content(uint64(i), []int{300 << 10, 10, 0, 0, 5000}[i]), "application/octet-stream"
		if id == "IMG" {
			body, ctype = img, "image/png"
		}
		info := media.UploadInfo{MXC: mustMXC(t, testServer, id), Size: int64(len(body)), ContentType: ctype,
			Uploader: pgMigrateUsers[i%2]}
		rec, err := st.Upload(ctx, info, bytes.NewReader(body))
		if err != nil {
			t.Fatalf("upload %s: %v", id, err)
		}
		if id == "IMG" {
			r, _, err := st.Thumbnail(ctx, rec, pgMigrateThumb)
			if err != nil {
				t.Fatal(err)
			}
			r.Close()
		}
	}
	if err := st.Quarantine(mustMXC(t, testServer, "QQQQ"), "@admin:example.org"); err != nil {
		t.Fatal(err)
	}
}

// readStoreState opens the store of the configuration at cfgPath as
// mxcas commands do, reads its state, closes it, and reads the counters
// from its index.
func readStoreState(t *testing.T, cfgPath string) storeState {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	mo, err := mediaOptions(cfg, discardLog)
	if err != nil {
		t.Fatal(err)
	}
	st, err := openStore(cfg, mo, discardLog)
	if err != nil {
		t.Fatalf("open %s: %v", cfgPath, err)
	}
	closed := false
	defer func() {
		if !closed {
			st.Close()
		}
	}()
	ctx := context.Background()
	s := storeState{bodies: make(map[string][]byte), counters: make(map[string]index.Usage), owned: make(map[string]media.Usage)}
	for _, id := range []string{"AAAA", "BBBB", "CCCC", "IMG"} {
		r, rec, err := st.Open(mustMXC(t, testServer, id))
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		s.bodies[id], err = io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if id != "IMG" {
			continue
		}
		r, _, err = st.Thumbnail(ctx, rec, pgMigrateThumb)
		if err != nil {
			t.Fatal(err)
		}
		s.thumb, err = io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if made := st.Stats().ThumbnailsMade; made != 0 {
			t.Errorf("%s: the thumbnail was made again (%d made), not found", cfgPath, made)
		}
	}
	rec, err := st.Stat(mustMXC(t, testServer, "QQQQ"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Quarantined {
		s.qBy = rec.QuarantinedBy
	}
	for _, user := range pgMigrateUsers {
		if s.owned[user], err = st.UserUsage(ctx, user); err != nil {
			t.Fatal(err)
		}
	}
	closed = true
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	var idx *index.DB
	if cfg.Index.Backend == config.IndexPostgres {
		idx, err = index.OpenPostgres(ctx, cfg.Index.DSN, index.Options{Logger: discardLog})
	} else {
		idx, err = index.Open(filepath.Join(cfg.Server.DataDir, "index"), index.Options{ReadOnly: true, Logger: discardLog})
	}
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	for _, user := range pgMigrateUsers {
		if s.counters[user], err = idx.UserUsage(user); err != nil {
			t.Fatal(err)
		}
	}
	if s.counters[testServer], err = idx.ServerUsage(testServer); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkStoreState fails unless the store of cfgPath has state want.
func checkStoreState(t *testing.T, cfgPath string, want storeState) {
	t.Helper()
	got := readStoreState(t, cfgPath)
	for id, b := range want.bodies {
		if !bytes.Equal(got.bodies[id], b) {
			t.Errorf("%s: %s has %d bytes, want the source's %d", cfgPath, id, len(got.bodies[id]), len(b))
		}
	}
	if !bytes.Equal(got.thumb, want.thumb) {
		t.Errorf("%s: thumbnail of %d bytes, want the source's %d", cfgPath, len(got.thumb), len(want.thumb))
	}
	if !maps.Equal(got.counters, want.counters) || !maps.Equal(got.owned, want.owned) {
		t.Errorf("%s: counters %v, owned %v; want %v, %v", cfgPath, got.counters, got.owned, want.counters, want.owned)
	}
	if got.qBy != want.qBy {
		t.Errorf("%s: QQQQ quarantined by %q, want %q", cfgPath, got.qBy, want.qBy)
	}
}

// TestMigrateCommandPostgres: mxcas migrate moves a local store to S3 with
// its index in PostgreSQL and back, and mxcas backup copies the
// PostgreSQL store to a local directory; a database that is not empty is
// refused without a change.
func TestMigrateCommandPostgres(t *testing.T) {
	srv := testkit.StartS3(t)
	pg := testkit.SharedPG(t, "mxcas")
	dsn := pg.DSN(pg.CreateDB(t, "migrate"))
	data := filepath.Join(t.TempDir(), "data")
	fillPGMigrateStore(t, data)
	local := writeConfig(t, data)
	want := readStoreState(t, local)
	if want.qBy == "" || want.counters[testServer].Count != 5 || len(want.thumb) == 0 {
		t.Fatalf("fixture state: %+v", want)
	}
	pgIndex := []string{"[index]", `backend = "postgres"`, fmt.Sprintf("dsn = %q", dsn)}
	onPG := s3ConfigAt(t, srv, filepath.Join(t.TempDir(), "node"), "m", pgIndex...)

	code, out, stderr := runMain(t, "migrate", "-config", local, "-to", onPG)
	if code != 0 || !strings.Contains(out, "index: postgres") {
		t.Fatalf("migrate to S3 and PostgreSQL: exit %d, stdout %q, stderr %q", code, out, stderr)
	}

	// Into the same database from another directory and prefix: refused,
	// nothing written.
	objects := len(srv.Objects())
	againDir := filepath.Join(t.TempDir(), "again")
	again := s3ConfigAt(t, srv, againDir, "again", pgIndex...)
	code, _, stderr = runMain(t, "migrate", "-config", local, "-to", again)
	if code != 2 || !strings.Contains(stderr, "not empty") {
		t.Errorf("migrate into a database that is not empty: exit %d, stderr %q; want 2 and not empty", code, stderr)
	}
	if _, err := os.Stat(againDir); !os.IsNotExist(err) || len(srv.Objects()) != objects {
		t.Errorf("the refused migration made %s (%v) or wrote %d objects", againDir, err, len(srv.Objects())-objects)
	}
	checkStoreState(t, onPG, want)

	back := writeConfig(t, filepath.Join(t.TempDir(), "back"))
	code, out, stderr = runMain(t, "migrate", "-config", onPG, "-to", back)
	if code != 0 || !strings.Contains(out, "migration complete") {
		t.Fatalf("migrate back: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	checkStoreState(t, back, want)

	bak := filepath.Join(t.TempDir(), "backup")
	code, out, stderr = runMain(t, "backup", "-config", onPG, bak)
	if code != 0 || !strings.Contains(out, "backup complete") {
		t.Fatalf("backup of the PostgreSQL store: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	checkStoreState(t, writeConfig(t, bak), want)
}
