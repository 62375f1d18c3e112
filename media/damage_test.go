package media_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/media/mediatest"
)

// A read stops before the bytes of a damaged chunk with an error wrapping
// ErrDamaged and the cas cause; the damage is recorded, so after a reopen
// Fsck lists it and a reader fails before reading anything; RepairFrom a
// backup copies the chunk back and clears the record.
func TestDamageRecordedAndRepaired(t *testing.T) {
	s, dir := newStore(t, nil)
	data := randBytes(1, 300<<10)
	upload(t, s, "A", "@u:example.org", data)
	upload(t, s, "B", "@u:example.org", randBytes(2, 100<<10))
	backup := filepath.Join(t.TempDir(), "backup")
	if _, err := s.Backup(context.Background(), backup); err != nil {
		t.Fatal(err)
	}
	chunks := chunksOf(t, data, smallParams)
	if len(chunks) < 3 {
		t.Fatalf("%d chunks, want several", len(chunks))
	}
	bad := chunks[len(chunks)/2]
	var off int
	sizes := chunkSizes(t, data, smallParams)
	for _, h := range chunks[:len(chunks)/2] {
		off += int(sizes[h])
	}
	path := chunkPath(dir, bad)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x80
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}

	r, _, err := s.Open(mxc("A"))
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	_, err = r.WriteTo(&got)
	r.Close()
	if !errors.Is(err, media.ErrDamaged) || !errors.Is(err, cas.ErrCorrupt) || !strings.Contains(err.Error(), "mxc://"+server+"/A") {
		t.Fatalf("WriteTo: %v, want ErrDamaged wrapping cas.ErrCorrupt and naming the media", err)
	}
	if got.Len() != off || !bytes.Equal(got.Bytes(), data[:off]) {
		t.Errorf("WriteTo wrote %d bytes, want the %d before the damaged chunk", got.Len(), off)
	}
	r, _, _ = s.Open(mxc("A"))
	all, err := io.ReadAll(r)
	if !errors.Is(err, media.ErrDamaged) || len(all) != off || !errors.Is(r.Err(), media.ErrDamaged) {
		t.Errorf("ReadAll: %d bytes, %v (Err %v); want %d bytes and ErrDamaged", len(all), err, r.Err(), off)
	}
	r.Close()
	checkContent(t, s, "B", randBytes(2, 100<<10))
	// Two reads met the damage: one chunk found, counted once.
	if st := s.Stats(); st.DamagedChunksFound != 1 || st.DamagedChunks != 1 {
		t.Errorf("Stats: %d damaged chunks found, %d recorded; want 1 and 1", st.DamagedChunksFound, st.DamagedChunks)
	}

	closeStore(t, s)
	s = openStore(t, media.Options{Dir: dir})
	rep := fsck(t, s)
	if !slices.ContainsFunc(rep.Problems, func(p media.Problem) bool {
		return p.Kind == media.ProblemRecordedDamage && p.Chunk == bad && strings.Contains(p.Detail, "mxc://"+server+"/A")
	}) {
		t.Errorf("fsck after reopen lacks the recorded damage: %v", rep.Problems)
	}
	// Known damage fails before a byte is read, even with the file repaired
	// behind the store's back (the record stays until RepairFrom).
	os.WriteFile(path, b[:0], 0o600)
	r, _, _ = s.Open(mxc("A"))
	if err := r.Check(); !errors.Is(err, media.ErrDamaged) || !strings.Contains(err.Error(), "(recorded)") {
		t.Errorf("Check of recorded damage: %v", err)
	}
	r.Close()

	if _, err := s.RepairFrom(context.Background(), t.TempDir()); !errors.Is(err, media.ErrRepairSource) {
		t.Errorf("RepairFrom an empty directory: %v, want ErrRepairSource", err)
	}
	rr, err := s.RepairFrom(context.Background(), backup)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rr.Copied, []cas.Hash{bad}) || len(rr.Unrepaired) != 0 || !rr.After.Healthy() {
		t.Errorf("RepairFrom: %+v, want %s copied and healthy after", rr, bad.Short())
	}
	checkContent(t, s, "A", data)
	mediatest.CheckHealthy(t, s)
}

// GC drops the damage record of a chunk no media needs any more.
func TestGCDropsDeadDamage(t *testing.T) {
	clk := newClock()
	s, dir := newStore(t, clk)
	data := randBytes(3, 100<<10)
	upload(t, s, "A", "@u:example.org", data)
	h := chunksOf(t, data, smallParams)[0]
	if err := os.Remove(chunkPath(dir, h)); err != nil {
		t.Fatal(err)
	}
	r, _, _ := s.Open(mxc("A"))
	if err := r.Check(); !errors.Is(err, media.ErrDamaged) {
		t.Fatalf("Check: %v, want ErrDamaged", err)
	}
	r.Close()
	if err := s.Delete(mxc("A")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	gc(t, s)
	mediatest.CheckHealthy(t, s)
}
