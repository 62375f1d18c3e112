// Command federation measures media fetched over federation through the real
// server: two mxcas processes, A serving a.test and B serving b.test, each
// routed to the other over loopback. Every run uploads SIZE MiB of fresh
// random bytes to A (new content, so B has none of it cached), then times
//
//	(1) the download of A's media through B (Host b.test): B fetches it from
//	    A over federation and streams it to the client while it stores it;
//	(2) the same download straight from A (Host a.test), for comparison;
//	(3) a second download through B, now from B's copy;
//
// each by its time to the first byte of the body, its total time and its
// throughput. Every answer must be the uploaded bytes.
//
//	go run ./bench/federation -dir /tmp/fedbench [-size 50] [-runs 3]
//
// The servers' logs go to DIR/a/mxcas.log and DIR/b/mxcas.log.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/mxcas/mxcas/bench/internal/command"
	"github.com/mxcas/mxcas/bench/internal/target"
	"github.com/mxcas/mxcas/bench/machine"
	"github.com/mxcas/mxcas/bench/report"
	"github.com/mxcas/mxcas/bench/serverproc"
	"github.com/mxcas/mxcas/matrix"
)

// maxBytes is max_upload_bytes and [federation] max_remote_bytes of both
// servers, and so the largest -size.
const maxBytes = 1 << 30

// server is one of the two homeservers.
type server struct {
	key   string // "a" or "b"
	name  string // server name, sent as Host
	token string // static access token of @bench:<name>
	addr  string
	child *serverproc.Child
	api   *target.Target // its client API as @bench:<name>, set by run
}

func (s *server) base() string { return "http://" + s.addr }

type config struct {
	dir  string
	size int // MiB
	runs int
}

func main() {
	command.SetupLog("federation")
	dir := flag.String("dir", "", "directory to work in (required; created if missing)")
	size := flag.Int("size", 50, "MiB of new random content per run")
	runs := flag.Int("runs", 3, "repetitions of each measurement; the median is reported")
	flag.Parse()
	command.CheckArgs(*dir != "" && *size >= 1 && *size <= maxBytes>>20 && *runs >= 1)
	cfg := config{dir: command.WorkDir(*dir), size: *size, runs: *runs}
	command.Run(func(ctx context.Context) error { return run(ctx, cfg) })
}

func run(ctx context.Context, cfg config) error {
	machine.Note()

	bin, err := serverproc.Build(cfg.dir)
	if err != nil {
		return err
	}
	version, _ := exec.Command(bin, "version").Output()

	a := &server{key: "a", name: "a.test", token: "bench-token-a"}
	b := &server{key: "b", name: "b.test", token: "bench-token-b"}
	cleanup, err := startPair(ctx, cfg.dir, bin, a, b)
	defer cleanup()
	if err != nil {
		return err
	}

	fmt.Printf("server:  %s", version)
	fmt.Printf("dir:     %s; A (a.test) on %s, B (b.test) on %s, routed to each other; %d MiB of new random content per run; %d runs (median); MB = 10^6 bytes\n\n",
		cfg.dir, a.addr, b.addr, cfg.size, cfg.runs)

	cl := &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute},
		Timeout:   10 * time.Minute,
	}
	for _, s := range []*server{a, b} {
		s.api = &target.Target{Base: s.base(), Host: s.name, Token: s.token, Client: cl}
	}
	all, err := measureLegs(ctx, cfg, a, b)
	if err != nil {
		return err
	}
	report.Table(os.Stdout, fmt.Sprintf("Download of %d MiB of A's media, through B over federation and straight from A", cfg.size), cfg.runs, all...)
	return stopPair(a, b)
}

// startPair starts a and b on free addresses, each routed to the other.
// cleanup, to be called whatever the error, stops them and removes their
// data directories.
func startPair(ctx context.Context, dir, bin string, a, b *server) (cleanup func(), err error) {
	var undo []func()
	cleanup = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	for _, s := range []*server{a, b} {
		if s.addr, err = serverproc.FreeAddr(); err != nil {
			return cleanup, err
		}
	}
	for _, p := range [][2]*server{{a, b}, {b, a}} {
		s, other := p[0], p[1]
		if err := start(ctx, dir, bin, s, other); err != nil {
			return cleanup, err
		}
		undo = append(undo, func() { s.child.Stop() }, func() { os.RemoveAll(filepath.Join(dir, s.key, "data")) })
	}
	return cleanup, nil
}

