package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/mxcas/mxcas/bench/internal/s3gw"
	"github.com/mxcas/mxcas/cas/s3store"
)

// gateway is the versitygw this command started, with the buckets made
// so far.
type gateway struct {
	*s3gw.Gateway
	buckets int
}

// bucket is an empty bucket of the gateway, with its directory.
type bucket struct{ name, dir string }

// newBucket creates a fresh bucket (a directory, as the POSIX backend
// keeps them).
func (g *gateway) newBucket() (bucket, error) {
	g.buckets++
	b := bucket{name: fmt.Sprintf("bench-%d", g.buckets)}
	var err error
	b.dir, err = g.NewBucket(b.name)
	return b, err
}

// open opens an s3store on bucket b whose requests c counts.
func (g *gateway) open(b bucket, c *counter) (*s3store.Store, error) {
	return s3store.Open(s3store.Options{
		Endpoint: g.Endpoint, Bucket: b.name, AccessKey: s3gw.AccessKey, SecretKey: s3gw.SecretKey,
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
