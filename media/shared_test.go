package media_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mxcas/mxcas/cas/s3store"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
	"github.com/mxcas/mxcas/thumbgen"
)

// sharedPair opens two stores (two nodes) on one PostgreSQL index and one
// bucket, each with a data directory of its own.
func sharedPair(t *testing.T) (a, b *media.Store) {
	t.Helper()
	return sharedPairWith(t, func(*media.Options) {})
}

// sharedPairWith is sharedPair with options of its own set by set.
func sharedPairWith(t *testing.T, set func(*media.Options)) (a, b *media.Store) {
	t.Helper()
	a, b, _ = sharedPairDB(t, set)
	return a, b
}

// sharedPairDB is sharedPairWith that also returns the database's name.
func sharedPairDB(t *testing.T, set func(*media.Options)) (a, b *media.Store, db string) {
	t.Helper()
	pg := testkit.SharedPG(t, "mxcas")
	db = pg.CreateDB(t, "media")
	dsn := pg.DSN(db)
	srv := testkit.StartS3(t)
	open := func(name string) *media.Store {
		o := media.Options{Dir: filepath.Join(t.TempDir(), name), Create: true,
			Chunks: sharedChunks(t, srv, "shared/"), ChunksAt: "s3 shared", IndexDSN: dsn,
			Thumbnails: noThumbs, Logger: quietLogger()}
		set(&o)
		return openStore(t, o)
	}
	return open("a"), open("b"), db
}

func TestSharedUploadReadElsewhere(t *testing.T) {
	a, b := sharedPair(t)
	data := randBytes(1, 300_000)
	upload(t, a, "one", "@u:example.org", data)
	checkContent(t, b, "one", data)
}

func TestSharedUploadRaceOneWins(t *testing.T) {
	a, b := sharedPair(t)
	for round := range 5 {
		id := "race" + string(rune('a'+round))
		errs := onEach([]*media.Store{a, b}, func(i int, s *media.Store) error {
			data := randBytes(uint64(10*round+i), 50_000)
			_, err := s.Upload(context.Background(), media.UploadInfo{MXC: mxc(id), Uploader: "@u:example.org",
				ContentType: "application/octet-stream", Size: int64(len(data))}, bytes.NewReader(data))
			return err
		})()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, media.ErrExists):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d uploads succeeded (%v), want 1", round, ok, errs)
		}
	}
}

func TestSharedFillRaceAndWake(t *testing.T) {
	a, b := sharedPair(t)
	rec, err := a.Create(media.CreateInfo{MXC: mxc("made"), Uploader: "@u:example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Create(media.CreateInfo{MXC: mxc("made"), Uploader: "@u:example.org"}); !errors.Is(err, media.ErrExists) {
		t.Fatalf("second Create on the other node: %v, want ErrExists", err)
	}
	// A download on b waits; a fill on a wakes it.
	got := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		_, err := b.Wait(ctx, rec.MXC)
		got <- err
	}()
	// Two fills at once, one on each node: one wins.
	data := randBytes(7, 100_000)
	errs := onEach([]*media.Store{a, b}, func(_ int, s *media.Store) error {
		_, err := s.Fill(context.Background(), media.UploadInfo{MXC: rec.MXC, ContentType: "application/octet-stream",
			Size: int64(len(data))}, "@u:example.org", bytes.NewReader(data))
		return err
	})()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("fills: %v, %v: want exactly one to succeed", errs[0], errs[1])
	}
	for _, err := range errs {
		if err != nil && !errors.Is(err, media.ErrExists) {
			t.Fatalf("losing fill: %v, want ErrExists", err)
		}
	}
	if err := <-got; err != nil {
		t.Fatalf("Wait on the other node: %v", err)
	}
	checkContent(t, a, "made", data)
	checkContent(t, b, "made", data)
}

