package media_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/media"
)

// A Store works on any cas.Storage: on a MemStore (no chunk files, no
// sendfile), uploads read back whole, through WriteTo and through ranges
// (Seek then Read), the same content is stored once, and a chunk damaged in
// the store is caught before its bytes leave: recorded, and listed by Fsck.
func TestStoreOnMemStore(t *testing.T) {
	clk := newClock()
	mem := cas.NewMemStore(clk.Now)
	dir := filepath.Join(t.TempDir(), "data")
	s := openStore(t, media.Options{Create: true, Dir: dir, Chunker: smallParams, Now: clk.Now, Chunks: mem})

	data := randBytes(1, 300<<10)
	upload(t, s, "A", "@u:server", data)
	upload(t, s, "B", "@u:server", data)
	checkContent(t, s, "A", data)
	hs := fileChunksOf(t, data, smallParams)
	if len(hs) < 3 {
		t.Fatalf("%d chunks, want several", len(hs))
	}
	stored := 0
	if err := mem.Walk(func(cas.Hash, os.FileInfo) error { stored++; return nil }); err != nil {
		t.Fatal(err)
	}
	if stored != len(hashSet(hs)) {
		t.Errorf("MemStore holds %d chunks, want the upload's %d, once", stored, len(hashSet(hs)))
	}
	if m, err := filepath.Glob(filepath.Join(dir, "cas", "*")); err != nil || len(m) != 0 {
		t.Errorf("chunk directories on disk: %v, %v; want none", m, err)
	}

	r, _, err := s.Open(mxc("A"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if n, err := r.WriteTo(&out); err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Errorf("WriteTo: %d bytes, %v; want the %d uploaded", n, err, len(data))
	}
	for _, rg := range [][2]int{{0, 10}, {5000, 70000}, {len(data) - 100, 100}, {100000, 1}} {
		if _, err := r.Seek(int64(rg[0]), io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, rg[1])
		if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, data[rg[0]:rg[0]+rg[1]]) {
			t.Errorf("range %v: %v, or wrong bytes", rg, err)
		}
	}
	r.Close()

	// The last chunk damaged: a whole read stops before it, a range
	// avoiding it still reads, and the damage is recorded.
	last := hs[len(hs)-1]
	if !mem.Damage(last) {
		t.Fatal("Damage: chunk not stored")
	}
	r, _, err = s.Open(mxc("A"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out.Reset()
	n, err := r.WriteTo(&out)
	if !errors.Is(err, media.ErrDamaged) || !errors.Is(err, cas.ErrCorrupt) {
		t.Errorf("WriteTo over a damaged chunk: %v, want ErrDamaged wrapping cas.ErrCorrupt", err)
	}
	if n >= int64(len(data)) || !bytes.Equal(out.Bytes(), data[:n]) {
		t.Errorf("WriteTo wrote %d bytes before the damage, want only intact ones", n)
	}
	if err := checkRange(s, "B", data, 0, 4096); err != nil {
		t.Errorf("range avoiding the damage: %v", err)
	}
	if err := checkRange(s, "B", data, fileChunkBytes(t, data, smallParams)-10, 10); !errors.Is(err, media.ErrDamaged) {
		t.Errorf("range in the damaged chunk: %v, want ErrDamaged", err)
	}
	rep := fsck(t, s)
	found := map[string]bool{}
	for _, p := range rep.Problems {
		if p.Chunk == last {
			found[p.Kind] = true
		}
	}
	if !found[media.ProblemCorruptChunk] || !found[media.ProblemRecordedDamage] {
		t.Errorf("Fsck problems %+v, want the damaged chunk as corrupt and recorded", rep.Problems)
	}
}

// checkRange reads n bytes of id at off and compares them with data.
func checkRange(s *media.Store, id string, data []byte, off, n int64) error {
	r, _, err := s.Open(mxc(id))
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := r.Seek(off, io.SeekStart); err != nil {
		return err
	}
	got := make([]byte, n)
	if _, err := io.ReadFull(r, got); err != nil {
		return err
	}
	if !bytes.Equal(got, data[off:off+n]) {
		return fmt.Errorf("range %d+%d: wrong bytes", off, n)
	}
	return nil
}

// readFromRecorder is an io.Writer with ReadFrom, like an
// http.ResponseWriter on a TCP connection: it records what it is given.
type readFromRecorder struct {
	bytes.Buffer
	from []string
}

func (w *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	w.from = append(w.from, fmt.Sprintf("%T", src))
	return io.Copy(&w.Buffer, src)
}

// WriteTo hands an io.ReaderFrom (an http.ResponseWriter) the rest once, as
// Spans; a plain writer gets the bytes too.
func TestWriteToHandsSpans(t *testing.T) {
	clk := newClock()
	s, _ := newStore(t, clk)
	data := randBytes(2, 200<<10)
	upload(t, s, "A", "@u:server", data)
	r, _, err := s.Open(mxc("A"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var w readFromRecorder
	if n, err := r.WriteTo(&w); err != nil || !bytes.Equal(w.Bytes(), data) {
		t.Fatalf("WriteTo: %d bytes, %v; want the %d uploaded", n, err, len(data))
	}
	if len(w.from) != 1 || w.from[0] != "*media.Spans" {
		t.Errorf("WriteTo: ReadFrom called with %v, want once with *media.Spans", w.from)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var plain bytes.Buffer
	if n, err := r.WriteTo(struct{ io.Writer }{&plain}); err != nil || !bytes.Equal(plain.Bytes(), data) {
		t.Errorf("WriteTo to a plain writer: %d bytes, %v; want the %d uploaded", n, err, len(data))
	}
}

// On the filesystem store, Spans gives each chunk verified within the TTL
// as its *os.File (for splice), at most max bytes at a time; a cold chunk
// comes as the buffer it was hashed in.
func TestSpansGiveChunkFiles(t *testing.T) {
	clk := newClock()
	s, _ := newStore(t, clk)
	data := randBytes(2, 200<<10)
	upload(t, s, "A", "@u:server", data)
	nchunks := len(chunksOf(t, data, smallParams))

	spans := func(max int64) (kinds []string) {
		t.Helper()
		r, _, err := s.Open(mxc("A"))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var got []byte
		for sp := r.Spans(); ; {
			span, err := sp.Next(max)
			if err == io.EOF {
				break
			}
			if err != nil || span.N > max {
				t.Fatalf("Next(%d): %d bytes, %v", max, span.N, err)
			}
			switch {
			case span.Data != nil:
				kinds, got = append(kinds, "data"), append(got, span.Data...)
			case span.File != nil:
				b := make([]byte, span.N)
				if _, err := span.File.ReadAt(b, span.Off); err != nil {
					t.Fatal(err)
				}
				kinds, got = append(kinds, "file"), append(got, b...)
			default:
				t.Fatalf("span %d neither data nor file", len(kinds))
			}
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("spans: %d bytes, want the %d uploaded", len(got), len(data))
		}
		return kinds
	}
	if got := spans(1 << 20); len(got) != nchunks || slices.Contains(got, "file") {
		t.Errorf("cold spans: %v, want %d from buffers", got, nchunks)
	}
	if got := spans(1 << 20); len(got) != nchunks || slices.Contains(got, "data") {
		t.Errorf("hot spans: %v, want %d files", got, nchunks)
	}
	if got := spans(1000); len(got) < len(data)/1000 {
		t.Errorf("spans of at most 1000 bytes: %d of them for %d bytes", len(got), len(data))
	}
}
