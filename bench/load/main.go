// Command load measures mxcas's HTTP API under load, over loopback, against
// a minimal net/http file server that serves the same bytes from plain files
// on the same disk: 4 KiB downloads per second, 10 MiB download throughput,
// 256 KiB uploads per second, and the server's resident memory idle, after
// the load and at its peak. It builds mxcas from this module, runs it and the
// file server (this binary again, with -fileserver) as child processes and
// drives both with the same client. Downloads are a closed loop like
// wrk's (see loop.go): conns keep-alive connections, authenticated on the
// client download path, each making a fixed number of requests back to
// back, so every run does the same work; uploads come from c clients. Each
// server's CPU time per download (from /proc/PID/stat) is reported too: on
// a shared machine it varies much less than throughput does.
//
//	go run ./bench/load -dir /tmp/load [-conns 16] [-c 8] [-runs 3] [-perf perf.data]
//
// The server's request log goes to DIR/mxcas.log. With -perf, the server is
// recorded with perf(1) during the measurements (which slows them); read it
// with perf report -i perf.data.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mxcas/mxcas/bench/internal/command"
	"github.com/mxcas/mxcas/bench/internal/parallel"
	"github.com/mxcas/mxcas/bench/internal/randfill"
	"github.com/mxcas/mxcas/bench/internal/target"
	"github.com/mxcas/mxcas/bench/machine"
	"github.com/mxcas/mxcas/bench/report"
	"github.com/mxcas/mxcas/bench/serverproc"
)

const (
	smallSize  = 4 << 10
	largeSize  = 10 << 20
	uploadSize = 256 << 10

	serverName = serverproc.ServerName
	token      = serverproc.Token
)

// Purposes keep the random streams apart.
const (
	streamSmall = iota + 1
	streamLarge
	streamUpload
)

type config struct {
	dir     string
	conns   int // download connections
	c       int // concurrent upload clients
	runs    int
	nSmall  int // requests per connection
	nLarge  int
	nUpload int
	perf    string
}

func main() {
	command.SetupLog("load")
	dir := flag.String("dir", "", "directory to work in, on the disk under test (required; created if missing)")
	conns := flag.Int("conns", 16, "keep-alive connections downloading at once")
	c := flag.Int("c", 8, "concurrent upload clients")
	runs := flag.Int("runs", 3, "repetitions of each measurement; the median is reported")
	nSmall := flag.Int("n", 1000, "4 KiB downloads per connection per run and server")
	nLarge := flag.Int("nlarge", 10, "10 MiB downloads per connection per run and server")
	nUpload := flag.Int("nupload", 50, "256 KiB uploads per client per run (0: no uploads)")
	perf := flag.String("perf", "", "record the mxcas process with perf(1) during the measurements into this file")
	fileserver := flag.String("fileserver", "", "internal: serve this directory with http.FileServer and print the address")
	listen := flag.String("listen", "127.0.0.1:0", "internal: the -fileserver address")
	flag.Parse()
	if *fileserver != "" {
		if err := serveFiles(*fileserver, *listen); err != nil {
			log.Fatal(err)
		}
		return
	}
	command.CheckArgs(*dir != "" && *conns >= 1 && *c >= 1 && *runs >= 1 && *nSmall >= 1 && *nLarge >= 1 && *nUpload >= 0)
	cfg := config{dir: command.WorkDir(*dir), conns: *conns, c: *c, runs: *runs, nSmall: *nSmall, nLarge: *nLarge, nUpload: *nUpload, perf: *perf}
	command.Run(func(ctx context.Context) error { return run(ctx, cfg) })
}

// serveFiles is the baseline: the plainest net/http file server.
func serveFiles(dir, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	return http.Serve(ln, http.FileServer(http.Dir(dir)))
}

