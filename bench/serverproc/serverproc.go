// Package serverproc runs mxcas for the bench commands that measure it
// through its HTTP API: it builds ./cmd/mxcas of this module, starts it on a
// free loopback port with a static access token, waits for /readyz, reads
// its memory from /proc and stops it with SIGTERM.
package serverproc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mxcas/mxcas/bench/internal/module"
)

const (
	// ServerName is the one homeserver the configuration names; requests
	// send it as their Host.
	ServerName = "localhost"
	// Token is a static access token of @bench:localhost.
	Token = "bench-token"
)

// Build builds ./cmd/mxcas of this module into dir and returns its path.
func Build(dir string) (string, error) {
	root, err := module.Root()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "mxcas")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/mxcas")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/mxcas: %w", err)
	}
	return bin, nil
}

// Child is a server process of a benchmark.
type Child struct {
	Name    string
	Addr    string // host:port it listens on, where known
	LogPath string // its output, where it goes to a file

	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	err     error         // its exit status, after done
	stopped bool
}

// Start starts cmd as a child that is killed when the benchmark exits,
// however it ends.
func Start(name string, cmd *exec.Cmd) (*Child, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &Child{Name: name, cmd: cmd, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	return c, nil
}

// Pid returns the process ID.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Stop sends SIGTERM and waits for the process; an exit other than a clean
// one is an error. Later calls do nothing.
func (c *Child) Stop() error {
	if c.stopped {
		return nil
	}
	c.stopped = true
	select {
	case <-c.done:
		return fmt.Errorf("%s exited early: %v", c.Name, c.err)
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(45 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%s did not stop within 45s of SIGTERM", c.Name)
	}
	return c.err
}

// StopClean stops the child as Stop does, then fails if its log at
// LogPath has level=ERROR lines.
func (c *Child) StopClean() error {
	if err := c.Stop(); err != nil {
		return fmt.Errorf("%s: %w (see %s)", c.Name, err, c.LogPath)
	}
	if n, first := LogErrors(c.LogPath); n > 0 {
		return fmt.Errorf("%s logged %d errors, the first: %s", c.Name, n, first)
	}
	return nil
}

// StartMxcas writes DIR/mxcas.toml on a free port, with data in data and
// extra (TOML tables, may be empty) appended, and starts bin serve, its
// output in DIR/mxcas.log; it returns once /readyz answers 200 (the store is open).
func StartMxcas(ctx context.Context, dir, bin, data, extra string) (*Child, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`[server]
listen = %q
data_dir = %q
max_upload_bytes = 104857600
[[homeserver]]
name = %q
client_api = "http://127.0.0.1:9"
static_tokens = { %q = "@bench:localhost" }
`, addr, data, ServerName, Token) + extra
	return StartMxcasConfig(ctx, dir, bin, addr, conf)
}

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// StartMxcasConfig writes conf, a whole configuration that listens on addr,
// to DIR/mxcas.toml and starts bin serve, its output in DIR/mxcas.log; it
// returns once /readyz answers 200 (the store is open) on addr.
func StartMxcasConfig(ctx context.Context, dir, bin, addr, conf string) (*Child, error) {
	confPath := filepath.Join(dir, "mxcas.toml")
	if err := os.WriteFile(confPath, []byte(conf), 0o640); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "mxcas.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(bin, "serve", "-config", confPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	c, err := Start("mxcas", cmd)
	if err != nil {
		return nil, err
	}
	c.Addr, c.LogPath = addr, logPath
	cl := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		select {
		case <-c.done:
			return nil, fmt.Errorf("mxcas exited at start: %v (see %s)", c.err, logPath)
		case <-ctx.Done():
			c.Stop()
			return nil, ctx.Err()
		default:
		}
		resp, err := cl.Get("http://" + addr + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.Stop()
	return nil, fmt.Errorf("mxcas: /readyz did not answer 200 within 30s (see %s)", logPath)
}

// Memory returns VmRSS and VmHWM of process pid in MB (10^6 bytes).
func Memory(pid int) (rss, hwm float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status: %s: %w", pid, line, err)
		}
		if k == "VmRSS" {
			rss = float64(kb) * 1024 / 1e6
		} else {
			hwm = float64(kb) * 1024 / 1e6
		}
	}
	return rss, hwm, nil
}

// LogErrors counts level=ERROR lines in the server's log at path.
func LogErrors(path string) (n int, first string) {
	f, err := os.Open(path)
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "level=ERROR") {
			if n == 0 {
				first = sc.Text()
			}
			n++
		}
	}
	return n, first
}
