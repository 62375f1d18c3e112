package main_test

import (
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// importFixture fills db with the standard fixture and runs the tool into a
// new data directory; it returns the fixture, the data directory, the
// config and the run.
func importFixture(t *testing.T, db *synapseDB, withMissing bool, extra ...string) (*fixture, string, string, result) {
	t.Helper()
	f := writeStore(t, standardRows(t, withMissing))
	db.insert(t, f)
	data := filepath.Join(t.TempDir(), "data")
	cfg := writeConfig(t, data)
	return f, data, cfg, runTool(t, nil, importArgs(cfg, f, db, extra...)...)
}

// checkFirstImport checks the exit status, the failure report and the
// summary of an import of f into an empty store.
func checkFirstImport(t *testing.T, f *fixture, r result) {
	t.Helper()
	failed := 0
	for _, row := range f.rows {
		if row.missing {
			failed++
			if !strings.Contains(r.stderr, "failed: "+row.id) {
				t.Errorf("stderr does not report %q\n%s", "failed: "+row.id, r)
			}
		}
	}
	wantCode := 0
	if failed > 0 {
		wantCode = 1
	}
	if r.code != wantCode {
		t.Fatalf("exit status %d, want %d\n%s", r.code, wantCode, r)
	}
	if n := strings.Count(r.stderr, "failed: "); n != failed {
		t.Errorf("stderr reports %d failures, want %d\n%s", n, failed, r)
	}
	s := parseSummary(t, r)
	checkCounts(t, r, s, summary{imported: int64(len(f.imported())), failed: int64(failed), nullLength: 1,
		bytesRead: f.bytesRead()})
	// The fixture holds the same image three times and a 3 MB file twice.
	if s.bytesStored <= 0 || s.bytesStored >= s.bytesRead {
		t.Errorf("bytes_stored=%d, want more than 0 and less than bytes_read=%d (duplicates)", s.bytesStored, s.bytesRead)
	}
}

// TestImportPostgres imports from PostgreSQL and downloads everything from
// a running mxcas, authenticated and on the legacy path.
func TestImportPostgres(t *testing.T) {
	db := openPGSynapse(t, needPG(t))
	f, data, _, r := importFixture(t, db, true)
	checkFirstImport(t, f, r)

	srv := startMxcas(t, data)
	for _, row := range f.rows {
		m := row.mxc()
		v1 := "/_matrix/client/v1/media/download/" + m.Server() + "/" + m.MediaID()
		legacy := "/_matrix/media/v3/download/" + m.Server() + "/" + m.MediaID()
		resp, body := get(t, srv.Addr, v1, adminToken)
		if !row.importable() || row.missing || row.quarantined {
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s (%s): status %d, want 404: %s", v1, row.name, resp.StatusCode, body)
			}
			if row.quarantined {
				if resp, body := get(t, srv.Addr, legacy, ""); resp.StatusCode != http.StatusNotFound {
					t.Errorf("GET %s (quarantined): status %d, want 404: %s", legacy, resp.StatusCode, body)
				}
			}
			continue
		}
		checkDownload(t, "GET "+v1, row, resp, body)
		resp, body = get(t, srv.Addr, legacy, "")
		checkDownload(t, "GET "+legacy+" without a token (imported media is not frozen)", row, resp, body)
	}
}

// TestImportSQLite imports from SQLite and checks the records in the store.
func TestImportSQLite(t *testing.T) {
	db := openSQLiteSynapse(t)
	f, data, _, r := importFixture(t, db, true)
	checkFirstImport(t, f, r)
	checkStore(t, data, f.rows)
}

// TestImportIdempotent runs the import twice: the second run imports
// nothing and skips everything.
func TestImportIdempotent(t *testing.T) {
	backends(t, func(t *testing.T, open func(*testing.T) *synapseDB) {
		db := open(t)
		f, data, cfg, r := importFixture(t, db, false)
		checkFirstImport(t, f, r)

		r = runTool(t, nil, importArgs(cfg, f, db)...)
		if r.code != 0 {
			t.Fatalf("second run: exit status %d, want 0\n%s", r.code, r)
		}
		s := parseSummary(t, r)
		checkCounts(t, r, s, summary{skipped: int64(len(f.imported())), nullLength: 1, bytesRead: -1})
		if s.bytesStored != 0 || s.dedup != "0" {
			t.Errorf("second run: bytes_stored=%d dedup=%s, want 0 and 0\n%s", s.bytesStored, s.dedup, r)
		}
		checkStore(t, data, f.rows)
	})
}