func run(ctx context.Context, cfg config) error {
	machine.Note()

	bin, err := serverproc.Build(cfg.dir)
	if err != nil {
		return err
	}
	version, _ := exec.Command(bin, "version").Output()
	// A fresh store and fresh files every invocation; removed at the end.
	data, files := filepath.Join(cfg.dir, "data"), filepath.Join(cfg.dir, "files")
	for _, d := range []string{data, files} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	defer os.RemoveAll(files)
	defer os.RemoveAll(data)
	if err := os.Mkdir(files, 0o750); err != nil {
		return err
	}

	mx, err := serverproc.StartMxcas(ctx, cfg.dir, bin, data, "")
	if err != nil {
		return err
	}
	defer mx.Stop()
	idle, _, err := serverproc.Memory(mx.Pid())
	if err != nil {
		return err
	}
	fs, err := startFileServer(files)
	if err != nil {
		return err
	}
	defer fs.Stop()

	fmt.Printf("server:  %s", version)
	fmt.Printf("dir:     %s; %d keep-alive connections, each a fixed count per run: %d x 4 KiB and %d x 10 MiB downloads per server; %d clients x %d x 256 KiB uploads; %d runs (median); MB = 10^6 bytes\n\n",
		cfg.dir, cfg.conns, cfg.nSmall, cfg.nLarge, cfg.c, cfg.nUpload, cfg.runs)

	t, err := seedFiles(ctx, newServer("http://"+mx.Addr, serverName, mx.Pid(), cfg.c), newServer("http://"+fs.Addr, "", fs.Pid(), cfg.c), files)
	if err != nil {
		return err
	}
	rows := newLoadRows(cfg.conns, cfg.c)
	if err := rows.measure(ctx, cfg, t, mx.Pid()); err != nil {
		return err
	}
	end, peak, err := serverproc.Memory(mx.Pid())
	if err != nil {
		return err
	}
	_, fsPeak, _ := serverproc.Memory(fs.Pid())

	rows.print(cfg.runs)
	printMemory(idle, end, peak, fsPeak)
	return mx.StopClean()
}

// targets are the two servers under load and the download paths of the
// seeded files on mxcas (the file server has them as /small and /large).
type targets struct {
	mxc, fsc         *server
	mxSmall, mxLarge string
}

// seedFiles uploads the small and the large file to mxcas, writes them
// into files for the file server, and checks that both servers answer with
// exactly those bytes.
func seedFiles(ctx context.Context, mxc, fsc *server, files string) (targets, error) {
	t := targets{mxc: mxc, fsc: fsc}
	small, large := make([]byte, smallSize), make([]byte, largeSize)
	randfill.Fill(small, streamSmall, 0)
	randfill.Fill(large, streamLarge, 0)
	var smallID, largeID string
	for _, o := range []struct {
		b    []byte
		id   *string
		file string
	}{{small, &smallID, "small"}, {large, &largeID, "large"}} {
		var err error
		if *o.id, err = mxc.upload(ctx, o.b); err != nil {
			return t, err
		}
		if err := os.WriteFile(filepath.Join(files, o.file), o.b, 0o640); err != nil {
			return t, err
		}
	}
	t.mxSmall = "/_matrix/client/v1/media/download/" + serverName + "/" + smallID
	t.mxLarge = "/_matrix/client/v1/media/download/" + serverName + "/" + largeID
	// Both servers must answer with exactly the uploaded bytes.
	for _, chk := range []struct {
		t    *server
		path string
		want []byte
	}{{mxc, t.mxSmall, small}, {mxc, t.mxLarge, large}, {fsc, "/small", small}, {fsc, "/large", large}} {
		if err := chk.t.Verify(ctx, chk.path, chk.want); err != nil {
			return t, err
		}
	}
	return t, nil
}

// pairRows are the rows of one download size measured on both servers.
type pairRows struct {
	mx, fs, ratio, mxCPU, fsCPU *report.Row
}

// newPairRows names the rows of table line n, downloads of size over conns
// connections: the rates in unit, CPU per download in cpuUnit, and the
// mxcas/file server ratio with its goal.
func newPairRows(n int, size string, conns int, unit, cpuUnit, goal string) pairRows {
	return pairRows{
		mx:    &report.Row{Name: fmt.Sprintf("(%d) %s downloads, mxcas, %d connections", n, size, conns), Unit: unit},
		fs:    &report.Row{Name: fmt.Sprintf("(%d') %s downloads, file server, same", n, size), Unit: unit},
		ratio: &report.Row{Name: fmt.Sprintf("    (%d)/(%d')", n, n), Goal: goal},
		mxCPU: &report.Row{Name: "mxcas CPU per " + size + " download", Unit: cpuUnit},
		fsCPU: &report.Row{Name: "file server CPU per " + size + " download", Unit: cpuUnit},
	}
}

