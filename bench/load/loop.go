package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/mxcas/mxcas/bench/internal/parallel"
	"github.com/mxcas/mxcas/bench/internal/proccpu"
)

// The download measurements are a closed loop like wrk's: conns keep-alive
// connections, each sending the same GET back to back a fixed number of
// times and reading every answer to its end before the next. The client is
// a few lines over a net.Conn rather than net/http's, so that on a small
// machine it takes little of the CPU the servers share with it.

// loopDownloads has conns connections download path n times each and
// returns requests per second and the server's CPU seconds per request.
// Every connection opens with one untimed request.
func loopDownloads(ctx context.Context, t *server, path string, size, conns, n int) (rate, cpu float64, err error) {
	addr := strings.TrimPrefix(t.Base, "http://")
	lc := make([]*loopConn, conns)
	defer func() {
		for _, c := range lc {
			if c != nil {
				c.conn.Close()
			}
		}
	}()
	for i := range lc {
		if lc[i], err = dialLoop(ctx, addr, t.Host, t.Token, path); err != nil {
			return 0, 0, err
		}
		if err := lc[i].get(size); err != nil {
			return 0, 0, err
		}
	}
	cpu0, err := proccpu.Seconds(t.pid)
	if err != nil {
		return 0, 0, err
	}
	d, err := parallel.Run(ctx, conns, func(ctx context.Context, i int) error {
		stop := context.AfterFunc(ctx, func() { lc[i].conn.Close() })
		defer stop()
		for range n {
			if err := lc[i].get(size); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	cpu1, err := proccpu.Seconds(t.pid)
	return float64(conns*n) / d.Seconds(), (cpu1 - cpu0) / float64(conns*n), err
}

// loopConn is one keep-alive connection and the request it repeats.
type loopConn struct {
	conn net.Conn
	rd   *bufio.Reader
	req  []byte
}

// dialLoop connects to addr and prepares a GET of path, with Host and a
// bearer token where host is not "" (mxcas) and Host addr otherwise.
func dialLoop(ctx context.Context, addr, host, token, path string) (*loopConn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	var req bytes.Buffer
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\n", path)
	if host != "" {
		fmt.Fprintf(&req, "Host: %s\r\nAuthorization: Bearer %s\r\n", host, token)
	} else {
		fmt.Fprintf(&req, "Host: %s\r\n", addr)
	}
	req.WriteString("\r\n")
	return &loopConn{conn: conn, rd: bufio.NewReaderSize(conn, 64<<10), req: req.Bytes()}, nil
}

// get sends the request once and reads the answer, which must be 200 with
// a Content-Length of size, and its body.
func (c *loopConn) get(size int) error {
	if _, err := c.conn.Write(c.req); err != nil {
		return err
	}
	length, err := c.readHead()
	if err != nil {
		return err
	}
	if length != int64(size) {
		return fmt.Errorf("GET: Content-Length %d, want %d", length, size)
	}
	if _, err := c.rd.Discard(size); err != nil {
		return fmt.Errorf("GET: reading the body: %w", err)
	}
	return nil
}

// readHead reads a status line and headers and returns the Content-Length;
// anything but 200 is an error.
func (c *loopConn) readHead() (int64, error) {
	status, err := c.rd.ReadSlice('\n')
	if err != nil {
		return 0, fmt.Errorf("GET: reading the status line: %w", err)
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200 ")) {
		return 0, fmt.Errorf("GET: %q", bytes.TrimSpace(status))
	}
	length := int64(-1)
	for {
		line, err := c.rd.ReadSlice('\n')
		if err != nil {
			return 0, fmt.Errorf("GET: reading headers: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, _ := bytes.Cut(line, []byte(":"))
		if string(bytes.ToLower(k)) == "content-length" {
			if length, err = strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64); err != nil {
				return 0, fmt.Errorf("GET: Content-Length %q", v)
			}
		}
	}
	if length < 0 {
		return 0, fmt.Errorf("GET: no Content-Length")
	}
	return length, nil
}
