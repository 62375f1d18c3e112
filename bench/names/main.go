// Command names measures the memory of mxcas serve while clients ask for
// media of many distinct remote server names, each unreachable: the caches
// and connection state kept per name must stay bounded.
//
//	go run ./bench/names -dir /tmp/names                 # this tree's mxcas
//	go run ./bench/names -dir /tmp/names -bin OLD/mxcas  # another build, to compare
//
// Names are h<N>.onion: Go's resolver refuses .onion at once (RFC 7686), so
// each request runs the whole discovery (.well-known, SRV, port 8448) and
// fails fast with 502, without waiting on DNS.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxcas/mxcas/bench/internal/command"
	"github.com/mxcas/mxcas/bench/machine"
	"github.com/mxcas/mxcas/bench/serverproc"
)

func main() {
	command.SetupLog("names")
	dir := flag.String("dir", "", "directory to work in (required; created if missing)")
	bin := flag.String("bin", "", "mxcas binary to measure (default: build ./cmd/mxcas)")
	n := flag.Int("n", 60000, "distinct server names, asked for in steps of -step")
	step := flag.Int("step", 20000, "names between two memory readings")
	c := flag.Int("c", 16, "concurrent clients")
	flag.Parse()
	command.CheckArgs(*dir != "" && *step > 0)
	work := command.WorkDir(*dir)
	command.Run(func(ctx context.Context) error { return run(ctx, work, *bin, *n, *step, *c) })
}

func run(ctx context.Context, dir, bin string, n, step, c int) error {
	child, addr, bin, err := startServer(ctx, dir, bin)
	if err != nil {
		return err
	}
	defer child.Stop()

	machine.Note()
	fmt.Printf("server:  %s\n%d concurrent clients, names h<N>.onion; MB = 10^6 bytes\n\n", bin, c)
	fmt.Printf("%-8s %10s %10s %10s\n", "names", "VmRSS MB", "VmHWM MB", "req/s")
	if err := printMemory(child, 0, 0); err != nil {
		return err
	}
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c}, Timeout: 2 * time.Minute}
	for done := 0; done < n; done += step {
		t0 := time.Now()
		codes, err := ask(cl, addr, done, min(step, n-done), c)
		if err != nil {
			return err
		}
		if codes[http.StatusBadGateway] == 0 {
			return fmt.Errorf("no 502 among the answers %v: the names were not looked up", codes)
		}
		if err := printMemory(child, done+min(step, n-done), float64(min(step, n-done))/time.Since(t0).Seconds()); err != nil {
			return err
		}
	}
	return nil
}

// startServer starts bin (built from this module into dir when empty) on
// a fresh data directory and signing key in dir, on a free address; it
// returns the process, its address and the binary.
func startServer(ctx context.Context, dir, bin string) (*serverproc.Child, string, string, error) {
	if bin == "" {
		var err error
		if bin, err = serverproc.Build(dir); err != nil {
			return nil, "", bin, err
		}
	}
	key := filepath.Join(dir, "signing.key")
	os.Remove(key)
	if out, err := exec.Command(bin, "keygen", key).CombinedOutput(); err != nil {
		return nil, "", bin, fmt.Errorf("keygen: %v: %s", err, out)
	}
	data := filepath.Join(dir, "data")
	os.RemoveAll(data)
	addr, err := serverproc.FreeAddr()
	if err != nil {
		return nil, "", bin, err
	}
	conf := fmt.Sprintf(`[server]
listen = %q
data_dir = %q
soft_memory_limit = 0
[[homeserver]]
name = %q
client_api = "http://127.0.0.1:9"
signing_key = %q
static_tokens = { %q = "@bench:localhost" }
`, addr, data, serverproc.ServerName, key, serverproc.Token)
	child, err := serverproc.StartMxcasConfig(ctx, dir, bin, addr, conf)
	return child, addr, bin, err
}

// printMemory prints one line of the table: the names asked for so far,
// the server's memory and the rate of the last step.
func printMemory(child *serverproc.Child, names int, rate float64) error {
	rss, hwm, err := serverproc.Memory(child.Pid())
	if err != nil {
		return err
	}
	fmt.Printf("%-8d %10.1f %10.1f %10.0f\n", names, rss, hwm, rate)
	return nil
}

// ask downloads media of the names h<from>.onion to h<from+count-1>.onion
// from c clients and counts the answers by status.
func ask(cl *http.Client, addr string, from, count, c int) (map[int]int, error) {
	var next atomic.Int64
	next.Store(int64(from) - 1)
	var mu sync.Mutex
	codes := map[int]int{}
	var firstErr error
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i >= int64(from+count) {
					return
				}
				req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/_matrix/client/v1/media/download/h%d.onion/x", addr, i), nil)
				req.Host = serverproc.ServerName
				req.Header.Set("Authorization", "Bearer "+serverproc.Token)
				resp, err := cl.Do(req)
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
				} else {
					codes[resp.StatusCode]++
				}
				mu.Unlock()
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
	return codes, firstErr
}
