package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/media"
)

// Replication end to end (issue 17): real mxcas processes, each with its
// own data directory and configuration, a primary and standbys following
// it over loopback.

// replBound is a safety net for a replication scenario, not a speed check.
const replBound = 3 * time.Minute

// replNode is one mxcas process of a replication test, restartable on the
// same configuration.
type replNode struct {
	name string
	cfg  string // configuration file
	data string // data directory
	*server
}

// replSecret writes a shared secret file (mode 0600) and returns its path.
func replSecret(t *testing.T, secret string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "repl.secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// freeAddr returns a loopback address with a port free right now: a
// primary's replication listener must keep its address across restarts.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newReplNode writes the configuration of a node serving a.test (alice is
// its admin, whom rate limits exempt; the tests read and write as her)
// with the given [replication] lines.
func newReplNode(t *testing.T, name string, replLines ...string) *replNode {
	t.Helper()
	data := filepath.Join(t.TempDir(), name)
	lines := append([]string{"",
		"[[homeserver]]", `name = "a.test"`, `admins = ["@alice:a.test"]`,
		`static_tokens = { "alice-token" = "@alice:a.test", "bob-token" = "@bob:a.test" }`,
		"", "[replication]"}, replLines...)
	return &replNode{name: name, cfg: writeConfig(t, data, lines...), data: data}
}

// start runs the node's server and waits until it listens.
func (n *replNode) start(t *testing.T, ctx context.Context) {
	t.Helper()
	n.server = startServer(t, ctx, n.cfg)
	t.Cleanup(func() {
		if t.Failed() && n.server != nil {
			t.Logf("%s log:\n%s", n.name, n.log)
		}
	})
}

// kill9 kills the node's process with SIGKILL and reaps it.
func (n *replNode) kill9(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-n.done
	n.cmd.Wait()
}

// replStatus is `mxcas replication status`'s JSON, primary or standby.
type replStatus struct {
	Role          string `json:"role"`
	Head          uint64 `json:"head"`
	Applied       uint64 `json:"applied"`
	PrimaryHead   uint64 `json:"primary_head"`
	BytesFetched  int64  `json:"bytes_fetched"`
	ChunksFetched int64  `json:"chunks_fetched"`
	Err           string `json:"error"`
	Following     bool   `json:"following"`
}

// status asks the running node for its replication status.
func (n *replNode) status(t *testing.T, ctx context.Context) replStatus {
	t.Helper()
	var st replStatus
	if err := callAdmin(ctx, n.data, "replication/status", nil, &st); err != nil {
		t.Fatalf("%s: replication status: %v", n.name, err)
	}
	return st
}

// waitFor polls cond until it holds, failing the test at ctx's end.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// converged waits until standby has applied every change the primary has
// (its head, read again at each poll) and returns the standby's status.
func converged(t *testing.T, ctx context.Context, primary, standby *replNode) replStatus {
	t.Helper()
	var st replStatus
	waitFor(t, ctx, standby.name+" to catch up with "+primary.name, func() bool {
		head := primary.status(t, ctx).Head
		st = standby.status(t, ctx)
		if st.Err != "" && !st.Following {
			t.Fatalf("%s stopped following: %s", standby.name, st.Err)
		}
		return st.Applied == head && head > 0
	})
	return st
}

// replMedia is one upload: what went up, and how.
type replMedia struct {
	id, name, ctype string
	body            []byte
}

// call sends a request to the node's media API as Host a.test.
func (n *replNode) call(t *testing.T, method, path, token string, body []byte, ctype string) (*http.Response, []byte) {
	t.Helper()
	resp, b, err := n.tryCall(method, path, token, body, ctype)
	if err != nil {
		t.Fatalf("%s: %s %s: %v", n.name, method, path, err)
	}
	return resp, b
}

func (n *replNode) tryCall(method, path, token string, body []byte, ctype string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, "http://"+n.addr+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Host = "a.test"
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// tryUpload uploads m as alice; its media ID once acknowledged (200).
func (n *replNode) tryUpload(m replMedia) (string, error) {
	resp, b, err := n.tryCall("POST", "/_matrix/media/v3/upload?filename="+url.QueryEscape(m.name), "alice-token", m.body, m.ctype)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("upload: %s %s", resp.Status, b)
	}
	var v struct {
		ContentURI string `json:"content_uri"`
	}
	json.Unmarshal(b, &v)
	id, ok := strings.CutPrefix(v.ContentURI, "mxc://a.test/")
	if !ok {
		return "", fmt.Errorf("upload: content_uri %q", v.ContentURI)
	}
	return id, nil
}

// uploadAll uploads every media with 8 clients and fills in their IDs.
func (n *replNode) uploadAll(t *testing.T, ms []replMedia) {
	t.Helper()
	var wg sync.WaitGroup
	next := make(chan int)
	errs := make(chan error, len(ms))
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				id, err := n.tryUpload(ms[i])
				if err != nil {
					errs <- err
				}
				ms[i].id = id
			}
		}()
	}
	for i := range ms {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// pngImage is a w×h PNG in one colour.
func pngImage(t *testing.T, w, h int, c color.RGBA) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{c.R, c.G ^ byte(x), c.B ^ byte(y), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// replCorpus is 300 uploads: 200 distinct bodies (every tenth 300 KiB, so
// several chunks; five PNG images, which get thumbnails; the rest 1 to 20
// KiB) and 100 more that repeat some of them under other names.
func replCorpus(t *testing.T) []replMedia {
	t.Helper()
	var ms []replMedia
	for i := range 200 {
		m := replMedia{name: fmt.Sprintf("file-%d.bin", i), ctype: "application/octet-stream"}
		switch {
		case i < 5:
			m.name, m.ctype = fmt.Sprintf("photo %d.png", i), "image/png"
			m.body = pngImage(t, 200+i*10, 150, color.RGBA{byte(40 * i), 90, 200, 255})
		case i%10 == 0:
			m.body = content(uint64(1000+i), 300<<10)
		case i%3 == 0:
			m.name, m.ctype = fmt.Sprintf("notes-ü-%d.txt", i), "text/plain; charset=utf-8"
			m.body = content(uint64(1000+i), 1+i*100)
		default:
			m.body = content(uint64(1000+i), 1+i*100)
		}
		ms = append(ms, m)
	}
	for i := range 100 {
		src := ms[(i*7)%200]
		ms = append(ms, replMedia{name: "copy-" + src.name, ctype: src.ctype, body: src.body})
	}
	return ms
}

// casBytes is the total size of the chunk files in a data directory.
func casBytes(t *testing.T, data string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(filepath.Join(data, "cas"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		n += fi.Size()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// flipChunks flips a byte in the first n chunk files of a data directory
// and returns their paths.
func flipChunks(t *testing.T, data string, n int) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(filepath.Join(data, "cas"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && len(files) < n {
			files = append(files, path)
		}
		return err
	})
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || len(b) == 0 {
			t.Fatalf("chunk %s: %d bytes, %v", f, len(b), err)
		}
		b[len(b)/2] ^= 0x20
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// sameMedia checks that every media reads the same from both nodes: bytes
// and the headers that describe them.
func sameMedia(t *testing.T, primary, standby *replNode, ms []replMedia) {
	t.Helper()
	for _, m := range ms {
		path := "/_matrix/client/v1/media/download/a.test/" + m.id
		pr, pb := primary.call(t, "GET", path, "alice-token", nil, "")
		sr, sb := standby.call(t, "GET", path, "alice-token", nil, "")
		if pr.StatusCode != http.StatusOK || sr.StatusCode != http.StatusOK || !bytes.Equal(pb, m.body) || !bytes.Equal(sb, m.body) {
			t.Fatalf("%s (%s): primary %s, %d bytes; standby %s, %d bytes; want 200 and the %d bytes uploaded, on both",
				m.id, m.name, pr.Status, len(pb), sr.Status, len(sb), len(m.body))
		}
		for _, h := range []string{"Content-Type", "Content-Disposition", "ETag", "Content-Length"} {
			if p, s := pr.Header.Get(h), sr.Header.Get(h); p != s || p == "" {
				t.Errorf("%s: %s: primary %q, standby %q", m.id, h, p, s)
			}
		}
	}
}

// gateProxy forwards connections to target, and lets the test cap the
// bytes that flow back (target to client): a standby behind it stalls in
// the middle of its catch-up, where the test can kill it.
type gateProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cond   *sync.Cond
	budget int64 // bytes target -> client still allowed; -1: no cap
	closed bool
	conns  []net.Conn
}

func newGateProxy(t *testing.T, target string, budget int64) *gateProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &gateProxy{ln: ln, target: target, budget: budget}
	p.cond = sync.NewCond(&p.mu)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *gateProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() { io.Copy(u, c); u.Close() }()
		go func() { p.copyBack(c, u); c.Close() }()
	}
}

// copyBack copies target's answers to the client within the budget.
func (p *gateProxy) copyBack(c, u net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := u.Read(buf)
		for b := buf[:n]; len(b) > 0; {
			p.mu.Lock()
			for p.budget == 0 && !p.closed {
				p.cond.Wait()
			}
			if p.closed {
				p.mu.Unlock()
				return
			}
			k := int64(len(b))
			if p.budget >= 0 {
				k = min(k, p.budget)
				p.budget -= k
			}
			p.mu.Unlock()
			if _, err := c.Write(b[:k]); err != nil {
				return
			}
			b = b[k:]
		}
		if err != nil {
			return
		}
	}
}

// exhausted reports whether the budget is spent: the client is stalled.
func (p *gateProxy) exhausted() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.budget == 0
}

