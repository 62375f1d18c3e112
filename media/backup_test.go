package media_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/mxcas/mxcas/chunker"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/media/mediatest"
	"github.com/mxcas/mxcas/testkit"
)

func backup(t testing.TB, s *media.Store, dest string) media.BackupStats {
	t.Helper()
	st, err := s.Backup(context.Background(), dest)
	if err != nil {
		t.Fatalf("Backup(%s): %v", dest, err)
	}
	return st
}

// checkCopy opens the backup in dir, checks it with Fsck and reads back
// every media in want, then closes it.
func checkCopy(t testing.TB, dir string, params chunker.Params, want map[string][]byte) {
	t.Helper()
	cp, err := media.Open(media.Options{Create: true, Dir: dir, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("open backup: %v", err)
	}
	defer closeStore(t, cp)
	if cp.Params() != params {
		t.Errorf("backup Params() = %v, want %v", cp.Params(), params)
	}
	rep := mediatest.CheckHealthy(t, cp)
	if rep.Media < len(want) {
		t.Errorf("backup holds %d media, want at least %d", rep.Media, len(want))
	}
	for id, data := range want {
		checkContent(t, cp, id, data)
	}
}

func TestBackup(t *testing.T) {
	s, dir := newStore(t, nil)
	want := make(map[string][]byte)
	for i, size := range []int{0, 1, 5000, 300_000, 1 << 20} {
		id := fmt.Sprintf("m%d", i)
		want[id] = randBytes(uint64(130+i), size)
		upload(t, s, id, "@u:server", want[id])
	}
	want["copy"] = want["m3"]
	upload(t, s, "copy", "@v:server", want["copy"])
	files := chunkFiles(t, dir)
	var bytesStored int64
	for _, n := range files {
		bytesStored += n
	}

	dest := filepath.Join(t.TempDir(), "backup") // does not exist yet
	st := backup(t, s, dest)
	if st.ChunksCopied != len(files) || st.BytesCopied != bytesStored || st.ChunksPresent != 0 || st.ChunksCorrupt != 0 {
		t.Errorf("first Backup = %+v; want %d chunks and %d bytes copied, none present or corrupt", st, len(files), bytesStored)
	}
	checkCopy(t, dest, s.Params(), want)
	if got := len(chunkFiles(t, dest)); got != len(files) {
		t.Errorf("backup holds %d chunk files, want %d", got, len(files))
	}
	checkTmpEmpty(t, dest)

	// Again, with nothing new: nothing copied.
	st = backup(t, s, dest)
	if st.ChunksCopied != 0 || st.BytesCopied != 0 || st.ChunksPresent != len(files) {
		t.Errorf("second Backup = %+v; want nothing copied, %d present", st, len(files))
	}
	checkCopy(t, dest, s.Params(), want)

	// After a new upload and a delete: only the new chunks are copied.
	want["new"] = append(append([]byte(nil), want["m4"][:500_000]...), randBytes(139, 100_000)...)
	upload(t, s, "new", "@u:server", want["new"])
	if err := s.Delete(mxc("m2")); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	delete(want, "m2")
	after := chunkFiles(t, dir)
	st = backup(t, s, dest)
	if st.ChunksCopied != len(after)-len(files) || st.ChunksPresent != len(files) {
		t.Errorf("third Backup = %+v; want %d chunks copied, %d present", st, len(after)-len(files), len(files))
	}
	checkCopy(t, dest, s.Params(), want)
	cp := openStore(t, media.Options{Create: true, Dir: dest})
	checkNotFound(t, cp, "m2")
	closeStore(t, cp)
	checkTmpEmpty(t, dest)
}

func TestBackupRefusesOtherFormat(t *testing.T) {
	s, _ := newStore(t, nil)
	upload(t, s, "A", "", randBytes(140, 10_000))
	dest := filepath.Join(t.TempDir(), "other")
	other := openStore(t, media.Options{Create: true, Dir: dest}) // default params
	closeStore(t, other)
	if _, err := s.Backup(context.Background(), dest); err == nil {
		t.Errorf("Backup into a store with other chunker params succeeded")
	}
}

func TestBackupRefusesOpenDest(t *testing.T) {
	s, _ := newStore(t, nil)
	dest := filepath.Join(t.TempDir(), "busy")
	if _, err := s.Backup(context.Background(), dest); err != nil {
		t.Fatal(err)
	}
	openStore(t, media.Options{Dir: dest, Chunker: smallParams}) // the backup, in use
	if _, err := s.Backup(context.Background(), dest); !errors.Is(err, media.ErrLocked) {
		t.Errorf("Backup into an open store = %v, want ErrLocked", err)
	}
}

// TestBackupRefusesAnotherStore: a backup goes only into an earlier backup
// of the same store; another store with the same FORMAT (a different store
// ID), stopped or a backup of it, is refused untouched.
func TestBackupRefusesAnotherStore(t *testing.T) {
	s, _ := newStore(t, nil)
	upload(t, s, "mine", "", randBytes(141, 10_000))
	otherDir := filepath.Join(t.TempDir(), "other")
	other := openStore(t, media.Options{Create: true, Dir: otherDir, Chunker: smallParams})
	theirs := randBytes(142, 20_000)
	upload(t, other, "theirs", "", theirs)
	otherBackup := filepath.Join(t.TempDir(), "other-backup")
	if _, err := other.Backup(context.Background(), otherBackup); err != nil {
		t.Fatal(err)
	}
	closeStore(t, other)
	for _, dest := range []string{otherDir, otherBackup} {
		before := testkit.Tree(t, dest)
		if _, err := s.Backup(context.Background(), dest); !errors.Is(err, media.ErrBackupDest) {
			t.Errorf("Backup into %s = %v, want ErrBackupDest", dest, err)
		}
		testkit.SameTree(t, dest, before)
		o := openStore(t, media.Options{Dir: dest, Chunker: smallParams})
		checkContent(t, o, "theirs", theirs)
		closeStore(t, o)
	}
	// Its own earlier backup is still fine.
	mine := filepath.Join(t.TempDir(), "mine")
	for range 2 {
		if _, err := s.Backup(context.Background(), mine); err != nil {
			t.Fatalf("backup into its own backup: %v", err)
		}
	}
}

// ack is an acknowledged upload.
type ack struct {
	id   string
	data []byte
}

// TestBackupDuringUploads runs Backup while uploaders go on: the copy must
// hold every upload acknowledged before Backup was called.
func TestBackupDuringUploads(t *testing.T) {
	s, _ := newStore(t, nil)
	const uploaders = 4
	var (
		mu    sync.Mutex
		cond  = sync.NewCond(&mu)
		acked []ack
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range uploaders {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				seed := uint64(w)<<32 | uint64(i)
				data := randBytes(1000+seed, 1+int(seed*7919%150_000))
				if i%4 == 3 {
					// Partly shared with an earlier upload.
					data = append(randBytes(1000+uint64(w)<<32, 20_000), data...)
				}
				id := fmt.Sprintf("bg%d-%d", w, i)
				info := media.UploadInfo{MXC: mxc(id), Uploader: fmt.Sprintf("@w%d:server", w), Size: int64(len(data))}
				if _, err := s.Upload(context.Background(), info, bytes.NewReader(data)); err != nil {
					t.Errorf("Upload(%s): %v", id, err)
					return
				}
				mu.Lock()
				acked = append(acked, ack{id, data})
				cond.Broadcast()
				mu.Unlock()
			}
		})
	}
	mu.Lock()
	for len(acked) < 2*uploaders {
		cond.Wait()
	}
	before := append([]ack(nil), acked...)
	mu.Unlock()

	dest := filepath.Join(t.TempDir(), "backup")
	st, err := s.Backup(context.Background(), dest)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	mu.Lock()
	t.Logf("%d uploads acknowledged before the backup, %d in all; backup %+v", len(before), len(acked), st)
	mu.Unlock()

	want := make(map[string][]byte)
	for _, a := range before {
		want[a.id] = a.data
	}
	checkCopy(t, dest, s.Params(), want)
	mediatest.CheckHealthy(t, s)
}

