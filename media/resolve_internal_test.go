package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxcas/mxcas/matrix"
)

// filesFetcher serves fixed remote media and counts fetches.
type filesFetcher struct {
	files map[matrix.MXC][]byte
	calls atomic.Int64
}

func (f *filesFetcher) Fetch(_ context.Context, m matrix.MXC) (RemoteMedia, error) {
	f.calls.Add(1)
	b, ok := f.files[m]
	if !ok {
		return RemoteMedia{}, fmt.Errorf("%w: remote 404", ErrNotFound)
	}
	return RemoteMedia{Body: io.NopCloser(bytes.NewReader(b)), ContentType: "text/plain", UploadName: "r.txt", Size: -1}, nil
}

var (
	ours    = mustMXC("ours.test", "local")
	theirs  = mustMXC("far.test", "remote")
	created = mustMXC("ours.test", "created")
	// resolveEpoch is where the clocks of these tests start.
	resolveEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// mustMXC is matrix.NewMXC for an ID the test knows is valid.
func mustMXC(server, id string) matrix.MXC {
	m, err := matrix.NewMXC(server, id)
	if err != nil {
		panic(err)
	}
	return m
}

// resolveStore is a store serving ours.test, with theirs on far.test
// behind a fetcher (none when noFetcher), under the freeze or not.
type resolveStore struct {
	s   *Store
	f   *filesFetcher
	now atomic.Int64 // seconds past resolveEpoch
}

func newResolveStore(t *testing.T, freeze, noFetcher bool) *resolveStore {
	t.Helper()
	rs := &resolveStore{f: &filesFetcher{files: map[matrix.MXC][]byte{theirs: []byte("remote bytes")}}}
	o := Options{
		Create: true, Dir: t.TempDir(), Logger: quietLog(),
		Now:                   func() time.Time { return resolveEpoch.Add(time.Duration(rs.now.Load()) * time.Second) },
		Local:                 func(s string) bool { return s == "ours.test" },
		FreezeUnauthenticated: freeze,
		Thumbnails:            ThumbnailOptions{Disabled: true},
	}
	if !noFetcher {
		o.Remote.Fetcher = rs.f
	}
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	rs.s = s
	return rs
}

func (rs *resolveStore) upload(t *testing.T, m matrix.MXC) {
	t.Helper()
	if _, err := rs.s.Upload(context.Background(), UploadInfo{MXC: m, Uploader: "@u:ours.test", Size: 5}, bytes.NewReader([]byte("local"))); err != nil {
		t.Fatal(err)
	}
}

func (rs *resolveStore) cache(t *testing.T, m matrix.MXC) {
	t.Helper()
	if _, err := rs.s.Resolve(context.Background(), m, ReadOptions{}); err != nil {
		t.Fatalf("caching %s: %v", m, err)
	}
}

func (rs *resolveStore) create(t *testing.T, m matrix.MXC) {
	t.Helper()
	if _, err := rs.s.Create(CreateInfo{MXC: m, Uploader: "@u:ours.test"}); err != nil {
		t.Fatal(err)
	}
}

// quarantine marks m's record quarantined, as the admin API will.
func (rs *resolveStore) quarantine(t *testing.T, m matrix.MXC) {
	t.Helper()
	rec, err := rs.s.Stat(m)
	if err != nil {
		t.Fatal(err)
	}
	rec.Quarantined = true
	b := rs.s.idx.NewBatch()
	defer b.Close()
	if err := b.PutMedia(rec.record()); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	rs.s.records.invalidate(m)
}

// TestResolve: the one read policy, per reader (client, legacy, federation)
// and store (frozen or not): what is fetched, what is refused, what is
// waited for.
func TestResolve(t *testing.T) {
	legacy := ReadOptions{Path: LegacyRead}
	fed := ReadOptions{Path: FederationRead}
	tests := []struct {
		name              string
		freeze, noFetcher bool
		setup             func(t *testing.T, rs *resolveStore)
		m                 matrix.MXC
		opt               ReadOptions
		wantErr           error // nil: the read gets the record
		wantFetches       int64
		wantRequiresAuth  bool
	}{
		{name: "local media", setup: upl(ours), m: ours},
		{name: "unknown local media is not fetched", m: mustMXC("ours.test", "none"), wantErr: ErrNotFound},
		{name: "remote media is fetched", m: theirs, wantFetches: 1},
		{name: "remote media the remote does not have", m: mustMXC("far.test", "none"), wantErr: ErrNotFound, wantFetches: 1},
		{name: "no fetcher", noFetcher: true, m: theirs, wantErr: ErrRemoteDisabled},
		{name: "NoRemote refuses a fetch", m: theirs, opt: ReadOptions{NoRemote: true}, wantErr: ErrNotFound},
		{name: "NoRemote serves cached remote media", setup: cached(theirs), m: theirs, opt: ReadOptions{Path: LegacyRead, NoRemote: true}, wantFetches: 1},
		{name: "legacy fetches without the freeze", m: theirs, opt: legacy, wantFetches: 1},
		{name: "legacy serves local media without the freeze", setup: upl(ours), m: ours, opt: legacy},
		{name: "legacy never fetches under the freeze", freeze: true, m: theirs, opt: legacy, wantErr: ErrNotFound},
		{name: "legacy refuses remote media cached under the freeze", freeze: true, setup: cached(theirs), m: theirs, opt: legacy, wantErr: ErrNotFound, wantFetches: 1},
		{name: "client fetches under the freeze", freeze: true, m: theirs, wantFetches: 1, wantRequiresAuth: true},
		{name: "legacy refuses uploads under the freeze", freeze: true, setup: upl(ours), m: ours, opt: legacy, wantErr: ErrNotFound},
		{name: "client reads uploads under the freeze", freeze: true, setup: upl(ours), m: ours, wantRequiresAuth: true},
		{name: "federation serves local media", setup: upl(ours), m: ours, opt: fed},
		{name: "federation serves local media under the freeze", freeze: true, setup: upl(ours), m: ours, opt: fed, wantRequiresAuth: true},
		{name: "federation never fetches", m: theirs, opt: fed, wantErr: ErrNotFound},
		{name: "federation refuses cached remote media", setup: cached(theirs), m: theirs, opt: fed, wantErr: ErrNotFound, wantFetches: 1},
		{name: "quarantined, client", setup: quarantined(upl(ours), ours), m: ours, wantErr: ErrNotFound},
		{name: "quarantined, legacy", setup: quarantined(upl(ours), ours), m: ours, opt: legacy, wantErr: ErrNotFound},
		{name: "quarantined, federation", setup: quarantined(upl(ours), ours), m: ours, opt: fed, wantErr: ErrNotFound},
		{name: "quarantined remote media is not fetched again", setup: quarantined(cached(theirs), theirs), m: theirs, wantErr: ErrNotFound, wantFetches: 1},
		{name: "pending, no wait", setup: crt(created), m: created, wantErr: ErrNotYetUploaded},
		{name: "pending, wait runs out", setup: crt(created), m: created, opt: ReadOptions{Wait: time.Millisecond}, wantErr: ErrNotYetUploaded},
		{name: "pending, federation", setup: crt(created), m: created, opt: fed, wantErr: ErrNotYetUploaded},
		{name: "pending, legacy under the freeze is not yet uploaded", freeze: true, setup: crt(created), m: created, opt: legacy, wantErr: ErrNotYetUploaded},
		{name: "pending and expired", setup: func(t *testing.T, rs *resolveStore) {
			rs.create(t, created)
			rs.now.Add(int64((24*time.Hour + time.Second) / time.Second))
		}, m: created, opt: ReadOptions{Wait: MaxWait}, wantErr: ErrNotFound},
		{name: "quarantined pending", setup: quarantined(crt(created), created), m: created, opt: ReadOptions{Wait: MaxWait}, wantErr: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := newResolveStore(t, tt.freeze, tt.noFetcher)
			if tt.setup != nil {
				tt.setup(t, rs)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rec, err := rs.s.Resolve(ctx, tt.m, tt.opt)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("Resolve(%s, %+v) = %v, want %v", tt.m, tt.opt, err, tt.wantErr)
				}
			} else if err != nil {
				t.Errorf("Resolve(%s, %+v): %v", tt.m, tt.opt, err)
			} else {
				if rec.MXC.Server() != tt.m.Server() || rec.MXC.MediaID() != tt.m.MediaID() || rec.Pending || rec.Object.IsZero() {
					t.Errorf("Resolve(%s) = %+v, want its record with content", tt.m, rec)
				}
				if rec.RequiresAuth != tt.wantRequiresAuth {
					t.Errorf("RequiresAuth = %v, want %v", rec.RequiresAuth, tt.wantRequiresAuth)
				}
			}
			if n := rs.f.calls.Load(); n != tt.wantFetches {
				t.Errorf("%d remote fetches, want %d", n, tt.wantFetches)
			}
		})
	}
}

