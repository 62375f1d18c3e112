// Command nodes measures mxcas on several nodes sharing one store (the
// index in PostgreSQL, the chunks in S3): uploads and downloads per second
// through 1, 2 and 3 `mxcas serve` processes on loopback, and, for
// reference, one node with the default Pebble index and local chunks, and
// one with the Pebble index and the chunks in S3 (which tells the cost of
// S3 from that of PostgreSQL).
//
// It builds ./cmd/mxcas once, starts a private PostgreSQL cluster (initdb in
// a temp directory) and a versitygw (POSIX backend), and for each setup a
// fresh database and bucket and N nodes with data directories of their own.
// The load comes from this process, spread round-robin across the nodes by
// the clients themselves: no load balancer. For -duration each, c clients
//
//   - upload random media of -min to -max KiB (upload i to node i mod N);
//   - read them, each media once on every node, first on the others than
//     the one that took its upload: a first read, whose chunks come from S3
//     (an upload does not fill a node's chunk cache, the default 1 GiB);
//   - read the same (media, node) pairs again: cached reads;
//
// checking every body's CRC-32. Each phase reports requests per second,
// latency, the servers' CPU per request (/proc: mxcas, PostgreSQL,
// versitygw), which varies much less than throughput on a shared machine,
// and PostgreSQL's statements per request (pg_stat_statements); with
// -statements N it lists the most frequent.
//
//	go run ./bench/nodes [-nodes 1,2,3] [-duration 6s] [-c 8] [-min 16] [-max 64]
//
// On a machine with few cores the nodes, PostgreSQL, versitygw and the
// clients share them: expect the shape of the scaling, not a linear one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/mxcas/mxcas/bench/internal/command"
	"github.com/mxcas/mxcas/bench/internal/parallel"
	"github.com/mxcas/mxcas/bench/internal/pgcluster"
	"github.com/mxcas/mxcas/bench/internal/proccpu"
	"github.com/mxcas/mxcas/bench/internal/s3gw"
	"github.com/mxcas/mxcas/bench/internal/target"
	"github.com/mxcas/mxcas/bench/machine"
	"github.com/mxcas/mxcas/bench/report"
	"github.com/mxcas/mxcas/bench/serverproc"
)

type config struct {
	tmp      string
	vgw      string
	nodes    []int
	duration time.Duration
	c        int
	min, max int // bytes per upload
	baseline bool
	top      int // statements listed per phase
}

func main() {
	command.SetupLog("nodes")
	vgw := s3gw.Flag()
	tmp := flag.String("tmp", os.TempDir(), "directory for the bucket and the nodes' data directories")
	nodes := flag.String("nodes", "1,2,3", "node counts measured with the PostgreSQL index and S3 chunks")
	duration := flag.Duration("duration", 6*time.Second, "how long each phase (uploads, first reads, cached reads) of each setup lasts")
	c := flag.Int("c", 8, "concurrent clients")
	minKiB := flag.Int("min", 16, "smallest upload, KiB")
	maxKiB := flag.Int("max", 64, "largest upload, KiB")
	baseline := flag.Bool("baseline", true, "measure 1 node with the Pebble index, its chunks local and in S3, too")
	top := flag.Int("statements", 0, "list the N statements PostgreSQL ran most per upload and per download")
	flag.Parse()
	ns, err := parseNodes(*nodes)
	if err != nil {
		log.Print(err)
	}
	command.CheckArgs(err == nil && *duration > 0 && *c >= 1 && *minKiB >= 1 && *maxKiB >= *minKiB)
	cfg := config{tmp: *tmp, vgw: *vgw, nodes: ns, duration: *duration, c: *c,
		min: *minKiB << 10, max: *maxKiB << 10, baseline: *baseline, top: *top}
	command.Run(func(ctx context.Context) error { return run(ctx, cfg) })
}

