package media_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	hs := chunksOf(t, data, smallParams)
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
	if err := checkRange(s, "B", data, int64(len(data)-10), 10); !errors.Is(err, media.ErrDamaged) {
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
	typ := fmt.Sprintf("%T", src)
	if lr, ok := src.(*io.LimitedReader); ok {
		typ = fmt.Sprintf("limited %T", lr.R)
	}
	w.from = append(w.from, typ)
	return io.Copy(&w.Buffer, src)
}

// On the filesystem store, WriteTo hands each chunk verified within the
// TTL to the writer as an *io.LimitedReader over its *os.File, which is
// what lets net/http use sendfile; a cold chunk is written from the buffer
// it was hashed in.
func TestWriteToSendsChunkFiles(t *testing.T) {
	clk := newClock()
	s, _ := newStore(t, clk)
	data := randBytes(2, 200<<10)
	upload(t, s, "A", "@u:server", data)
	nchunks := len(chunksOf(t, data, smallParams))

	writeTo := func() []string {
		t.Helper()
		r, _, err := s.Open(mxc("A"))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var w readFromRecorder
		if n, err := r.WriteTo(&w); err != nil || !bytes.Equal(w.Bytes(), data) {
			t.Fatalf("WriteTo: %d bytes, %v; want the %d uploaded", n, err, len(data))
		}
		return w.from
	}
	if got := writeTo(); len(got) != 0 {
		t.Errorf("cold WriteTo: ReadFrom called with %v, want plain writes from the buffer", got)
	}
	got := writeTo()
	if len(got) != nchunks {
		t.Fatalf("hot WriteTo: ReadFrom called %d times (%v), want once per chunk (%d)", len(got), got, nchunks)
	}
	for i, typ := range got {
		if typ != "limited *os.File" {
			t.Errorf("hot WriteTo, chunk %d: ReadFrom got %s, want limited *os.File", i, typ)
		}
	}
}