// TestBackupCorruptSource: a corrupt chunk is not copied, the backup
// completes with an error, and the copy's Fsck names the media it breaks.
func TestBackupCorruptSource(t *testing.T) {
	s, dir := newStore(t, nil)
	a, b := randBytes(160, 200_000), randBytes(161, 100_000)
	upload(t, s, "A", "", a)
	upload(t, s, "B", "", b)
	bad := chunksOf(t, a, s.Params())[1]
	data, err := os.ReadFile(chunkPath(dir, bad))
	if err != nil {
		t.Fatal(err)
	}
	data[0] ^= 0x80
	if err := os.WriteFile(chunkPath(dir, bad), data, 0o600); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "backup")
	st, err := s.Backup(context.Background(), dest)
	if err == nil {
		t.Errorf("Backup of a store with a corrupt chunk succeeded")
	}
	if st.ChunksCorrupt != 1 {
		t.Errorf("ChunksCorrupt = %d, want 1", st.ChunksCorrupt)
	}
	cp := openStore(t, media.Options{Create: true, Dir: dest})
	rep := fsck(t, cp)
	if got, want := rep.Damaged, []string{"mxc://server/A"}; !slices.Equal(got, want) {
		t.Errorf("backup Fsck: Damaged = %q, want %q", got, want)
	}
	checkContent(t, cp, "B", b)
}