func TestSharedQuarantineAtOnce(t *testing.T) {
	a, b := sharedPair(t)
	data := randBytes(3, 20_000)
	upload(t, a, "q1", "@u:example.org", data)
	upload(t, a, "q2", "@u:example.org", randBytes(4, 20_000))
	checkContent(t, a, "q1", data) // cached on a, if anything caches
	if err := b.Quarantine(mxc("q1"), "@admin:example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Resolve(context.Background(), mxc("q1"), media.ReadOptions{}); !errors.Is(err, media.ErrNotFound) {
		t.Fatalf("a resolves media quarantined on b: %v", err)
	}
	checkContent(t, a, "q2", randBytes(4, 20_000))
	if _, err := a.Resolve(context.Background(), mxc("q2"), media.ReadOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.QuarantineContent(mxc("q2"), server, "@admin:example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Resolve(context.Background(), mxc("q2"), media.ReadOptions{}); !errors.Is(err, media.ErrNotFound) {
		t.Fatalf("a resolves content quarantined on b: %v", err)
	}
}

func TestSharedGCOneAtATime(t *testing.T) {
	a, b := sharedPair(t)
	upload(t, a, "g", "@u:example.org", randBytes(5, 10_000))
	var other media.GCStats
	var otherErr error
	a.SetGCHook(func() { other, otherErr = b.GC(context.Background()) })
	st, err := a.GC(context.Background())
	if err != nil || st.Busy {
		t.Fatalf("first GC: %+v, %v", st, err)
	}
	if otherErr != nil || !other.Busy {
		t.Fatalf("GC on the other node while the first runs: %+v, %v; want Busy", other, otherErr)
	}
	if st, err := b.GC(context.Background()); err != nil || st.Busy {
		t.Fatalf("GC after: %+v, %v", st, err)
	}
}

func TestSharedPendingCapAcrossNodes(t *testing.T) {
	const limit = 3
	a, b := sharedPairWith(t, func(o *media.Options) { o.MaxPendingPerUser = limit })
	for round := range 3 {
		user := fmt.Sprintf("@u%d:example.org", round)
		var wg sync.WaitGroup
		var mu sync.Mutex
		made := 0
		for i := range 8 {
			s := []*media.Store{a, b}[i%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Create(media.CreateInfo{MXC: mxc(fmt.Sprintf("p%d-%d", round, i)), Uploader: user})
				switch {
				case err == nil:
					mu.Lock()
					made++
					mu.Unlock()
				case !errors.Is(err, media.ErrPendingLimit):
					t.Errorf("Create: %v", err)
				}
			}()
		}
		wg.Wait()
		if made != limit {
			t.Fatalf("round %d: %d IDs created across two nodes, want the limit %d", round, made, limit)
		}
	}
}

func TestSharedThumbnailMadeOnce(t *testing.T) {
	a, b := sharedPair(t)
	info := media.UploadInfo{MXC: mxc("img"), ContentType: "image/png", Uploader: "@u:example.org"}
	data := pngOf(t, 640, 480)
	info.Size = int64(len(data))
	rec, err := a.Upload(context.Background(), info, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req := media.ThumbnailRequest{Width: 64, Height: 64, Method: thumbgen.Scale}
	got := make([]media.Thumbnail, 2)
	errs := onEach([]*media.Store{a, b}, func(i int, s *media.Store) error {
		r, tr, err := s.Thumbnail(context.Background(), rec, req)
		if err == nil {
			r.Close()
			got[i] = tr
		}
		return err
	})()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Thumbnail on node %d: %v", i, err)
		}
	}
	if got[0].Object != got[1].Object || got[0].Object.IsZero() {
		t.Fatalf("the nodes serve different thumbnails: %v, %v", got[0].Object, got[1].Object)
	}
	if made := a.Stats().ThumbnailsMade + b.Stats().ThumbnailsMade; made != 1 {
		t.Fatalf("%d thumbnails made by two nodes asked at once, want 1", made)
	}
}