// TestDryRun checks that -dryRun reports what an import would do and
// changes nothing: no data directory where there was none, not a file
// touched in an existing store.
func TestDryRun(t *testing.T) {
	db := openSQLiteSynapse(t)
	f := writeStore(t, standardRows(t, false))
	db.insert(t, f)
	data := filepath.Join(t.TempDir(), "data")
	cfg := writeConfig(t, data)

	r := runTool(t, nil, importArgs(cfg, f, db, "-dryRun")...)
	if r.code != 0 {
		t.Fatalf("dry run: exit status %d, want 0\n%s", r.code, r)
	}
	checkCounts(t, r, parseSummary(t, r), summary{imported: int64(len(f.imported())), nullLength: 1,
		bytesRead: f.bytesRead()})
	if _, err := os.Lstat(data); !os.IsNotExist(err) {
		t.Fatalf("dry run made the data directory %s (Lstat: %v)", data, err)
	}

	checkFirstImport(t, f, runTool(t, nil, importArgs(cfg, f, db)...))
	more := smallRows(5)
	f.add(t, more)
	db.insertMany(t, more)
	before := listing(t, data)
	r = runTool(t, nil, importArgs(cfg, f, db, "-dryRun")...)
	if r.code != 0 {
		t.Fatalf("dry run on a store: exit status %d, want 0\n%s", r.code, r)
	}
	checkCounts(t, r, parseSummary(t, r), summary{imported: 5, skipped: int64(len(f.imported()) - 5),
		nullLength: 1, bytesRead: -1})
	if d := diffListings(before, listing(t, data)); len(d) > 0 {
		t.Fatalf("dry run changed the store:\n%s", strings.Join(d, "\n"))
	}
	checkStore(t, data, f.rows[:len(f.rows)-5])
	for _, row := range more {
		row.missing = true // not imported: must not be in the store
		checkStore(t, data, []mediaRow{row})
	}

	// What the dry run said is what the import does.
	r = runTool(t, nil, importArgs(cfg, f, db)...)
	if r.code != 0 {
		t.Fatalf("import after the dry run: exit status %d, want 0\n%s", r.code, r)
	}
	checkCounts(t, r, parseSummary(t, r), summary{imported: 5, skipped: int64(len(f.imported()) - 5),
		nullLength: 1, bytesRead: -1})
	checkStore(t, data, f.rows)
}

var mismatchRE = regexp.MustCompile(`(?m)^verify: MISMATCH (mxc://\S+) (.+)$`)

// mismatches returns the media -verify reported, and fails the test when
// it did not exit 1 or reported a medium that is not in rows.
func mismatches(t *testing.T, r result, rows []mediaRow) []string {
	t.Helper()
	if r.code != 1 {
		t.Fatalf("-verify: exit status %d, want 1\n%s", r.code, r)
	}
	known := map[string]bool{}
	for _, row := range rows {
		known[row.mxc().String()] = true
	}
	var got []string
	for _, m := range mismatchRE.FindAllStringSubmatch(r.stdout, -1) {
		if !known[m[1]] {
			t.Errorf("-verify reports %s, which is not in the database\n%s", m[1], r)
		}
		got = append(got, m[1])
	}
	if len(got) == 0 {
		t.Fatalf("-verify exited 1 without a MISMATCH line\n%s", r)
	}
	if strings.Contains(r.stdout, "verify: ok") {
		t.Errorf("-verify says ok and MISMATCH\n%s", r)
	}
	return got
}

// verifyOK runs -verify and wants it to pass on n media, changing nothing.
func verifyOK(t *testing.T, data string, args []string, n int) {
	t.Helper()
	before := listing(t, data)
	r := runTool(t, nil, append(args, "-verify")...)
	if r.code != 0 || !regexp.MustCompile(fmt.Sprintf(`(?m)^verify: ok %d$`, n)).MatchString(r.stdout) {
		t.Fatalf("-verify: want exit 0 and \"verify: ok %d\"\n%s", n, r)
	}
	if d := diffListings(before, listing(t, data)); len(d) > 0 {
		t.Fatalf("-verify changed the store:\n%s", strings.Join(d, "\n"))
	}
}

