package media

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestInlineStatsRefusedUpload: an upload of small content refused at its
// commit (quarantined content, its object collected) stores nothing, and
// the store's stored bytes stay as they were.
func TestInlineStatsRefusedUpload(t *testing.T) {
	now := time.Now()
	s, err := Open(Options{Create: true, Dir: filepath.Join(t.TempDir(), "data"), Now: func() time.Time { return now },
		Thumbnails: ThumbnailOptions{Disabled: true}, CountChunks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	inlineUpload(t, s, "keep", 1, 500_000) // chunk files, so GC may sweep
	x, data := inlineUpload(t, s, "x", 2, 3000)
	if _, err := s.QuarantineContent(x.MXC, "s", "@admin:s"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(x.MXC); err != nil {
		t.Fatal(err)
	}
	now = now.Add(48 * time.Hour)
	if st, err := s.GC(ctx); err != nil || st.ObjectsDeleted != 1 {
		t.Fatalf("GC: %+v, %v; want x's object collected", st, err)
	}
	before := s.Stats().StoredBytes
	for _, id := range []string{"y", "z"} {
		_, err := s.Upload(ctx, UploadInfo{MXC: mustMXC("s", id), Size: int64(len(data))}, bytes.NewReader(data))
		if !errors.Is(err, ErrQuarantinedContent) {
			t.Fatalf("upload of quarantined content: %v, want ErrQuarantinedContent", err)
		}
	}
	if after := s.Stats().StoredBytes; after != before {
		t.Errorf("stored bytes %d after two refused uploads, %d before", after, before)
	}
}
