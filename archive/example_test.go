package archive_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mxcas/mxcas/archive"
)

// Example writes a one-media archive into a directory and reads it back.
func Example() {
	dir, err := os.MkdirTemp("", "export")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	w, err := archive.NewWriter(archive.Options{
		EntityID: "@alice:example.org",
		Create:   func(name string) (io.WriteCloser, error) { return os.Create(filepath.Join(dir, name)) },
		Now:      func() time.Time { return time.UnixMilli(1700000000000) },
	})
	if err != nil {
		panic(err)
	}
	body := "hello, world"
	_, err = w.AddMedia(ctx, archive.Entry{
		Origin: "example.org", MediaID: "abc123", Name: "hello.txt", ContentType: "text/plain",
		Size: int64(len(body)), Uploader: "@alice:example.org",
	}, strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}

	r, err := archive.Open(ctx, os.DirFS(dir))
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Parts(), r.Manifest().EntityID)
	err = r.Each(ctx, func(rec archive.Record, body io.Reader) error {
		b, err := io.ReadAll(body)
		fmt.Printf("%s %s %q\n", rec.MXC(), rec.FileName, b)
		return err
	}, func(rec archive.Record, err error) {
		fmt.Println("problem:", rec.MXC(), err)
	})
	fmt.Println(err)
	// Output:
	// [export-part-1.tgz export-manifest.tgz] @alice:example.org
	// mxc://example.org/abc123 example.org__abc123.txt "hello, world"
	// <nil>
}