// grant lets n more bytes through.
func (p *gateProxy) grant(n int64) {
	p.mu.Lock()
	p.budget += n
	p.cond.Broadcast()
	p.mu.Unlock()
}

// open lifts the cap.
func (p *gateProxy) open() {
	p.mu.Lock()
	p.budget = -1
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (p *gateProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for _, c := range p.conns {
		c.Close()
	}
	p.cond.Broadcast()
	p.mu.Unlock()
}

// signedGet is a GET of the primary's replication listener signed with
// secret (replication/doc.go), or unsigned when secret is nil.
func signedGet(t *testing.T, base, path string, secret []byte) int {
	t.Helper()
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if secret != nil {
		ts := time.Now().Unix()
		m := hmac.New(sha256.New, secret)
		empty := sha256.Sum256(nil)
		fmt.Fprintf(m, "MXCAS-HMAC-v1\n%s\n%s\n%d\n%s", "GET", path, ts, hex.EncodeToString(empty[:]))
		req.Header.Set("Authorization", fmt.Sprintf("MXCAS-HMAC ts=%d,mac=%s", ts, hex.EncodeToString(m.Sum(nil))))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestReplication is issue 17's acceptance, on real processes: 300
// uploads (a third duplicates, some multi-chunk) on a primary; a standby
// killed with SIGKILL in the middle of its catch-up converges after a
// restart without fetching again a chunk it holds, serves every media byte
// for byte with the same headers, and thumbnails; a fresh standby fetches
// exactly the primary's unique chunk bytes; the primary killed with
// SIGKILL in the middle of a stream of uploads comes back and the standby
// ends with every acknowledged upload and nothing the primary lacks;
// deletion and quarantine follow; the standby refuses writes naming the
// primary; a wrong secret gets 401 and applies nothing; promotion makes
// the standby take uploads, its numbering continuing.
func TestReplication(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), replBound)
	defer cancel()
	const secretText = "correct horse battery staple 42"
	secret := replSecret(t, secretText)
	replAddr := freeAddr(t)
	replURL := "http://" + replAddr

	p := newReplNode(t, "primary", fmt.Sprintf("listen = %q", replAddr), fmt.Sprintf("secret_file = %q", secret))
	p.start(t, ctx)
	ms := replCorpus(t)
	p.uploadAll(t, ms)
	var logical int64
	for _, m := range ms {
		logical += int64(len(m.body))
	}

	// A standby behind a proxy that lets 256 KiB at a time through, until
	// it holds chunks (stored durably, a batch at a time): then it stalls
	// there, in the middle of its catch-up, and is killed.
	proxy := newGateProxy(t, replAddr, 256<<10)
	s := newReplNode(t, "standby", fmt.Sprintf("primary = %q", "http://"+proxy.ln.Addr().String()), fmt.Sprintf("secret_file = %q", secret))
	s.start(t, ctx)
	waitFor(t, ctx, "the standby to hold chunks and stall", func() bool {
		if !proxy.exhausted() {
			return false
		}
		if casBytes(t, s.data) == 0 {
			proxy.grant(256 << 10)
			return false
		}
		return true
	})
	if st, head := s.status(t, ctx), p.status(t, ctx).Head; st.Applied >= head {
		t.Fatalf("the standby caught up (%d of %d) behind a stalled proxy", st.Applied, head)
	}
	s.kill9(t)
	held := casBytes(t, s.data)
	proxy.open()
	s.start(t, ctx)
	st := converged(t, ctx, p, s)
	unique := casBytes(t, p.data)
	if st.BytesFetched+held != unique {
		t.Errorf("after the restart the standby fetched %d chunk bytes and held %d: %d, want the primary's %d unique bytes (none fetched twice)",
			st.BytesFetched, held, st.BytesFetched+held, unique)
	}
	t.Logf("killed mid catch-up holding %d chunk bytes; after the restart fetched %d in %d chunks; primary's unique bytes %d, uploaded %d",
		held, st.BytesFetched, st.ChunksFetched, unique, logical)
	sameMedia(t, p, s, ms)

	// Flipped bytes in standby chunks are repaired from the primary on
	// the next read.
	flipped := flipChunks(t, s.data, 3)
	sameMedia(t, p, s, ms)
	for _, f := range flipped {
		b, err := os.ReadFile(f)
		if h, perr := cas.ParseHash(filepath.Base(f)); err != nil || perr != nil || cas.Sum(b) != h {
			t.Errorf("chunk %s not repaired on the standby after a read (%v)", filepath.Base(f), err)
		}
	}
	for _, m := range ms[:5] {
		path := "/_matrix/client/v1/media/thumbnail/a.test/" + m.id + "?width=32&height=32&method=crop"
		pr, pb := p.call(t, "GET", path, "alice-token", nil, "")
		sr, sb := s.call(t, "GET", path, "alice-token", nil, "")
		if pr.StatusCode != http.StatusOK || sr.StatusCode != http.StatusOK || !bytes.Equal(pb, sb) || pr.Header.Get("Content-Type") != sr.Header.Get("Content-Type") {
			t.Errorf("thumbnail of %s: primary %s (%d bytes), standby %s (%d bytes); want 200 and the same image", m.id, pr.Status, len(pb), sr.Status, len(sb))
		}
	}

	// A fresh standby fetches the unique chunk bytes, not the logical ones.
	s2 := newReplNode(t, "standby2", fmt.Sprintf("primary = %q", replURL), fmt.Sprintf("secret_file = %q", secret))
	s2.start(t, ctx)
	st2 := converged(t, ctx, p, s2)
	if unique = casBytes(t, p.data); st2.BytesFetched != unique || unique >= logical {
		t.Errorf("a fresh standby fetched %d chunk bytes; want the primary's %d unique bytes (of %d uploaded)", st2.BytesFetched, unique, logical)
	}
	s2.stop(t)

	// The standby refuses writes, naming the primary.
	for _, w := range []struct{ method, path string }{
		{"POST", "/_matrix/media/v3/upload"},
		{"POST", "/_matrix/media/v1/create"},
		{"DELETE", "/_synapse/admin/v1/media/a.test/" + ms[10].id},
	} {
		resp, b := s.call(t, w.method, w.path, "alice-token", []byte("x"), "")
		if resp.StatusCode != http.StatusServiceUnavailable || !bytes.Contains(b, []byte(`"M_UNKNOWN"`)) || !bytes.Contains(b, []byte("read-only standby of http://"+proxy.ln.Addr().String())) {
			t.Errorf("%s %s on the standby: %s %s; want 503 M_UNKNOWN naming the primary", w.method, w.path, resp.Status, b)
		}
	}

	// The primary dies (SIGKILL) in the middle of a stream of uploads.
	acked := killDuringUploads(t, ctx, p)
	p.start(t, ctx)
	st = converged(t, ctx, p, s)
	t.Logf("primary killed after %d acknowledged uploads; standby converged at change %d", len(acked), st.Applied)
	sameMedia(t, p, s, acked)
	var prep, srep media.FsckReport
	if err := callAdmin(ctx, p.data, "fsck", nil, &prep); err != nil {
		t.Fatal(err)
	}
	if err := callAdmin(ctx, s.data, "fsck", nil, &srep); err != nil {
		t.Fatal(err)
	}
	if prep.Media != srep.Media || prep.Objects != srep.Objects || !srep.Healthy() {
		t.Errorf("after the primary's crash: primary %d media, %d objects; standby %d media, %d objects (healthy %v); want the same",
			prep.Media, prep.Objects, srep.Media, srep.Objects, srep.Healthy())
	}

	// Deletion and quarantine (of one media, and of a content) follow.
	deleted, quarantined, contentQ := ms[11], ms[12], ms[13]
	for _, a := range []struct{ method, path string }{
		{"DELETE", "/_synapse/admin/v1/media/a.test/" + deleted.id},
		{"POST", "/_synapse/admin/v1/media/quarantine/a.test/" + quarantined.id},
		{"POST", "/_mxcas/admin/v1/quarantine/content/a.test/" + contentQ.id},
	} {
		if resp, b := p.call(t, a.method, a.path, "alice-token", nil, ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s on the primary: %s %s", a.method, a.path, resp.Status, b)
		}
	}
	converged(t, ctx, p, s)
	for _, m := range []replMedia{deleted, quarantined, contentQ} {
		path := "/_matrix/client/v1/media/download/a.test/" + m.id
		pr, _ := p.call(t, "GET", path, "alice-token", nil, "")
		sr, sb := s.call(t, "GET", path, "alice-token", nil, "")
		if sr.StatusCode != pr.StatusCode || sr.StatusCode == http.StatusOK {
			t.Errorf("%s after deletion or quarantine: standby %s %s, primary %s; want the primary's refusal", m.id, sr.Status, short(sb), pr.Status)
		}
	}

	// A wrong secret: 401 at the listener, and a standby that applies
	// nothing and says why.
	if code := signedGet(t, replURL, "/_mxcas/replication/v1/status", []byte("a wrong secret of some length")); code != http.StatusUnauthorized {
		t.Errorf("replication request signed with a wrong secret: %d, want 401", code)
	}
	if code := signedGet(t, replURL, "/_mxcas/replication/v1/status", nil); code != http.StatusUnauthorized {
		t.Errorf("unsigned replication request: %d, want 401", code)
	}
	if code := signedGet(t, replURL, "/_mxcas/replication/v1/status", []byte(secretText)); code != http.StatusOK {
		t.Errorf("replication request signed with the secret: %d, want 200", code)
	}
	bad := newReplNode(t, "wrong-secret", fmt.Sprintf("primary = %q", replURL), fmt.Sprintf("secret_file = %q", replSecret(t, "not the primary's secret")))
	bad.start(t, ctx)
	var bst replStatus
	waitFor(t, ctx, "the wrong-secret standby to report its error", func() bool { bst = bad.status(t, ctx); return bst.Err != "" })
	if bst.Applied != 0 || bst.BytesFetched != 0 {
		t.Errorf("wrong-secret standby: applied %d, fetched %d bytes; want nothing", bst.Applied, bst.BytesFetched)
	}
	if resp, _ := bad.call(t, "GET", "/_matrix/client/v1/media/download/a.test/"+ms[0].id, "alice-token", nil, ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("wrong-secret standby serves %s: %s, want 404", ms[0].id, resp.Status)
	}
	bad.stop(t)

	// Promotion.
	before := s.status(t, ctx).Applied
	code, out, stderr := runBinary(t, ctx, "promote", "-config", p.cfg)
	if code != 2 || out != "" || !strings.Contains(stderr, "not a standby") {
		t.Errorf("promote on the primary: exit %d, stdout %q, stderr %q; want 2, not a standby", code, out, stderr)
	}
	code, out, stderr = runBinary(t, ctx, "promote", "-config", s.cfg)
	var pst replStatus
	if err := json.Unmarshal([]byte(out), &pst); code != 0 || err != nil || pst.Role != "primary" || pst.Head != before {
		t.Fatalf("promote: exit %d, stdout %q, stderr %q; want 0 and {role: primary, head: %d}", code, out, stderr, before)
	}
	id, err := s.tryUpload(replMedia{name: "after.txt", ctype: "text/plain", body: []byte("written on the promoted standby")})
	if err != nil {
		t.Fatalf("upload on the promoted standby: %v", err)
	}
	if r, b := s.call(t, "GET", "/_matrix/client/v1/media/download/a.test/"+id, "alice-token", nil, ""); r.StatusCode != http.StatusOK || string(b) != "written on the promoted standby" {
		t.Errorf("download of the upload on the promoted standby: %s %q", r.Status, b)
	}
	code, out, _ = runBinary(t, ctx, "replication", "status", "-config", s.cfg)
	var after replStatus
	if err := json.Unmarshal([]byte(out), &after); code != 0 || err != nil || after.Role != "primary" || after.Head <= before {
		t.Errorf("replication status after promotion and an upload: exit %d, %q; want role primary, head past %d", code, out, before)
	}
	if code, _, stderr := runBinary(t, ctx, "promote", "-config", s.cfg); code != 2 {
		t.Errorf("promote again: exit %d, stderr %q; want 2", code, stderr)
	}
	// Restarting it with primary still configured is refused: its store
	// has moved on from the old primary's history.
	if code := s.stop(t); code != 0 {
		t.Errorf("promoted standby: exit %d after SIGTERM", code)
	}
	code, _, stderr = runBinary(t, ctx, "serve", "-config", s.cfg)
	if code == 0 || !strings.Contains(stderr, "promoted") {
		t.Errorf("serve of a promoted store still configured as a standby: exit %d, stderr %q; want a refusal naming the promotion", code, stderr)
	}
}

// killDuringUploads streams small uploads to n with 8 clients, kills n
// with SIGKILL once 40 are acknowledged, and returns the acknowledged ones.
func killDuringUploads(t *testing.T, ctx context.Context, n *replNode) []replMedia {
	t.Helper()
	var mu sync.Mutex
	var acked []replMedia
	enough := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				m := replMedia{name: fmt.Sprintf("stream-%d-%d", w, i), ctype: "application/octet-stream",
					body: content(uint64(50000+w*1000+i), 4<<10+i*512)}
				id, err := n.tryUpload(m)
				if err != nil {
					return // the server is gone
				}
				m.id = id
				mu.Lock()
				acked = append(acked, m)
				if len(acked) >= 40 {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-enough:
	case <-ctx.Done():
		t.Fatal("40 uploads not acknowledged in time")
	}
	n.kill9(t)
	wg.Wait()
	return acked
}

// The log a primary keeps by default is the store's default.
func TestReplicationKeepChangesDefault(t *testing.T) {
	if config.DefaultKeepChanges != media.DefaultKeepChanges {
		t.Errorf("config.DefaultKeepChanges %d, media.DefaultKeepChanges %d: they must agree", config.DefaultKeepChanges, media.DefaultKeepChanges)
	}
}

// replication status and promote need the running server; serve refuses
// a secret file that is missing, short or readable by every user before
// it touches the data directory.
func TestReplicationRefusals(t *testing.T) {
	n := newReplNode(t, "idle")
	for _, args := range [][]string{{"replication", "status", "-config", n.cfg}, {"promote", "-config", n.cfg}} {
		code, out, stderr := runMain(t, args...)
		if code != 2 || out != "" || !strings.Contains(stderr, "no server is running") {
			t.Errorf("mxcas %s without a server: exit %d, stdout %q, stderr %q; want 2 and \"no server is running\"", args[0], code, out, stderr)
		}
	}
	if code, _, stderr := runMain(t, "replication", "-config", n.cfg); code != 2 || !strings.Contains(stderr, "usage: mxcas replication status") {
		t.Errorf("mxcas replication without status: exit %d, stderr %q; want 2 and usage", code, stderr)
	}

	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	open := filepath.Join(dir, "open")
	os.WriteFile(short, []byte("  tiny secret \n"), 0o600)
	os.WriteFile(open, []byte("a long enough secret, but world-readable"), 0o644)
	os.Chmod(open, 0o644)
	for _, tc := range []struct{ file, want string }{
		{short, "holds 11 bytes; a secret needs at least 16"},
		{open, "readable by every user"},
		{filepath.Join(dir, "missing"), "no such file"},
	} {
		n := newReplNode(t, "refused", `listen = "127.0.0.1:0"`, fmt.Sprintf("secret_file = %q", tc.file))
		code, _, stderr := runMain(t, "serve", "-config", n.cfg)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("serve with secret_file %s: exit %d, stderr %q; want 1 and %q", filepath.Base(tc.file), code, stderr, tc.want)
		}
		if _, err := os.Stat(n.data); !os.IsNotExist(err) {
			t.Errorf("serve refused its secret but created the data directory (stat: %v)", err)
		}
	}
}

