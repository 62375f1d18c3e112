package media_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/chunker"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/media/mediatest"
)

func TestUploadOpenRoundTrip(t *testing.T) {
	s, _ := newStore(t, nil)
	p := s.Params()
	sizes := []int{0, 1, p.Min - 1, p.Min, p.Min + 1, p.Max - 1, p.Max, p.Max + 1, 3<<20 + 17}
	for i, size := range sizes {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			data := randBytes(uint64(i), size)
			id := fmt.Sprintf("rt%d", size)
			rec := upload(t, s, id, "@u:server", data)
			if got, want := rec.Size, int64(size); got != want {
				t.Errorf("Record.Size = %d, want %d", got, want)
			}
			if got, want := rec.Object, wantObjectHash(t, p, data); got != want {
				t.Errorf("Record.Object = %s, want %s", got.Short(), want.Short())
			}
			st, err := s.Stat(mxc(id))
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if st.Object != rec.Object || st.Size != rec.Size || st.Uploader != "@u:server" || st.ContentType != "application/octet-stream" {
				t.Errorf("Stat = %+v, want the uploaded record %+v", st, rec)
			}
			r, _, err := s.Open(mxc(id))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer r.Close()
			if got, want := r.Size(), int64(size); got != want {
				t.Errorf("Reader.Size() = %d, want %d", got, want)
			}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatalf("ReadAll: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("read back %d bytes, want %d bytes, equal content", len(got), len(data))
			}
		})
	}
	mediatest.CheckHealthy(t, s)
}

// TestUploadUnknownSize uploads with Size -1 (chunked), read in odd pieces.
func TestUploadUnknownSize(t *testing.T) {
	s, _ := newStore(t, nil)
	data := randBytes(7, 300_001)
	info := media.UploadInfo{MXC: mxc("chunked"), Size: -1}
	body := iotest.OneByteReader(io.MultiReader(iotest.HalfReader(bytes.NewReader(data[:1000])), bytes.NewReader(data[1000:])))
	rec, err := s.Upload(context.Background(), info, body)
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if got, want := rec.Size, int64(len(data)); got != want {
		t.Errorf("Size = %d, want %d", got, want)
	}
	checkContent(t, s, "chunked", data)
}

func TestReaderSeek(t *testing.T) {
	s, _ := newStore(t, nil)
	const size = 2<<20 + 333
	data := randBytes(11, size)
	upload(t, s, "seek", "", data)
	r, _, err := s.Open(mxc("seek"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()

	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 200_000)
	for i := range 300 {
		off := rng.Int64N(size + 1)
		n := min(rng.IntN(len(buf)), int(size-off))
		if i%3 == 0 {
			// Seek relative to the end, as a suffix range does.
			pos, err := r.Seek(off-size, io.SeekEnd)
			if err != nil || pos != off {
				t.Fatalf("Seek(%d, SeekEnd) = %d, %v; want %d", off-size, pos, err, off)
			}
		} else if pos, err := r.Seek(off, io.SeekStart); err != nil || pos != off {
			t.Fatalf("Seek(%d, SeekStart) = %d, %v", off, pos, err)
		}
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			t.Fatalf("ReadFull(%d bytes at %d): %v", n, off, err)
		}
		if !bytes.Equal(buf[:n], data[off:off+int64(n)]) {
			t.Fatalf("%d bytes at %d differ from the upload", n, off)
		}
		if pos, err := r.Seek(0, io.SeekCurrent); err != nil || pos != off+int64(n) {
			t.Fatalf("Seek(0, SeekCurrent) = %d, %v; want %d", pos, err, off+int64(n))
		}
	}

	// At and past the end: io.EOF, no error.
	for _, off := range []int64{size, size + 1, size + 1<<20} {
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			t.Fatalf("Seek(%d): %v", off, err)
		}
		if n, err := r.Read(buf); n != 0 || err != io.EOF {
			t.Errorf("Read at %d = %d, %v; want 0, io.EOF", off, n, err)
		}
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Errorf("Seek(-1, SeekStart) succeeded, want an error")
	}
	if _, err := r.Seek(0, 42); err == nil {
		t.Errorf("Seek(0, 42) succeeded, want an error")
	}
}

