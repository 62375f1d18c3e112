package main_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/tools/synapse-import/synapsetest"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

const (
	serverName   = "example.org"
	remoteOrigin = "remote.example"
	adminToken   = "t"
	adminUser    = "@admin:" + serverName
)

// mediaRow is one row of local_media_repository (origin == "") or of
// remote_media_cache, and the file Synapse keeps for it.
type mediaRow struct {
	origin      string // "" for local media
	id          string
	fsid        string // remote only: filesystem_id
	typ         string
	name        string // "" is NULL
	user        string // local only
	created     int64
	nullLength  bool   // media_length NULL: created, never uploaded; no file
	quarantined bool   // by adminUser
	protected   bool   // local only: safe_from_quarantine
	lastAccess  int64  // last_access_ts; 0 is NULL
	urlCache    string // local only: the previewed URL; "" is NULL
	content     []byte
	missing     bool // the row is there, the file is not
}

// mxc is the row's media ID; the fixture's IDs are all valid.
func (r mediaRow) mxc() matrix.MXC {
	server := serverName
	if r.origin != "" {
		server = r.origin
	}
	m, err := matrix.NewMXC(server, r.id)
	if err != nil {
		panic(err)
	}
	return m
}

// importable reports whether the tool should import the row (given its
// file, or a -baseUrl that serves it).
func (r mediaRow) importable() bool { return !r.nullLength }

// file is where Synapse keeps the row's content, relative to media_store.
func (r mediaRow) file() string {
	switch {
	case r.origin != "":
		return filepath.Join("remote_content", r.origin, r.fsid[0:2], r.fsid[2:4], r.fsid[4:])
	case r.urlCache != "":
		day, rest, _ := strings.Cut(r.id, "_")
		return filepath.Join("url_cache", day, rest)
	default:
		return filepath.Join("local_content", r.id[0:2], r.id[2:4], r.id[4:])
	}
}

// fixture is a Synapse media store and the rows describing it.
type fixture struct {
	store string // media_store
	rows  []mediaRow
}

// imported returns the rows the tool should import.
func (f *fixture) imported() []mediaRow {
	var out []mediaRow
	for _, r := range f.rows {
		if r.importable() && !r.missing {
			out = append(out, r)
		}
	}
	return out
}

func (f *fixture) bytesRead() int64 {
	var n int64
	for _, r := range f.imported() {
		n += int64(len(r.content))
	}
	return n
}

func (f *fixture) find(t *testing.T, pred func(mediaRow) bool) mediaRow {
	t.Helper()
	for _, r := range f.rows {
		if pred(r) {
			return r
		}
	}
	t.Fatal("fixture has no such row")
	return mediaRow{}
}

