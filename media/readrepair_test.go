package media_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
)

// countingSource is a repair source that counts its reads.
type countingSource struct {
	r     cas.Reader
	calls atomic.Int64
}

func (c *countingSource) ReadChunk(h cas.Hash, buf []byte) ([]byte, error) {
	c.calls.Add(1)
	return c.r.ReadChunk(h, buf)
}

// repairPair makes a primary holding data as "A" and a standby holding the
// same in the data directory it returns, whose repair source is what src
// makes of the primary, counted (src nil: the standby has none, and the
// count is nil). It returns the chunks of data.
func repairPair(t *testing.T, data []byte, src func(primary *media.Store) cas.Reader) (*media.Store, *media.Store, string, []cas.Hash, *countingSource) {
	t.Helper()
	primary, _ := newStore(t, nil)
	upload(t, primary, "A", "@u:example.org", data)
	dir := filepath.Join(t.TempDir(), "standby")
	opts := media.Options{Create: true, Dir: dir, Chunker: smallParams}
	var counted *countingSource
	if src != nil {
		counted = &countingSource{r: src(primary)}
		opts.RepairSource = counted
	}
	standby := openStore(t, opts)
	upload(t, standby, "A", "@u:example.org", data)
	chunks := chunksOf(t, data, smallParams)
	if len(chunks) < 3 {
		t.Fatalf("%d chunks, want several", len(chunks))
	}
	return primary, standby, dir, chunks, counted
}

// fromPrimary makes the primary the repair source.
func fromPrimary(p *media.Store) cas.Reader { return p }

// stream writes the whole of id with WriteTo, as a download does, and
// returns what it wrote; check, when set, runs first (Reader.Check).
func stream(t *testing.T, s *media.Store, id string, check bool) ([]byte, error) {
	t.Helper()
	r, _, err := s.Open(mxc(id))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if check {
		if err := r.Check(); err != nil {
			return nil, err
		}
	}
	var got bytes.Buffer
	_, err = r.WriteTo(&got)
	return got.Bytes(), cmp.Or(err, r.Err())
}

// checkChunkFile fails unless the file of chunk h in dir holds h's bytes.
func checkChunkFile(t *testing.T, dir string, h cas.Hash) {
	t.Helper()
	b, err := os.ReadFile(chunkPath(dir, h))
	if err != nil {
		t.Fatalf("chunk %s: %v", h.Short(), err)
	}
	if got := cas.Sum(b); got != h {
		t.Errorf("chunk file %s holds %s", h.Short(), got.Short())
	}
}

// checkRepaired fails unless the standby in dir holds every chunk intact
// with no damage recorded, repaired once, after the repair source was asked
// calls times.
func checkRepaired(t *testing.T, s *media.Store, dir string, src *countingSource, calls int64, h cas.Hash) {
	t.Helper()
	checkChunkFile(t, dir, h)
	if got := src.calls.Load(); got != calls {
		t.Errorf("repair source read %d times, want %d", got, calls)
	}
	st := s.Stats()
	if st.DamagedChunksFound != 1 || st.DamagedChunks != 0 || st.DamagedChunksRepaired != 1 {
		t.Errorf("Stats: damaged chunks found %d, recorded %d, repaired %d; want 1, 0, 1",
			st.DamagedChunksFound, st.DamagedChunks, st.DamagedChunksRepaired)
	}
	// The record is gone from the index too: a store opened again without
	// a source finds nothing to report.
	closeStore(t, s)
	again := openStore(t, media.Options{Dir: dir})
	if rep := fsck(t, again); !rep.Healthy() || len(rep.Repaired) != 0 {
		t.Errorf("fsck after reopening: %+v, want healthy", rep)
	}
}

// A chunk with a flipped byte, met in the middle of a stream, is fetched
// again from the repair source: the stream goes on with the good bytes, the
// chunk file is fixed and its damage record cleared.
func TestRepairOnReadFlippedByte(t *testing.T) {
	data := randBytes(41, 300<<10)
	_, s, dir, chunks, src := repairPair(t, data, fromPrimary)
	bad := chunks[len(chunks)/2]
	testkit.FlipByte(t, chunkPath(dir, bad))

	if got, err := stream(t, s, "A", false); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("WriteTo: %d bytes, %v; want the %d uploaded", len(got), err, len(data))
	}
	checkContent(t, s, "A", data)
	checkRepaired(t, s, dir, src, 1, bad)
}

// A missing chunk file is fetched again likewise.
func TestRepairOnReadMissingChunk(t *testing.T) {
	data := randBytes(42, 200<<10)
	_, s, dir, chunks, src := repairPair(t, data, fromPrimary)
	gone := chunks[0]
	if err := os.Remove(chunkPath(dir, gone)); err != nil {
		t.Fatal(err)
	}
	checkContent(t, s, "A", data)
	checkRepaired(t, s, dir, src, 1, gone)
}