func TestServeContentRange(t *testing.T) {
	s, _ := newStore(t, nil)
	const size = 1<<20 + 5
	data := randBytes(12, size)
	upload(t, s, "ranged", "", data)

	tests := []struct {
		rng        string
		start, end int // inclusive
	}{
		{"bytes=0-0", 0, 0},
		{"bytes=1000-70000", 1000, 70000},
		{"bytes=4095-4097", 4095, 4097},
		{"bytes=500000-", 500000, size - 1},
		{"bytes=-777", size - 777, size - 1},
		{"bytes=1048570-9999999", 1048570, size - 1},
	}
	for _, tt := range tests {
		t.Run(tt.rng, func(t *testing.T) {
			r, _, err := s.Open(mxc("ranged"))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer r.Close()
			req := httptest.NewRequest(http.MethodGet, "/download/server/ranged", nil)
			req.Header.Set("Range", tt.rng)
			w := httptest.NewRecorder()
			http.ServeContent(w, req, "", time.Time{}, r)
			if got, want := w.Code, http.StatusPartialContent; got != want {
				t.Fatalf("status = %d, want %d", got, want)
			}
			if got, want := w.Header().Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", tt.start, tt.end, size); got != want {
				t.Errorf("Content-Range = %q, want %q", got, want)
			}
			if got, want := w.Body.Bytes(), data[tt.start:tt.end+1]; !bytes.Equal(got, want) {
				t.Errorf("body: %d bytes, want %d bytes, equal content", len(got), len(want))
			}
		})
	}

	t.Run("whole", func(t *testing.T) {
		r, _, err := s.Open(mxc("ranged"))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer r.Close()
		w := httptest.NewRecorder()
		http.ServeContent(w, httptest.NewRequest(http.MethodGet, "/", nil), "", time.Time{}, r)
		if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), data) {
			t.Errorf("status %d, %d bytes; want 200 and the %d uploaded bytes", w.Code, w.Body.Len(), size)
		}
	})
	t.Run("unsatisfiable", func(t *testing.T) {
		r, _, err := s.Open(mxc("ranged"))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer r.Close()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", size))
		w := httptest.NewRecorder()
		http.ServeContent(w, req, "", time.Time{}, r)
		if got, want := w.Code, http.StatusRequestedRangeNotSatisfiable; got != want {
			t.Errorf("status = %d, want %d", got, want)
		}
	})
}

