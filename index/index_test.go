package index

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/cas"
)

var update = flag.Bool("update", false, "rewrite golden files")

func openDB(t *testing.T, dir string) *DB {
	t.Helper()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func commit(t *testing.T, db *DB, fn func(b *Batch) error) {
	t.Helper()
	if err := tryCommit(db, fn); err != nil {
		t.Fatal(err)
	}
}

func hashOf(s string) cas.Hash { return cas.Sum([]byte(s)) }

// What a Pebble index holds survives closing and reopening it: records,
// and usage counters whose merges continue after the restart.
func TestReopenKeepsMediaAndUsage(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	want := MediaRecord{Server: "example.org", MediaID: "abcDEF_-1", Object: hashOf("x"), Size: 1, Uploader: "@u:example.org"}
	commit(t, db, func(b *Batch) error { return b.PutMedia(want) })
	for i := range 10 {
		commit(t, db, func(b *Batch) error {
			return b.AddUsage("@u:example.org", "example.org", Usage{Bytes: int64(i), Count: 1})
		})
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir)
	defer db.Close()
	if got, err := db.Media("example.org", "abcDEF_-1"); err != nil || got != want {
		t.Errorf("after reopening: %+v, %v; want %+v", got, err, want)
	}
	commit(t, db, func(b *Batch) error {
		return b.AddUsage("@u:example.org", "example.org", Usage{Bytes: -5, Count: -1})
	})
	if got, err := db.UserUsage("@u:example.org"); err != nil || got != (Usage{Bytes: 40, Count: 9}) {
		t.Errorf("user usage = %+v, %v; want {40 9}", got, err)
	}
	if got, err := db.TotalServerUsage(); err != nil || got != (Usage{Bytes: 40, Count: 9}) {
		t.Errorf("total server usage = %+v, %v; want {40 9}", got, err)
	}
}

func TestManifestEncoding(t *testing.T) {
	m := Manifest{Size: 70000 + 1 + 5, Chunks: []ChunkRef{{Hash: hashOf("a"), Len: 70000}, {Hash: hashOf("b"), Len: 1}, {Hash: hashOf("c"), Len: 5}}}
	got, err := decodeManifest(m.encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != m.Size || !slices.Equal(got.Chunks, m.Chunks) {
		t.Errorf("round trip: got %+v, want %+v", got, m)
	}
	inl := Manifest{Size: 70000 + 5, Chunks: []ChunkRef{{Hash: hashOf("a"), Len: 70000}, {Hash: hashOf("c"), Len: 5, Inline: true}}}
	if enc := inl.encode(); enc[0] != manifestVersionInline {
		t.Errorf("inline manifest encoded as version %d", enc[0])
	}
	if got, err := decodeManifest(inl.encode()); err != nil || !slices.Equal(got.Chunks, inl.Chunks) {
		t.Errorf("inline round trip: got %+v, %v", got, err)
	}
	if m.encode()[0] != manifestVersion {
		t.Error("a manifest without an inline chunk is not version 1")
	}
	empty, err := decodeManifest(Manifest{}.encode())
	if err != nil || empty.Size != 0 || len(empty.Chunks) != 0 {
		t.Errorf("empty manifest: got %+v, %v", empty, err)
	}
	enc := m.encode()
	for name, b := range map[string][]byte{
		"empty":        nil,
		"version":      append([]byte{9}, enc[1:]...),
		"truncated":    enc[:len(enc)-10],
		"trailing":     append(slices.Clone(enc), 0),
		"size differs": Manifest{Size: 3, Chunks: []ChunkRef{{Hash: hashOf("a"), Len: 2}}}.encode(),
		"huge count":   {1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"inline not last": Manifest{Size: 8, Chunks: []ChunkRef{{Hash: hashOf("a"), Len: 3, Inline: true},
			{Hash: hashOf("b"), Len: 5, Inline: true}}}.encode(),
		"version 2 without inline": append([]byte{manifestVersionInline}, enc[1:]...),
	} {
		if _, err := decodeManifest(b); !errors.Is(err, ErrCorruptRecord) {
			t.Errorf("%s: got %v, want ErrCorruptRecord", name, err)
		}
	}
}

func FuzzDecodeManifest(f *testing.F) {
	f.Add(Manifest{Size: 3, Chunks: []ChunkRef{{Hash: hashOf("a"), Len: 3}}}.encode())
	f.Add([]byte{1, 0, 0})
	f.Add(Manifest{Size: 8, Chunks: []ChunkRef{{Hash: hashOf("a"), Len: 3}, {Hash: hashOf("b"), Len: 5, Inline: true}}}.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeManifest(b)
		if err != nil {
			return
		}
		again, err := decodeManifest(m.encode())
		if err != nil || again.Size != m.Size || !slices.Equal(again.Chunks, m.Chunks) {
			t.Fatalf("re-encode of a decoded manifest differs: %v", err)
		}
	})
}

func TestCheckpointOpens(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, filepath.Join(dir, "live"))
	defer db.Close()
	commit(t, db, func(b *Batch) error {
		return b.PutMedia(MediaRecord{Server: "s", MediaID: "m", Size: 7})
	})
	ck := filepath.Join(dir, "ck")
	if err := db.Checkpoint(ck); err != nil {
		t.Fatal(err)
	}
	commit(t, db, func(b *Batch) error { return b.PutMedia(MediaRecord{Server: "s", MediaID: "later"}) })
	cdb, err := Open(ck, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cdb.Close()
	if r, err := cdb.Media("s", "m"); err != nil || r.Size != 7 {
		t.Errorf("checkpoint: got %+v, %v", r, err)
	}
	if _, err := cdb.Media("s", "later"); !errors.Is(err, ErrNotFound) {
		t.Errorf("checkpoint holds a later write: %v", err)
	}
}

// TestKeyLayoutGolden pins the key schema documented in doc.go: changing a
// key is a store format change.
func TestKeyLayoutGolden(t *testing.T) {
	h := hashOf("object")
	keys := []struct {
		name string
		key  []byte
	}{
		{"media", mediaKey("example.org", "AbCdEf")},
		{"media, server with port", mediaKey("example.org:8448", "x")},
		{"object", objectKey(h)},
		{"owner", ownerKey("@alice:example.org", "example.org", "AbCdEf")},
		{"pending", pendingKey("@alice:example.org", "example.org", "AbCdEf")},
		{"thumbnail", thumbKey(h, "96x96/crop/0")},
		{"user usage", userUsageKey("@alice:example.org")},
		{"server usage", serverUsageKey("example.org")},
		{"damaged chunk", damagedKey(h)},
		{"quarantined content", quarantineKey(h, "example.org")},
		{"url preview", previewKey("example.org", "https://example.org/a?b=c", 1_700_000_000_000-1_700_000_000_000%3_600_000)},
	}
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "%-24s %s\n", k.name, strconv.QuoteToASCII(string(k.key)))
	}
	fmt.Fprintf(&sb, "%-24s %s\n", "usage value {5, 1}", strconv.QuoteToASCII(string(encodeUsage(Usage{5, 1}))))
	golden := filepath.Join("testdata", "keys.golden")
	if *update {
		os.WriteFile(golden, []byte(sb.String()), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if sb.String() != string(want) {
		t.Errorf("key layout changed (run with -update only if the store format version changes too):\ngot:\n%swant:\n%s", sb.String(), want)
	}
}

// MustExist refuses a missing or empty directory and creates nothing there,
// and opens a database that exists.
func TestOpenMustExist(t *testing.T) {
	root := t.TempDir()
	missing := filepath.Join(root, "missing")
	if db, err := Open(missing, Options{MustExist: true}); !errors.Is(err, ErrMissing) {
		if db != nil {
			db.Close()
		}
		t.Fatalf("missing directory: err %v, want ErrMissing", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("missing directory was created (stat: %v)", err)
	}
	empty := filepath.Join(root, "empty")
	if err := os.Mkdir(empty, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		if db, err := Open(empty, Options{MustExist: true, ReadOnly: ro}); !errors.Is(err, ErrMissing) {
			if db != nil {
				db.Close()
			}
			t.Fatalf("empty directory (read-only %v): err %v, want ErrMissing", ro, err)
		}
		if ents, _ := os.ReadDir(empty); len(ents) != 0 {
			t.Errorf("empty directory (read-only %v) now holds %d entries", ro, len(ents))
		}
	}
	db := openDB(t, filepath.Join(root, "db"))
	commit(t, db, func(b *Batch) error { return b.PutMedia(MediaRecord{Server: "s", MediaID: "m", Object: hashOf("x")}) })
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(filepath.Join(root, "db"), Options{MustExist: true})
	if err != nil {
		t.Fatalf("existing database: %v", err)
	}
	defer db.Close()
	if _, err := db.Media("s", "m"); err != nil {
		t.Error(err)
	}
}

// decodeMediaObject reads a record's object and tombstone flag as a whole
// decode does, whatever the record's strings hold, and decodes whole (with
// its errors) what PutMedia did not write.
func TestDecodeMediaObject(t *testing.T) {
	tricky := []string{"", `","deleted":true`, `,"deleted":true`, `\",\"deleted\":true`, "<&>", "\u2028", `{"object":"`}
	for i, s := range tricky {
		for _, deleted := range []bool{false, true} {
			rec := MediaRecord{Object: hashOf(s), Size: int64(i), ContentType: s, UploadName: s, Uploader: s, QuarantinedBy: s, Deleted: deleted, Pending: i%2 == 0}
			checkDecodeMediaObject(t, mustJSON(t, rec))
		}
	}
	checkDecodeMediaObject(t, mustJSON(t, MediaRecord{Pending: true})) // zero object
	for name, v := range map[string]string{
		"not json":       `{"object":"` + strings.Repeat("a", 64) + `"`,
		"bad hash":       `{"object":"` + strings.Repeat("g", 64) + `","size":1}`,
		"short hash":     `{"object":"abc","size":1}`,
		"deleted string": `{"object":"` + strings.Repeat("a", 64) + `","deleted":"yes"}`,
	} {
		if _, _, err := decodeMediaObject([]byte(v)); !errors.Is(err, ErrCorruptRecord) {
			t.Errorf("%s: %v, want ErrCorruptRecord", name, err)
		}
	}
	// Another writer's order is decoded whole.
	obj, deleted, err := decodeMediaObject([]byte(`{"deleted":true,"object":"` + hashOf("x").String() + `"}`))
	if err != nil || obj != hashOf("x") || !deleted {
		t.Errorf("fields in another order: %s %v %v", obj.Short(), deleted, err)
	}
}

func mustJSON(t testing.TB, rec MediaRecord) []byte {
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkDecodeMediaObject(t testing.TB, v []byte) {
	t.Helper()
	var rec MediaRecord
	if err := decodeMedia(v, &rec); err != nil {
		t.Fatal(err)
	}
	obj, deleted, err := decodeMediaObject(v)
	if err != nil || obj != rec.Object || deleted != rec.Deleted {
		t.Errorf("decodeMediaObject(%s) = %s, %v, %v; want %s, %v", v, obj.Short(), deleted, err, rec.Object.Short(), rec.Deleted)
	}
}

func FuzzDecodeMediaObject(f *testing.F) {
	f.Add("name.png", "image/png", "@u:example.org", true, false)
	f.Add(`","deleted":true,"x":"`, `\"`, "", false, true)
	f.Fuzz(func(t *testing.T, name, ctype, user string, deleted, quarantined bool) {
		checkDecodeMediaObject(t, mustJSON(t, MediaRecord{Object: hashOf(name + ctype), UploadName: name, ContentType: ctype,
			Uploader: user, Deleted: deleted, Quarantined: quarantined}))
	})
}

// A record's object and tombstone flag, found (decodeMediaObject) and
// decoded (decodeMedia), as GC reads every record.
func BenchmarkDecodeMediaObject(b *testing.B) {
	v := mustJSON(b, MediaRecord{Object: hashOf("x"), Size: 12345, ContentType: "image/png", UploadName: "holiday photo.png",
		Uploader: "@someone:example.org", Created: 1764700000000, LastAccess: 1764700000000})
	b.Run("found", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := decodeMediaObject(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decoded", func(b *testing.B) {
		for b.Loop() {
			var rec MediaRecord
			if err := decodeMedia(v, &rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
