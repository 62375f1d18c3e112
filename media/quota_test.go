package media_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mxcas/mxcas/media"
)

// openQuotaStore opens a fresh store with small chunks and quotas.
func openQuotaStore(t *testing.T, qs ...media.Quota) (*media.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	return openStore(t, media.Options{Create: true, Dir: dir, Chunker: smallParams, Quotas: qs}), dir
}

// tryUpload uploads data as id for user, declaring its size unless
// streamed, and returns the bytes of the body read and the error.
func tryUpload(s *media.Store, id, user string, data []byte, streamed bool) (read int64, err error) {
	size := int64(len(data))
	if streamed {
		size = -1
	}
	body := &countingReader{r: bytes.NewReader(data)}
	_, err = s.Upload(context.Background(), media.UploadInfo{MXC: mxc(id), Uploader: user, Size: size}, body)
	return int64(body.n), err
}

// wantQuotaError fails unless err is a *QuotaError over limit.
func wantQuotaError(t *testing.T, what string, err error, limit string) {
	t.Helper()
	var qe *media.QuotaError
	if !errors.Is(err, media.ErrQuotaExceeded) || !errors.As(err, &qe) || qe.Limit != limit {
		t.Errorf("%s: %v, want a QuotaError over %s", what, err, limit)
	}
}

