package main

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"image"
	_ "image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/testkit"
)

// Several nodes on one store (issue 20), end to end: three `mxcas serve`
// processes, each with a data directory and configuration of its own, the
// chunks in one bucket (versitygw) and the index in one PostgreSQL
// database. Every node serves a.test, checking tokens with one whoami
// server; alice is a.test's admin.

// mnBound is a safety net for the whole scenario, not a speed check.
const mnBound = 3 * time.Minute

// mnNode is one node of the cluster.
type mnNode struct {
	name string
	cfg  string // configuration file
	data string // data directory
	srv  *server
	api  *e2eServer // the request helpers, pointed at srv
	// metrics is the base URL of its /metrics.
	metrics string
}

// mnCluster is the nodes and what they share.
type mnCluster struct {
	s3    *testkit.S3
	dsn   string
	nodes []*mnNode // A, B, C
}

// startCluster starts PostgreSQL, versitygw and three nodes, stopped when
// t ends.
func startCluster(t *testing.T, ctx context.Context) *mnCluster {
	t.Helper()
	pg := testkit.SharedPG(t, "mxcas")
	c := &mnCluster{s3: testkit.StartS3(t)}
	c.dsn = pg.DSN(pg.CreateDB(t, "multinode"))
	var s3cfg config.Config
	withS3(t, c.s3)(&s3cfg) // writes the credentials file
	who := newWhoami(t, map[string]string{aliceToken: "@alice:a.test", bobToken: "@bob:a.test"})
	for _, name := range []string{"A", "B", "C"} {
		data := filepath.Join(t.TempDir(), name)
		lines := []string{"",
			"[[homeserver]]", `name = "a.test"`, fmt.Sprintf("client_api = %q", who.srv.URL), `admins = ["@alice:a.test"]`, ""}
		lines = append(lines, s3Lines(c.s3, s3cfg.Storage.CredentialsFile)...)
		cfg := writeConfig(t, data, append(lines,
			`gc_interval = "0s"`, // gc runs when the test says
			"", "[index]", `backend = "postgres"`, fmt.Sprintf("dsn = %q", c.dsn),
			"", "[thumbnails]", "pregenerate = false", // thumbnails are made where they are asked for
			"", "[metrics]", `listen = "127.0.0.1:0"`)...)
		n := &mnNode{name: name, cfg: cfg, data: data, srv: startServer(t, ctx, cfg)}
		m := metricsAddrRE.FindStringSubmatch(n.srv.log.String())
		if m == nil {
			t.Fatalf("node %s: no metrics address in the log:\n%s", name, n.srv.log)
		}
		n.metrics = "http://" + m[1]
		n.api = &e2eServer{addr: n.srv.addr, base: "http://" + n.srv.addr, dataDir: data, log: n.srv.log,
			client: &http.Client{
				// A request with Expect: 100-continue sends its body only
				// once the handler reads it (see gatedBody).
				Transport:     &http.Transport{DisableCompression: true, ExpectContinueTimeout: e2eBound},
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
				Timeout:       e2eBound,
			}}
		if r := n.api.do(t, http.MethodGet, hostA, "/readyz", "", nil, nil); r.Status != http.StatusOK {
			t.Fatalf("node %s: /readyz %d %q, want 200", name, r.Status, r.Body)
		}
		c.nodes = append(c.nodes, n)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.nodes {
				t.Logf("node %s log:\n%s", n.name, n.srv.log)
			}
		}
	})
	return c
}

// TestMultiNodeE2E runs the acceptance scenarios of issue 20 on one
// cluster; the last one kills a node.
func TestMultiNodeE2E(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), mnBound)
	defer cancel()
	c := startCluster(t, ctx)
	a, b, cc := c.nodes[0], c.nodes[1], c.nodes[2]

	t.Run("UploadDownloadThumbnail", func(t *testing.T) { testMNUploadElsewhere(t, a, b, cc) })
	t.Run("DedupAcrossNodes", func(t *testing.T) { testMNDedup(t, c) })
	t.Run("AsyncUploadRace", func(t *testing.T) { testMNAsyncRace(t, ctx, a, b, cc) })
	t.Run("QuarantineAndDeleteAtOnce", func(t *testing.T) { testMNQuarantine(t, a, b, cc) })
	t.Run("GCOnce", func(t *testing.T) { testMNGC(t, ctx, c) })
	t.Run("Kill9MidUpload", func(t *testing.T) { testMNKill(t, ctx, c) })
}