func parseNodes(s string) ([]int, error) {
	var ns []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-nodes: %q is not a node count", f)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

// setup is one configuration measured: n nodes on a shared store (the
// index in PostgreSQL, shared set), or one node on its own Pebble index
// with its chunks on local disk or (s3 set) in S3.
type setup struct {
	n          int
	s3, shared bool
}

func (s setup) String() string {
	switch {
	case s.shared:
		return "PostgreSQL + S3"
	case s.s3:
		return "Pebble + S3 (reference)"
	}
	return "Pebble + local (reference)"
}

// env is what every shared setup uses: the mxcas binary, the PostgreSQL
// cluster, the S3 gateway and the key file for it.
type env struct {
	work, bin, creds string
	pg               *pgcluster.Cluster
	gw               *s3gw.Gateway
}

func run(ctx context.Context, cfg config) error {
	work, err := os.MkdirTemp(cfg.tmp, "mxcas-nodes-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	e := env{work: work, creds: filepath.Join(work, "s3.credentials")}
	if e.bin, err = serverproc.Build(work); err != nil {
		return err
	}
	key := fmt.Sprintf("access_key_id = %s\nsecret_access_key = %s\n", s3gw.AccessKey, s3gw.SecretKey)
	if err := os.WriteFile(e.creds, []byte(key), 0o600); err != nil {
		return err
	}
	// Each node's pool may open 32 connections (pgkv.DefaultMaxConns):
	// three nodes would nearly exhaust the default 100.
	if e.pg, err = pgcluster.Start("-c max_connections=200 " + pgcluster.StartOptions); err != nil {
		return err
	}
	defer e.pg.Stop()
	root := filepath.Join(work, "s3")
	if err := os.Mkdir(root, 0o750); err != nil {
		return err
	}
	if e.gw, err = s3gw.Start(cfg.vgw, root); err != nil {
		return err
	}
	defer e.gw.Stop()

	machine.Note()
	fmt.Printf("load:    %s (1, 5, 15 min, at the start)\n", machine.Load())
	fmt.Printf("setup:   mxcas serve x N on loopback; PostgreSQL %s (fsync off) and versitygw (POSIX backend) on this machine too; "+
		"the clients (this process) send request i to node i mod N, no load balancer; %d clients; %s each of uploads (%d-%d KiB random bytes), "+
		"first reads and cached reads (bodies checked by CRC-32); the default 1 GiB chunk cache\n\n",
		e.pg.Version(), cfg.c, cfg.duration, cfg.min>>10, cfg.max>>10)

	var setups []setup
	if cfg.baseline {
		setups = append(setups, setup{n: 1}, setup{n: 1, s3: true})
	}
	for _, n := range cfg.nodes {
		setups = append(setups, setup{n: n, s3: true, shared: true})
	}
	var results []result
	for i, s := range setups {
		r, err := measure(ctx, cfg, e, s, i)
		if err != nil {
			return fmt.Errorf("%s, %d nodes: %w", s, s.n, err)
		}
		results = append(results, r)
	}
	printTable(os.Stdout, results)
	fmt.Printf("load:    %s (1, 5, 15 min, at the end)\n", machine.Load())
	return nil
}

// result is the figures of one setup.
type result struct {
	setup
	up, first, cached phase
}

// phase is one closed loop's figures.
type phase struct {
	n        int
	d        time.Duration
	p50, p99 time.Duration
	other    int // downloads on another node than the one that took the upload

	statements float64 // PostgreSQL statements per request (shared setups)
	cpu        cpu     // CPU seconds the servers used in the phase
}

// cpu is CPU seconds of the servers: the mxcas nodes, PostgreSQL (the
// postmaster and its backends) and versitygw.
type cpu struct{ mxcas, pg, s3 float64 }

// cpuOf reads the CPU seconds the nodes, PostgreSQL and versitygw have
// used so far.
func cpuOf(e env, nodes []*serverproc.Child) (c cpu, err error) {
	for _, n := range nodes {
		s, err := proccpu.Seconds(n.Pid())
		if err != nil {
			return c, err
		}
		c.mxcas += s
	}
	pid, err := e.pg.Pid()
	if err != nil {
		return c, err
	}
	if c.pg, err = proccpu.Tree(pid); err != nil {
		return c, err
	}
	c.s3, err = proccpu.Seconds(e.gw.Pid())
	return c, err
}

// perRequest returns c1 - c0 in ms per request of p.
func perRequest(c0, c1 cpu, n int) cpu {
	f := 1000 / float64(n)
	return cpu{(c1.mxcas - c0.mxcas) * f, (c1.pg - c0.pg) * f, (c1.s3 - c0.s3) * f}
}

func (c cpu) String() string {
	return fmt.Sprintf("%s = %s + %s + %s", report.Format(c.mxcas+c.pg+c.s3), report.Format(c.mxcas), report.Format(c.pg), report.Format(c.s3))
}

func (p phase) rate() float64 { return float64(p.n) / p.d.Seconds() }

// upload is one media stored, as the downloads check it.
type upload struct {
	id   string
	node int
	size int
	crc  uint32
}

// measure starts s's nodes on a fresh database and bucket (the i-th), runs
// the uploads and then the downloads, and stops the nodes, which must
// have logged no error.
func measure(ctx context.Context, cfg config, e env, s setup, i int) (r result, err error) {
	r.setup = s
	extra := "[ratelimits.upload]\nper_user = { rate = 0, burst = 0 }\nper_ip = { rate = 0, burst = 0 }\n" +
		"[ratelimits.download]\nper_user = { rate = 0, burst = 0 }\nper_ip = { rate = 0, burst = 0 }\n"
	if s.s3 {
		bucket := fmt.Sprintf("nodes-%d", i)
		if _, err := e.gw.NewBucket(bucket); err != nil {
			return r, err
		}
		extra += fmt.Sprintf("[storage]\nbackend = \"s3\"\nendpoint = %q\nbucket = %q\nuse_ssl = false\ncredentials_file = %q\n",
			e.gw.Endpoint, bucket, e.creds)
	}
	if s.shared {
		db := fmt.Sprintf("nodes_%d", i)
		if err := e.pg.CreateDB(ctx, db); err != nil {
			return r, err
		}
		extra += fmt.Sprintf("[index]\nbackend = \"postgres\"\ndsn = %q\n", e.pg.DSN(db))
	}
	var nodes []*serverproc.Child
	defer func() {
		for _, n := range nodes {
			err = errors.Join(err, n.StopClean())
		}
	}()
	ts := make([]*target.Target, s.n)
	for j := range s.n {
		dir := filepath.Join(e.work, fmt.Sprintf("setup-%d", i), fmt.Sprintf("node-%d", j))
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return r, err
		}
		n, err := serverproc.StartMxcas(ctx, dir, e.bin, filepath.Join(dir, "data"), extra)
		if err != nil {
			return r, err
		}
		nodes = append(nodes, n)
		ts[j] = &target.Target{Base: "http://" + n.Addr, Host: serverproc.ServerName, Token: serverproc.Token,
			Client: target.NewClient(cfg.c, time.Minute)}
	}
	var ups []upload
	err = counted(ctx, cfg, e, s, i, nodes, "upload", &r.up, func() (err error) {
		ups, r.up, err = uploads(ctx, cfg, ts)
		return err
	})
	if err != nil {
		return r, err
	}
	var reads []read
	err = counted(ctx, cfg, e, s, i, nodes, "first read", &r.first, func() (err error) {
		reads, r.first, err = downloads(ctx, cfg, ts, ups, firstReads(ups, len(ts)))
		return err
	})
	if err != nil {
		return r, err
	}
	err = counted(ctx, cfg, e, s, i, nodes, "cached read", &r.cached, func() (err error) {
		_, r.cached, err = downloads(ctx, cfg, ts, ups, func(k int) (read, bool) { return reads[k%len(reads)], true })
		return err
	})
	return r, err
}

// counted runs a phase of the i-th setup, s, on nodes, sets p.cpu to the
// CPU time the servers used per request and, for a shared setup,
// p.statements to the statements PostgreSQL ran per request, listing the
// cfg.top most frequent.
func counted(ctx context.Context, cfg config, e env, s setup, i int, nodes []*serverproc.Child, what string, p *phase, run func() error) error {
	db := fmt.Sprintf("nodes_%d", i)
	if s.shared {
		if err := e.pg.ResetStatements(ctx, db); err != nil {
			return err
		}
	}
	c0, err := cpuOf(e, nodes)
	if err != nil {
		return err
	}
	if err := run(); err != nil {
		return err
	}
	c1, err := cpuOf(e, nodes)
	if err != nil {
		return err
	}
	p.cpu = perRequest(c0, c1, p.n)
	if !s.shared {
		return nil
	}
	st, err := e.pg.Statements(ctx, db)
	if err != nil {
		return err
	}
	var calls int64
	for _, q := range st {
		calls += q.Calls
	}
	p.statements = float64(calls) / float64(p.n)
	if cfg.top > 0 {
		fmt.Printf("%d nodes: PostgreSQL statements per %s, the %d most frequent of %.1f (calls, mean ms in the server):\n", s.n, what, cfg.top, p.statements)
		for _, q := range st[:min(cfg.top, len(st))] {
			fmt.Printf("  %5.2f  %6.3f  %s\n", float64(q.Calls)/float64(p.n), q.Mean, strings.Join(strings.Fields(q.Query), " "))
		}
	}
	return nil
}

// uploads runs cfg.c clients uploading for cfg.duration, upload i to node
// i mod len(ts), and returns the media stored.
func uploads(ctx context.Context, cfg config, ts []*target.Target) ([]upload, phase, error) {
	var next atomic.Int64
	var mu sync.Mutex
	var ups []upload
	var lat []time.Duration
	end := time.Now().Add(cfg.duration)
	d, err := parallel.Run(ctx, cfg.c, func(ctx context.Context, client int) error {
		rng := rand.NewChaCha8([32]byte{byte(client), byte(client >> 8), 'u', byte(time.Now().UnixNano())})
		b := make([]byte, cfg.max)
		var mine []upload
		var times []time.Duration
		for time.Now().Before(end) {
			i := int(next.Add(1) - 1)
			u := upload{node: i % len(ts), size: cfg.min + rand.IntN(cfg.max-cfg.min+1)}
			rng.Read(b[:u.size])
			u.crc = crc32.ChecksumIEEE(b[:u.size])
			t0 := time.Now()
			id, err := ts[u.node].Upload(ctx, "", "application/octet-stream", b[:u.size])
			if err != nil {
				return err
			}
			times = append(times, time.Since(t0))
			u.id = id
			mine = append(mine, u)
		}
		mu.Lock()
		ups, lat = append(ups, mine...), append(lat, times...)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, phase{}, err
	}
	if len(ups) == 0 {
		return nil, phase{}, errors.New("no upload finished")
	}
	return ups, newPhase(lat, d), nil
}

// read is a download: of ups[media] on node.
type read struct{ media, node int }

// firstReads returns the schedule of first reads of ups on n nodes: the
// k-th read is of ups[k mod len(ups)] on the node k/len(ups)+1 after the
// one that took its upload (mod n), so each media is read once on every
// node, first on the others; none after len(ups)*n reads.
func firstReads(ups []upload, n int) func(k int) (read, bool) {
	return func(k int) (read, bool) {
		m, pass := k%len(ups), k/len(ups)
		return read{m, (ups[m].node + 1 + pass) % n}, pass < n
	}
}

// downloads runs cfg.c clients downloading for cfg.duration, or until
// schedule, which gives the k-th read, has none, and returns the reads
// made in the order of the schedule.
func downloads(ctx context.Context, cfg config, ts []*target.Target, ups []upload, schedule func(k int) (read, bool)) ([]read, phase, error) {
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var done []read
	other := 0
	end := time.Now().Add(cfg.duration)
	d, err := parallel.Run(ctx, cfg.c, func(ctx context.Context, client int) error {
		var times []time.Duration
		var mine []read
		for time.Now().Before(end) {
			rd, ok := schedule(int(next.Add(1) - 1))
			if !ok {
				break
			}
			t0 := time.Now()
			if err := download(ctx, ts[rd.node], ups[rd.media]); err != nil {
				return err
			}
			times = append(times, time.Since(t0))
			mine = append(mine, rd)
		}
		mu.Lock()
		lat, done = append(lat, times...), append(done, mine...)
		for _, rd := range mine {
			if rd.node != ups[rd.media].node {
				other++
			}
		}
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, phase{}, err
	}
	if len(lat) == 0 {
		return nil, phase{}, errors.New("no download finished")
	}
	p := newPhase(lat, d)
	p.other = other
	return done, p, nil
}

// download reads u from t and checks its length and CRC-32.
func download(ctx context.Context, t *target.Target, u upload) error {
	path := "/_matrix/client/v1/media/download/" + serverproc.ServerName + "/" + u.id
	resp, err := t.Do(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	h := crc32.NewIEEE()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s%s: %w", t.Base, path, err)
	}
	if n != int64(u.size) || h.Sum32() != u.crc {
		return fmt.Errorf("GET %s%s: %d bytes, CRC %08x; uploaded %d bytes, CRC %08x", t.Base, path, n, h.Sum32(), u.size, u.crc)
	}
	return nil
}

func pct(n, of int) float64 { return 100 * float64(n) / float64(of) }

func newPhase(lat []time.Duration, d time.Duration) phase {
	slices.Sort(lat)
	at := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	return phase{n: len(lat), d: d, p50: at(0.50), p99: at(0.99)}
}

// printTable writes the results, a row per setup and phase, each rate
// also as a ratio to the same phase of the first shared setup of one
// node.
func printTable(w io.Writer, rs []result) {
	var one *result
	for i := range rs {
		if rs[i].shared && rs[i].n == 1 {
			one = &rs[i]
			break
		}
	}
	ms := func(d time.Duration) string { return report.Format(float64(d.Microseconds()) / 1000) }
	fmt.Fprintln(w, "ratio: to the same phase of 1 node of PostgreSQL + S3; latencies in ms; PG st.: PostgreSQL statements per request;")
	fmt.Fprintln(w, "CPU ms: user+system of the servers per request = mxcas nodes + PostgreSQL + versitygw (/proc; the clients not counted);")
	fmt.Fprintln(w, "other node: share of the reads on a node other than the upload's; first read: a media's first read on a node")
	fmt.Fprintln(w, "(from S3 on the S3 setups: an upload does not fill the node's chunk cache); cached read: the same reads again")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "setup\tnodes\tphase\trequests\tper s\tratio\tp50\tp99\tPG st.\tCPU ms\tother node\t")
	for _, r := range rs {
		var base [3]phase
		if one != nil {
			base = [3]phase{one.up, one.first, one.cached}
		}
		for j, ph := range []struct {
			name string
			p    *phase
		}{{"upload", &r.up}, {"first read", &r.first}, {"cached read", &r.cached}} {
			ratio, st := "-", "-"
			if one != nil {
				ratio = fmt.Sprintf("%.2f", ph.p.rate()/base[j].rate())
			}
			if r.shared {
				st = fmt.Sprintf("%.1f", ph.p.statements)
			}
			other := "-"
			if ph.name != "upload" {
				other = fmt.Sprintf("%.0f%%", pct(ph.p.other, ph.p.n))
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.setup, r.n, ph.name,
				ph.p.n, report.Format(ph.p.rate()), ratio, ms(ph.p.p50), ms(ph.p.p99), st, ph.p.cpu, other)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
}