// userUsage is the user's usage as the store counts it.
func userUsage(t *testing.T, s *media.Store, user string) media.Usage {
	t.Helper()
	u, err := s.UserUsage(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Over max_files an upload is refused before its body is read, leaves no
// record, and counts uploads to created IDs too; a deletion gives the
// file back; other users are not held to it.
func TestQuotaMaxFiles(t *testing.T) {
	const u = "@u:server"
	s, _ := openQuotaStore(t, media.Quota{Users: u, MaxFiles: 2})
	upload(t, s, "a", u, randBytes(1, 100))
	if _, err := s.Create(media.CreateInfo{MXC: mxc("c"), Uploader: u}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fill(context.Background(), media.UploadInfo{MXC: mxc("c"), Size: 1}, u, bytes.NewReader([]byte("c"))); err != nil {
		t.Fatal(err)
	}
	read, err := tryUpload(s, "b", u, randBytes(2, 100), false)
	wantQuotaError(t, "third upload", err, "max_files")
	if read != 0 {
		t.Errorf("third upload: %d bytes of its body read, want none", read)
	}
	checkNotFound(t, s, "b")
	if _, err := s.Create(media.CreateInfo{MXC: mxc("d"), Uploader: u}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Fill(context.Background(), media.UploadInfo{MXC: mxc("d"), Size: 1}, u, bytes.NewReader([]byte("d")))
	wantQuotaError(t, "fill over max_files", err, "max_files")
	if rec, err := s.Stat(mxc("d")); err != nil || !rec.Pending {
		t.Errorf("created ID after a refused fill: %+v, %v; want still pending", rec, err)
	}
	upload(t, s, "other", "@other:server", randBytes(3, 100))

	if err := s.Delete(mxc("a")); err != nil {
		t.Fatal(err)
	}
	upload(t, s, "b2", u, randBytes(2, 100))
	if got := userUsage(t, s, u); got.Media != 2 {
		t.Errorf("usage %+v, want 2 media", got)
	}
}

// max_bytes counts logical bytes (the same content twice counts twice): a
// declared size over what is left is refused before the body is read, and
// an upload that fills the quota exactly is accepted.
func TestQuotaMaxBytesDeclared(t *testing.T) {
	const u = "@u:server"
	s, dir := openQuotaStore(t, media.Quota{Users: "@u:*", MaxBytes: 100 << 10})
	data := randBytes(1, 40<<10)
	upload(t, s, "a", u, data)
	upload(t, s, "a2", u, data) // dedup: no new chunk, 40 KiB more quota
	before := chunkFiles(t, dir)
	read, err := tryUpload(s, "b", u, randBytes(2, 21<<10), false)
	wantQuotaError(t, "upload over max_bytes", err, "max_bytes")
	if read != 0 {
		t.Errorf("upload over max_bytes: %d bytes of its body read, want none", read)
	}
	checkNotFound(t, s, "b")
	if after := chunkFiles(t, dir); !reflect.DeepEqual(after, before) {
		t.Errorf("chunk files: %d after the refused upload, %d before", len(after), len(before))
	}
	upload(t, s, "c", u, randBytes(3, 20<<10))
	if got := userUsage(t, s, u); got.Media != 3 || got.LogicalBytes != 100<<10 {
		t.Errorf("usage %+v, want 3 media of 100 KiB", got)
	}
	wantQuotaError(t, "one byte more", errOf(tryUpload(s, "d", u, []byte("x"), false)), "max_bytes")
	if _, err := tryUpload(s, "empty", u, nil, false); err != nil {
		t.Errorf("empty upload at the quota: %v", err)
	}
}

func errOf(_ int64, err error) error { return err }

// A body of unknown length is cut where it passes max_bytes: not read to
// its end, no record, no chunk placed, the usage unchanged; one that ends
// exactly at the quota is accepted.
func TestQuotaMaxBytesStreamed(t *testing.T) {
	const u = "@u:server"
	const limit = 200 << 10
	s, dir := openQuotaStore(t, media.Quota{Users: u, MaxBytes: limit})
	before := chunkFiles(t, dir)
	big := randBytes(1, 2<<20)
	read, err := tryUpload(s, "big", u, big, true)
	wantQuotaError(t, "streamed upload over max_bytes", err, "max_bytes")
	if read >= int64(len(big)) {
		t.Errorf("the body was read to its end (%d bytes); want it cut near %d", read, limit)
	}
	checkNotFound(t, s, "big")
	if after := chunkFiles(t, dir); !reflect.DeepEqual(after, before) {
		t.Errorf("chunk files: %d after the refused upload, %d before", len(after), len(before))
	}
	checkTmpEmpty(t, dir)
	if got := userUsage(t, s, u); got != (media.Usage{}) {
		t.Errorf("usage %+v after a refused upload, want none", got)
	}
	exact := randBytes(2, limit)
	if _, err := tryUpload(s, "exact", u, exact, true); err != nil {
		t.Fatalf("streamed upload of exactly the quota: %v", err)
	}
	checkContent(t, s, "exact", exact)
}

// max_pending of the first quota naming a user replaces the store-wide
// MaxPendingPerUser for them, lower or higher; others keep the store-wide
// cap.
func TestQuotaMaxPending(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := openStore(t, media.Options{Create: true, Dir: dir, Chunker: smallParams, MaxPendingPerUser: 2,
		Quotas: []media.Quota{{Users: "@bot-*:*", MaxPending: 1}, {Users: "@big:*", MaxPending: 3}, {Users: "*", MaxFiles: 100}}})
	for ci, c := range []struct {
		user string
		cap  int
	}{{"@bot-1:server", 1}, {"@big:server", 3}, {"@u:server", 2}} {
		for i := 0; i <= c.cap; i++ {
			_, err := s.Create(media.CreateInfo{MXC: mxc(fmt.Sprintf("p%d_%d", ci, i)), Uploader: c.user})
			if i < c.cap && err != nil {
				t.Errorf("%s: created ID %d: %v", c.user, i+1, err)
			}
			if i == c.cap && !errors.Is(err, media.ErrPendingLimit) {
				t.Errorf("%s: created ID %d: %v, want ErrPendingLimit", c.user, i+1, err)
			}
		}
	}
}

// The first quota whose glob matches applies, even when it sets no limit;
// a user no quota names is not limited.
func TestQuotaFirstMatchWins(t *testing.T) {
	s, _ := openQuotaStore(t,
		media.Quota{Users: "@admin:server"},
		media.Quota{Users: "@?:server", MaxFiles: 1},
		media.Quota{Users: "@*:server", MaxFiles: 2},
	)
	for ci, c := range []struct {
		user string
		max  int // -1: none
	}{{"@admin:server", -1}, {"@x:server", 1}, {"@xy:server", 2}, {"@x:elsewhere", -1}} {
		for i := 0; i < 4; i++ {
			_, err := tryUpload(s, fmt.Sprintf("f%d_%d", ci, i), c.user, []byte{byte(i)}, false)
			if c.max >= 0 && i >= c.max {
				wantQuotaError(t, fmt.Sprintf("%s upload %d", c.user, i+1), err, "max_files")
			} else if err != nil {
				t.Errorf("%s upload %d: %v", c.user, i+1, err)
			}
		}
	}
}

// SetQuotas changes the quotas for the next upload; a list that does not
// validate is refused whole and the old one stays.
func TestSetQuotasLive(t *testing.T) {
	const u = "@u:server"
	s, _ := openQuotaStore(t)
	upload(t, s, "a", u, []byte("a"))
	upload(t, s, "b", u, []byte("b"))
	if err := s.SetQuotas([]media.Quota{{Users: "@*:*", MaxFiles: 2}}); err != nil {
		t.Fatal(err)
	}
	wantQuotaError(t, "after SetQuotas", errOf(tryUpload(s, "c", u, []byte("c"), false)), "max_files")
	for _, bad := range [][]media.Quota{
		{{Users: "@*:*", MaxFiles: 10}, {Users: "@*:*", MaxBytes: -1}},
		{{Users: ""}},
		{{Users: "alice"}},
		{{Users: "@a b:c"}},
	} {
		if err := s.SetQuotas(bad); err == nil {
			t.Errorf("SetQuotas(%+v) = nil, want an error", bad)
		}
	}
	if got, want := s.Quotas(), []media.Quota{{Users: "@*:*", MaxFiles: 2}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Quotas() after refused lists = %+v, want %+v", got, want)
	}
	wantQuotaError(t, "after refused SetQuotas", errOf(tryUpload(s, "c", u, []byte("c"), false)), "max_files")
	if err := s.SetQuotas(nil); err != nil {
		t.Fatal(err)
	}
	upload(t, s, "c", u, []byte("c"))
}

// Two uploads racing for the last bytes of a quota never both get them:
// what one has read (or declared) is reserved before the other checks.
func TestQuotaConcurrentUploadsRace(t *testing.T) {
	const u = "@u:server"
	const limit = 100 << 10
	s, _ := openQuotaStore(t, media.Quota{Users: u, MaxBytes: limit})

	// A streams 60 KiB and waits; B streams 60 KiB: B passes the quota.
	aR, aW := io.Pipe()
	aDone := make(chan error, 1)
	go func() {
		_, err := s.Upload(context.Background(), media.UploadInfo{MXC: mxc("a"), Uploader: u, Size: -1}, aR)
		aR.CloseWithError(fmt.Errorf("A returned: %v", err)) // no write below blocks on a failed A
		aDone <- err
	}()
	// The second write returns once A reads again, so after A reserved
	// the first one's bytes.
	for _, b := range [][]byte{randBytes(1, 60<<10), {1}} {
		if _, err := aW.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	// A declared size over what A's reserved bytes leave fails at once.
	wantQuotaError(t, "declared upload during A", errOf(tryUpload(s, "d", u, randBytes(2, 50<<10), false)), "max_bytes")
	wantQuotaError(t, "streamed upload during A", errOf(tryUpload(s, "b", u, randBytes(3, 60<<10), true)), "max_bytes")
	if _, err := aW.Write(randBytes(4, 30<<10-1)); err != nil {
		t.Fatal(err)
	}
	aW.Close()
	if err := <-aDone; err != nil {
		t.Fatalf("A: %v", err)
	}
	if got := userUsage(t, s, u); got.LogicalBytes != 90<<10 || got.Media != 1 {
		t.Errorf("usage %+v, want A's 90 KiB only", got)
	}

	// Twenty declared 1 KiB uploads at once for the last 10 KiB: ten win.
	var wg sync.WaitGroup
	var won, refused atomic.Int64
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := tryUpload(s, fmt.Sprintf("r%d", i), u, randBytes(uint64(10+i), 1<<10), false)
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, media.ErrQuotaExceeded):
				refused.Add(1)
			default:
				t.Errorf("upload r%d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 10 || refused.Load() != 10 {
		t.Errorf("%d uploads won, %d refused; want 10 and 10", won.Load(), refused.Load())
	}
	if got := userUsage(t, s, u); got.LogicalBytes != limit {
		t.Errorf("usage %d bytes, want exactly the quota %d", got.LogicalBytes, limit)
	}
}

// Streamed uploads racing over a quota: whatever wins, the usage never
// passes the quota and equals what the winners stored.
func TestQuotaConcurrentStreamedUploads(t *testing.T) {
	const u = "@u:server"
	const limit = 64 << 10
	s, _ := openQuotaStore(t, media.Quota{Users: u, MaxBytes: limit})
	var wg sync.WaitGroup
	var won atomic.Int64
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := tryUpload(s, fmt.Sprintf("r%d", i), u, randBytes(uint64(i), 8<<10), true)
			if err == nil {
				won.Add(1)
			} else if !errors.Is(err, media.ErrQuotaExceeded) {
				t.Errorf("upload r%d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	got := userUsage(t, s, u)
	if got.LogicalBytes > limit || got.LogicalBytes != won.Load()*8<<10 || got.Media != won.Load() {
		t.Errorf("usage %+v with %d winners of 8 KiB; want their bytes, at most %d", got, won.Load(), limit)
	}
}
