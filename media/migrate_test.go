package media_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/cas/s3store"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/media/mediatest"
	"github.com/mxcas/mxcas/testkit"
	"github.com/mxcas/mxcas/thumbgen"
)

// bucketChunks opens the chunk storage in srv's bucket under prefix; the
// caller owns it (media.Open takes it over).
func bucketChunks(t testing.TB, srv *testkit.S3, prefix string) *s3store.Store {
	t.Helper()
	cs, err := s3store.Open(s3store.Options{Endpoint: srv.Endpoint, Bucket: srv.Bucket, Prefix: prefix,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		t.Fatalf("s3store.Open: %v", err)
	}
	return cs
}

// noThumbs makes no thumbnails in the background: the one asked for is all.
var noThumbs = media.ThumbnailOptions{Disabled: true}

var migrateThumb = media.ThumbnailRequest{Width: 32, Height: 32, Method: thumbgen.Scale}

// migrateFixture fills s with media of several sizes (one a duplicate of
// another) and an image with a thumbnail, and returns the contents by id
// and the thumbnail's bytes.
func migrateFixture(t *testing.T, s *media.Store) (map[string][]byte, []byte) {
	t.Helper()
	want := make(map[string][]byte)
	for i, size := range []int{0, 1, 5000, 300_000, 700_000} {
		id := fmt.Sprintf("m%d", i)
		want[id] = randBytes(uint64(900+i), size)
		upload(t, s, id, "@u:server", want[id])
	}
	want["dup"] = want["m3"]
	upload(t, s, "dup", "@v:server", want["dup"])
	img, err := os.ReadFile(filepath.Join("..", "thumbgen", "testdata", "gopher-doc.with-alpha.png"))
	if err != nil {
		t.Fatal(err)
	}
	want["img"] = img
	return want, thumbBytes(t, s, uploadAs(t, s, "img", "image/png", img))
}

// thumbBytes returns the bytes of rec's migrateThumb thumbnail.
func thumbBytes(t *testing.T, s *media.Store, rec media.Media) []byte {
	t.Helper()
	r, _, err := s.Thumbnail(context.Background(), rec, migrateThumb)
	if err != nil {
		t.Fatalf("Thumbnail(%s): %v", rec.MXC, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkMigrated checks the store d against the source's contents, thumbnail
// (found, not made again), FORMAT file (unless format is nil) and Fsck
// counts.
func checkMigrated(t *testing.T, d *media.Store, dir string, want map[string][]byte, thumb, format []byte, src media.FsckReport) {
	t.Helper()
	for id, data := range want {
		checkContent(t, d, id, data)
	}
	rec, err := d.Stat(mxc("img"))
	if err != nil {
		t.Fatal(err)
	}
	if got := thumbBytes(t, d, rec); !bytes.Equal(got, thumb) {
		t.Errorf("thumbnail: %d bytes, want the source's %d", len(got), len(thumb))
	}
	if made := d.Stats().ThumbnailsMade; made != 0 {
		t.Errorf("the thumbnail was made again (%d made), not found", made)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "FORMAT")); format != nil && (err != nil || !bytes.Equal(got, format)) {
		t.Errorf("FORMAT = %q (%v), want the source's %q (same store ID and chunker)", got, err, format)
	}
	rep := mediatest.CheckHealthy(t, d)
	if rep.Media != src.Media || rep.Objects != src.Objects || rep.Chunks != src.Chunks || rep.Bytes != src.Bytes {
		t.Errorf("migrated Fsck counts %d media, %d objects, %d chunks, %d bytes; source %d, %d, %d, %d",
			rep.Media, rep.Objects, rep.Chunks, rep.Bytes, src.Media, src.Objects, src.Chunks, src.Bytes)
	}
}

func TestMigrateToS3AndBack(t *testing.T) {
	srv := testkit.StartS3(t)
	ctx := context.Background()
	srcDir := filepath.Join(t.TempDir(), "data")
	src := openStore(t, media.Options{Create: true, Dir: srcDir, Chunker: smallParams,
		Thumbnails: noThumbs})
	want, thumb := migrateFixture(t, src)
	srcRep := fsck(t, src)
	format, err := os.ReadFile(filepath.Join(srcDir, "FORMAT"))
	if err != nil {
		t.Fatal(err)
	}

	// Local to S3.
	s3Dir := filepath.Join(t.TempDir(), "s3data")
	cs := bucketChunks(t, srv, "store")
	st, err := src.Migrate(ctx, media.MigrateOptions{Dir: s3Dir, Chunks: cs})
	cs.Close()
	if err != nil {
		t.Fatalf("Migrate to S3: %v", err)
	}
	var fileBytes int64 // what is copied: the chunk files (inline chunks are in the index)
	for _, n := range chunkFiles(t, srcDir) {
		fileBytes += n
	}
	if st.ChunksCopied != srcRep.Chunks || st.BytesCopied != fileBytes || st.ChunksPresent != 0 {
		t.Errorf("Migrate to S3 = %+v; want %d chunks, %d bytes copied", st, srcRep.Chunks, fileBytes)
	}
	if got := len(srv.Objects()); got != srcRep.Chunks {
		t.Errorf("bucket holds %d objects, want one per chunk: %d", got, srcRep.Chunks)
	}
	if _, err := os.Stat(filepath.Join(s3Dir, "cas")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the S3 store's data directory has a local chunk directory (%v)", err)
	}
	closeStore(t, src)
	onS3 := openStore(t, media.Options{Dir: s3Dir, Chunks: bucketChunks(t, srv, "store"), Thumbnails: noThumbs})
	checkMigrated(t, onS3, s3Dir, want, thumb, format, srcRep)

	// Once finished, never again into the same directory: the copy may
	// have been served since.
	cs = bucketChunks(t, srv, "store")
	defer cs.Close()
	reopened := openStore(t, media.Options{Dir: srcDir, Thumbnails: noThumbs})
	if _, err := reopened.Migrate(ctx, media.MigrateOptions{Dir: s3Dir, Chunks: cs}); !errors.Is(err, media.ErrMigrateDest) {
		t.Errorf("Migrate into a finished migration: %v, want ErrMigrateDest", err)
	}
	// A new directory over a bucket prefix that holds chunks: refused.
	if _, err := reopened.Migrate(ctx, media.MigrateOptions{Dir: filepath.Join(t.TempDir(), "new"), Chunks: cs}); !errors.Is(err, media.ErrMigrateDest) {
		t.Errorf("Migrate into a new directory over another store's chunks: %v, want ErrMigrateDest", err)
	}
	closeStore(t, reopened)

	// And back, from S3 to a new local directory.
	backDir := filepath.Join(t.TempDir(), "back")
	st, err = onS3.Migrate(ctx, media.MigrateOptions{Dir: backDir})
	if err != nil {
		t.Fatalf("Migrate from S3: %v", err)
	}
	if st.ChunksCopied != srcRep.Chunks || st.BytesCopied != fileBytes {
		t.Errorf("Migrate from S3 = %+v; want %d chunks, %d bytes copied", st, srcRep.Chunks, fileBytes)
	}
	if got := len(chunkFiles(t, backDir)); got != srcRep.Chunks {
		t.Errorf("local copy holds %d chunk files, want %d", got, srcRep.Chunks)
	}
	closeStore(t, onS3)
	back := openStore(t, media.Options{Dir: backDir, Thumbnails: noThumbs})
	checkMigrated(t, back, backDir, want, thumb, format, srcRep)
}

// failingChunks is a cas.Storage whose batches fail every Put after the
// first n (across batches).
type failingChunks struct {
	cas.Storage
	n int
}

var errInjected = errors.New("injected put failure")

func (f *failingChunks) BeginBatch() cas.WriteBatch {
	return &failingBatch{WriteBatch: f.Storage.BeginBatch(), f: f}
}

type failingBatch struct {
	cas.WriteBatch
	f *failingChunks
}

func (b *failingBatch) Put(h cas.Hash, data []byte) (bool, error) {
	if b.f.n == 0 {
		return false, errInjected
	}
	b.f.n--
	return b.WriteBatch.Put(h, data)
}

func TestMigrateResumes(t *testing.T) {
	srv := testkit.StartS3(t)
	ctx := context.Background()
	src, _ := newStore(t, nil)
	want := map[string][]byte{"a": randBytes(1, 200_000), "b": randBytes(2, 150_000), "c": randBytes(3, 10)}
	for id, data := range want {
		upload(t, src, id, "@u:server", data)
	}
	srcRep := fsck(t, src)
	const batch = 4
	if srcRep.Chunks < 3*batch {
		t.Fatalf("only %d chunks; the test needs at least %d", srcRep.Chunks, 3*batch)
	}

	// Two batches go in; the ninth Put fails.
	dir := filepath.Join(t.TempDir(), "dest")
	cs := bucketChunks(t, srv, "")
	defer cs.Close()
	var progress []int
	st, err := src.Migrate(ctx, media.MigrateOptions{Dir: dir, Chunks: &failingChunks{Storage: cs, n: 2 * batch},
		BatchChunks: batch, Progress: func(st media.BackupStats) { progress = append(progress, st.ChunksCopied) }})
	if !errors.Is(err, errInjected) {
		t.Fatalf("interrupted Migrate: %v, want the injected failure", err)
	}
	if fmt.Sprint(progress) != "[4 8]" {
		t.Errorf("progress reported %v chunks copied, want [4 8]", progress)
	}
	if got := len(srv.Objects()); got != 2*batch {
		t.Errorf("after the interruption the bucket holds %d objects, want the two committed batches' %d (st %+v)", got, 2*batch, st)
	}
	// Without its index the destination is not a store yet.
	if _, err := media.Open(media.Options{Dir: dir, Chunks: bucketChunks(t, srv, ""), Logger: quietLogger()}); !errors.Is(err, media.ErrIndexMissing) {
		t.Fatalf("Open of an interrupted migration: %v, want ErrIndexMissing", err)
	}

	// Run again: only what is missing is copied.
	st, err = src.Migrate(ctx, media.MigrateOptions{Dir: dir, Chunks: cs, BatchChunks: batch})
	if err != nil {
		t.Fatalf("resumed Migrate: %v", err)
	}
	if st.ChunksPresent != 2*batch || st.ChunksCopied != srcRep.Chunks-2*batch {
		t.Errorf("resumed Migrate = %+v; want %d present, %d copied", st, 2*batch, srcRep.Chunks-2*batch)
	}
	closeStore(t, src)
	d := openStore(t, media.Options{Dir: dir, Chunks: bucketChunks(t, srv, "")})
	for id, data := range want {
		checkContent(t, d, id, data)
	}
	mediatest.CheckHealthy(t, d)
}

// TestS3StoreFsckAndBackup: fsck reads the chunks in the bucket, and finds
// one changed there; backup copies an S3 store to a local directory.
func TestS3StoreFsckAndBackup(t *testing.T) {
	srv := testkit.StartS3(t)
	cs := bucketChunks(t, srv, "p")
	s := openStore(t, media.Options{Create: true, Dir: filepath.Join(t.TempDir(), "data"), Chunks: cs, Chunker: smallParams})
	want := map[string][]byte{"a": randBytes(11, 100_000), "b": randBytes(12, 30_000)}
	for id, data := range want {
		upload(t, s, id, "@u:server", data)
	}
	rep := mediatest.CheckHealthy(t, s)
	if rep.Chunks != len(srv.Objects()) || rep.Chunks == 0 {
		t.Errorf("Fsck counts %d chunks, the bucket holds %d objects", rep.Chunks, len(srv.Objects()))
	}

	dest := filepath.Join(t.TempDir(), "backup")
	st := backup(t, s, dest)
	fileBytes := fileChunkBytes(t, want["a"], smallParams) + fileChunkBytes(t, want["b"], smallParams)
	if st.ChunksCopied != rep.Chunks || st.BytesCopied != fileBytes {
		t.Errorf("Backup = %+v; want %d chunks, %d bytes", st, rep.Chunks, fileBytes)
	}
	checkCopy(t, dest, smallParams, want)

	// Change one byte of a chunk of b in the bucket itself.
	h := chunksOf(t, want["b"], smallParams)[0]
	testkit.FlipByte(t, srv.ObjectPath(cs.Key(h)))
	rep = fsck(t, s)
	if rep.Healthy() || fmt.Sprint(rep.Damaged) != "["+mxc("b").String()+"]" {
		t.Errorf("Fsck after a changed object: healthy %v, damaged %v; want %s damaged", rep.Healthy(), rep.Damaged, mxc("b"))
	}
}

// TestMigrateCorruptSource: a chunk corrupt in the source is not copied,
// and the index is not placed; repaired, the migration completes.
func TestMigrateCorruptSource(t *testing.T) {
	src, srcDir := newStore(t, nil)
	data := randBytes(21, 100_000)
	upload(t, src, "a", "@u:server", data)
	h := chunksOf(t, data, smallParams)[1]
	path := chunkPath(srcDir, h)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	testkit.FlipByte(t, path)
	dest := filepath.Join(t.TempDir(), "dest")
	st, err := src.Migrate(context.Background(), media.MigrateOptions{Dir: dest})
	if err == nil || st.ChunksCorrupt != 1 {
		t.Fatalf("Migrate with a corrupt chunk = %+v, %v; want 1 corrupt and an error", st, err)
	}
	if _, ok := chunkFiles(t, dest)[h]; ok {
		t.Errorf("the corrupt chunk was copied")
	}
	if _, err := media.Open(media.Options{Dir: dest, Logger: quietLogger()}); !errors.Is(err, media.ErrIndexMissing) {
		t.Fatalf("Open after a migration that met a corrupt chunk: %v, want ErrIndexMissing", err)
	}

	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err = src.Migrate(context.Background(), media.MigrateOptions{Dir: dest})
	if err != nil || st.ChunksCopied != 1 {
		t.Fatalf("Migrate after the repair = %+v, %v; want the one chunk copied", st, err)
	}
	closeStore(t, src)
	checkContent(t, openStore(t, media.Options{Dir: dest}), "a", data)
}