// testPNG is an image the thumbnailer takes.
func testPNG(t *testing.T) []byte {
	t.Helper()
	png, err := os.ReadFile("../../thumbgen/testdata/video-001.png")
	if err != nil {
		t.Fatal(err)
	}
	return png
}

// wantThumbnail asks n for a width x height crop of id and checks that the
// answer is a PNG of that size.
func wantThumbnail(t *testing.T, n *mnNode, id string, width, height int) {
	t.Helper()
	r := n.api.do(t, http.MethodGet, hostA, fmt.Sprintf("/_matrix/client/v1/media/thumbnail/a.test/%s?width=%d&height=%d&method=crop", id, width, height), bobToken, nil, nil)
	if !wantStatus(t, r, http.StatusOK) {
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "image/png" {
		t.Errorf("%s: Content-Type %q, want image/png", r.what, ct)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(r.Body))
	if err != nil || format != "png" || cfg.Width != width || cfg.Height != height {
		t.Errorf("%s: %s %dx%d (%v), want a %dx%d PNG", r.what, format, cfg.Width, cfg.Height, err, width, height)
	}
}

// Upload on A, download on B, thumbnail on C.
func testMNUploadElsewhere(t *testing.T, a, b, c *mnNode) {
	body := content(30, 2<<20)
	id := a.api.upload(t, hostA, aliceToken, "blob.bin", "application/octet-stream", body)
	r := b.api.download(t, hostA, hostA, id, bobToken)
	wantBytes(t, r, body)
	if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("%s: Content-Type %q, want application/octet-stream", r.what, ct)
	}

	png := testPNG(t)
	pic := a.api.upload(t, hostA, aliceToken, "pic.png", "image/png", png)
	wantBytes(t, b.api.download(t, hostA, hostA, pic, bobToken), png)
	wantThumbnail(t, c, pic, 32, 32)
	wantThumbnail(t, b, pic, 32, 32)
	// Made once, by C; B found it in the shared index.
	for n, want := range map[*mnNode]float64{b: 0, c: 1} {
		if v, _ := metricValue(scrape(t, n.metrics), "mxcas_thumbnails_made_total"); v != want {
			t.Errorf("node %s made %v thumbnails, want %v", n.name, v, want)
		}
	}
}

