package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mxcas/mxcas/cas/s3store"
)

// gateway is a versitygw this command started on its POSIX backend in a
// directory, on a loopback port; every bucket is a directory of root.
type gateway struct {
	endpoint, root string
	cmd            *exec.Cmd
	buckets        int
}

const (
	accessKey = "mxcas-bench-key"
	secretKey = "mxcas-bench-secret-0123456789"
)

// startGateway starts bin serving root and returns once it accepts
// connections (bounded: 30 s).
func startGateway(bin, root string) (*gateway, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &gateway{endpoint: l.Addr().String(), root: root}
	l.Close()
	g.cmd = exec.Command(bin, "--port", g.endpoint, "posix", root)
	g.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+accessKey, "ROOT_SECRET_KEY="+secretKey)
	logf, err := os.Create(filepath.Join(root, "..", "versitygw.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := net.Dial("tcp", g.endpoint)
		if err == nil {
			c.Close()
			return g, nil
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, fmt.Errorf("%s on %s not listening after 30 s: %w", bin, g.endpoint, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (g *gateway) stop() {
	_ = g.cmd.Process.Kill()
	_ = g.cmd.Wait()
}

// bucket is an empty bucket of the gateway, with its directory.
type bucket struct{ name, dir string }

// newBucket creates a fresh bucket (a directory, as the POSIX backend
// keeps them).
func (g *gateway) newBucket() (bucket, error) {
	g.buckets++
	b := bucket{name: fmt.Sprintf("bench-%d", g.buckets)}
	b.dir = filepath.Join(g.root, b.name)
	return b, os.Mkdir(b.dir, 0o750)
}

// open opens an s3store on bucket b whose requests c counts.
func (g *gateway) open(b bucket, c *counter) (*s3store.Store, error) {
	return s3store.Open(s3store.Options{
		Endpoint: g.endpoint, Bucket: b.name, AccessKey: accessKey, SecretKey: secretKey,
		Transport: c,
	})
}

// counter is an http.RoundTripper that counts the requests it carries by
// kind, and the bytes PUT.
type counter struct {
	rt http.RoundTripper

	mu       sync.Mutex
	n        requests
	putBytes int64
}

// requests are counts of S3 requests by kind.
type requests struct{ head, put, get, list, other int64 }

func (r requests) total() int64 { return r.head + r.put + r.get + r.list + r.other }

func (r requests) sub(o requests) requests {
	return requests{r.head - o.head, r.put - o.put, r.get - o.get, r.list - o.list, r.other - o.other}
}

func newCounter() *counter {
	return &counter{rt: http.DefaultTransport.(*http.Transport).Clone()}
}

func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	switch req.Method {
	case http.MethodHead:
		c.n.head++
	case http.MethodPut:
		c.n.put++
		// Without TLS minio-go signs the body in aws-chunked frames:
		// the content is the decoded length.
		n := req.ContentLength
		if d, err := strconv.ParseInt(req.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64); err == nil {
			n = d
		}
		c.putBytes += n
	case http.MethodGet:
		// Path style: /bucket/key for an object, /bucket/ for a listing.
		if strings.Count(strings.Trim(req.URL.Path, "/"), "/") == 0 {
			c.n.list++
		} else {
			c.n.get++
		}
	default:
		c.n.other++
	}
	c.mu.Unlock()
	return c.rt.RoundTrip(req)
}

// snapshot returns the counts so far and the bytes PUT.
func (c *counter) snapshot() (requests, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, c.putBytes
}