// writeTestCert writes a self-signed certificate for 127.0.0.1 and its key
// (PEM) into dir and returns their paths; the certificate is its own CA.
func writeTestCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mxcas test primary"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// A primary with tls_cert and tls_key serves HTTPS: a standby trusting its
// CA (tls_ca) follows it; one that does not applies nothing and says why.
func TestReplicationTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), replBound)
	defer cancel()
	secret := replSecret(t, "a secret for the TLS test, long enough")
	cert, key := writeTestCert(t, t.TempDir())
	replAddr := freeAddr(t)
	p := newReplNode(t, "tls-primary", fmt.Sprintf("listen = %q", replAddr), fmt.Sprintf("secret_file = %q", secret),
		fmt.Sprintf("tls_cert = %q", cert), fmt.Sprintf("tls_key = %q", key))
	p.start(t, ctx)
	ms := []replMedia{
		{name: "a.bin", ctype: "application/octet-stream", body: content(7, 300<<10)},
		{name: "b.txt", ctype: "text/plain", body: []byte("over TLS")},
	}
	p.uploadAll(t, ms)

	s := newReplNode(t, "tls-standby", fmt.Sprintf("primary = %q", "https://"+replAddr), fmt.Sprintf("secret_file = %q", secret),
		fmt.Sprintf("tls_ca = %q", cert))
	s.start(t, ctx)
	converged(t, ctx, p, s)
	sameMedia(t, p, s, ms)

	untrusting := newReplNode(t, "tls-untrusting", fmt.Sprintf("primary = %q", "https://"+replAddr), fmt.Sprintf("secret_file = %q", secret))
	untrusting.start(t, ctx)
	var st replStatus
	waitFor(t, ctx, "the standby without tls_ca to report its error", func() bool { st = untrusting.status(t, ctx); return st.Err != "" })
	if st.Applied != 0 || !strings.Contains(st.Err, "certificate") {
		t.Errorf("standby not trusting the primary's CA: applied %d, error %q; want nothing applied and a certificate error", st.Applied, st.Err)
	}
}

