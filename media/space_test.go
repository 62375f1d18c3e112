package media_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/media/mediatest"
	"github.com/mxcas/mxcas/testkit"
)

// disk is a FreeSpace whose answer the test sets, counting the calls.
type disk struct {
	mu          sync.Mutex
	free, total uint64
	calls       int
}

func (d *disk) FreeSpace() (uint64, uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	return d.free, d.total, nil
}

func (d *disk) set(free uint64) {
	d.mu.Lock()
	d.free = free
	d.mu.Unlock()
}

func (d *disk) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// Under MinFreeBytes every kind of write is refused with ErrNoSpace and
// changes nothing, before reading a byte of the body or asking a remote
// server; reads go on; once space returns the next write goes through,
// without waiting for any cache.
func TestFreeSpaceRefusesWrites(t *testing.T) {
	d := &disk{free: 64 << 20, total: 1 << 30}
	remote := mustMXC("far.test", "r")
	f := &fetcher{files: map[string][]byte{remote.String(): []byte("remote")}}
	clk := newClock()
	dir := filepath.Join(t.TempDir(), "data")
	s := openStore(t, media.Options{Create: true, Dir: dir, Chunker: smallParams, Now: clk.Now, FreeSpace: d.FreeSpace,
		MinFreeBytes: 1 << 20, BallastBytes: -1,
		Thumbnails: media.ThumbnailOptions{Disabled: true}, Remote: media.RemoteOptions{Fetcher: f}})
	img, err := os.ReadFile("../thumbgen/testdata/video-001.png")
	if err != nil {
		t.Fatal(err)
	}
	info := media.UploadInfo{MXC: mxc("a"), ContentType: "image/png", Size: int64(len(img))}
	a, err := s.Upload(context.Background(), info, bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}

	d.set(512 << 10)
	clk.Advance(2 * time.Second) // past the reading that left room
	body := &countingReader{r: bytes.NewReader(randBytes(1, 200<<10))}
	_, err = s.Upload(context.Background(), media.UploadInfo{MXC: mxc("b"), Size: 200 << 10}, body)
	if !errors.Is(err, media.ErrNoSpace) {
		t.Errorf("upload with 512 KiB free: %v, want ErrNoSpace", err)
	}
	if body.n != 0 {
		t.Errorf("the refused upload read %d bytes of its body", body.n)
	}
	checkNotFound(t, s, "b")
	// Stored content needs only records: refused too.
	info.MXC = mxc("c")
	if _, err := s.Upload(context.Background(), info, bytes.NewReader(img)); !errors.Is(err, media.ErrNoSpace) {
		t.Errorf("re-upload of stored content: %v, want ErrNoSpace", err)
	}
	checkNotFound(t, s, "c")
	if _, err := s.Create(media.CreateInfo{MXC: mxc("d"), Uploader: "@u:s"}); !errors.Is(err, media.ErrNoSpace) {
		t.Errorf("create: %v, want ErrNoSpace", err)
	}
	checkNotFound(t, s, "d")
	if _, _, err := s.Thumbnail(context.Background(), a, media.ThumbnailRequest{Width: 32, Height: 32, Method: "crop"}); !errors.Is(err, media.ErrNoSpace) {
		t.Errorf("thumbnail: %v, want ErrNoSpace", err)
	}
	if _, err := s.FetchRemote(context.Background(), remote); !errors.Is(err, media.ErrNoSpace) {
		t.Errorf("remote fetch: %v, want ErrNoSpace", err)
	}
	if n := f.calls.Load(); n != 0 {
		t.Errorf("the remote server was asked %d times for media that could not be stored", n)
	}
	checkContent(t, s, "a", img)

	// Space returns; the clock has not moved.
	d.set(64 << 20)
	upload(t, s, "b", "", randBytes(1, 200<<10))
	if _, err := s.FetchRemote(context.Background(), remote); err != nil {
		t.Errorf("remote fetch once space returned: %v", err)
	}
	if _, _, err := s.Thumbnail(context.Background(), a, media.ThumbnailRequest{Width: 32, Height: 32, Method: "crop"}); err != nil {
		t.Errorf("thumbnail once space returned: %v", err)
	}
	mediatest.CheckHealthy(t, s)
}