// TestVerify checks that -verify passes after an import and catches a
// damaged chunk and a changed upload name.
func TestVerify(t *testing.T) {
	backends(t, func(t *testing.T, open func(*testing.T) *synapseDB) {
		db := open(t)
		f, data, cfg, r := importFixture(t, db, false)
		checkFirstImport(t, f, r)
		args := importArgs(cfg, f, db)
		verifyOK(t, data, args, len(f.imported()))

		// Damage the largest chunk.
		var chunk string
		var size int64
		err := filepath.WalkDir(filepath.Join(data, "cas"), func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			if fi, err := d.Info(); err == nil && fi.Size() > size {
				chunk, size = p, fi.Size()
			}
			return nil
		})
		if err != nil || chunk == "" {
			t.Fatalf("no chunk file under %s: %v", filepath.Join(data, "cas"), err)
		}
		flip := func() {
			t.Helper()
			fi, err := os.Stat(chunk)
			if err != nil {
				t.Fatal(err)
			}
			os.Chmod(chunk, 0o600)
			fh, err := os.OpenFile(chunk, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 1)
			if _, err := fh.ReadAt(b, size/2); err != nil {
				t.Fatal(err)
			}
			b[0] ^= 0x01
			if _, err := fh.WriteAt(b, size/2); err != nil {
				t.Fatal(err)
			}
			if err := fh.Close(); err != nil {
				t.Fatal(err)
			}
			os.Chmod(chunk, fi.Mode().Perm())
		}
		flip()
		mismatches(t, runTool(t, nil, append(args, "-verify")...), f.rows)
		flip()
		verifyOK(t, data, args, len(f.imported()))

		// A name that no longer matches the database.
		row := f.find(t, func(r mediaRow) bool { return r.origin == "" && r.name != "" && !r.quarantined })
		db.exec(t, "UPDATE local_media_repository SET upload_name = $1 WHERE media_id = $2", "renamed.bin", row.id)
		got := mismatches(t, runTool(t, nil, append(args, "-verify")...), f.rows)
		if len(got) != 1 || got[0] != row.mxc().String() {
			t.Errorf("-verify after renaming %s in the database reports %v, want just it", row.mxc(), got)
		}
	})
}

// TestKillAndResume stops an import abruptly after 50 media (the tool's
// test hook MXCAS_IMPORT_STOP_AFTER=N: os.Exit(3) after N committed imports,
// no cleanup), then runs it again: it imports the rest and the store is
// consistent.
func TestKillAndResume(t *testing.T) {
	db := openSQLiteSynapse(t)
	rows := smallRows(300)
	f := writeStore(t, rows)
	db.insertMany(t, rows)
	data := filepath.Join(t.TempDir(), "data")
	cfg := writeConfig(t, data)
	args := importArgs(cfg, f, db, "-workers", "1")

	r := runTool(t, []string{"MXCAS_IMPORT_STOP_AFTER=50"}, args...)
	if r.code != 3 {
		t.Fatalf("with MXCAS_IMPORT_STOP_AFTER=50: exit status %d, want 3\n%s", r.code, r)
	}
	if got := mismatches(t, runTool(t, nil, append(args, "-verify")...), rows); len(got) != 250 {
		t.Errorf("-verify after 50 of 300: %d MISMATCH lines, want 250", len(got))
	}

	r = runTool(t, nil, args...)
	if r.code != 0 {
		t.Fatalf("resumed run: exit status %d, want 0\n%s", r.code, r)
	}
	checkCounts(t, r, parseSummary(t, r), summary{imported: 250, skipped: 50, bytesRead: -1})
	verifyOK(t, data, args, 300)
	checkStore(t, data, rows)

	cmd := exec.Command(mxcas(t), "fsck", "-config", cfg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mxcas fsck after the resumed import: %v\n%s", err, out)
	}
}