// loadRows are the rows of the first two tables, filled run by run.
type loadRows struct {
	small, large pairRows
	upReq, upMB  *report.Row
	rssRun       *report.Row
	checks       map[*report.Row]func(median float64) bool
}

func newLoadRows(conns, c int) *loadRows {
	rows := &loadRows{
		small:  newPairRows(1, "4 KiB", conns, "req/s", "us", ">= 0.7"),
		large:  newPairRows(2, "10 MiB", conns, "MB/s", "ms", ">= 0.8"),
		upReq:  &report.Row{Name: fmt.Sprintf("(3) 256 KiB uploads, new content, %d clients", c), Unit: "uploads/s"},
		upMB:   &report.Row{Name: "    the same in MB/s", Unit: "MB/s"},
		rssRun: &report.Row{Name: "mxcas VmRSS after the run", Unit: "MB", Goal: "<= 100"},
	}
	// The goals checked against the medians before printing.
	rows.checks = map[*report.Row]func(median float64) bool{rows.small.ratio: atLeast(0.7), rows.large.ratio: atLeast(0.8), rows.rssRun: atMost(100)}
	return rows
}

// measure does cfg.runs runs of every measurement against t, recording
// mxcas (process pid) with perf when cfg asks.
func (rows *loadRows) measure(ctx context.Context, cfg config, t targets, pid int) error {
	uploads := make([]byte, cfg.c*cfg.nUpload*uploadSize)
	if cfg.perf != "" {
		stopPerf, err := startPerf(cfg.perf, pid)
		if err != nil {
			return err
		}
		defer stopPerf()
	}
	for r := range cfg.runs {
		if err := rows.small.measure(ctx, t, r, cfg.conns, t.mxSmall, "/small", smallSize, cfg.nSmall, 1, 1e6); err != nil {
			return err
		}
		if err := rows.large.measure(ctx, t, r, cfg.conns, t.mxLarge, "/large", largeSize, cfg.nLarge, largeSize/1e6, 1e3); err != nil {
			return err
		}
		if err := rows.uploads(ctx, t, r, uploads, cfg.c); err != nil {
			return err
		}

		rss, _, err := serverproc.Memory(pid)
		if err != nil {
			return err
		}
		rows.rssRun.Add(rss)
		log.Printf("run %d of %d done", r+1, cfg.runs)
	}
	return nil
}

// uploads uploads b (nothing when it is empty) in run r from c clients.
func (rows *loadRows) uploads(ctx context.Context, t targets, r int, b []byte, c int) error {
	if len(b) == 0 {
		return nil
	}
	randfill.Fill(b, streamUpload, r)
	d, err := uploadAll(ctx, t.mxc, b, c)
	if err != nil {
		return err
	}
	rows.upReq.Add(float64(len(b)/uploadSize) / d.Seconds())
	rows.upMB.Add(float64(len(b)) / 1e6 / d.Seconds())
	return nil
}

// measure downloads path from mxcas and fsPath from the file server, c
// connections n times each, in run r: mxcas and the file server alternate which
// goes first. scale turns requests per second into the row's unit,
// cpuScale CPU seconds per request into the CPU rows' unit.
func (p pairRows) measure(ctx context.Context, t targets, r, c int, path, fsPath string, size, n int, scale, cpuScale float64) error {
	var vMx, vFs, cMx, cFs float64
	both := []func() error{
		func() (err error) { vMx, cMx, err = loopDownloads(ctx, t.mxc, path, size, c, n); return err },
		func() (err error) { vFs, cFs, err = loopDownloads(ctx, t.fsc, fsPath, size, c, n); return err },
	}
	if r%2 == 1 {
		both[0], both[1] = both[1], both[0]
	}
	for _, fn := range both {
		if err := fn(); err != nil {
			return err
		}
	}
	p.mx.Add(vMx * scale)
	p.fs.Add(vFs * scale)
	p.ratio.Add(vMx / vFs)
	p.mxCPU.Add(cMx * cpuScale)
	p.fsCPU.Add(cFs * cpuScale)
	return nil
}