// A standby seeded from `mxcas backup` of the running primary resumes from
// the backup's last change: it fetches only the chunks uploaded since.
func TestReplicationSeededFromBackup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), replBound)
	defer cancel()
	secret := replSecret(t, "a secret for the seeding test, long enough")
	replAddr := freeAddr(t)
	p := newReplNode(t, "seed-primary", fmt.Sprintf("listen = %q", replAddr), fmt.Sprintf("secret_file = %q", secret))
	p.start(t, ctx)
	var ms []replMedia
	for i := range 30 {
		ms = append(ms, replMedia{name: fmt.Sprintf("m%d", i), ctype: "application/octet-stream", body: content(uint64(7000+i), 2<<10+i*(20<<10))})
	}
	p.uploadAll(t, ms[:20])
	s := newReplNode(t, "seeded", fmt.Sprintf("primary = %q", "http://"+replAddr), fmt.Sprintf("secret_file = %q", secret))
	if code, out, stderr := runBinary(t, ctx, "backup", "-config", p.cfg, s.data); code != 0 {
		t.Fatalf("backup of the primary: exit %d\n%s%s", code, out, stderr)
	}
	seeded := casBytes(t, s.data)
	p.uploadAll(t, ms[20:])
	s.start(t, ctx)
	st := converged(t, ctx, p, s)
	if unique := casBytes(t, p.data); seeded == 0 || st.BytesFetched != unique-seeded {
		t.Errorf("the seeded standby fetched %d chunk bytes; want the %d uploaded since the backup (of %d)", st.BytesFetched, unique-seeded, unique)
	}
	sameMedia(t, p, s, ms)
}

