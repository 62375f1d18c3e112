package index

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/cas"
)

// TestInlineChunksInBlobFiles: inline chunks flushed from the memtable go
// to blob files (value separation); they read back, InlineBytes counts
// them from the lengths Pebble keeps, and a checkpoint (a backup) carries
// them.
func TestInlineChunksInBlobFiles(t *testing.T) {
	dir := t.TempDir()
	d := openDB(t, filepath.Join(dir, "idx"))
	t.Cleanup(func() { d.Close() })
	want := make(map[cas.Hash][]byte)
	var total int64
	b := d.NewBatch()
	for i := range 200 {
		data := make([]byte, 2000+i*50)
		rand.NewChaCha8([32]byte{byte(i)}).Read(data)
		obj := cas.Sum(append([]byte("obj"), data...))
		m := Manifest{Size: int64(len(data)), Chunks: []ChunkRef{{Hash: cas.Sum(data), Len: uint32(len(data)), Inline: true}}, Tail: data}
		if err := b.PutManifest(obj, m); err != nil {
			t.Fatal(err)
		}
		want[obj] = data
		total += int64(len(data))
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := d.db.Flush(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "idx"))
	blobs := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".blob") {
			blobs++
		}
	}
	if blobs == 0 {
		t.Errorf("no blob file after a flush: %v", ents)
	}
	check := func(d *DB, what string) {
		t.Helper()
		n, bytesIn, err := d.InlineBytes()
		if err != nil || n != int64(len(want)) || bytesIn != total {
			t.Errorf("%s: InlineBytes %d, %d, %v; want %d, %d", what, n, bytesIn, err, len(want), total)
		}
		for obj, data := range want {
			got, err := d.InlineChunk(obj)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s: inline chunk of %s: %d bytes, %v", what, obj.Short(), len(got), err)
			}
		}
	}
	check(d, "flushed")
	ck := filepath.Join(dir, "ckpt")
	if err := d.Checkpoint(ck); err != nil {
		t.Fatal(err)
	}
	c := openDB(t, ck)
	t.Cleanup(func() { c.Close() })
	check(c, "checkpoint")
}
