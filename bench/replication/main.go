// Command replication measures replication in one process, over real HTTP
// on loopback, with real Pebble and real fsyncs: a primary media.Store
// served by replication.NewPrimary on 127.0.0.1:0 and a standby store
// (media.Options.Follower) following it with replication.Standby, both in
// -dir. It prints three tables:
//
//   - Catch-up: the primary is loaded with -size of random -body uploads
//     (by -clients clients) while no standby runs; then the standby starts
//     and is timed until its head is the primary's: MB/s of unique content
//     applied, changes/s, and the chunk bytes it fetched against the unique
//     bytes uploaded. Again with a third of the bodies duplicates, to show
//     that only unique bytes cross.
//
//   - Steady state: -clients clients call media.Store.Upload (directly, not
//     over HTTP) with fresh -body bodies for -duration, as fast as they can
//     or paced to -rate uploads/s in all, while the standby follows. Each
//     upload's lag is from its Upload returning to the standby's head
//     reaching the primary's head read just after it (so it includes the
//     other clients' uploads committed meanwhile); the lag in changes is
//     sampled every 100 ms. Then the time the standby takes to drain once
//     the stream stops.
//
//   - The change log's cost on the primary's upload path: media's
//     BenchmarkUploadNew and BenchmarkUploadSmall, test binaries built at
//     this tree and at the parent of the commit "index: the change log",
//     run alternately -pairs times, throughput and CPU per upload.
//
//     go run ./bench/replication -dir /tmp/repl [-size 512MiB] [-clients 8] [-body 256KiB] [-duration 30s] [-rate 0] [-runs 2] [-pairs 4]
//
// Everything shares one machine and one filesystem: the standby's
// fetching, hashing and syncs compete with the primary's uploads for the
// same cores and disk (and a chunk store's syncfs flushes both), so the
// figures are a lower bound for a standby on its own machine.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/mxcas/mxcas/bench/internal/command"
	"github.com/mxcas/mxcas/bench/internal/synstore"
	"github.com/mxcas/mxcas/bench/machine"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/replication"
)

const server = "bench.local"

// Purposes keep the random streams apart (randfill).
const (
	streamCatchUp = iota + 1
	streamSteady
)

type config struct {
	dir      string
	size     int64
	body     int
	clients  int
	duration time.Duration
	rate     float64
	runs     int
	pairs    int
}

func main() {
	command.SetupLog("replication")
	dir := flag.String("dir", "", "directory to measure in, on the disk under test (required; created if missing)")
	size := flag.String("size", "512MiB", "content loaded on the primary before the standby catches up")
	body := flag.String("body", "256KiB", "size of each upload")
	clients := flag.Int("clients", 8, "concurrent upload clients")
	duration := flag.Duration("duration", 30*time.Second, "length of the steady-state upload stream")
	rate := flag.Float64("rate", 0, "uploads per second of all clients together in the steady state (0: as fast as they can)")
	runs := flag.Int("runs", 2, "repetitions of the catch-up and steady-state measurements; the median is reported")
	pairs := flag.Int("pairs", 4, "alternating runs of the change log's cost, before and after (0: skip it)")
	flag.Parse()
	sz, err1 := synstore.ParseSize(*size)
	bd, err2 := synstore.ParseSize(*body)
	for _, err := range []error{err1, err2} {
		if err != nil {
			log.Print(err)
		}
	}
	command.CheckArgs(*dir != "" && err1 == nil && err2 == nil && bd <= 1<<30 && sz >= bd &&
		*clients >= 1 && *duration > 0 && *rate >= 0 && *runs >= 1 && *pairs >= 0)
	cfg := config{dir: command.WorkDir(*dir), size: sz, body: int(bd), clients: *clients, duration: *duration, rate: *rate, runs: *runs, pairs: *pairs}
	command.Run(func(ctx context.Context) error { return run(ctx, cfg) })
}

func run(ctx context.Context, cfg config) error {
	machine.Note()
	fmt.Printf("load:    %s (1, 5, 15 min) at the start\n", machine.Load())
	fmt.Printf("dir:     %s; %s bodies; catch-up of %s; steady state: %d clients for %s; %d runs (median); MB = 10^6 bytes\n\n",
		cfg.dir, fmtMiB(int64(cfg.body)), fmtMiB(cfg.size), cfg.clients, cfg.duration, cfg.runs)
	work, err := os.MkdirTemp(cfg.dir, "replication-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	cu := newCatchUpRows(cfg)
	st := newSteadyRows(cfg)
	for r := range cfg.runs {
		if err := cu.measure(ctx, cfg, work, r); err != nil {
			return err
		}
		if err := st.measure(ctx, cfg, work, r); err != nil {
			return err
		}
		log.Printf("run %d of %d done (load %s)", r+1, cfg.runs, machine.Load())
	}
	cu.print(cfg)
	st.print(cfg)
	if cfg.pairs > 0 {
		if err := logCost(ctx, cfg, work); err != nil {
			return err
		}
	}
	fmt.Printf("load:    %s (1, 5, 15 min) at the end\n", machine.Load())
	return nil
}

// pair is a primary store served over loopback HTTP and a standby store
// that can follow it.
type pair struct {
	primary, standby *media.Store
	dir, url         string
	srv              *http.Server
	done             chan struct{}
}

var secret = []byte("bench-replication-secret")

// openPair opens fresh primary and standby stores under parent and serves
// the primary's replication handler on 127.0.0.1:0.
func openPair(parent string) (*pair, error) {
	dir, err := os.MkdirTemp(parent, "pair-")
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	p := &pair{dir: dir, done: make(chan struct{})}
	p.primary, err = media.Open(media.Options{Dir: filepath.Join(dir, "primary"), Create: true, CountChunks: true, Logger: quiet})
	if err != nil {
		return nil, err
	}
	p.standby, err = media.Open(media.Options{Dir: filepath.Join(dir, "standby"), Create: true, CountChunks: true, Follower: true, Logger: quiet})
	if err != nil {
		p.close()
		return nil, err
	}
	h, err := replication.NewPrimary(replication.PrimaryOptions{Store: p.primary, Secret: secret, Logger: quiet, Done: p.done})
	if err != nil {
		p.close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.close()
		return nil, err
	}
	p.url = "http://" + ln.Addr().String()
	p.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed at close
	return p, nil
}

// follow starts a standby following p's primary; stop ends it and returns
// Run's error other than the cancellation.
func (p *pair) follow(ctx context.Context) (sb *replication.Standby, stop func() error, err error) {
	sb, err = replication.NewStandby(replication.StandbyOptions{Store: p.standby, Primary: p.url, Secret: secret, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- sb.Run(ctx) }()
	return sb, func() error {
		cancel()
		if err := <-errc; err != context.Canceled {
			return fmt.Errorf("standby: %w", err)
		}
		return nil
	}, nil
}

// waitHead waits until the standby's head reaches head, or ctx ends.
func (p *pair) waitHead(ctx context.Context, head uint64) error {
	for {
		ch := p.standby.HeadChanged()
		if p.standby.Head() >= head {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// close stops the server, closes both stores and removes their files.
func (p *pair) close() error {
	var err error
	if p.srv != nil {
		close(p.done)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = p.srv.Shutdown(ctx)
		cancel()
	}
	for _, s := range []*media.Store{p.primary, p.standby} {
		if s != nil {
			if cerr := s.Close(); err == nil {
				err = cerr
			}
		}
	}
	if rerr := os.RemoveAll(p.dir); err == nil {
		err = rerr
	}
	return err
}