// print checks the goals against the medians and prints the load and the
// CPU tables.
func (rows *loadRows) print(runs int) {
	for r, ok := range rows.checks {
		r.Goal = verdict(r.Goal, ok, r.Median())
	}
	sm, lg := rows.small, rows.large
	load := []*report.Row{sm.mx, sm.fs, sm.ratio, lg.mx, lg.fs, lg.ratio, rows.upReq, rows.upMB, rows.rssRun}
	if len(rows.upReq.Vals) == 0 {
		load = slices.DeleteFunc(load, func(r *report.Row) bool { return r == rows.upReq || r == rows.upMB })
	}
	report.Table(os.Stdout, "Load over loopback", runs, load...)
	report.Table(os.Stdout, "Server CPU time (user+system, /proc/PID/stat) per download", runs, sm.mxCPU, sm.fsCPU, lg.mxCPU, lg.fsCPU)
}

// printMemory prints the table of mxcas's memory, in MB: idle after start,
// at the end of the load and at its peak, with the file server's peak.
func printMemory(idle, end, peak, fsPeak float64) {
	fmt.Println("Memory of the mxcas process (/proc/PID/status)")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measurement\tvalue\tunit\tgoal")
	fmt.Fprintf(tw, "(4) VmRSS idle after start\t%s\tMB\t%s\n", report.Format(idle), verdict("<= 50", atMost(50), idle))
	fmt.Fprintf(tw, "(4') VmRSS at the end of the load\t%s\tMB\t%s\n", report.Format(end), verdict("<= 100", atMost(100), end))
	fmt.Fprintf(tw, "(4'') VmHWM (peak)\t%s\tMB\t%s\n", report.Format(peak), verdict("<= 100", atMost(100), peak))
	fmt.Fprintf(tw, "file server VmHWM, for reference\t%s\tMB\t\n", report.Format(fsPeak))
	tw.Flush()
}

func atLeast(goal float64) func(float64) bool { return func(v float64) bool { return v >= goal } }
func atMost(goal float64) func(float64) bool  { return func(v float64) bool { return v <= goal } }

func verdict(goal string, ok func(float64) bool, v float64) string {
	switch {
	case ok == nil:
		return goal
	case ok(v):
		return goal + ": met"
	}
	return goal + ": NOT met"
}

// startFileServer runs this binary with -fileserver dir and reads the
// address it prints.
func startFileServer(dir string) (*serverproc.Child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-fileserver", dir, "-listen", "127.0.0.1:0")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c, err := serverproc.Start("file server", cmd)
	if err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		c.Stop()
		return nil, fmt.Errorf("file server: reading its address: %w", err)
	}
	c.Addr = strings.TrimSpace(line)
	return c, nil
}

// startPerf records pid with perf(1) until the returned function is called.
func startPerf(out string, pid int) (func(), error) {
	cmd := exec.Command("perf", "record", "-g", "-o", out, "-p", strconv.Itoa(pid))
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("perf: %w", err)
	}
	return func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}, nil
}

// server is one server under load as the clients see it, and its process.
type server struct {
	*target.Target
	pid int
}

func newServer(base, host string, pid, conns int) *server {
	t := &target.Target{Base: base, Host: host, Client: target.NewClient(conns, 0)}
	if host != "" {
		t.Token = token
	}
	return &server{Target: t, pid: pid}
}

// upload posts b and returns the media ID of the answer.
func (t *server) upload(ctx context.Context, b []byte) (string, error) {
	return t.Upload(ctx, "", "application/octet-stream", b)
}

// uploadAll uploads b in uploadSize pieces from c clients, client i taking
// every c-th piece, and then checks one upload per client downloads intact.
func uploadAll(ctx context.Context, t *server, b []byte, c int) (time.Duration, error) {
	pieces := len(b) / uploadSize
	last := make([]string, c)
	d, err := parallel.Run(ctx, c, func(ctx context.Context, client int) error {
		for p := client; p < pieces; p += c {
			id, err := t.upload(ctx, b[p*uploadSize:(p+1)*uploadSize])
			if err != nil {
				return err
			}
			last[client] = id
		}
		return nil
	})
	if err != nil {
		return d, err
	}
	for client, id := range last {
		p := client + (pieces-1-client)/c*c
		if err := t.Verify(ctx, "/_matrix/client/v1/media/download/"+serverName+"/"+id, b[p*uploadSize:(p+1)*uploadSize]); err != nil {
			return d, err
		}
	}
	return d, nil
}