// cancelAfter reads r and cancels ctx once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestUploadFailures(t *testing.T) {
	errBoom := errors.New("boom")
	const n = 300_000
	data := randBytes(21, n+100)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name    string
		size    int64
		maxSize int64
		ctx     func() context.Context
		body    func(ctx context.Context) io.Reader
		want    []error // errors.Is must hold for each
	}{
		{
			name: "truncated",
			size: n,
			body: func(context.Context) io.Reader { return bytes.NewReader(data[:n-1]) },
			want: []error{media.ErrTruncated},
		},
		{
			name: "truncated to nothing",
			size: n,
			body: func(context.Context) io.Reader { return bytes.NewReader(nil) },
			want: []error{media.ErrTruncated},
		},
		{
			name: "longer than declared",
			size: n,
			body: func(context.Context) io.Reader { return bytes.NewReader(data[:n+1]) },
			want: []error{media.ErrTooLarge},
		},
		{
			name: "declared empty, one byte sent",
			size: 0,
			body: func(context.Context) io.Reader { return bytes.NewReader(data[:1]) },
			want: []error{media.ErrTooLarge},
		},
		{
			name:    "over MaxSize, unknown size",
			size:    -1,
			maxSize: n - 1,
			body:    func(context.Context) io.Reader { return bytes.NewReader(data[:n]) },
			want:    []error{media.ErrTooLarge},
		},
		{
			name:    "declared size over MaxSize",
			size:    n,
			maxSize: n - 1,
			body:    func(context.Context) io.Reader { return bytes.NewReader(data[:n]) },
			want:    []error{media.ErrTooLarge},
		},
		{
			name: "read error half-way",
			size: n,
			body: func(context.Context) io.Reader {
				return io.MultiReader(bytes.NewReader(data[:n/2]), iotest.ErrReader(errBoom))
			},
			want: []error{errBoom},
		},
		{
			name: "unexpected EOF half-way, unknown size",
			size: -1,
			body: func(context.Context) io.Reader {
				return io.MultiReader(bytes.NewReader(data[:n/2]), iotest.ErrReader(io.ErrUnexpectedEOF))
			},
			want: []error{io.ErrUnexpectedEOF},
		},
		{
			name: "context cancelled before",
			size: n,
			ctx:  func() context.Context { return cancelled },
			body: func(context.Context) io.Reader { return bytes.NewReader(data[:n]) },
			want: []error{context.Canceled},
		},
		{
			name: "context cancelled before, empty body",
			size: 0,
			ctx:  func() context.Context { return cancelled },
			body: func(context.Context) io.Reader { return bytes.NewReader(nil) },
			want: []error{context.Canceled},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := newStore(t, nil)
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = tt.ctx()
			}
			info := media.UploadInfo{MXC: mxc("failed"), Size: tt.size, MaxSize: tt.maxSize, Uploader: "@u:server"}
			rec, err := s.Upload(ctx, info, tt.body(ctx))
			if err == nil {
				t.Fatalf("Upload succeeded (%+v), want an error", rec)
			}
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Errorf("Upload error %q does not wrap %q", err, want)
				}
			}
			checkNotFound(t, s, "failed")
			checkTmpEmpty(t, dir)
			// Nothing of the failed upload stands in the way of a good one.
			upload(t, s, "failed", "@u:server", data[:n])
			checkContent(t, s, "failed", data[:n])
		})
	}

	t.Run("context cancelled half-way", func(t *testing.T) {
		s, dir := newStore(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		big := randBytes(22, 2<<20)
		body := &cancelAfter{r: bytes.NewReader(big), n: 1 << 20, cancel: cancel}
		_, err := s.Upload(ctx, media.UploadInfo{MXC: mxc("cancelled"), Size: int64(len(big))}, body)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Upload error = %v, want context.Canceled", err)
		}
		checkNotFound(t, s, "cancelled")
		checkTmpEmpty(t, dir)
	})

	t.Run("exactly MaxSize", func(t *testing.T) {
		s, _ := newStore(t, nil)
		for _, size := range []int64{n, -1} {
			id := fmt.Sprintf("max%d", size+1)
			info := media.UploadInfo{MXC: mxc(id), Size: size, MaxSize: n}
			if _, err := s.Upload(context.Background(), info, bytes.NewReader(data[:n])); err != nil {
				t.Fatalf("Upload(Size %d, MaxSize %d, %d bytes): %v", size, n, n, err)
			}
			checkContent(t, s, id, data[:n])
		}
	})
}

func TestUploadExistingID(t *testing.T) {
	s, dir := newStore(t, nil)
	first := randBytes(31, 100_000)
	rec := upload(t, s, "taken", "@a:server", first)
	for _, body := range [][]byte{first, randBytes(32, 50_000), nil} {
		// NewID (an ID drawn at random) skips the look before the body is
		// read: the commit refuses the ID all the same.
		for _, newID := range []bool{false, true} {
			info := media.UploadInfo{MXC: mxc("taken"), Uploader: "@b:server", Size: int64(len(body)), NewID: newID}
			if _, err := s.Upload(context.Background(), info, bytes.NewReader(body)); !errors.Is(err, media.ErrExists) {
				t.Errorf("second Upload of %d bytes (NewID %v): error %v, want ErrExists", len(body), newID, err)
			}
		}
	}
	got, err := s.Stat(mxc("taken"))
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if got != rec {
		t.Errorf("record after refused uploads = %+v, want %+v", got, rec)
	}
	checkContent(t, s, "taken", first)
	checkTmpEmpty(t, dir)
}