func TestSharedStatsCountOtherNodes(t *testing.T) {
	a, b := sharedPair(t)
	upload(t, a, "s1", "@u:example.org", randBytes(8, 1000))
	upload(t, b, "s2", "@u:example.org", randBytes(9, 2000))
	for i, s := range []*media.Store{a, b} {
		if st := s.Stats(); st.Media != 2 || st.LogicalBytes != 3000 {
			t.Fatalf("node %d counts %d media, %d bytes; want 2, 3000", i, st.Media, st.LogicalBytes)
		}
	}
}

// TestSharedDatabaseDown: with the database refusing connections, uploads
// and downloads fail with ErrIndexUnavailable (503), and work again once it
// is back.
func TestSharedDatabaseDown(t *testing.T) {
	a, _, db := sharedPairDB(t, func(*media.Options) {})
	data := randBytes(11, 5000)
	upload(t, a, "before", "@u:example.org", data)
	pg := testkit.SharedPG(t, "mxcas")
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	exec := func(sql string) {
		t.Helper()
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("ALTER DATABASE " + db + " ALLOW_CONNECTIONS false")
	exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + db + "' AND pid <> pg_backend_pid()")
	if _, _, err := a.Open(mxc("before")); !errors.Is(err, media.ErrIndexUnavailable) {
		t.Fatalf("download with the database down: %v, want ErrIndexUnavailable", err)
	}
	_, err = a.Upload(ctx, media.UploadInfo{MXC: mxc("during"), Uploader: "@u:example.org", Size: 10}, bytes.NewReader(make([]byte, 10)))
	if !errors.Is(err, media.ErrIndexUnavailable) {
		t.Fatalf("upload with the database down: %v, want ErrIndexUnavailable", err)
	}
	exec("ALTER DATABASE " + db + " ALLOW_CONNECTIONS true")
	checkContent(t, a, "before", data)
	upload(t, a, "after", "@u:example.org", data)
}

// sharedChunks is bucketChunks for a node of a shared store: other nodes'
// GC deletes chunks.
func sharedChunks(t testing.TB, srv *testkit.S3, prefix string) *s3store.Store {
	t.Helper()
	cs, err := s3store.Open(s3store.Options{Endpoint: srv.Endpoint, Bucket: srv.Bucket, Prefix: prefix,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Shared: true})
	if err != nil {
		t.Fatalf("s3store.Open: %v", err)
	}
	return cs
}

// TestSharedWriteBacksDoNotUndo: changes that read a record and write it
// back, made on two nodes at once, are both kept (or one refused): a
// deletion on two nodes takes the usage off once, and a quarantine and a
// protection made at once are both in the record.
func TestSharedWriteBacksDoNotUndo(t *testing.T) {
	a, b := sharedPair(t)
	const n = 12
	for i := range n {
		upload(t, a, fmt.Sprintf("w%d", i), "@u:example.org", randBytes(uint64(100+i), 1000))
	}
	var wg sync.WaitGroup
	for i := range n {
		m := mxc(fmt.Sprintf("w%d", i))
		if i%2 == 0 {
			errs := onEach([]*media.Store{a, b}, func(_ int, s *media.Store) error { return s.Delete(m) })()
			if (errs[0] == nil) == (errs[1] == nil) {
				t.Fatalf("%s deleted on two nodes at once: %v, %v; want one success", m, errs[0], errs[1])
			}
			continue
		}
		wg.Add(2)
		go func() { defer wg.Done(); _ = a.Quarantine(m, "@admin:example.org") }()
		go func() { defer wg.Done(); _ = b.SetProtected(m, true) }()
		wg.Wait()
		rec, err := b.Stat(m)
		if err != nil {
			t.Fatal(err)
		}
		if !rec.Quarantined || !rec.Protected {
			t.Fatalf("%s: quarantined %v, protected %v: a change made on one node undid the other's", m, rec.Quarantined, rec.Protected)
		}
	}
	bytes, count, err := a.UsageCounters(server)
	if err != nil {
		t.Fatal(err)
	}
	if count != n/2 || bytes != n/2*1000 {
		t.Fatalf("usage after deleting half on two nodes at once: %d media, %d bytes; want %d, %d", count, bytes, n/2, n/2*1000)
	}
}

