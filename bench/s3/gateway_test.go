package main

import (
	"bytes"
	"io/fs"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/cas/s3store"
	"github.com/mxcas/mxcas/testkit"
)

// TestCounter checks the counts the tables rest on against a real S3
// server: a new chunk is one HEAD and one PUT of its own length, reading it
// one GET, a walk a LIST.
func TestCounter(t *testing.T) {
	s3 := testkit.StartS3(t)
	c := newCounter()
	st, err := s3store.Open(s3store.Options{Endpoint: s3.Endpoint, Bucket: s3.Bucket, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, Transport: c})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r0, b0 := c.snapshot()
	data := bytes.Repeat([]byte("mxcas"), 100<<10)
	h := cas.Sum(data)
	b := st.BeginBatch()
	if _, err := b.Put(h, data); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	r1, b1 := c.snapshot()
	if got, want := r1.sub(r0), (requests{head: 1, put: 1}); got != want {
		t.Errorf("Put of a new chunk: %+v, want %+v", got, want)
	}
	if b1-b0 != int64(len(data)) {
		t.Errorf("bytes PUT %d, want %d", b1-b0, len(data))
	}
	if _, err := st.ReadChunk(h, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.Walk(func(cas.Hash, fs.FileInfo) error { return nil }); err != nil {
		t.Fatal(err)
	}
	r2, _ := c.snapshot()
	if got := r2.sub(r1); got.get != 1 || got.list < 1 || got.put != 0 || got.other != 0 {
		t.Errorf("ReadChunk and Walk: %+v, want 1 GET and a LIST", got)
	}
}
