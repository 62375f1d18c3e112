package cas

import (
	"errors"
	"io"
	"os"
	"testing"
)

// openFile opens chunk h through OpenChunk and returns the Chunk and its
// file's descriptor.
func openFile(t *testing.T, s *Store, h Hash) (Chunk, uintptr) {
	t.Helper()
	c, err := s.OpenChunk(h)
	if err != nil {
		t.Fatalf("OpenChunk: %v", err)
	}
	return c, c.(Filer).File().Fd()
}

// readAll reads c from its current offset to the end.
func readAll(t *testing.T, c Chunk) string {
	t.Helper()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// putString stores data as a chunk and returns its hash.
func putString(t *testing.T, s *Store, data string) Hash {
	t.Helper()
	h := Sum([]byte(data))
	if _, err := s.Put(h, []byte(data)); err != nil {
		t.Fatal(err)
	}
	return h
}

// wantClosed fails the test unless f was already closed; what says which
// file, and by whom.
func wantClosed(t *testing.T, f *os.File, what string) {
	t.Helper()
	if err := f.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("%s: Close = %v, want it already closed", what, err)
	}
}

// TestOpenChunkReusesClosedFile: a chunk opened again after Close gets the
// same descriptor back, rewound, and two Chunks open at once never share
// one (their offsets are their own).
func TestOpenChunkReusesClosedFile(t *testing.T) {
	s := openInternal(t)
	data := "reused chunk file"
	h := putString(t, s, data)
	c, fd := openFile(t, s, h)
	if got := readAll(t, c); got != data {
		t.Fatalf("first read = %q", got)
	}
	c.Close()

	c1, fd1 := openFile(t, s, h)
	if fd1 != fd {
		t.Errorf("second open got descriptor %d, want the pooled %d", fd1, fd)
	}
	if got := readAll(t, c1); got != data {
		t.Errorf("read of a reused file (offset left at the end) = %q, want %q", got, data)
	}
	c2, fd2 := openFile(t, s, h)
	if fd2 == fd1 {
		t.Fatal("two open Chunks share one descriptor")
	}
	if got := readAll(t, c2); got != data {
		t.Errorf("second concurrent read = %q", got)
	}
	c1.Close()
	c2.Close()
	if s.fds.n != 2 {
		t.Errorf("pool holds %d files after two Closes, want 2", s.fds.n)
	}
}

// TestOpenChunkSkipsUnlinkedFile: a pooled file whose name was removed or
// renamed over behind the store's back is not handed out: OpenChunk sees
// what is under the name now.
func TestOpenChunkSkipsUnlinkedFile(t *testing.T) {
	s := openInternal(t)
	data := "original bytes"
	h := putString(t, s, data)
	c, _ := openFile(t, s, h)
	c.Close() // pooled

	// Renamed over (as a restore from a backup would do).
	other := s.Path(h) + ".new"
	if err := os.WriteFile(other, []byte("replacement"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, s.Path(h)); err != nil {
		t.Fatal(err)
	}
	c, _ = openFile(t, s, h)
	if got := readAll(t, c); got != "replacement" {
		t.Errorf("after the name was renamed over, read %q, want the new file's bytes", got)
	}
	c.Close()

	// Removed.
	if err := os.Remove(s.Path(h)); err != nil {
		t.Fatal(err)
	}
	if c, err := s.OpenChunk(h); !errors.Is(err, ErrNotFound) {
		if c != nil {
			c.Close()
		}
		t.Errorf("after the file was removed, OpenChunk = %v, want ErrNotFound", err)
	}
}

// TestDeleteDropsPooledFiles: Delete closes the chunk's idle files, so the
// space of an erased chunk is freed at once and no descriptor of it stays.
func TestDeleteDropsPooledFiles(t *testing.T) {
	s := openInternal(t)
	h := putString(t, s, "to erase")
	c, _ := openFile(t, s, h)
	f := c.(Filer).File()
	c.Close()
	if err := s.Delete(h); err != nil {
		t.Fatal(err)
	}
	if s.fds.n != 0 {
		t.Errorf("pool holds %d files after Delete, want 0", s.fds.n)
	}
	wantClosed(t, f, "the pooled file after Delete")
}

// TestFDPoolBound: the pool never keeps more than max idle files; the
// least recently returned are closed first, and after close every file
// given back is closed.
func TestFDPoolBound(t *testing.T) {
	p := newFDPool(2)
	dir := t.TempDir()
	open := func() *os.File {
		f, err := os.CreateTemp(dir, "f")
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a, b, c := Sum([]byte("a")), Sum([]byte("b")), Sum([]byte("c"))
	fa, fb, fc := open(), open(), open()
	p.give(a, fa)
	p.give(b, fb)
	p.give(c, fc)
	if p.n != 2 {
		t.Fatalf("pool holds %d files, want 2", p.n)
	}
	wantClosed(t, fa, "the least recently returned file, on eviction")
	if p.take(a) != nil {
		t.Error("take of an evicted chunk returned a file")
	}
	if got := p.take(b); got != fb {
		t.Errorf("take(b) = %v, want the file given", got)
	}
	p.close()
	wantClosed(t, fc, "a pooled file, by close")
	p.give(b, fb)
	wantClosed(t, fb, "a file given to a closed pool")
}