// In one process (so the race detector sees the follower, the admin
// operations and promotion together): a standby follows, refuses an
// upload, is promoted while following, then takes uploads.
func TestReplicationPromoteInProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), replBound)
	defer cancel()
	secret := replSecret(t, "an in-process secret, long enough")
	replAddr := freeAddr(t)
	p := startE2E(t, func(c *config.Config) { c.Replication.Listen, c.Replication.SecretFile = replAddr, secret })
	s := startE2E(t, func(c *config.Config) { c.Replication.Primary, c.Replication.SecretFile = "http://"+replAddr, secret })
	body := content(99, 100<<10)
	id := p.upload(t, hostA, aliceToken, "x.bin", "application/octet-stream", body)
	head := uint64(0)
	waitFor(t, ctx, "the standby to apply the upload", func() bool {
		var ps, ss replStatus
		if err := callAdmin(ctx, p.dataDir, "replication/status", nil, &ps); err != nil {
			t.Fatal(err)
		}
		if err := callAdmin(ctx, s.dataDir, "replication/status", nil, &ss); err != nil {
			t.Fatal(err)
		}
		head = ps.Head
		return ps.Role == "primary" && ss.Role == "standby" && ss.Applied == ps.Head && ps.Head > 0
	})
	wantBytes(t, s.download(t, hostA, hostA, id, bobToken), body)
	r := s.do(t, "POST", hostA, "/_matrix/media/v3/upload", aliceToken, []byte("refused"), nil)
	wantError(t, r, http.StatusServiceUnavailable, "M_UNKNOWN")

	var ps replStatus
	if err := callAdmin(ctx, s.dataDir, "promote", nil, &ps); err != nil || ps.Role != "primary" || ps.Head != head {
		t.Fatalf("promote: %+v, %v; want role primary at head %d", ps, err, head)
	}
	if err := callAdmin(ctx, s.dataDir, "promote", nil, &ps); !errors.Is(err, errNotStandby) {
		t.Errorf("promote again: %v, want errNotStandby", err)
	}
	id2 := s.upload(t, hostA, aliceToken, "y.bin", "application/octet-stream", []byte("on the new primary"))
	wantBytes(t, s.download(t, hostA, hostA, id2, bobToken), []byte("on the new primary"))
	if err := callAdmin(ctx, s.dataDir, "replication/status", nil, &ps); err != nil || ps.Head <= head {
		t.Errorf("status after an upload on the promoted standby: %+v, %v; want head past %d", ps, err, head)
	}
}