// TestUploadSameIDConcurrently starts two uploads to one ID, both past
// their first read (so both have checked the ID), then lets them finish:
// exactly one may succeed, the other must get ErrExists (the per-ID claim
// in claims.go).
func TestUploadSameIDConcurrently(t *testing.T) {
	s, _ := newStore(t, nil)
	contents := [][]byte{randBytes(41, 100_000), randBytes(42, 100_000)}
	type result struct {
		i   int
		err error
	}
	results := make(chan result, 2)
	var writers []*io.PipeWriter
	for i, data := range contents {
		pr, pw := io.Pipe()
		writers = append(writers, pw)
		go func() {
			info := media.UploadInfo{MXC: mxc("race"), Uploader: fmt.Sprintf("@u%d:server", i), Size: int64(len(data))}
			_, err := s.Upload(context.Background(), info, pr)
			pr.CloseWithError(err)
			results <- result{i, err}
		}()
		// The write returns once Upload has read it, after its ID check (or
		// with an error once Upload has given up without reading).
		pw.Write(data[:1])
	}
	for i, pw := range writers {
		pw.Write(contents[i][1:])
		pw.Close()
	}
	var ok []int
	for range contents {
		r := <-results
		switch {
		case r.err == nil:
			ok = append(ok, r.i)
		case !errors.Is(r.err, media.ErrExists):
			t.Errorf("upload %d: %v, want success or ErrExists", r.i, r.err)
		}
	}
	if len(ok) != 1 {
		t.Fatalf("%d uploads to one ID succeeded, want exactly 1", len(ok))
	}
	checkContent(t, s, "race", contents[ok[0]])
}

func TestNotFound(t *testing.T) {
	s, _ := newStore(t, nil)
	upload(t, s, "present", "", []byte("x"))
	for _, m := range []string{"absent", "presen", "present2"} {
		checkNotFound(t, s, m)
	}
	other := mustMXC("other.example", "present")
	if _, err := s.Stat(other); !errors.Is(err, media.ErrNotFound) {
		t.Errorf("Stat(%s) = %v, want ErrNotFound", other, err)
	}
	if err := s.Delete(mxc("absent")); !errors.Is(err, media.ErrNotFound) {
		t.Errorf("Delete(absent) = %v, want ErrNotFound", err)
	}
	if _, err := s.OpenObject(cas.Sum([]byte("never stored"))); err == nil {
		t.Errorf("OpenObject of an unknown object succeeded")
	}
}

// TestConcurrentUploads: 16 goroutines × 10 uploads whose content is partly
// shared (one of a few common prefixes, then a unique tail).
func TestConcurrentUploads(t *testing.T) {
	s, dir := newStore(t, nil)
	shared := [][]byte{randBytes(50, 100_000), randBytes(51, 60_000), randBytes(52, 5_000)}
	const workers, perWorker = 16, 10
	content := func(w, i int) []byte {
		b := append([]byte(nil), shared[(w+i)%len(shared)]...)
		if (w*perWorker+i)%7 == 0 {
			return b // identical to other uploads
		}
		return append(b, randBytes(uint64(1000+w*perWorker+i), 1+(w*7919+i*104729)%40_000)...)
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				data := content(w, i)
				info := media.UploadInfo{MXC: mxc(fmt.Sprintf("c%d-%d", w, i)), Uploader: fmt.Sprintf("@w%d:server", w), Size: int64(len(data))}
				if _, err := s.Upload(context.Background(), info, bytes.NewReader(data)); err != nil {
					errs <- fmt.Errorf("worker %d upload %d: %w", w, i, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var all [][]cas.Hash
	for w := range workers {
		for i := range perWorker {
			data := content(w, i)
			checkContent(t, s, fmt.Sprintf("c%d-%d", w, i), data)
			all = append(all, fileChunksOf(t, data, s.Params()))
		}
	}
	rep := mediatest.CheckHealthy(t, s)
	if got, want := rep.Media, workers*perWorker; got != want {
		t.Errorf("Fsck: Media = %d, want %d", got, want)
	}
	want := hashSet(all...)
	if got := len(chunkFiles(t, dir)); got != len(want) {
		t.Errorf("%d chunk files, want %d (each distinct chunk once)", got, len(want))
	}
	if rep.Chunks != len(want) || rep.Orphans != 0 {
		t.Errorf("Fsck: Chunks = %d, Orphans = %d; want %d, 0", rep.Chunks, rep.Orphans, len(want))
	}
	checkTmpEmpty(t, dir)
}

// wantObjectHash computes an object's name as documented on objectHash: the
// BLAKE3 of a domain tag and each chunk's hash and length.
func wantObjectHash(t *testing.T, p chunker.Params, data []byte) cas.Hash {
	t.Helper()
	buf := []byte("mxcas object v1\x00")
	err := chunker.Split(data, p, func(c []byte) error {
		h := cas.Sum(c)
		buf = binary.AppendUvarint(append(buf, h[:]...), uint64(len(c)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cas.Sum(buf)
}
