package media

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/chunker"
)

// sharedTail returns two different contents whose last chunks (under p)
// are the same, at most MaxInline bytes: b is a with its first byte
// changed, which moves no cut (the chunker skips its minimum first).
func sharedTail(t *testing.T, p chunker.Params) (a, b []byte, tail cas.Hash) {
	t.Helper()
	for n := 100_000; n < 400_000; n += 1_000 {
		a = make([]byte, n)
		rand.NewChaCha8([32]byte{7}).Read(a)
		var lastA, lastB []byte
		chunker.Split(a, p, func(c []byte) error { lastA = c; return nil })
		if len(lastA) > MaxInline {
			continue
		}
		b = bytes.Clone(a)
		b[0] ^= 0xff
		chunker.Split(b, p, func(c []byte) error { lastB = c; return nil })
		if !bytes.Equal(lastA, lastB) {
			continue
		}
		return a, b, cas.Sum(lastA)
	}
	t.Fatal("no content with a small shared last chunk")
	return nil, nil, cas.Hash{}
}

// TestInlineDamageIsPerObject: two objects whose last chunks are the same
// each keep their own inline copy; damage found in one object's copy does
// not make the other, intact, unreadable.
func TestInlineDamageIsPerObject(t *testing.T) {
	s, _, _ := inlineStore(t)
	a, b, tail := sharedTail(t, s.params)
	ctx := context.Background()
	recA, err := s.Upload(ctx, UploadInfo{MXC: mustMXC("s", "a"), Size: int64(len(a))}, bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	recB, err := s.Upload(ctx, UploadInfo{MXC: mustMXC("s", "b"), Size: int64(len(b))}, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if recA.Object == recB.Object {
		t.Fatal("the two contents are one object")
	}
	for _, obj := range []cas.Hash{recA.Object, recB.Object} {
		m, err := s.idx.Manifest(obj)
		if ref, ok := m.InlineRef(); err != nil || !ok || ref.Hash != tail {
			t.Fatalf("object %s: inline %v (%v); want the shared tail inline", obj.Short(), ok, err)
		}
	}

	// Damage a's copy of the tail.
	m, err := s.idx.Manifest(recA.Object)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := m.InlineRef()
	bad := bytes.Clone(a[len(a)-int(ref.Len):])
	bad[0] ^= 1
	setInlineChunk(t, s, recA.Object, bad)
	if _, err := readAllOf(t, s, "a"); !errors.Is(err, ErrDamaged) {
		t.Fatalf("read of a with its inline chunk damaged: %v, want ErrDamaged", err)
	}
	if got, err := readAllOf(t, s, "b"); err != nil || !bytes.Equal(got, b) {
		t.Errorf("read of b, whose own copy of the tail is intact: %d bytes, %v", len(got), err)
	}
	if _, err := readAllOf(t, s, "a"); !errors.Is(err, ErrDamaged) {
		t.Errorf("read of a again: %v, want ErrDamaged", err)
	}
}

// setInlineChunk puts data in the index as object obj's inline chunk
// (damage, when data is not the chunk's bytes).
func setInlineChunk(t *testing.T, s *Store, obj cas.Hash, data []byte) {
	t.Helper()
	m, err := s.idx.Manifest(obj)
	if err != nil {
		t.Fatal(err)
	}
	m.Tail = data
	b := s.idx.NewBatch()
	defer b.Close()
	if err := b.PutManifest(obj, m); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}
