package testkit

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// S3 is a real S3 server for a test: versitygw on its POSIX backend in a
// temp directory, reached on a loopback port. Each bucket is a directory
// of Root; object a/b/c of bucket B is the file Root/B/a/b/c.
type S3 struct {
	Endpoint  string // host:port
	Bucket    string // created empty
	AccessKey string
	SecretKey string
	Root      string

	bin string
	t   testing.TB
	mu  sync.Mutex
	cmd *exec.Cmd
	log *bytes.Buffer
}

// StartS3 starts versitygw (the binary named by MXCAS_VERSITYGW, else
// versitygw in PATH; scripts/test builds it at a pinned version) with one
// empty bucket, and stops it when the test ends. Without the binary the
// test is skipped, or fails when MXCAS_REQUIRE_S3 is set.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	bin := os.Getenv("MXCAS_VERSITYGW")
	if bin == "" {
		bin = "versitygw"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		if os.Getenv("MXCAS_REQUIRE_S3") != "" {
			t.Fatalf("versitygw required: %v", err)
		}
		t.Skipf("skipped: versitygw not found (scripts/test builds it; or set MXCAS_VERSITYGW): %v", err)
	}
	root := t.TempDir()
	s := &S3{Bucket: "mxcas-test", AccessKey: "mxcas-test-key", SecretKey: "mxcas-test-secret-0123456789", Root: root, bin: path, t: t}
	if err := os.Mkdir(filepath.Join(root, s.Bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Endpoint = l.Addr().String()
	l.Close()
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start starts the server (again, after Stop) on the same port and
// directory, and returns once it accepts connections.
func (s *S3) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	s.log = &bytes.Buffer{}
	cmd := exec.Command(s.bin, "--port", s.Endpoint, "posix", s.Root)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start versitygw: %v", err)
	}
	s.cmd = cmd
	// Readiness: the port accepts a connection (bounded: 30 s).
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := net.Dial("tcp", s.Endpoint)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("versitygw on %s not listening after 30 s: %v\n%s", s.Endpoint, err, s.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills the server (as a crash would) and waits for it to exit.
func (s *S3) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// ObjectPath is the file holding object key of the bucket.
func (s *S3) ObjectPath(key string) string {
	return filepath.Join(s.Root, s.Bucket, filepath.FromSlash(key))
}

// Objects lists the object keys of the bucket (files of its directory,
// versitygw's own hidden ones left out).
func (s *S3) Objects() []string {
	s.t.Helper()
	var keys []string
	dir := filepath.Join(s.Root, s.Bucket)
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != dir && filepath.Base(p)[0] == '.' {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			keys = append(keys, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return keys
}
