package media_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/mxcas/mxcas/media"
)

// TestImportKeepsAdminState: Import keeps who quarantined media, its
// protection and its last access, and a QuarantinedBy without Quarantined
// is dropped (the record never names an admin for media not quarantined).
func TestImportKeepsAdminState(t *testing.T) {
	s, _ := newStore(t, nil)
	created := time.UnixMilli(1_700_000_000_000)
	seen := created.Add(90 * time.Minute)
	for _, tc := range []struct {
		name string
		info media.ImportInfo
		want func(*media.Media)
	}{
		{"quarantined", media.ImportInfo{MXC: mxc("quar"), Quarantined: true, QuarantinedBy: "@admin:server", LastAccess: seen},
			func(m *media.Media) {
				m.Quarantined, m.QuarantinedBy, m.LastAccess = true, "@admin:server", seen.UnixMilli()
			}},
		{"protected", media.ImportInfo{MXC: mxc("safe"), Protected: true},
			func(m *media.Media) { m.Protected = true }},
		{"by without quarantine", media.ImportInfo{MXC: mxc("free"), QuarantinedBy: "@admin:server"},
			func(*media.Media) {}},
		{"remote", media.ImportInfo{MXC: mustMXC("far.test", "r"), Remote: true, Quarantined: true, QuarantinedBy: "@mod:server", LastAccess: seen},
			func(m *media.Media) {
				m.Remote, m.Quarantined, m.QuarantinedBy, m.LastAccess = true, true, "@mod:server", seen.UnixMilli()
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.info.Uploader, tc.info.Created = "@alice:server", created
			data := []byte("content of " + tc.name)
			importMedia(t, s, tc.info, data)
			got, err := s.Stat(tc.info.MXC)
			if err != nil {
				t.Fatal(err)
			}
			want := media.Media{MXC: tc.info.MXC, Object: got.Object, Size: int64(len(data)), ContentType: "application/octet-stream",
				Uploader: "@alice:server", Created: created.UnixMilli()}
			tc.want(&want)
			if got != want {
				t.Errorf("record\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestImportFillsCreatedID: an import into an ID created here and never
// filled gives it content and ends its pending state, so it no longer
// counts against its creator's cap of created IDs.
func TestImportFillsCreatedID(t *testing.T) {
	s := openStore(t, media.Options{Create: true, Dir: filepath.Join(t.TempDir(), "data"), Chunker: smallParams, MaxPendingPerUser: 1})
	if _, err := s.Create(media.CreateInfo{MXC: mxc("made"), Uploader: "@alice:server"}); err != nil {
		t.Fatal(err)
	}
	importMedia(t, s, media.ImportInfo{MXC: mxc("made"), Uploader: "@alice:server", Created: time.UnixMilli(1_700_000_000_000)}, []byte("filled"))
	checkContent(t, s, "made", []byte("filled"))
	if _, err := s.Create(media.CreateInfo{MXC: mxc("next"), Uploader: "@alice:server"}); err != nil {
		t.Errorf("Create after the import filled alice's created ID: %v", err)
	}
}