func upl(m matrix.MXC) func(*testing.T, *resolveStore) {
	return func(t *testing.T, rs *resolveStore) { rs.upload(t, m) }
}

func cached(m matrix.MXC) func(*testing.T, *resolveStore) {
	return func(t *testing.T, rs *resolveStore) { rs.cache(t, m) }
}

func crt(m matrix.MXC) func(*testing.T, *resolveStore) {
	return func(t *testing.T, rs *resolveStore) { rs.create(t, m) }
}

func quarantined(setup func(*testing.T, *resolveStore), m matrix.MXC) func(*testing.T, *resolveStore) {
	return func(t *testing.T, rs *resolveStore) { setup(t, rs); rs.quarantine(t, m) }
}

// TestResolveWaitsForContent: a read of a created ID waits for its
// content and gets it; on the legacy paths under the freeze, content that
// arrives is refused as media stored under the freeze.
func TestResolveWaitsForContent(t *testing.T) {
	for _, tt := range []struct {
		name    string
		freeze  bool
		opt     ReadOptions
		wantErr error
	}{
		{name: "client", opt: ReadOptions{Wait: MaxWait}},
		{name: "federation", opt: ReadOptions{Path: FederationRead, Wait: MaxWait}},
		{name: "legacy", opt: ReadOptions{Path: LegacyRead, Wait: MaxWait}},
		{name: "legacy under the freeze", freeze: true, opt: ReadOptions{Path: LegacyRead, Wait: MaxWait}, wantErr: ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rs := newResolveStore(t, tt.freeze, false)
			rs.create(t, created)
			type result struct {
				rec Media
				err error
			}
			done := make(chan result, 1)
			go func() {
				rec, err := rs.s.Resolve(context.Background(), created, tt.opt)
				done <- result{rec, err}
			}()
			// Fill only once the read is waiting (it has registered).
			deadline := time.Now().Add(30 * time.Second)
			for !rs.s.waiters.has(created) {
				if time.Now().After(deadline) {
					t.Fatal("Resolve never waited for the created ID")
				}
				runtime.Gosched()
			}
			filled, err := rs.s.Fill(context.Background(), UploadInfo{MXC: created, Size: 4}, "@u:ours.test", bytes.NewReader([]byte("late")))
			if err != nil {
				t.Fatal(err)
			}
			var got result
			select {
			case got = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Resolve did not return after the content arrived")
			}
			if tt.wantErr != nil {
				if !errors.Is(got.err, tt.wantErr) {
					t.Errorf("Resolve = %v, want %v", got.err, tt.wantErr)
				}
				return
			}
			if got.err != nil || got.rec.Object != filled.Object || got.rec.Pending {
				t.Errorf("Resolve = %+v, %v; want the filled record %s", got.rec, got.err, filled.Object.Short())
			}
		})
	}
}