// measureLegs uploads new content to A each run and times its download
// through B (cold, then cached) and straight from A; it returns the rows.
func measureLegs(ctx context.Context, cfg config, a, b *server) ([]*report.Row, error) {
	n := cfg.size << 20
	legs := []struct {
		name       string
		via, owner *server
	}{
		{"(1) through B, cold (federation fetch)", b, a},
		{"(2) straight from A", a, a},
		{"(3) through B again, cached", b, a},
	}
	type rows struct{ ttfb, total, rate *report.Row }
	rs := make([]rows, len(legs))
	for i, l := range legs {
		rs[i] = rows{
			ttfb:  &report.Row{Name: l.name + ": time to first byte", Unit: "ms"},
			total: &report.Row{Name: l.name + ": total", Unit: "ms"},
			rate:  &report.Row{Name: l.name + ": throughput", Unit: "MB/s"},
		}
	}
	content := make([]byte, n)
	got := make([]byte, n+1) // one more, to notice a longer answer
	for r := range cfg.runs {
		if _, err := rand.Read(content); err != nil {
			return nil, err
		}
		id, err := a.api.Upload(ctx, "bench.bin", "application/octet-stream", content)
		if err != nil {
			return nil, err
		}
		for i, l := range legs {
			path := "/_matrix/client/v1/media/download/" + l.owner.name + "/" + id
			ttfb, total, err := download(ctx, l.via, path, content, got)
			if err != nil {
				return nil, fmt.Errorf("run %d, %s: %w", r+1, l.name, err)
			}
			rs[i].ttfb.Add(ms(ttfb))
			rs[i].total.Add(ms(total))
			rs[i].rate.Add(float64(n) / 1e6 / total.Seconds())
		}
		log.Printf("run %d of %d done", r+1, cfg.runs)
	}
	var all []*report.Row
	for _, r := range rs {
		all = append(all, r.ttfb, r.total, r.rate)
	}
	return all, nil
}

// stopPair stops B, then A, and fails if either did not stop cleanly or
// logged an error.
func stopPair(a, b *server) error {
	for _, s := range []*server{b, a} {
		if err := s.child.Stop(); err != nil {
			return fmt.Errorf("%s: %w (see %s)", s.name, err, s.child.LogPath)
		}
		if n, first := serverproc.LogErrors(s.child.LogPath); n > 0 {
			return fmt.Errorf("%s logged %d errors, the first: %s", s.name, n, first)
		}
	}
	return nil
}

// start writes s's signing key and configuration under DIR/<key>, with a
// fresh data directory and other's address as its route, and starts it.
func start(ctx context.Context, dir, bin string, s, other *server) error {
	sdir := filepath.Join(dir, s.key)
	data := filepath.Join(sdir, "data")
	if err := os.RemoveAll(data); err != nil {
		return err
	}
	if err := os.MkdirAll(sdir, 0o750); err != nil {
		return err
	}
	k, err := matrix.GenerateSigningKey("bench" + s.key)
	if err != nil {
		return err
	}
	keyFile := filepath.Join(sdir, "signing.key")
	if err := os.WriteFile(keyFile, k.MarshalFile(), 0o600); err != nil {
		return err
	}
	conf := fmt.Sprintf(`[server]
listen = %q
data_dir = %q
max_upload_bytes = %d

[[homeserver]]
name = %q
client_api = "http://127.0.0.1:9"
signing_key = %q
static_tokens = { %q = "@bench:%s" }

[federation]
timeout = "10m"
max_remote_bytes = %d

[federation.routes]
%q = %q
`, s.addr, data, maxBytes, s.name, keyFile, s.token, s.name, maxBytes, other.name, other.base())
	s.child, err = serverproc.StartMxcasConfig(ctx, sdir, bin, s.addr, conf)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	s.child.Name = "mxcas " + s.name
	return nil
}

// download GETs path from s into buf, which is longer than want, checks the
// answer is 200 and exactly want, and returns the time from sending the
// request to the first byte of the body and to its end.
func download(ctx context.Context, s *server, path string, want, buf []byte) (ttfb, total time.Duration, err error) {
	req, err := s.api.Request(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	resp, err := s.api.Send(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	n := 0
	for n < len(buf) {
		m, err := resp.Body.Read(buf[n:])
		if m > 0 && n == 0 {
			ttfb = time.Since(t0)
		}
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, 0, fmt.Errorf("GET %s from %s: after %d bytes: %w", path, s.name, n, err)
		}
	}
	total = time.Since(t0)
	if !bytes.Equal(buf[:n], want) {
		return 0, 0, fmt.Errorf("GET %s from %s: %d bytes, not the %d uploaded", path, s.name, n, len(want))
	}
	return ttfb, total, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
