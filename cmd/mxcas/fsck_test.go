package main

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/chunker"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
)

// chunkHashes returns the hashes of the chunks the store in dir cuts data
// into and keeps as files: all but a last chunk of at most 16 KiB, which
// a new store keeps inline in its index.
func chunkHashes(t *testing.T, dir string, data []byte) []cas.Hash {
	t.Helper()
	st, err := media.Open(media.Options{Create: true, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	p := st.Params()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	var hs []cas.Hash
	last := 0
	if err := chunker.Split(data, p, func(c []byte) error {
		hs = append(hs, cas.Sum(c))
		last = len(c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(hs) > 0 && last <= media.MaxInline {
		hs = hs[:len(hs)-1] // inline in the index, no file
	}
	return hs
}

func chunkFile(dir string, h cas.Hash) string {
	p, err := media.ChunkPath(dir, h)
	if err != nil {
		panic(err)
	}
	return p
}

// onlyIn returns a chunk of a that none of others has.
func onlyIn(t *testing.T, a []cas.Hash, others ...[]cas.Hash) cas.Hash {
	t.Helper()
	taken := make(map[cas.Hash]bool)
	for _, o := range others {
		for _, h := range o {
			taken[h] = true
		}
	}
	for _, h := range a {
		if !taken[h] {
			return h
		}
	}
	t.Fatal("no chunk of its own")
	return cas.Hash{}
}

func TestFsckNamesDamagedMedia(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	cfg := writeConfig(t, data)
	bodies := map[string][]byte{
		"AAAA": content(1, 300<<10),
		"BBBB": content(2, 400<<10),
		"CCCC": content(3, 350<<10),
	}
	uploadMedia(t, data, bodies)

	code, out, stderr := runMain(t, "fsck", "-config", cfg)
	if code != 0 || !strings.Contains(out, "healthy") {
		t.Fatalf("fsck before damage: exit %d, stdout %q, stderr %q; want 0 and healthy", code, out, stderr)
	}

	a := chunkHashes(t, data, bodies["AAAA"])
	b := chunkHashes(t, data, bodies["BBBB"])
	c := chunkHashes(t, data, bodies["CCCC"])
	corrupt, missing := onlyIn(t, a, b, c), onlyIn(t, b, a, c)

	path := chunkFile(data, corrupt)
	buf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	buf[len(buf)/2] ^= 0x01
	if err := os.WriteFile(path, buf, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(chunkFile(data, missing)); err != nil {
		t.Fatal(err)
	}

	code, out, stderr = runMain(t, "fsck", "-config", cfg)
	if code != 1 {
		t.Errorf("fsck after damage: exit %d, want 1; stderr %q", code, stderr)
	}
	for _, want := range []string{
		"damaged: mxc://" + testServer + "/AAAA\n",
		"damaged: mxc://" + testServer + "/BBBB\n",
		"problem: corrupt-chunk chunk " + corrupt.String(),
		"problem: missing-chunk chunk " + missing.String(),
		"DAMAGED: 2 problems, 2 media affected",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("fsck output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "CCCC") {
		t.Errorf("fsck names the healthy media CCCC:\n%s", out)
	}
}

// A store held by a process that offers no admin endpoint (here: this one)
// is an error, not a silent success.
func TestFsckStoreHeldWithoutAdmin(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	cfg := writeConfig(t, data)
	st, err := media.Open(media.Options{Create: true, Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	code, _, stderr := runMain(t, "fsck", "-config", cfg)
	if code != 2 || !strings.Contains(stderr, "in use by another process") {
		t.Errorf("exit %d, stderr %q; want 2 and \"in use by another process\"", code, stderr)
	}
}

// fsck -repair-from with no server running: it copies the damaged and the
// missing chunk back from a backup and ends healthy; a source that is not a
// data directory is refused (exit 2).
func TestFsckRepairFromOffline(t *testing.T) {
	bodies := map[string][]byte{"AAAA": content(1, 300<<10), "BBBB": content(2, 400<<10)}
	data, cfg, backup := storeWithBackup(t, bodies)
	a, b := chunkHashes(t, data, bodies["AAAA"]), chunkHashes(t, data, bodies["BBBB"])
	corrupt, missing := onlyIn(t, a, b), onlyIn(t, b, a)
	if err := os.WriteFile(chunkFile(data, corrupt), []byte("not it"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(chunkFile(data, missing)); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runMain(t, "fsck", "-config", cfg, "-repair-from", t.TempDir()); code != 2 {
		t.Errorf("repair from an empty directory: exit %d, want 2\n%s%s", code, out, errs)
	}
	code, out, errs := runMain(t, "fsck", "-config", cfg, "-repair-from", backup)
	if code != 0 || !strings.Contains(out, "repaired: chunk "+corrupt.String()) ||
		!strings.Contains(out, "repaired: chunk "+missing.String()) || !strings.Contains(out, "healthy") {
		t.Fatalf("fsck -repair-from: exit %d, want 0, both chunks repaired, healthy:\n%s%s", code, out, errs)
	}
	checkStore(t, data, bodies)
}

// storeWithBackup makes a store holding bodies in a new data directory,
// and a backup of it; it returns the directory, its configuration file and
// the backup.
func storeWithBackup(t *testing.T, bodies map[string][]byte) (data, cfg, backup string) {
	t.Helper()
	data = filepath.Join(t.TempDir(), "data")
	cfg = writeConfig(t, data)
	uploadMedia(t, data, bodies)
	backup = filepath.Join(t.TempDir(), "backup")
	if code, out, errs := runMain(t, "backup", "-config", cfg, backup); code != 0 {
		t.Fatalf("backup: exit %d %s%s", code, out, errs)
	}
	return data, cfg, backup
}

// nonTrivialStore makes a store in a new data directory with several
// media, an image and its thumbnail, a deleted media whose chunks GC
// collected and another whose chunks are left; it returns the directory,
// its configuration file and the bodies stored (media ID -> content).
func nonTrivialStore(t *testing.T) (data, cfg string, bodies map[string][]byte) {
	t.Helper()
	data = filepath.Join(t.TempDir(), "data")
	cfg = writeConfig(t, data)
	clk := testkit.NewClock(time.Now())
	st, err := media.Open(media.Options{Create: true, Dir: data, Now: clk.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	put := func(id, ct string, b []byte) media.Media {
		t.Helper()
		rec, err := st.Upload(ctx, media.UploadInfo{MXC: mustMXC(t, testServer, id), ContentType: ct, Size: int64(len(b))}, bytes.NewReader(b))
		if err != nil {
			t.Fatalf("upload %s: %v", id, err)
		}
		return rec
	}
	bodies = map[string][]byte{"AAAA": content(11, 300<<10), "BBBB": content(12, 200<<10), "CCCC": content(13, 5<<10)}
	for id, b := range bodies {
		put(id, "application/octet-stream", b)
	}
	var img bytes.Buffer
	if err := png.Encode(&img, image.NewNRGBA(image.Rect(0, 0, 320, 240))); err != nil {
		t.Fatal(err)
	}
	r, _, err := st.Thumbnail(ctx, put("IMG", "image/png", img.Bytes()), media.ThumbnailRequest{Width: 32, Height: 32})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	for i, id := range []string{"GONE", "LEFT"} {
		put(id, "application/octet-stream", content(uint64(20+i), 100<<10))
		if err := st.Delete(mustMXC(t, testServer, id)); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			clk.Advance(2 * time.Hour) // past the grace
			if gs, err := st.GC(ctx); err != nil || gs.ChunksDeleted == 0 {
				t.Fatalf("gc: %+v, %v; want GONE's chunks collected", gs, err)
			}
		}
	}
	return data, cfg, bodies
}

// Offline fsck writes nothing, not even on a damaged store: every file
// under the data directory keeps its bytes, size and modification time
// (chunks their access time too), and none is created or removed. Its
// report does not depend on -workers.
func TestOfflineFsckWritesNothing(t *testing.T) {
	data, cfg, bodies := nonTrivialStore(t)
	corrupt := onlyIn(t, chunkHashes(t, data, bodies["AAAA"]), chunkHashes(t, data, bodies["BBBB"]))
	buf, err := os.ReadFile(chunkFile(data, corrupt))
	if err != nil {
		t.Fatal(err)
	}
	buf[0] ^= 0x01
	if err := os.WriteFile(chunkFile(data, corrupt), buf, 0o600); err != nil {
		t.Fatal(err)
	}

	testkit.Backdate(t, data, time.Now().Add(-72*time.Hour).Truncate(time.Second))
	before := testkit.Stamps(t, data, "cas")
	code, out, stderr := runMain(t, "fsck", "-config", cfg, "-workers", "3")
	if code != 1 || !strings.Contains(out, "problem: corrupt-chunk chunk "+corrupt.String()) ||
		!strings.Contains(out, "damaged: mxc://"+testServer+"/AAAA\n") {
		t.Errorf("fsck: exit %d, want 1 and AAAA damaged by chunk %s:\n%s%s", code, corrupt.Short(), out, stderr)
	}
	testkit.SameStamps(t, data, before, "cas")

	if code1, out1, _ := runMain(t, "fsck", "-config", cfg, "-workers", "1"); code1 != code || out1 != out {
		t.Errorf("fsck -workers 1: exit %d\n%s\nwith -workers 3: exit %d\n%s", code1, out1, code, out)
	}
	if code, _, _ := runMain(t, "fsck", "-config", cfg, "-workers", "0"); code != 2 {
		t.Errorf("fsck -workers 0: exit %d, want 2", code)
	}
}