// TestResolveToStreams: the first read of uncached remote media gets the
// bytes through start as they are fetched; later reads get the cached
// record, and reads that may not fetch never call start.
func TestResolveToStreams(t *testing.T) {
	rs := newResolveStore(t, true, false)
	var (
		mu     sync.Mutex
		starts int
		buf    bytes.Buffer
		meta   RemoteMedia
	)
	start := func(rm RemoteMedia) io.Writer {
		mu.Lock()
		defer mu.Unlock()
		starts++
		meta = rm
		return &buf
	}
	ctx := context.Background()
	if _, streamed, err := rs.s.ResolveTo(ctx, theirs, ReadOptions{Path: LegacyRead}, start); !errors.Is(err, ErrNotFound) || streamed {
		t.Errorf("legacy read under the freeze: streamed %v, %v; want ErrNotFound, nothing streamed", streamed, err)
	}
	rec, streamed, err := rs.s.ResolveTo(ctx, theirs, ReadOptions{}, start)
	if err != nil || !streamed {
		t.Fatalf("first read: streamed %v, %v; want streamed", streamed, err)
	}
	if buf.String() != "remote bytes" || meta.ContentType != "text/plain" || meta.UploadName != "r.txt" || !rec.Remote {
		t.Errorf("streamed %q as %+v, record %+v", buf.String(), meta, rec)
	}
	rec2, streamed, err := rs.s.ResolveTo(ctx, theirs, ReadOptions{}, start)
	if err != nil || streamed || rec2.Object != rec.Object {
		t.Errorf("second read: streamed %v, %v, object %s; want the cached record", streamed, err, rec2.Object.Short())
	}
	if starts != 1 || rs.f.calls.Load() != 1 {
		t.Errorf("start called %d times, %d fetches; want 1 and 1", starts, rs.f.calls.Load())
	}
}

