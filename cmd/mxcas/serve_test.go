package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// processBound is a safety net for a child process that hangs, not a speed
// check.
const processBound = 30 * time.Second

// server is a running `mxcas serve`.
type server struct {
	cmd  *exec.Cmd
	addr string
	log  *e2eLog
	done chan struct{} // closed when its stderr is drained
}

var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startServer starts `mxcas serve -config cfg` and returns once its log says
// it is listening.
func startServer(t *testing.T, ctx context.Context, cfg string) *server {
	t.Helper()
	cmd := exec.CommandContext(ctx, mxcasBinary(t), "serve", "-config", cfg)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, log: new(e2eLog), done: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			s.log.Write([]byte(sc.Text() + "\n"))
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case ready <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, pipe)
	}()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			<-s.done
			s.cmd.Wait()
		}
	})
	select {
	case s.addr = <-ready:
	case <-s.done:
		t.Fatalf("server exited before listening:\n%s", s.log)
	case <-ctx.Done():
		t.Fatalf("server not listening after %v:\n%s", processBound, s.log)
	}
	return s
}

// stop sends SIGTERM and returns the exit status.
func (s *server) stop(t *testing.T) int {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-s.done
	return s.exitStatus(t)
}

// exitStatus reaps the ended process and returns its exit status.
func (s *server) exitStatus(t *testing.T) int {
	t.Helper()
	err := s.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

func TestBackupWhileServing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), processBound)
	defer cancel()
	data := filepath.Join(t.TempDir(), "data")
	dest := filepath.Join(t.TempDir(), "backup")
	cfg := writeConfig(t, data)
	bodies := map[string][]byte{
		"empty":  {},
		"one":    content(10, 1),
		"small":  content(11, 1000),
		"medium": content(12, 300<<10),
		"large":  content(13, 3<<20),
		"again":  content(12, 300<<10), // the same object as medium
	}
	uploadMedia(t, data, bodies)

	srv := startServer(t, ctx, cfg)
	resp, err := http.Get("http://" + srv.addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("GET /healthz: %s %q", resp.Status, body)
	}
	if _, err := os.Stat(filepath.Join(data, adminFile)); err != nil {
		t.Errorf("the running server published no admin file: %v", err)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"backup", "-config", cfg, dest}, "backup complete: " + dest},
		{[]string{"fsck", "-config", cfg}, "healthy"},
		{[]string{"gc", "-config", cfg}, "removed 0 objects and 0 chunks"},
	} {
		code, out, stderr := runBinary(t, ctx, c.args...)
		if code != 0 || !strings.Contains(out, c.want) {
			t.Errorf("mxcas %s while serving: exit %d, stdout %q; want 0 and %q\nstderr:\n%s",
				c.args[0], code, out, c.want, stderr)
		}
		if !strings.Contains(stderr, "asking it") {
			t.Errorf("mxcas %s did not go through the running server:\n%s", c.args[0], stderr)
		}
	}

	if code := srv.stop(t); code != 0 {
		t.Errorf("server exit status %d after SIGTERM, want 0; log:\n%s", code, srv.log)
	}
	if _, err := os.Stat(filepath.Join(data, adminFile)); !os.IsNotExist(err) {
		t.Errorf("admin file left behind after the server stopped (stat: %v)", err)
	}
	if t.Failed() {
		t.Logf("server log:\n%s", srv.log)
	}

	checkStore(t, dest, bodies)

	// No server now: backup opens the store itself, and copies nothing new.
	code, out, stderr := runBinary(t, ctx, "backup", "-config", cfg, dest)
	if code != 0 || !strings.Contains(out, "copied 0 chunks") {
		t.Errorf("second backup: exit %d, stdout %q; want 0 and \"copied 0 chunks\"\nstderr:\n%s", code, out, stderr)
	}
	if strings.Contains(stderr, "asking it") {
		t.Errorf("second backup asked a server that no longer runs:\n%s", stderr)
	}
	checkStore(t, dest, bodies)
	checkStore(t, data, bodies)
}
