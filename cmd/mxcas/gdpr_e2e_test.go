package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxcas/mxcas/archive"
	"github.com/mxcas/mxcas/config"
)

// gdprTool builds tools/gdpr into a temp directory and returns a function
// running it as a separate process.
func gdprTool(t *testing.T) func(args ...string) (int, string, string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gdpr")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/mxcas/mxcas/tools/gdpr").CombinedOutput(); err != nil {
		t.Fatalf("go build tools/gdpr: %v\n%s", err, out)
	}
	return func(args ...string) (int, string, string) {
		t.Helper()
		var o, e bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), e2eBound)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), o.String(), e.String()
		}
		if err != nil {
			t.Fatalf("gdpr %v: %v", args, err)
		}
		return 0, o.String(), e.String()
	}
}

// chunkFiles lists DATA/cas's files with their sizes.
func chunkFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(dataDir, "cas"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			out = append(out, fmt.Sprintf("%s %d", d.Name(), fi.Size()))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestE2EGDPRExportDeleteImport is the GDPR round trip against the running
// server: alice's 50 media (some multi-chunk, some with bob's bytes, one
// quarantined) exported by tools/gdpr through the admin endpoint, deleted
// with the admin API and collected, then imported back with -allowDeleted:
// every media is served again byte for byte under its ID, with its type,
// name and uploader; the quarantined one was never exported; the content
// shared with bob was never stored twice.
func TestE2EGDPRExportDeleteImport(t *testing.T) {
	s := startE2E(t, func(c *config.Config) {
		withAdmins(c)
		c.Thumbnails.Pregenerate = false // their chunks would blur the chunk lists
	})
	gdpr := gdprTool(t)
	cfg := filepath.Join(t.TempDir(), "mxcas.toml")
	text := fmt.Sprintf("[server]\ndata_dir = %q\n\n[[homeserver]]\nname = %q\nclient_api = \"http://127.0.0.1:8008\"\n", s.dataDir, hostA)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	type upload struct {
		id, name, ctype string
		body            []byte
	}
	var bobs [][]byte
	for i := range 3 {
		b := content(uint64(500+i), 40<<10)
		bobs = append(bobs, b)
		s.upload(t, hostA, bobToken, "", "application/octet-stream", b)
	}
	var alice []upload
	for i := range 50 {
		u := upload{name: fmt.Sprintf("file-%02d.bin", i), ctype: "application/octet-stream", body: content(uint64(i), 1000+i*97)}
		switch {
		case i < 3: // multi-chunk: above the chunker's 256 KiB maximum
			u.body = content(uint64(i), 700<<10+i)
		case i < 6: // bob's bytes
			u.body = bobs[i-3]
		case i%5 == 0:
			u.name, u.ctype = fmt.Sprintf("photo-%d.png", i), "image/png"
		}
		u.id = s.upload(t, hostA, aliceToken, u.name, u.ctype, u.body)
		alice = append(alice, u)
	}
	quarantined := alice[49]
	alice = alice[:49]
	r := s.do(t, http.MethodPost, hostA, "/_synapse/admin/v1/media/quarantine/"+hostA+"/"+quarantined.id, aliceToken, nil, nil)
	if !wantStatus(t, r, http.StatusOK) {
		t.FailNow()
	}
	chunksBefore := chunkFiles(t, s.dataDir)

	arch := filepath.Join(t.TempDir(), "alice")
	code, out, errs := gdpr("export", "-config", cfg, "-entity", "@alice:a.test", "-destination", arch, "-partSize", "1048576")
	if code != 0 || !strings.HasPrefix(out, "summary: entity=@alice:a.test media=49 ") || !strings.HasSuffix(out, " quarantined=1\n") {
		t.Fatalf("export: exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(errs, "held by a running mxcas server") || !strings.Contains(s.log.String(), `msg="admin: export requested" entity=@alice:a.test`) {
		t.Errorf("the export did not go through the server: stderr %q", errs)
	}
	ar, err := archive.Open(context.Background(), os.DirFS(arch))
	if err != nil {
		t.Fatal(err)
	}
	if m := ar.Manifest().Media; len(m) != 49 || m["mxc://a.test/"+quarantined.id] != nil {
		t.Errorf("manifest lists %d media (quarantined one: %v), want alice's 49 without it", len(m), m["mxc://a.test/"+quarantined.id] != nil)
	}

	for _, u := range alice {
		r := s.do(t, http.MethodDelete, hostA, "/_synapse/admin/v1/media/"+hostA+"/"+u.id, aliceToken, nil, nil)
		if !wantStatus(t, r, http.StatusOK) {
			t.FailNow()
		}
	}
	old := time.Now().Add(-2 * time.Hour) // past gc_grace, rather than waiting for it
	if err := filepath.WalkDir(filepath.Join(s.dataDir, "cas"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chtimes(p, old, old)
	}); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runMain(t, "gc", "-config", cfg); code != 0 {
		t.Fatalf("gc: exit %d\n%s%s", code, out, errs)
	}
	if slices.Equal(chunkFiles(t, s.dataDir), chunksBefore) {
		t.Fatal("gc removed no chunk: the import would restore nothing")
	}

	code, out, errs = gdpr("import", "-config", cfg, "-directory", arch)
	if code != 1 || strings.Count(errs, "refused: mxc://a.test/") != 49 || !strings.Contains(out, " refused=49 ") {
		t.Fatalf("import without -allowDeleted: exit %d, want 1 and every media refused, line by line\n%s%s", code, out, errs)
	}
	wantNDJSON(t, s.dataDir, "import", map[string]any{"dir": arch, "verify": true}, 49)
	code, out, errs = gdpr("import", "-config", cfg, "-directory", arch, "-allowDeleted")
	if code != 0 || !strings.HasPrefix(out, "summary: archives=1 imported=49 present=0 other=0 refused=0 failed=0 missing=0 ") {
		t.Fatalf("import: exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(s.log.String(), `msg="admin: import done"`) {
		t.Error("the import did not go through the server")
	}
	for _, u := range alice {
		r := s.download(t, hostA, hostA, u.id, bobToken)
		wantBytes(t, r, u.body)
		if got := r.Header.Get("Content-Type"); got != u.ctype {
			t.Errorf("%s: Content-Type %q, want %q", u.id, got, u.ctype)
		}
		wantDisposition(t, r, dispositionType(u.ctype), "filename="+u.name)
		r = s.do(t, http.MethodGet, hostA, "/_synapse/admin/v1/media/"+hostA+"/"+u.id, aliceToken, nil, nil)
		var q struct {
			Info struct {
				UserID string `json:"user_id"`
			} `json:"media_info"`
		}
		if json.Unmarshal(r.Body, &q); r.Status != http.StatusOK || q.Info.UserID != "@alice:a.test" {
			t.Errorf("%s: admin query %d %s, want uploader @alice:a.test", u.id, r.Status, r.Body)
		}
	}
	if got := chunkFiles(t, s.dataDir); !slices.Equal(got, chunksBefore) {
		t.Errorf("chunk files after the import differ from those before the deletion:\n%v\nwant\n%v", got, chunksBefore)
	}

	code, out, errs = gdpr("import", "-config", cfg, "-directory", arch, "-verify")
	if code != 0 || !strings.Contains(out, " present=49 ") {
		t.Errorf("verify: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = gdpr("export", "-config", cfg, "-entity", "@alice:a.test", "-destination", arch)
	if code != 2 || out != "" || !strings.Contains(errs, "already holds") {
		t.Errorf("export into the archive's directory: exit %d, want 2\n%s%s", code, out, errs)
	}
	err = callAdmin(context.Background(), s.dataDir, "export", map[string]string{"entity": "@alice:a.test", "dest": "relative"}, nil)
	if err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("export to a relative path: %v, want refused", err)
	}
}

// wantNDJSON posts req to the admin endpoint's op and checks the answer:
// NDJSON, problems lines of media then one result line.
func wantNDJSON(t *testing.T, dataDir, op string, req any, problems int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, adminFile))
	if err != nil {
		t.Fatal(err)
	}
	var info adminInfo
	json.Unmarshal(b, &info)
	body, _ := json.Marshal(req)
	hr, _ := http.NewRequest(http.MethodPost, "http://"+info.Addr+"/"+op, bytes.NewReader(body))
	hr.Header.Set("Authorization", "Bearer "+info.Secret)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/x-ndjson" {
		t.Fatalf("POST /%s: %s, Content-Type %q; want 200 application/x-ndjson", op, resp.Status, ct)
	}
	dec := json.NewDecoder(resp.Body)
	var lines []map[string]json.RawMessage
	for dec.More() {
		var l map[string]json.RawMessage
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("POST /%s: line %d: %v", op, len(lines)+1, err)
		}
		lines = append(lines, l)
	}
	for i, l := range lines {
		_, isProblem := l["problem"]
		_, isResult := l["result"]
		if last := i == len(lines)-1; isProblem == last || isResult != last {
			t.Errorf("POST /%s: line %d of %d: %v; want %d problem lines, then the result", op, i+1, len(lines), l, problems)
		}
	}
	if len(lines) != problems+1 {
		t.Errorf("POST /%s: %d lines, want %d problems and the result", op, len(lines), problems)
	}
}

// dispositionType is the Content-Disposition type a download of ctype
// gets: inline for the types safe to show, attachment for the rest.
func dispositionType(ctype string) string {
	if ctype == "image/png" {
		return "inline"
	}
	return "attachment"
}