// TestStoreOptionsGovernCreatedAndUploaded: the freeze and the limits of
// created IDs come from the store's options.
func TestStoreOptionsGovernCreatedAndUploaded(t *testing.T) {
	for _, freeze := range []bool{false, true} {
		t.Run(fmt.Sprintf("freeze=%v", freeze), func(t *testing.T) {
			now := resolveEpoch
			s, err := Open(Options{Create: true, Dir: t.TempDir(), Logger: quietLog(), Now: func() time.Time { return now },
				FreezeUnauthenticated: freeze, UnusedExpires: time.Hour, MaxPendingPerUser: 2, Thumbnails: ThumbnailOptions{Disabled: true}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for i := range 2 {
				rec, err := s.Create(CreateInfo{MXC: mustMXC("ours.test", fmt.Sprint("c", i)), Uploader: "@u:ours.test"})
				if err != nil {
					t.Fatal(err)
				}
				if rec.Expires != now.Add(time.Hour).UnixMilli() || rec.RequiresAuth != freeze {
					t.Errorf("created: expires %d (want %d), RequiresAuth %v (want %v)", rec.Expires, now.Add(time.Hour).UnixMilli(), rec.RequiresAuth, freeze)
				}
			}
			if _, err := s.Create(CreateInfo{MXC: mustMXC("ours.test", "c3"), Uploader: "@u:ours.test"}); !errors.Is(err, ErrPendingLimit) {
				t.Errorf("third created ID: %v, want ErrPendingLimit", err)
			}
			if _, err := s.Create(CreateInfo{MXC: mustMXC("ours.test", "o1"), Uploader: "@other:ours.test"}); err != nil {
				t.Errorf("another user's created ID: %v", err)
			}
			rec, err := s.Upload(context.Background(), UploadInfo{MXC: mustMXC("ours.test", "u"), Size: 1}, bytes.NewReader([]byte("x")))
			if err != nil || rec.RequiresAuth != freeze {
				t.Errorf("upload: RequiresAuth %v, %v; want %v", rec.RequiresAuth, err, freeze)
			}
			filled, err := s.Fill(context.Background(), UploadInfo{MXC: mustMXC("ours.test", "c0"), Size: 1}, "@u:ours.test", bytes.NewReader([]byte("y")))
			if err != nil || filled.RequiresAuth != freeze {
				t.Errorf("filled: RequiresAuth %v, %v; want %v", filled.RequiresAuth, err, freeze)
			}
		})
	}
}

// has reports whether a read is waiting for m.
func (w *waiters) has(m matrix.MXC) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.m[m] != nil
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