// The check is cheap: while there is room, the disk is read again only
// after a while or after a quarter of the threshold has been written, not
// for every chunk or upload.
func TestFreeSpaceReadSparingly(t *testing.T) {
	d := &disk{free: 1 << 30, total: 4 << 30}
	clk := newClock()
	s := openStore(t, media.Options{Create: true, Dir: filepath.Join(t.TempDir(), "data"), Chunker: smallParams, Now: clk.Now,
		FreeSpace: d.FreeSpace, MinFreeBytes: 16 << 20, BallastBytes: -1})
	before := d.count()
	for i := range 20 {
		upload(t, s, fmt.Sprintf("m%d", i), "", randBytes(uint64(i), 100<<10)) // 2 MB in ~120 chunks
	}
	if n := d.count() - before; n > 2 {
		t.Errorf("free space read %d times for 20 small uploads within a second, want at most 2", n)
	}
	clk.Advance(2 * time.Second)
	before = d.count()
	upload(t, s, "later", "", randBytes(99, 1000))
	if d.count() == before {
		t.Error("free space not read again after 2 s")
	}
	// A quarter of the threshold written: read again, clock or not.
	before = d.count()
	upload(t, s, "big", "", randBytes(100, 5<<20))
	if d.count() == before {
		t.Error("free space not read again after 5 MiB written")
	}
}

// The store's defaults come from the filesystem's size.
func TestFreeSpaceDefaults(t *testing.T) {
	for _, c := range []struct {
		total, free uint64
		ok          bool
	}{
		{total: 1 << 30, free: 30 << 20, ok: true},          // 2% of 1 GiB is 20.5 MiB
		{total: 1 << 30, free: 15 << 20, ok: false},         //
		{total: 1 << 40, free: 600 << 20, ok: true},         // capped at 512 MiB
		{total: 1 << 40, free: 500 << 20, ok: false},        //
		{total: 100 << 30, free: (512 + 1) << 20, ok: true}, // 2% is 2 GiB: the cap wins
	} {
		d := &disk{free: c.free, total: c.total}
		s := openStore(t, media.Options{Create: true, Dir: filepath.Join(t.TempDir(), "data"), FreeSpace: d.FreeSpace, BallastBytes: -1})
		_, err := s.Upload(context.Background(), media.UploadInfo{MXC: mxc("x"), Size: 10}, bytes.NewReader(make([]byte, 10)))
		if got := err == nil; got != c.ok || (err != nil && !errors.Is(err, media.ErrNoSpace)) {
			t.Errorf("fs of %d MiB, %d MiB free: upload error %v, want ok=%v", c.total>>20, c.free>>20, err, c.ok)
		}
	}
}

// A chunk write that meets a full disk (here the free-space reading lies)
// is ErrNoSpace too, and leaves no record.
func TestENOSPCIsErrNoSpace(t *testing.T) {
	mnt := testkit.MountTmpfs(t, 16<<20)
	plenty := func() (uint64, uint64, error) { return 1 << 30, 1 << 30, nil }
	s := openStore(t, media.Options{Create: true, Dir: filepath.Join(mnt, "data"), Chunker: smallParams, FreeSpace: plenty, BallastBytes: -1})
	filler := filepath.Join(mnt, "filler")
	testkit.FillDisk(t, filler)
	t.Cleanup(func() { os.Remove(filler) }) // before the store closes
	_, err := s.Upload(context.Background(), media.UploadInfo{MXC: mxc("x"), Size: 1 << 20}, bytes.NewReader(randBytes(7, 1<<20)))
	if !errors.Is(err, media.ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("upload on a full disk: %v, want ErrNoSpace wrapping ENOSPC", err)
	}
	checkNotFound(t, s, "x")
}

// openWithin opens a store, failing the test if that hangs.
func openWithin(t *testing.T, opts media.Options) *media.Store {
	t.Helper()
	type res struct {
		s   *media.Store
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := media.Open(opts)
		ch <- res{s, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("open: %v", r.err)
		}
		t.Cleanup(func() { closeStore(t, r.s) })
		return r.s
	case <-time.After(60 * time.Second):
		t.Fatal("open hangs")
		return nil
	}
}