// TestSharedRemoteFetchOnce: two nodes fetching the same remote media at
// once both serve it, and the store records and counts it once.
func TestSharedRemoteFetchOnce(t *testing.T) {
	content := bytes.Repeat([]byte("remote media "), 20000)
	m := mustMXC("far.test", "abc")
	f := &fetcher{files: map[string][]byte{m.String(): content}, release: make(chan struct{})}
	a, b := sharedPairWith(t, func(o *media.Options) {
		o.Remote = media.RemoteOptions{Fetcher: f, MaxBytes: 1 << 20}
		o.Local = func(s string) bool { return s == server }
	})
	wait := onEach([]*media.Store{a, b}, func(_ int, s *media.Store) error {
		_, err := s.FetchRemote(context.Background(), m)
		return err
	})
	for f.calls.Load() < 2 { // both fetches under way before either is answered
		runtime.Gosched()
	}
	close(f.release)
	for i, err := range wait() {
		if err != nil {
			t.Fatalf("fetch on node %d: %v", i, err)
		}
	}
	for _, s := range []*media.Store{a, b} {
		r, _, err := s.Open(m)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		r.Close()
		if !bytes.Equal(got, content) {
			t.Fatalf("remote media served wrong: %d bytes", len(got))
		}
	}
	if _, count, err := a.UsageCounters("far.test"); err != nil || count != 1 {
		t.Fatalf("remote media counted %d times (%v), want once", count, err)
	}
}

// gatedBody reads data, then says so on reached and waits for gate before
// its EOF.
type gatedBody struct {
	r       io.Reader
	reached chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func (g *gatedBody) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err == io.EOF {
		g.once.Do(func() { close(g.reached); <-g.gate })
	}
	return n, err
}

// TestSharedUploadAcrossGCKeepsContent: an upload on node B finds the
// chunks of its content stored (orphans of a deleted media) before node A's
// GC removes them, and commits after that GC has ended. The upload must not
// succeed with content whose chunks are gone: it fails (and may be tried
// again), or what it recorded reads back.
func TestSharedUploadAcrossGCKeepsContent(t *testing.T) {
	later := func() time.Time { return time.Now().Add(2 * time.Hour) } // every chunk past the grace
	a, b := sharedPairWith(t, func(o *media.Options) { o.Chunker = smallParams; o.Now = later })
	data := randBytes(31, 1<<20)
	upload(t, a, "old", "@u:example.org", data)
	if err := a.Delete(mxc("old")); err != nil {
		t.Fatal(err)
	}
	body := &gatedBody{r: bytes.NewReader(data), reached: make(chan struct{}), gate: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		info := media.UploadInfo{MXC: mxc("new"), ContentType: "application/octet-stream",
			Uploader: "@u:example.org", Size: int64(len(data))}
		_, err := b.Upload(context.Background(), info, body)
		errc <- err
	}()
	<-body.reached // B has put (found stored) every chunk but the last
	st, err := a.GC(context.Background())
	if err != nil || st.ChunksDeleted == 0 {
		t.Fatalf("GC on node A: %+v, %v; want the orphaned chunks deleted", st, err)
	}
	close(body.gate)
	if err := <-errc; err != nil {
		if !errors.Is(err, media.ErrStorageUnavailable) {
			t.Fatalf("upload across the GC: %v, want success or ErrStorageUnavailable", err)
		}
		return
	}
	checkContent(t, a, "new", data)
}

// onEach runs fn on every node at once (i is the node's index) and
// returns a wait for their errors, in the nodes' order.
func onEach(nodes []*media.Store, fn func(i int, s *media.Store) error) (wait func() []error) {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, s := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i, s)
		}()
	}
	return func() []error {
		wg.Wait()
		return errs
	}
}
