// Package s3gw runs the S3 server of the bench commands: a versitygw on its
// POSIX backend in a directory, on a loopback port, with a fixed access
// key. Every bucket is a directory of its root.
package s3gw

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// The gateway's root access key.
const (
	AccessKey = "mxcas-bench-key"
	SecretKey = "mxcas-bench-secret-0123456789"
)

// Flag defines the flag -versitygw, the binary to Start: by default
// $MXCAS_VERSITYGW, else versitygw in PATH.
func Flag() *string {
	bin := os.Getenv("MXCAS_VERSITYGW")
	if bin == "" {
		bin = "versitygw"
	}
	return flag.String("versitygw", bin, "versitygw binary ($MXCAS_VERSITYGW)")
}

// Gateway is a running versitygw.
type Gateway struct {
	Endpoint string // host:port, plain http
	Root     string // the POSIX backend's directory
	LogPath  string // its output: versitygw.log next to Root

	cmd *exec.Cmd
}

// Start starts bin serving root and returns once it accepts connections
// (bounded: 30 s). The gateway is killed when the bench exits, however it
// ends; Stop stops it before.
func Start(bin, root string) (*Gateway, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &Gateway{Endpoint: l.Addr().String(), Root: root, LogPath: filepath.Join(root, "..", "versitygw.log")}
	l.Close()
	g.cmd = exec.Command(bin, "--port", g.Endpoint, "posix", root)
	g.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey)
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logf, err := os.Create(g.LogPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := net.Dial("tcp", g.Endpoint)
		if err == nil {
			c.Close()
			return g, nil
		}
		if time.Now().After(deadline) {
			g.Stop()
			return nil, fmt.Errorf("%s on %s not listening after 30 s: %w", bin, g.Endpoint, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Pid returns the gateway's process ID.
func (g *Gateway) Pid() int { return g.cmd.Process.Pid }

// Stop kills the gateway and waits for it.
func (g *Gateway) Stop() {
	_ = g.cmd.Process.Kill()
	_ = g.cmd.Wait()
}

// NewBucket creates the empty bucket name (a directory, as the POSIX
// backend keeps them) and returns its directory.
func (g *Gateway) NewBucket(name string) (string, error) {
	dir := filepath.Join(g.Root, name)
	return dir, os.Mkdir(dir, 0o750)
}