// The ballast lets a store open on a full disk; it comes back, before
// writes resume, once space is freed.
func TestBallastOpensOnFullDisk(t *testing.T) {
	mnt := testkit.MountTmpfs(t, 48<<20)
	dir := filepath.Join(mnt, "data")
	clk := newClock()
	opts := media.Options{Create: true, Dir: dir, Chunker: smallParams, MinFreeBytes: 1 << 20, BallastBytes: 8 << 20, KeepBallast: true, Now: clk.Now, Logger: quietLogger()}
	s := openWithin(t, opts)
	ballast := filepath.Join(dir, media.BallastName)
	if fi, err := os.Stat(ballast); err != nil || fi.Size() != 8<<20 {
		t.Fatalf("ballast after open: %v, %v; want 8 MiB", fi, err)
	}
	data := randBytes(3, 1<<20)
	upload(t, s, "a", "", data)
	closeStore(t, s)

	filler := filepath.Join(mnt, "filler")
	testkit.FillDisk(t, filler)
	s = openWithin(t, opts) // only because the ballast was released
	checkContent(t, s, "a", data)
	// Opening freed the old write-ahead log, and the ballast may be back
	// already: take the rest too.
	filler2 := filepath.Join(mnt, "filler2")
	testkit.FillDisk(t, filler2)
	clk.Advance(2 * time.Second)
	if _, err := s.Upload(context.Background(), media.UploadInfo{MXC: mxc("b"), Size: 10}, bytes.NewReader(make([]byte, 10))); !errors.Is(err, media.ErrNoSpace) {
		t.Errorf("upload on the full disk: %v, want ErrNoSpace", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filler2); err != nil {
		t.Fatal(err)
	}
	upload(t, s, "b", "", randBytes(4, 1000))
	if fi, err := os.Stat(ballast); err != nil || fi.Size() != 8<<20 {
		t.Errorf("ballast once space returned: %v, %v; want 8 MiB", fi, err)
	}
	// Fsck and GC leave it alone; a backup does not copy it.
	mediatest.CheckHealthy(t, s)
	gc(t, s)
	if _, err := os.Stat(ballast); err != nil {
		t.Errorf("ballast after gc: %v", err)
	}
	dest := filepath.Join(t.TempDir(), "backup")
	if _, err := s.Backup(context.Background(), dest); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dest, media.BallastName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the backup holds a ballast (stat: %v)", err)
	}
	closeStore(t, s)
	s = openWithin(t, opts)
	checkContent(t, s, "a", data)
}

// TestOnlyTheWriterKeepsABallast: opening a store without KeepBallast (fsck,
// gc, backup) writes no ballast and leaves an existing one as it is; the
// server's open (KeepBallast) makes it.
func TestOnlyTheWriterKeepsABallast(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ballast := filepath.Join(dir, media.BallastName)
	opts := media.Options{Create: true, Dir: dir, Chunker: smallParams, BallastBytes: 1 << 20, Logger: quietLogger()}
	closeStore(t, openStore(t, opts))
	if _, err := os.Stat(ballast); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ballast after an open without KeepBallast: %v, want none", err)
	}
	opts.KeepBallast = true
	closeStore(t, openStore(t, opts))
	fi, err := os.Stat(ballast)
	if err != nil || fi.Size() != 1<<20 {
		t.Fatalf("ballast after an open with KeepBallast: %v, %v; want 1 MiB", fi, err)
	}
	opts.KeepBallast = false
	opts.BallastBytes = 2 << 20 // larger than the file: still left alone
	closeStore(t, openStore(t, opts))
	if fi, err := os.Stat(ballast); err != nil || fi.Size() != 1<<20 {
		t.Errorf("ballast after a maintenance open: %v, %v; want the 1 MiB file untouched", fi, err)
	}
}

// TestMinFreeOverFilesystemWarns: a threshold the filesystem can never meet
// is said at open, not discovered at the first refused upload.
func TestMinFreeOverFilesystemWarns(t *testing.T) {
	for _, c := range []struct {
		minFree int64
		warn    bool
	}{{1 << 40, true}, {1 << 30, true}, {1 << 20, false}} {
		var logs bytes.Buffer
		d := &disk{free: 512 << 20, total: 1 << 30}
		s := openStore(t, media.Options{Create: true, Dir: filepath.Join(t.TempDir(), "data"), FreeSpace: d.FreeSpace,
			MinFreeBytes: c.minFree, BallastBytes: -1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		closeStore(t, s)
		if got := strings.Contains(logs.String(), "every write will be refused"); got != c.warn {
			t.Errorf("min_free_bytes %d on a 1 GiB filesystem: warned %v, want %v\n%s", c.minFree, got, c.warn, logs.String())
		}
	}
}
