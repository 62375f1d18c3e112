package media_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mxcas/mxcas/media"
)

// dirNames lists dir's entries.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// kinds maps each reported mxc URI to its problem's kind.
func kinds(ps map[string]media.ArchiveProblem) map[string]string {
	k := make(map[string]string, len(ps))
	for m, p := range ps {
		k[m] = p.Kind
	}
	return k
}

func outcomes(r media.ArchiveImportReport) int {
	return r.Imported + r.Present + r.Other + r.Refused + r.Failed + r.Missing
}

// TestImportArchiveHostile imports an archive that lies: every bad media
// is reported once and stores nothing, the good ones are imported, and
// nothing appears outside the store. With OnlyEntity the foreign media
// comes in as a cached copy and the rest counts as Other.
func TestImportArchiveHostile(t *testing.T) {
	root := t.TempDir()
	arch, data := filepath.Join(root, "archive"), filepath.Join(root, "data")
	if err := os.Mkdir(arch, 0o755); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, media.Options{Create: true, Dir: data, Chunker: smallParams,
		Local: func(name string) bool { return name == server }})
	held := upload(t, s, "held", "@bob:server", randBytes(10, 5000))
	upload(t, s, "qsrc", "@bob:server", randBytes(11, 6000))
	if _, err := s.QuarantineContent(mxc("qsrc"), server, "@admin:server"); err != nil {
		t.Fatal(err)
	}
	big := func(seed uint64) []byte { return randBytes(seed, 1<<20+5000) }
	local := func(id string, body []byte) mmrMedia {
		return mmrMedia{Origin: server, MediaID: id, Name: id, ContentType: "application/octet-stream",
			Uploader: "@alice:server", Created: 1600000000000, Body: body}
	}
	with := func(m mmrMedia, fn func(*mmrMedia)) mmrMedia { fn(&m); return m }
	foreign := func(id, user string, body []byte) mmrMedia {
		return mmrMedia{Origin: "other.example", MediaID: id, ContentType: "image/png", Uploader: user,
			Created: 1600000000000, Body: body}
	}
	good := []mmrMedia{local("good1", randBytes(1, 3000)), local("good2", big(2)), local("good3", nil)}
	bad := map[string]mmrMedia{
		"failed": with(local("tampered", randBytes(3, 4000)), func(m *mmrMedia) { m.FileBody = randBytes(4, 4000) }),
		"failed ": with(local("tamperedbig", big(5)), func(m *mmrMedia) { m.FileBody = big(6) }),
		"failed  ": with(local("dotdot", randBytes(7, 100)), func(m *mmrMedia) { m.FileName = "../escape.png" }),
		"failed   ": with(local("abs", randBytes(8, 100)), func(m *mmrMedia) { m.FileName = filepath.Join(root, "abs.png") }),
		"failed    ": with(local("long", randBytes(9, 1000)), func(m *mmrMedia) { m.Size = 999 }),
		"failed     ": with(local("short", randBytes(12, 1000)), func(m *mmrMedia) { m.Size = 1001 }),
		"failed      ": with(local("longbig", big(13)), func(m *mmrMedia) { m.Size = 1<<20 + 4000 }),
		"failed       ": with(local("shortbig", big(14)), func(m *mmrMedia) { m.Size = 1<<20 + 6000 }),
		"failed        ": with(local("s3", randBytes(15, 100)), func(m *mmrMedia) {
			m.S3URL, m.NoFile = "https://s3.example/bucket/x", true
		}),
		"failed         ": with(foreign("tamperedforeign", "@mallory:other.example", randBytes(16, 100)),
			func(m *mmrMedia) { m.FileBody = randBytes(17, 100) }),
		"refused":   foreign("mallory1", "@mallory:other.example", randBytes(18, 2000)),
		"refused ":  foreign("eve1", "@eve:other.example", randBytes(19, 2000)),
		"refused  ": with(local("held", randBytes(20, 5000)), func(m *mmrMedia) {}),
		"refused   ": with(local("qnew", readMedia(t, s, "qsrc")), func(m *mmrMedia) {}),
	}
	ms := slices.Clone(good)
	want := map[string]string{}
	for k, m := range bad {
		ms = append(ms, m)
		want[m.mxc()] = strings.TrimSpace(k)
	}
	writeMMR(t, arch, "server", mmrLayout{partBytes: 10 << 10, extra: []tarEntry{
		{"../evil", []byte("evil")}, {"/evil2", []byte("evil")},
	}}, ms...)
	rootBefore, archBefore := dirNames(t, root), dirNames(t, arch)

	rep, ps := importDir(t, s, arch, media.ArchiveImportOptions{})
	if got := kinds(ps); !mapsEqual(got, want) {
		t.Errorf("problems %v\nwant %v", got, want)
	}
	if rep.Imported != len(good) || rep.Failed != 10 || rep.Refused != 4 || outcomes(rep) != len(ms) {
		t.Errorf("report %+v, want %d imported, 10 failed, 4 refused, one outcome each", rep, len(good))
	}
	if p := ps["mxc://server/s3"]; !strings.Contains(p.Reason, "s3_url") {
		t.Errorf("s3 media reported %+v, want the reason to name its s3_url", p)
	}
	for _, m := range good {
		checkImported(t, s, m, false)
	}
	for _, m := range bad {
		if m.MediaID == "held" || m.MediaID == "qnew" || m.Origin != server {
			continue
		}
		checkNotFound(t, s, m.MediaID)
	}
	checkNotFound(t, s, "qnew")
	checkContent(t, s, "held", randBytes(10, 5000))
	if rec, _ := s.Stat(mxc("held")); rec != held {
		t.Errorf("held changed: %+v, was %+v", rec, held)
	}
	if got := dirNames(t, root); !slices.Equal(got, rootBefore) {
		t.Errorf("the archive's parent holds %v, had %v", got, rootBefore)
	}
	if got := dirNames(t, arch); !slices.Equal(got, archBefore) {
		t.Errorf("the archive holds %v, had %v", got, archBefore)
	}
	for _, p := range []string{"/evil2", filepath.Join(root, "abs.png"), filepath.Join(root, "evil"), filepath.Join(root, "escape.png"), filepath.Join(data, "evil")} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want it not to exist", p, err)
		}
	}

	// OnlyEntity naming a foreign user imports that user's media as a
	// cached copy; naming their server imports the rest of its media.
	mallory, _ := media.ParseEntity("@mallory:other.example")
	rep, ps = importDir(t, s, arch, media.ArchiveImportOptions{OnlyEntity: &mallory})
	if rep.Imported != 1 || rep.Other != len(ms)-11 || len(ps) != 10 || ps["mxc://other.example/tamperedforeign"].Kind != "failed" {
		t.Errorf("only %s: %+v %v", mallory, rep, kinds(ps))
	}
	checkImported(t, s, bad["refused"], true)
	other, _ := media.ParseEntity("other.example")
	rep, _ = importDir(t, s, arch, media.ArchiveImportOptions{OnlyEntity: &other})
	if rep.Imported != 1 || rep.Present != 1 || rep.Other != len(ms)-12 {
		t.Errorf("only %s: %+v", other, rep)
	}
	checkImported(t, s, bad["refused "], true)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

var _ = bytes.Equal
var _ = io.EOF
var _ atomic.Int64
var _ = context.Background
