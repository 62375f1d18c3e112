package index

import (
	"errors"
	"testing"
)

// ScanPreviews gives back the server, URL and hour each key was written
// with, hours whose bytes hold 0x00 and 0xff included; DeletePreview
// removes exactly one.
func TestScanAndDeletePreviews(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	type key struct {
		server, url string
		hour        int64
	}
	keys := []key{
		{"a.example", "https://x/?q=a/b", 1767348000000},
		{"a.example", "https://x/?q=a/b", 0x00ff00ff00ff00},
		{"b.example", "http://y/", 3600000},
	}
	commit(t, db, func(b *Batch) error {
		for _, k := range keys {
			if err := b.PutPreview(k.server, k.url, k.hour, PreviewRecord{Fetched: k.hour}); err != nil {
				return err
			}
		}
		return nil
	})
	scan := func() map[key]bool {
		got := map[key]bool{}
		if err := db.ScanPreviews(func(server, url string, hour int64) error {
			got[key{server, url, hour}] = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := scan()
	if len(got) != len(keys) {
		t.Fatalf("ScanPreviews = %v, want %v", got, keys)
	}
	for _, k := range keys {
		if !got[k] {
			t.Fatalf("ScanPreviews = %v, misses %v", got, k)
		}
	}
	commit(t, db, func(b *Batch) error { return b.DeletePreview(keys[0].server, keys[0].url, keys[0].hour) })
	if _, err := db.Preview(keys[0].server, keys[0].url, keys[0].hour); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted preview: %v, want ErrNotFound", err)
	}
	if n := len(scan()); n != 2 {
		t.Errorf("after one delete: %d previews, want 2", n)
	}
}

// A preview key too short to hold its hour is a corrupt record, not a panic.
func TestParsePreviewKeyCorrupt(t *testing.T) {
	for _, k := range []string{"l/noslash", "l/s/\x00short", "l/s/u1234567890"} {
		if _, _, _, err := parsePreviewKey([]byte(k)); !errors.Is(err, ErrCorruptRecord) {
			t.Errorf("parsePreviewKey(%q) = %v, want ErrCorruptRecord", k, err)
		}
	}
}