// TestServerHoldsStore runs the tool while mxcas serves the data directory:
// it must refuse with exit status 2 and touch nothing.
func TestServerHoldsStore(t *testing.T) {
	db := openSQLiteSynapse(t)
	f := writeStore(t, standardRows(t, false))
	db.insert(t, f)
	data := filepath.Join(t.TempDir(), "data")
	cfg := writeConfig(t, data)
	srv := startMxcas(t, data)

	r := runTool(t, nil, importArgs(cfg, f, db)...)
	if r.code != 2 {
		t.Fatalf("exit status %d, want 2 while mxcas serves the store\n%s", r.code, r)
	}
	if !strings.Contains(strings.ToLower(r.stderr), "stop mxcas") {
		t.Errorf("stderr does not tell to stop mxcas\n%s", r)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	none := make([]mediaRow, len(f.rows))
	for i, row := range f.rows {
		row.missing = true // nothing may have been imported
		none[i] = row
	}
	checkStore(t, data, none)
}

// TestBaseURLFallback imports a file missing from media_store from the
// homeserver's download endpoint given by -baseUrl.
func TestBaseURLFallback(t *testing.T) {
	const token = "syt_importer_token"
	db := openSQLiteSynapse(t)
	f := writeStore(t, standardRows(t, true))
	db.insert(t, f)
	lost := f.missingRow(t)

	var mu sync.Mutex
	var requests []string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errcode":"M_UNKNOWN_TOKEN","error":"Unknown access token"}`)
			return
		}
		if r.Method != http.MethodGet || r.URL.Path != "/_matrix/client/v1/media/download/"+serverName+"/"+lost.id {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"errcode":"M_NOT_FOUND","error":"Not found"}`)
			return
		}
		w.Header().Set("Content-Type", lost.typ)
		w.Header().Set("Content-Disposition", "inline; filename="+lost.name)
		w.Write(lost.content)
	}))
	defer hs.Close()

	data := filepath.Join(t.TempDir(), "data")
	cfg := writeConfig(t, data)
	r := runTool(t, nil, importArgs(cfg, f, db, "-baseUrl", hs.URL, "-accessToken", token)...)
	if r.code != 0 {
		t.Fatalf("exit status %d, want 0 (the missing file is served by -baseUrl)\n%s", r.code, r)
	}
	checkCounts(t, r, parseSummary(t, r), summary{imported: int64(len(f.imported()) + 1), nullLength: 1,
		bytesRead: f.bytesRead() + int64(len(lost.content))})
	mu.Lock()
	if len(requests) == 0 {
		t.Errorf("the tool never asked -baseUrl")
	}
	for _, p := range requests {
		if !strings.HasSuffix(p, "/"+lost.id) {
			t.Errorf("the tool asked -baseUrl for %s, which is in media_store", p)
		}
	}
	mu.Unlock()
	rows := make([]mediaRow, len(f.rows))
	for i, row := range f.rows {
		row.missing = false // fetched
		rows[i] = row
	}
	checkStore(t, data, rows)
}

// TestDotDotOriginIsSkipped: a remote row whose origin is ".." would name a
// file outside remote_content/; it is skipped as unservable, and that file
// is never read.
func TestDotDotOriginIsSkipped(t *testing.T) {
	db := openSQLiteSynapse(t)
	rows := smallRows(1)
	for i, origin := range []string{"..", "a..b", "."} {
		rows = append(rows, mediaRow{origin: origin, id: fmt.Sprintf("evil%d", i), fsid: fmt.Sprintf("ab%dsecretfile", i),
			typ: "text/plain", created: 1_600_000_000_000, content: []byte("outside remote_content")})
	}
	f := writeStore(t, rows)
	if _, err := os.Stat(filepath.Join(f.store, "ab", "0s", "ecretfile")); err != nil {
		t.Fatalf("the fixture's file outside remote_content/: %v", err)
	}
	db.insert(t, f)
	cfg := writeConfig(t, filepath.Join(t.TempDir(), "data"))
	r := runTool(t, nil, importArgs(cfg, f, db)...)
	if r.code != 0 {
		t.Fatalf("exit status %d, want 0\n%s", r.code, r)
	}
	for i := range 3 {
		if want := fmt.Sprintf("skipped: evil%d:", i); !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not report %q\n%s", want, r)
		}
	}
	s := parseSummary(t, r)
	checkCounts(t, r, s, summary{imported: 1, skipped: 3, bytesRead: int64(len(rows[0].content))})
}