// A source that lacks the chunk: the read fails with the damage as without
// a source, and is recorded; the source is not asked again at once. A new
// source (SetRepairSource) that has it repairs damage recorded before,
// before a whole read sends anything (Check).
func TestRepairOnReadSourceLacks(t *testing.T) {
	data := randBytes(43, 300<<10)
	empty, _ := newStore(t, nil)
	primary, s, dir, chunks, lacks := repairPair(t, data, func(*media.Store) cas.Reader { return empty })
	bad := chunks[1]
	testkit.FlipByte(t, chunkPath(dir, bad))

	for i := range 2 {
		_, err := stream(t, s, "A", false)
		if !errors.Is(err, media.ErrDamaged) || i == 0 && !errors.Is(err, cas.ErrCorrupt) {
			t.Errorf("WriteTo %d with a source that lacks the chunk: %v, want ErrDamaged (wrapping cas.ErrCorrupt the first time)", i, err)
		}
	}
	if got := lacks.calls.Load(); got != 1 {
		t.Errorf("the source that lacks the chunk was asked %d times, want 1 (not again at once)", got)
	}
	if st := s.Stats(); st.DamagedChunks != 1 || st.DamagedChunksRepaired != 0 {
		t.Errorf("Stats: %d chunks recorded damaged, %d repaired; want 1 and 0", st.DamagedChunks, st.DamagedChunksRepaired)
	}

	has := &countingSource{r: primary}
	s.SetRepairSource(has)
	if got, err := stream(t, s, "A", true); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Check and WriteTo with a source that has the chunk: %d bytes, %v; want the %d uploaded", len(got), err, len(data))
	}
	if has.calls.Load() != 1 {
		t.Errorf("the source was asked %d times, want 1", has.calls.Load())
	}
	checkChunkFile(t, dir, bad)

	// With the source gone (a promoted standby), damage stays damage.
	s.SetRepairSource(nil)
	testkit.FlipByte(t, chunkPath(dir, bad))
	if _, err := stream(t, s, "A", false); !errors.Is(err, media.ErrDamaged) || has.calls.Load() != 1 {
		t.Errorf("read without a source: %v, source asked %d times; want ErrDamaged and still 1", err, has.calls.Load())
	}
}

// stalledSource is a repair source that gives nothing until the context of
// its read ends.
type stalledSource struct{ calls atomic.Int64 }

func (s *stalledSource) ReadChunk(cas.Hash, []byte) ([]byte, error) {
	return nil, errors.New("stalledSource: read without a context")
}

func (s *stalledSource) ReadChunkContext(ctx context.Context, _ cas.Hash, _ []byte) ([]byte, error) {
	s.calls.Add(1)
	<-ctx.Done()
	return nil, ctx.Err()
}

// A read waits for the repair source no longer than RepairTimeout, then
// fails with the damage.
func TestRepairOnReadTimeout(t *testing.T) {
	data := randBytes(47, 100<<10)
	src := &stalledSource{}
	_, s, dir, chunks, _ := repairPair(t, data, nil)
	closeStore(t, s)
	// Long enough that the read reaches the source even on a loaded machine
	// (a context already ended is not handed to it), short for a test.
	s = openStore(t, media.Options{Dir: dir, RepairSource: src, RepairTimeout: 500 * time.Millisecond})
	if err := os.Remove(chunkPath(dir, chunks[1])); err != nil {
		t.Fatal(err)
	}
	if _, err := stream(t, s, "A", false); !errors.Is(err, media.ErrDamaged) || !errors.Is(err, cas.ErrNotFound) || src.calls.Load() != 1 {
		t.Errorf("read with a stalled source: %v after %d reads of it; want ErrDamaged wrapping cas.ErrNotFound after 1", err, src.calls.Load())
	}
}

// Fsck of a store with a repair source repairs what it finds; the report
// is that of the store after, and names the chunks it repaired.
func TestFsckRepairsFromRepairSource(t *testing.T) {
	data := randBytes(44, 300<<10)
	_, s, dir, chunks, src := repairPair(t, data, fromPrimary)
	testkit.FlipByte(t, chunkPath(dir, chunks[0]))
	if err := os.Remove(chunkPath(dir, chunks[2])); err != nil {
		t.Fatal(err)
	}
	rep := fsck(t, s)
	want := []cas.Hash{chunks[0], chunks[2]}
	slices.SortFunc(want, func(a, b cas.Hash) int { return bytes.Compare(a[:], b[:]) })
	if !rep.Healthy() || !slices.Equal(rep.Repaired, want) {
		t.Errorf("Fsck: problems %v, repaired %v; want healthy, %v repaired", rep.Problems, rep.Repaired, want)
	}
	checkContent(t, s, "A", data)
	if src.calls.Load() != 2 {
		t.Errorf("source read %d times, want 2", src.calls.Load())
	}
}

// RepairFromSource copies back the damaged and missing chunks a source
// has, and lists those it lacks.
func TestRepairFromSource(t *testing.T) {
	data := randBytes(45, 300<<10)
	primary, s, dir, chunks, _ := repairPair(t, data, nil)
	testkit.FlipByte(t, chunkPath(dir, chunks[1]))
	if err := os.Remove(chunkPath(dir, chunks[0])); err != nil {
		t.Fatal(err)
	}
	want := []cas.Hash{chunks[0], chunks[1]}
	slices.SortFunc(want, func(a, b cas.Hash) int { return bytes.Compare(a[:], b[:]) })

	empty, _ := newStore(t, nil)
	rr, err := s.RepairFromSource(context.Background(), empty, "an empty store")
	if err != nil {
		t.Fatal(err)
	}
	if len(rr.Copied) != 0 || !slices.Equal(rr.Unrepaired, want) || rr.After.Healthy() {
		t.Errorf("RepairFromSource(empty): %+v, want %v unrepaired and still damaged", rr, want)
	}
	rr, err = s.RepairFromSource(context.Background(), primary, "the primary")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rr.Copied, want) || len(rr.Unrepaired) != 0 || !rr.After.Healthy() {
		t.Errorf("RepairFromSource(primary): %+v, want %v copied and healthy after", rr, want)
	}
	checkContent(t, s, "A", data)
}
