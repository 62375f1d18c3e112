package replication

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/media"
)

var (
	// ErrProtocol means the primary's answer breaks the protocol (a frame
	// for another chunk, a gap in the changes, a malformed body).
	ErrProtocol = errors.New("replication: protocol violation by the primary")
	// ErrChunkUnavailable means the primary does not hold a chunk intact.
	// It wraps cas.ErrNotFound, as a cas.Reader's missing chunk does.
	ErrChunkUnavailable = fmt.Errorf("replication: chunk unavailable on the primary: %w", cas.ErrNotFound)
)

// maxChunkLen bounds one chunk frame the client accepts: far above any
// chunker's Max, it keeps a broken peer from making us allocate without
// bound.
const maxChunkLen = 64 << 20

// maxJSONAnswer bounds a JSON answer the client reads: the changes
// endpoint's 16 MiB of operations, in base64, with room to spare.
const maxJSONAnswer = 32 << 20

// client signs and sends requests to one peer's replication listener.
type client struct {
	base   string // scheme://host[:port]
	secret []byte
	http   *http.Client
	now    func() time.Time
}

// parseBase checks a peer's base URL: http or https, a host, no path,
// query or fragment (the request line must be the signed path).
func parseBase(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("replication: primary URL %q: %w", base, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("replication: primary URL %q: want http(s)://host[:port] with no path", base)
	}
	return u.Scheme + "://" + u.Host, nil
}

// defaultHTTPClient has timeouts for connecting and for the answer's
// headers (above the long-poll's longest wait); bodies are bounded by the
// request's context.
func defaultHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: maxWait + 30*time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
	}}
}

// do sends a signed request for pathQuery and returns the response when
// its status is 200; otherwise an error (ErrUnauthorized for 401,
// ErrTrimmed for 410).
func (c *client) do(ctx context.Context, method, pathQuery string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+pathQuery, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", authorization(c.secret, method, req.URL.RequestURI(), c.now(), body))
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	var e errorBody
	json.NewDecoder(io.LimitReader(resp.Body, 4<<10)).Decode(&e)
	msg := e.Message
	if msg == "" {
		msg = resp.Status
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return nil, fmt.Errorf("%w: %s", ErrUnauthorized, msg)
	case http.StatusGone:
		return nil, fmt.Errorf("%w: %s", ErrTrimmed, msg)
	case http.StatusConflict:
		return nil, fmt.Errorf("%w: %s", ErrDiverged, msg)
	}
	return nil, fmt.Errorf("replication: %s %s: %s: %s", method, pathQuery, resp.Status, msg)
}

// getJSON does a GET and decodes its JSON answer into v.
func (c *client) getJSON(ctx context.Context, pathQuery string, v any) error {
	resp, err := c.do(ctx, http.MethodGet, pathQuery, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJSONAnswer)).Decode(v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrProtocol, pathQuery, err)
	}
	return nil
}

// changes asks for up to limit changes after seq, waiting up to wait for
// one; digest (when not empty) is the standby's digest of change after, for
// the primary to check their histories agree.
func (c *client) changes(ctx context.Context, after uint64, digest string, limit int, wait time.Duration) (changesBody, error) {
	var b changesBody
	q := fmt.Sprintf("%s?after=%d&limit=%d&wait_ms=%d", pathChanges, after, limit, wait.Milliseconds())
	if digest != "" {
		q += "&after_digest=" + digest
	}
	err := c.getJSON(ctx, q, &b)
	return b, err
}