func (f *fixture) missingRow(t *testing.T) mediaRow {
	t.Helper()
	return f.find(t, func(r mediaRow) bool { return r.missing })
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// standardRows returns the rows of the main fixture: the real images of
// thumbgen/testdata, random files of a few sizes (one over several chunks),
// duplicates of both, a NULL media_length row, a quarantined row, a
// protected row, a row never accessed, a URL preview, two remote files
// (one quarantined), a non-ASCII upload name, and, when withMissing, a row
// whose file is not there.
func standardRows(t *testing.T, withMissing bool) []mediaRow {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	created := time.Date(2023, 4, 5, 6, 7, 8, 0, time.UTC).UnixMilli()
	next := func() int64 { created += 61_000; return created }
	var rows []mediaRow
	local := func(typ, name string, content []byte) *mediaRow {
		c := next()
		rows = append(rows, mediaRow{id: synapsetest.MediaID(rng), typ: typ, name: name, user: "@alice:" + serverName,
			created: c, lastAccess: c + 3_600_000, content: content})
		return &rows[len(rows)-1]
	}

	images, err := filepath.Glob(filepath.Join(moduleRoot(t), "thumbgen", "testdata", "*"))
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{".png": "image/png", ".jpeg": "image/jpeg", ".gif": "image/gif"}
	var png []byte
	for _, p := range images {
		typ, ok := types[filepath.Ext(p)]
		if !ok {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		local(typ, filepath.Base(p), b)
		if typ == "image/png" && png == nil {
			png = b
		}
	}
	if png == nil {
		t.Fatal("no PNG in thumbgen/testdata")
	}
	local("image/png", "фото 📷.png", png) // duplicate content, non-ASCII name
	small := randBytes(rng, 10<<10)
	big := randBytes(rng, 3<<20+12345) // several chunks
	local("application/octet-stream", "small.bin", small).protected = true
	local("application/octet-stream", "", randBytes(rng, 300<<10)).lastAccess = 0 // no upload name, never read
	local("application/pdf", "report.pdf", big)
	local("application/octet-stream", "report copy.pdf", big) // duplicate
	local("application/octet-stream", "small-again.bin", small)

	r := local("image/png", "bad.png", png)
	r.quarantined = true
	r = local("application/octet-stream", "never-uploaded.bin", nil)
	r.nullLength = true
	r = local("image/jpeg", "", randBytes(rng, 5000))
	r.id = "2024-05-17_" + synapsetest.MediaID(rng)[:16]
	r.urlCache = "https://example.com/page"
	r.user = ""

	for _, name := range []string{"remote.png", "remote.bin"} {
		content := png
		typ := "image/png"
		if name == "remote.bin" {
			content, typ = randBytes(rng, 20000), "application/octet-stream"
		}
		c := next()
		rows = append(rows, mediaRow{origin: remoteOrigin, id: synapsetest.MediaID(rng), fsid: synapsetest.MediaID(rng), typ: typ,
			name: name, created: c, lastAccess: c + 5, quarantined: name == "remote.bin", content: content})
	}
	if withMissing {
		r = local("image/jpeg", "lost.jpeg", randBytes(rng, 7000))
		r.missing = true
	}
	return rows
}

// smallRows returns n local rows of small distinct files.
func smallRows(n int) []mediaRow {
	rng := rand.New(rand.NewPCG(3, 4))
	rows := make([]mediaRow, n)
	for i := range rows {
		rows[i] = mediaRow{id: synapsetest.MediaID(rng), typ: "application/octet-stream", name: fmt.Sprintf("f%03d.bin", i),
			user: "@bob:" + serverName, created: 1_600_000_000_000 + int64(i), lastAccess: 1_600_000_000_000 + int64(i),
			content: randBytes(rng, 100+rng.IntN(3000))}
	}
	return rows
}

// writeStore lays the files of rows out as Synapse does under a new
// media_store, with a few thumbnails the tool must ignore.
func writeStore(t *testing.T, rows []mediaRow) *fixture {
	t.Helper()
	f := &fixture{store: filepath.Join(t.TempDir(), "media_store")}
	f.add(t, rows)
	return f
}

// add writes the files of more rows into the media_store of f.
func (f *fixture) add(t *testing.T, rows []mediaRow) {
	t.Helper()
	put := func(rel string, b []byte) {
		p := filepath.Join(f.store, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range rows {
		if r.nullLength || r.missing {
			continue
		}
		put(r.file(), r.content)
		if r.origin == "" && r.urlCache == "" && strings.HasPrefix(r.typ, "image/") {
			put(filepath.Join("local_thumbnails", r.id[0:2], r.id[2:4], r.id[4:], "32-32-image-png-crop"),
				[]byte("not really a thumbnail"))
		}
	}
	f.rows = append(f.rows, rows...)
}

// synapseDB is a Synapse database, on PostgreSQL or SQLite, and the flags
// that point the tool at it.
type synapseDB struct {
	db       *sql.DB
	flags    []string
	postgres bool
}

func openPGSynapse(t *testing.T, c *pgCluster) *synapseDB {
	t.Helper()
	name := c.CreateDB(t, "synapse")
	db, err := sql.Open("pgx", c.DSN(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := &synapseDB{db: db, postgres: true, flags: []string{
		"-dbHost", "127.0.0.1", "-dbPort", fmt.Sprint(c.Port), "-dbUsername", pgUser,
		"-dbPassword", "unused-with-trust", "-dbName", name,
	}}
	s.exec(t, readSchema(t))
	return s
}

func openSQLiteSynapse(t *testing.T) *synapseDB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "homeserver.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := &synapseDB{db: db, flags: []string{"-sqlite", path}}
	s.exec(t, readSchema(t))
	return s
}

func readSchema(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "synapse_schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (s *synapseDB) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, s.rebind(query), args...); err != nil {
		t.Fatalf("%s: %v", firstLine(query), err)
	}
}

// rebind turns $1, $2… into SQLite's ? placeholders.
func (s *synapseDB) rebind(q string) string {
	if s.postgres {
		return q
	}
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		if q[i] == '$' && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9' {
			b.WriteByte('?')
			for i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9' {
				i++
			}
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// insert writes the rows of f, and thumbnail and URL-cache rows beside
// them, as Synapse would.
func (s *synapseDB) insert(t *testing.T, f *fixture) {
	t.Helper()
	for _, r := range f.rows {
		var length any = int64(len(r.content))
		if r.nullLength {
			length = nil
		}
		var quarantinedBy any
		if r.quarantined {
			quarantinedBy = adminUser
		}
		if r.origin != "" {
			s.exec(t, `INSERT INTO remote_media_cache (media_origin, media_id, media_type, created_ts,
				upload_name, media_length, filesystem_id, last_access_ts, quarantined_by)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				r.origin, r.id, r.typ, r.created, null(r.name), length, r.fsid, null(r.lastAccess), quarantinedBy)
			s.exec(t, `INSERT INTO remote_media_cache_thumbnails (media_origin, media_id, thumbnail_width,
				thumbnail_height, thumbnail_method, thumbnail_type, thumbnail_length, filesystem_id)
				VALUES ($1, $2, 32, 32, 'crop', 'image/png', 22, $3)`, r.origin, r.id, r.fsid)
			continue
		}
		s.exec(t, `INSERT INTO local_media_repository (media_id, media_type, media_length, created_ts,
			upload_name, user_id, quarantined_by, url_cache, last_access_ts, safe_from_quarantine)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			r.id, r.typ, length, r.created, null(r.name), null(r.user), quarantinedBy, null(r.urlCache), null(r.lastAccess),
			r.protected)
		switch {
		case r.urlCache != "":
			s.exec(t, `INSERT INTO local_media_repository_url_cache (url, response_code, etag, expires_ts,
				og, media_id, download_ts) VALUES ($1, 200, NULL, $2, '{}', $3, $4)`,
				r.urlCache, r.created+3_600_000, r.id, r.created)
		case strings.HasPrefix(r.typ, "image/") && !r.nullLength && !r.missing:
			s.exec(t, `INSERT INTO local_media_repository_thumbnails (media_id, thumbnail_width,
				thumbnail_height, thumbnail_type, thumbnail_method, thumbnail_length)
				VALUES ($1, 32, 32, 'image/png', 'crop', 22)`, r.id)
		}
	}
}

// null is v, or SQL NULL for v's zero value.
func null[T comparable](v T) any {
	var zero T
	if v == zero {
		return nil
	}
	return v
}

// dropColumns drops columns of table, making the database look like one
// of an older Synapse that never had them.
func (s *synapseDB) dropColumns(t *testing.T, table string, columns ...string) {
	t.Helper()
	for _, c := range columns {
		s.exec(t, "ALTER TABLE "+table+" DROP COLUMN "+c)
	}
}

// insertMany writes many plain local rows in one transaction.
func (s *synapseDB) insertMany(t *testing.T, rows []mediaRow) {
	t.Helper()
	tx, err := s.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	q := s.rebind(`INSERT INTO local_media_repository (media_id, media_type, media_length, created_ts,
		upload_name, user_id, last_access_ts) VALUES ($1, $2, $3, $4, $5, $6, $7)`)
	for _, r := range rows {
		if _, err := tx.Exec(q, r.id, r.typ, len(r.content), r.created, r.name, r.user, null(r.lastAccess)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// backends runs fn against a Synapse database on SQLite and on PostgreSQL.
func backends(t *testing.T, fn func(t *testing.T, open func(t *testing.T) *synapseDB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openSQLiteSynapse) })
	t.Run("postgres", func(t *testing.T) {
		c := needPG(t)
		fn(t, func(t *testing.T) *synapseDB { return openPGSynapse(t, c) })
	})
}
