package index

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
)

func changeSeqs(t *testing.T, db *DB, after uint64, limit int) []uint64 {
	t.Helper()
	cs, err := db.Changes(after, limit)
	if err != nil {
		t.Fatalf("Changes(%d, %d): %v", after, limit, err)
	}
	var seqs []uint64
	for _, c := range cs {
		ops, err := DecodeOps(c.Ops)
		if err != nil || len(ops) != 1 {
			t.Fatalf("change %d: %d ops, %v", c.Seq, len(ops), err)
		}
		if want := string(mediaKey("s", fmt.Sprint(c.Seq))); string(ops[0].Key) != want {
			t.Errorf("change %d sets %q, want %q", c.Seq, ops[0].Key, want)
		}
		seqs = append(seqs, c.Seq)
	}
	return seqs
}

// TestChangeLogReads covers the reads of the change log through the
// key-value view: a limit ends the scan, a trimmed start is ErrTrimmed,
// FirstChange follows TrimChanges.
func TestChangeLogReads(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	if first, err := db.FirstChange(); err != nil || first != 0 {
		t.Fatalf("FirstChange of an empty log = %d, %v; want 0", first, err)
	}
	for i := 1; i <= 5; i++ {
		commit(t, db, func(b *Batch) error {
			return b.PutMedia(MediaRecord{Server: "s", MediaID: fmt.Sprint(i), Created: int64(i)})
		})
	}
	if got := db.Head(); got != 5 {
		t.Fatalf("Head = %d, want 5", got)
	}
	for _, tc := range []struct {
		after uint64
		limit int
		want  []uint64
	}{
		{0, 2, []uint64{1, 2}},
		{3, 10, []uint64{4, 5}},
		{4, 1, []uint64{5}},
		{5, 1, nil},
	} {
		if got := changeSeqs(t, db, tc.after, tc.limit); !slices.Equal(got, tc.want) {
			t.Errorf("Changes(%d, %d) = %v, want %v", tc.after, tc.limit, got, tc.want)
		}
	}
	if err := db.TrimChanges(2); err != nil {
		t.Fatal(err)
	}
	if first, err := db.FirstChange(); err != nil || first != 3 {
		t.Fatalf("FirstChange after trimming to 2 = %d, %v; want 3", first, err)
	}
	if _, err := db.Changes(1, 1); !errors.Is(err, ErrTrimmed) {
		t.Errorf("Changes(1, 1) after trimming: %v, want ErrTrimmed", err)
	}
	if got, want := changeSeqs(t, db, 2, 2), []uint64{3, 4}; !slices.Equal(got, want) {
		t.Errorf("Changes(2, 2) after trimming = %v, want %v", got, want)
	}
	if _, err := db.ChangeAt(1); !errors.Is(err, ErrNotFound) {
		t.Errorf("ChangeAt(1) after trimming: %v, want ErrNotFound", err)
	}
}

// TestChangeLogHoldsInlineByReference: the log stores an inline chunk's set
// without its bytes (they would be kept twice), and the changes read from
// it carry them again; once the object is collected, the set is left out.
func TestChangeLogHoldsInlineByReference(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	obj := hashOf("object")
	tail := bytes.Repeat([]byte("inline "), 1000)
	m := Manifest{Size: int64(len(tail)), Chunks: []ChunkRef{{Hash: hashOf(string(tail)), Len: uint32(len(tail)), Inline: true}}, Tail: tail}
	commit(t, db, func(b *Batch) error { return b.PutManifest(obj, m) })
	var stored []byte
	if err := db.get(changeKey(db.Head()), func(v []byte) error { stored = bytes.Clone(v); return nil }); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored, tail[:100]) || len(stored) > 1000 {
		t.Errorf("the stored change holds the inline bytes (%d bytes)", len(stored))
	}
	inlineOf := func(ops []byte) []byte {
		t.Helper()
		dec, err := DecodeOps(ops)
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range dec {
			if bytes.Equal(op.Key, inlineKey(obj)) {
				return op.Value
			}
		}
		return nil
	}
	cs, err := db.Changes(0, 10)
	if err != nil || len(cs) != 1 || !bytes.Equal(inlineOf(cs[0].Ops), tail) {
		t.Fatalf("Changes: %d changes, %v; want the inline chunk's set with its bytes", len(cs), err)
	}
	if ops, err := db.ChangeAt(cs[0].Seq); err != nil || !bytes.Equal(inlineOf(ops), tail) {
		t.Errorf("ChangeAt: %v, or the inline bytes missing", err)
	}
	commit(t, db, func(b *Batch) error { return b.DeleteManifest(obj) })
	cs, err = db.Changes(0, 10)
	if err != nil || len(cs) != 2 || inlineOf(cs[0].Ops) != nil {
		t.Errorf("after the object is collected: %d changes, %v; want its inline set left out", len(cs), err)
	}
}