// Eight identical uploads spread over the nodes store each chunk once.
func testMNDedup(t *testing.T, c *mnCluster) {
	body := content(31, 3<<20)
	want := s3Chunks(t, body)
	if len(want) < 2 {
		t.Fatalf("test data: %d chunks, want several", len(want))
	}
	before := map[string]bool{}
	for _, k := range c.s3.Objects() {
		before[k] = true
	}
	ids := make([]string, 8)
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			api := c.nodes[i%3].api
			req, err := api.request(context.Background(), http.MethodPost, hostA, "/_matrix/media/v3/upload", aliceToken, bytes.NewReader(body))
			if err != nil {
				errs[i] = err
				return
			}
			r, err := api.roundTrip(req)
			switch {
			case err != nil:
				errs[i] = err
			case r.Status != http.StatusOK:
				errs[i] = fmt.Errorf("node %s: %s: %d %s", c.nodes[i%3].name, r.what, r.Status, short(r.Body))
			default:
				ids[i] = contentURIIDOf(r.Body)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	added := map[string]bool{}
	for _, k := range c.s3.Objects() {
		if !before[k] {
			added[k] = true
		}
	}
	if len(added) != len(want) {
		t.Errorf("8 identical uploads on 3 nodes added %d objects to the bucket, want its %d distinct chunks once each", len(added), len(want))
	}
	for k := range want {
		if !added[k] {
			t.Errorf("chunk %s of the upload was not added to the bucket", k)
		}
	}
	for i, id := range ids {
		if !mediaIDRE.MatchString(id) {
			t.Fatalf("upload %d: media ID %q", i, id)
		}
		wantBytes(t, c.nodes[(i+1)%3].api.download(t, hostA, hostA, id, bobToken), body)
	}
}

// contentURIIDOf is contentURIID for a goroutine: "" when the body holds no
// mxc://a.test/ URI.
func contentURIIDOf(body []byte) string {
	m := regexp.MustCompile(`"mxc://a\.test/([A-Za-z0-9_-]+)"`).FindSubmatch(body)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// gatedBody is a request body whose first Read says so (started) and then
// waits for release.
type gatedBody struct {
	started chan struct{}
	release <-chan struct{}
	once    sync.Once
	r       io.Reader
}

func (g *gatedBody) Read(p []byte) (int, error) {
	g.once.Do(func() {
		close(g.started)
		<-g.release
	})
	return g.r.Read(p)
}

// The same created ID PUT on two nodes at once: one 200, one 409; a
// download waiting on a third node wakes when another fills its ID.
func testMNAsyncRace(t *testing.T, ctx context.Context, a, b, c *mnNode) {
	r := a.api.do(t, http.MethodPost, hostA, "/_matrix/media/v1/create", aliceToken, nil, nil)
	if !wantStatus(t, r, http.StatusOK) {
		t.FailNow()
	}
	id := contentURIID(t, r, hostA)
	path := "/_matrix/media/v3/upload/a.test/" + id

	// With Expect: 100-continue a client sends the body only when the
	// handler starts reading it, after its checks (known ID, creator, no
	// content yet): both PUTs are past them before either has a byte.
	release := make(chan struct{})
	type answer struct {
		node *mnNode
		body []byte
		r    *e2eResp
		err  error
	}
	answers := make(chan answer, 2)
	var started []chan struct{}
	for i, n := range []*mnNode{b, c} {
		body := content(uint64(40+i), 1<<20)
		g := &gatedBody{started: make(chan struct{}), release: release, r: bytes.NewReader(body)}
		started = append(started, g.started)
		req, err := n.api.request(context.Background(), http.MethodPut, hostA, path, aliceToken, g)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = int64(len(body))
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Expect", "100-continue")
		go func() {
			r, err := n.api.roundTrip(req)
			answers <- answer{n, body, r, err}
		}()
	}
	var got []answer
	for _, s := range started {
		select {
		case <-s:
		case ans := <-answers:
			got = append(got, ans)
			t.Errorf("node %s answered the PUT before the other node read its body", ans.node.name)
		}
	}
	close(release)
	for len(got) < 2 {
		got = append(got, <-answers)
	}
	var winner *answer
	for i, ans := range got {
		if ans.err != nil {
			t.Fatalf("node %s: %v", ans.node.name, ans.err)
		}
		switch ans.r.Status {
		case http.StatusOK:
			if winner != nil {
				t.Errorf("both PUTs of %s succeeded", id)
			}
			winner = &got[i]
		default:
			wantError(t, ans.r, http.StatusConflict, "M_CANNOT_OVERWRITE_MEDIA")
		}
	}
	if winner == nil {
		t.Fatalf("no PUT of %s succeeded", id)
	}
	wantBytes(t, a.api.download(t, hostA, hostA, id, bobToken), winner.body)

	// A download on C of a created, empty ID waits until A fills it.
	r = a.api.do(t, http.MethodPost, hostA, "/_matrix/media/v1/create", aliceToken, nil, nil)
	if !wantStatus(t, r, http.StatusOK) {
		t.FailNow()
	}
	late := contentURIID(t, r, hostA)
	wantError(t, c.api.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/download/a.test/"+late+"?timeout_ms=0", bobToken, nil, nil),
		http.StatusGatewayTimeout, "M_NOT_YET_UPLOADED")
	waited := make(chan *e2eResp, 1)
	go func() {
		req, err := c.api.request(context.Background(), http.MethodGet, hostA, "/_matrix/client/v1/media/download/a.test/"+late+"?timeout_ms=60000", bobToken, nil)
		if err == nil {
			var r *e2eResp
			if r, err = c.api.roundTrip(req); err == nil {
				waited <- r
				return
			}
		}
		waited <- &e2eResp{what: err.Error()}
	}()
	waitWaiting(t, ctx, c, 1)
	body := content(42, 500_000)
	wantStatus(t, a.api.do(t, http.MethodPut, hostA, "/_matrix/media/v3/upload/a.test/"+late, aliceToken, body, nil), http.StatusOK)
	wantBytes(t, <-waited, body)
	waitWaiting(t, ctx, c, 0)
}

// waitWaiting waits until n has want downloads waiting for content (its
// mxcas_downloads_waiting gauge), failing at ctx's end.
func waitWaiting(t *testing.T, ctx context.Context, n *mnNode, want float64) {
	t.Helper()
	waitFor(t, ctx, fmt.Sprintf("%v downloads waiting on node %s", want, n.name), func() bool {
		v, _ := metricValue(scrape(t, n.metrics), "mxcas_downloads_waiting")
		return v == want
	})
}

// A quarantine or a deletion on B holds on A and C at their next request.
func testMNQuarantine(t *testing.T, a, b, c *mnNode) {
	png := testPNG(t)
	id := a.api.upload(t, hostA, aliceToken, "q.png", "image/png", png)
	gone := a.api.upload(t, hostA, bobToken, "", "application/octet-stream", content(50, 300_000))
	for _, n := range []*mnNode{a, c} {
		wantBytes(t, n.api.download(t, hostA, hostA, id, bobToken), png)
		wantThumbnail(t, n, id, 32, 32)
		wantStatus(t, n.api.download(t, hostA, hostA, gone, bobToken), http.StatusOK)
	}

	wantStatus(t, b.api.do(t, http.MethodPost, hostA, "/_synapse/admin/v1/media/quarantine/a.test/"+id, aliceToken, []byte("{}"), nil), http.StatusOK)
	for _, n := range []*mnNode{a, c} {
		wantError(t, n.api.download(t, hostA, hostA, id, bobToken), http.StatusNotFound, "M_NOT_FOUND")
		r := n.api.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/thumbnail/a.test/"+id+"?width=32&height=32&method=crop", bobToken, nil, nil)
		wantError(t, r, http.StatusNotFound, "M_NOT_FOUND")
	}

	wantStatus(t, b.api.do(t, http.MethodDelete, hostA, "/_synapse/admin/v1/media/a.test/"+gone, aliceToken, nil, nil), http.StatusOK)
	for _, n := range []*mnNode{a, c} {
		wantError(t, n.api.download(t, hostA, hostA, gone, bobToken), http.StatusNotFound, "M_NOT_FOUND")
	}
}

// gcOn runs `mxcas gc` with the configurations of nodes at once and returns
// their outputs; each must exit 0.
func gcOn(t *testing.T, ctx context.Context, nodes ...*mnNode) []string {
	t.Helper()
	bin := mxcasBinary(t)
	outs := make([]string, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			code, out, stderr, err := execBinary(ctx, bin, "gc", "-config", n.cfg)
			if err == nil && code != 0 {
				err = fmt.Errorf("exit %d", code)
			}
			outs[i] = out
			if err != nil {
				errs[i] = fmt.Errorf("mxcas gc on node %s: %v\n%s%s", n.name, err, out, stderr)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return outs
}

// gcLockID is the advisory lock of GC on a shared index: FNV-1a of
// "mxcas-gc", as index/pgkv's lockID makes it.
func gcLockID() int64 {
	h := fnv.New64a()
	h.Write([]byte("mxcas-gc"))
	return int64(h.Sum64())
}

var gcRemovedRE = regexp.MustCompile(`removed (\d+) objects and (\d+) chunks`)

const gcBusy = "another node's gc holds the lock"

// GC on two nodes while another holder has the lock: both say so and exit
// 0; once it is free, GC runs and collects.
func testMNGC(t *testing.T, ctx context.Context, c *mnCluster) {
	a, b := c.nodes[0], c.nodes[1]
	body := content(60, 1<<20)
	id := a.api.upload(t, hostA, aliceToken, "", "application/octet-stream", body)
	own := s3Chunks(t, body)
	wantStatus(t, b.api.do(t, http.MethodDelete, hostA, "/_synapse/admin/v1/media/a.test/"+id, aliceToken, nil, nil), http.StatusOK)
	old := time.Now().Add(-2 * time.Hour) // past gc_grace: LastModified is the file's mtime
	for _, k := range c.s3.Objects() {
		if err := os.Chtimes(c.s3.ObjectPath(k), old, old); err != nil {
			t.Fatal(err)
		}
	}

	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", gcLockID()).Scan(&ok); err != nil || !ok {
		t.Fatalf("take the gc lock: %v, %v", ok, err)
	}
	for i, out := range gcOn(t, ctx, a, b) {
		if !strings.Contains(out, gcBusy) || gcRemovedRE.MatchString(out) {
			t.Errorf("mxcas gc on node %s while the lock is held: %q, want %q and nothing done", c.nodes[i].name, out, gcBusy)
		}
	}
	for k := range own {
		if _, err := os.Stat(c.s3.ObjectPath(k)); err != nil {
			t.Errorf("chunk %s is gone from the bucket while GC was locked out: %v", k, err)
		}
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", gcLockID()); err != nil {
		t.Fatal(err)
	}

	out := gcOn(t, ctx, b)[0]
	m := gcRemovedRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("mxcas gc on node B: %q, want a run", out)
	}
	if n, _ := strconv.Atoi(m[2]); n < len(own) {
		t.Errorf("mxcas gc on node B removed %s chunks, want at least the deleted media's %d", m[2], len(own))
	}
	for k := range own {
		if _, err := os.Stat(c.s3.ObjectPath(k)); err == nil {
			t.Errorf("chunk %s of the deleted media is still in the bucket", k)
		}
	}
}

// Kill -9 a node mid-upload: the others serve what was stored (through any
// node) and take new uploads; fsck through a survivor finds the store
// healthy.
func testMNKill(t *testing.T, ctx context.Context, c *mnCluster) {
	a, b, victim := c.nodes[0], c.nodes[1], c.nodes[2]
	before := content(70, 2<<20)
	id := victim.api.upload(t, hostA, aliceToken, "", "application/octet-stream", before)

	pr, pw := io.Pipe()
	req, err := victim.api.request(context.Background(), http.MethodPost, hostA, "/_matrix/media/v3/upload", aliceToken, pr)
	if err != nil {
		t.Fatal(err)
	}
	cut := make(chan error, 1)
	go func() {
		_, err := victim.api.roundTrip(req)
		cut <- err
	}()
	body := content(71, 4<<20)
	if _, err := pw.Write(body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}
	if err := victim.srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-victim.srv.done
	victim.srv.cmd.Wait()
	pw.CloseWithError(io.ErrUnexpectedEOF)
	if err := <-cut; err == nil {
		t.Error("the upload to the killed node was answered")
	}

	for _, n := range []*mnNode{a, b} {
		wantBytes(t, n.api.download(t, hostA, hostA, id, bobToken), before)
	}
	for i, up := range [][2]*mnNode{{a, b}, {b, a}} {
		after := content(uint64(72+i), 1<<20)
		id := up[0].api.upload(t, hostA, aliceToken, "", "application/octet-stream", after)
		wantBytes(t, up[1].api.download(t, hostA, hostA, id, bobToken), after)
	}

	code, out, errOut := runBinary(t, ctx, "fsck", "-config", a.cfg)
	if code != 0 || !strings.Contains(out, "healthy") {
		t.Errorf("mxcas fsck on node A: exit %d, want 0 and healthy\n%s%s", code, out, errOut)
	}
}
