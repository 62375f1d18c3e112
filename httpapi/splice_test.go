package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"testing"

	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

// spliceFixture is a store holding one object of many chunks, and a
// loopback TCP connection pair to splice it over.
type spliceFixture struct {
	st   *media.Store
	data []byte
	m    matrix.MXC
}

func newSpliceFixture(t *testing.T) *spliceFixture {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := media.Open(media.Options{Create: true, Dir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	data := make([]byte, 3<<20)
	rand.NewChaCha8([32]byte{7}).Read(data)
	m, err := matrix.NewMXC("hs.test", "splice")
	if err != nil {
		t.Fatal(err)
	}
	info := media.UploadInfo{MXC: m, ContentType: "application/octet-stream", Uploader: "@u:hs.test", Size: int64(len(data))}
	if _, err := st.Upload(context.Background(), info, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	return &spliceFixture{st: st, data: data, m: m}
}

// send splices the object to one end of a loopback connection and returns
// what the other end read, the count moved was told of, and the result.
func (f *spliceFixture) send(t *testing.T) (got []byte, moved, n int64, err error) {
	t.Helper()
	r, _, err := f.st.Open(f.m)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	read := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			read <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		read <- b
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	n, ok, err := spliceSpans(c, r.Spans(), func(k int64) { moved += k })
	if !ok {
		t.Fatal("spliceSpans: a TCP connection was not taken")
	}
	c.Close()
	return <-read, moved, n, err
}

// chunkFiles lists the object's chunk files, in order, as Spans gives
// them once the store trusts them.
func (f *spliceFixture) chunkFiles(t *testing.T) []string {
	t.Helper()
	r, _, err := f.st.Open(f.m)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var names []string
	sp := r.Spans()
	for {
		s, err := sp.Next(1 << 30)
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		if s.File == nil {
			t.Fatalf("span %d not in a file after a full read", len(names))
		}
		names = append(names, s.File.Name())
	}
}

// An object of many chunks arrives exactly, cold (chunks hashed into
// memory) and hot (chunk files spliced), and every byte is reported.
func TestSpliceSendsObjectExactly(t *testing.T) {
	f := newSpliceFixture(t)
	for _, pass := range []string{"cold", "hot"} {
		got, moved, n, err := f.send(t)
		if err != nil || !bytes.Equal(got, f.data) {
			t.Fatalf("%s: %d bytes (%d read), %v; want the %d uploaded", pass, n, len(got), err, len(f.data))
		}
		if moved != n || n != int64(len(f.data)) {
			t.Errorf("%s: sent %d, reported %d; want %d both", pass, n, moved, len(f.data))
		}
	}
	if files := f.chunkFiles(t); len(files) < 8 {
		t.Fatalf("%d chunks; want many", len(files))
	}
}

// Damage in a middle chunk stops the splice with ErrDamaged after exactly
// the chunks before it.
func TestSpliceStopsBeforeDamagedChunk(t *testing.T) {
	f := newSpliceFixture(t)
	if got, _, _, err := f.send(t); err != nil || !bytes.Equal(got, f.data) {
		t.Fatalf("before damage: %d bytes, %v", len(got), err)
	}
	files := f.chunkFiles(t)
	mid := len(files) / 2
	before := int64(0)
	for _, name := range files[:mid] {
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		before += st.Size()
	}
	b, err := os.ReadFile(files[mid])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(files[mid], b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, _, n, err := f.send(t)
	if !errors.Is(err, media.ErrDamaged) {
		t.Fatalf("splice over a damaged chunk: %v; want ErrDamaged", err)
	}
	if n != before || !bytes.Equal(got, f.data[:before]) {
		t.Errorf("sent %d bytes (%d read); want exactly the %d before chunk %d of %d", n, len(got), before, mid, len(files))
	}
}