// fetchChunks fetches hs (at most maxChunksPerRequest) and calls fn with
// each, in order, its bytes checked against its hash: data is nil when the
// primary does not hold the chunk intact. alloc gives the buffer for a
// chunk of n bytes (nil: a new one). A frame that is not the chunk asked
// for, or whose bytes do not hash to it, ends the fetch with an error
// wrapping ErrProtocol or cas.ErrCorrupt; an error from fn ends it too.
func (c *client) fetchChunks(ctx context.Context, hs []cas.Hash, alloc func(n int) []byte, fn func(h cas.Hash, data []byte) error) error {
	body := make([]byte, 0, len(hs)*cas.HashSize)
	for _, h := range hs {
		body = append(body, h[:]...)
	}
	resp, err := c.do(ctx, http.MethodPost, pathChunks, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	var header [frameHeaderLen]byte
	for _, want := range hs {
		if _, err := io.ReadFull(r, header[:]); err != nil {
			return fmt.Errorf("replication: read frame of chunk %s: %w", want.Short(), err)
		}
		if got := cas.Hash(header[:cas.HashSize]); got != want {
			return fmt.Errorf("%w: frame for chunk %s where %s was asked", ErrProtocol, got.Short(), want.Short())
		}
		n := binary.BigEndian.Uint32(header[cas.HashSize:])
		if n == unavailableLen {
			if err := fn(want, nil); err != nil {
				return err
			}
			continue
		}
		if n > maxChunkLen {
			return fmt.Errorf("%w: chunk %s of %d bytes", ErrProtocol, want.Short(), n)
		}
		var data []byte
		if alloc != nil {
			data = alloc(int(n))
		}
		if cap(data) < int(n) {
			data = make([]byte, n)
		}
		data = data[:n]
		if _, err := io.ReadFull(r, data); err != nil {
			return fmt.Errorf("replication: read chunk %s: %w", want.Short(), err)
		}
		if cas.Sum(data) != want {
			return fmt.Errorf("replication: chunk %s from the primary: %w", want.Short(), cas.ErrCorrupt)
		}
		if err := fn(want, data); err != nil {
			return err
		}
	}
	return nil
}

// ChunkSource reads chunks from a live peer's replication listener (the
// chunks endpoint, doc.go), each checked against its hash. It implements
// cas.Reader, so media's repair can read from a peer as from a directory.
// It is safe for concurrent use.
type ChunkSource struct {
	c       client
	baseErr error
	// Timeout bounds one ReadChunk (default 2 minutes).
	Timeout time.Duration
}

var _ cas.Reader = (*ChunkSource)(nil)

// NewChunkSource returns a ChunkSource for the peer at base
// (http(s)://host:port), signing with secret; client nil: a default with
// sane timeouts. A bad base or secret makes every read fail with the
// reason.
func NewChunkSource(base string, secret []byte, client *http.Client) *ChunkSource {
	b, err := parseBase(base)
	if err == nil {
		err = checkSecret(secret)
	}
	if client == nil {
		client = defaultHTTPClient()
	}
	return &ChunkSource{c: clientFor(b, secret, client, nil), baseErr: err, Timeout: 2 * time.Minute}
}

// Err is why the source cannot work (a bad base URL or secret), or nil.
func (s *ChunkSource) Err() error { return s.baseErr }

var _ media.ContextChunkReader = (*ChunkSource)(nil)

func clientFor(base string, secret []byte, hc *http.Client, now func() time.Time) client {
	if now == nil {
		now = time.Now
	}
	return client{base: base, secret: secret, http: hc, now: now}
}

// ReadChunk fetches chunk h (into buf when it fits), checked against h:
// an error wrapping cas.ErrNotFound (ErrChunkUnavailable) when the peer
// does not hold it intact, cas.ErrCorrupt when the bytes received do not
// hash to h.
func (s *ChunkSource) ReadChunk(h cas.Hash, buf []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.Timeout)
	defer cancel()
	return s.ReadChunkContext(ctx, h, buf)
}

// ReadChunkContext is ReadChunk bounded by ctx (and Timeout): media's read
// repair gives it the read's deadline (media.ContextChunkReader).
func (s *ChunkSource) ReadChunkContext(ctx context.Context, h cas.Hash, buf []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	var out []byte
	err := s.ReadChunks(ctx, []cas.Hash{h}, func(n int) []byte { return buf }, func(_ cas.Hash, data []byte) error {
		out = data
		return nil
	})
	return out, err
}

// ReadChunks fetches hs, at most 256 per request, calling fn for each in
// order with its verified bytes; alloc as for ReadChunk's buf (nil: new
// buffers). A chunk the peer does not hold intact ends it with
// ErrChunkUnavailable.
func (s *ChunkSource) ReadChunks(ctx context.Context, hs []cas.Hash, alloc func(n int) []byte, fn func(h cas.Hash, data []byte) error) error {
	if s.baseErr != nil {
		return s.baseErr
	}
	for len(hs) > 0 {
		n := min(len(hs), maxChunksPerRequest)
		err := s.c.fetchChunks(ctx, hs[:n], alloc, func(h cas.Hash, data []byte) error {
			if data == nil {
				return fmt.Errorf("%w: %s", ErrChunkUnavailable, h)
			}
			return fn(h, data)
		})
		if err != nil {
			return err
		}
		hs = hs[n:]
	}
	return nil
}
