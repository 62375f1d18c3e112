package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/media/mediatest"
)

// slowBound is a safety net for the server's reaction to a slow peer (a
// window of 1 or 2 s in these tests), not a speed check.
const slowBound = 20 * time.Second

// waitFor waits until one line of the log holds every one of subs, or
// bound passes; it reports whether such a line came.
func (l *e2eLog) waitFor(bound time.Duration, subs ...string) bool {
	timer := time.NewTimer(bound)
	defer timer.Stop()
	for {
		l.mu.Lock()
		for _, line := range strings.Split(l.b.String(), "\n") {
			all := true
			for _, s := range subs {
				all = all && strings.Contains(line, s)
			}
			if all {
				l.mu.Unlock()
				return true
			}
		}
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			return false
		}
	}
}

// slowPeers sets a minimum rate of 1000 bytes/s over a 1 s window.
func slowPeers(c *config.Config) {
	c.Server.MinTransferRate = 1000
	c.Server.TransferWindow = config.Duration{Duration: time.Second}
}

// pacedReader hands out data piece bytes at a time, one piece per tick:
// a client sending at a steady rate.
type pacedReader struct {
	data  []byte
	piece int
	tick  *time.Ticker
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if len(p.data) == 0 {
		p.tick.Stop()
		return 0, io.EOF
	}
	<-p.tick.C
	n := copy(b[:min(len(b), p.piece)], p.data)
	p.data = p.data[n:]
	return n, nil
}

// A request body trickling below the minimum rate is cut off (408, then
// the connection closes) and stores nothing; an upload above the rate but
// lasting two windows completes (a fixed deadline would cut it).
func TestE2ESlowUpload(t *testing.T) {
	t.Parallel()
	s := startE2E(t, func(c *config.Config) {
		slowPeers(c)
		c.Server.TransferWindow = config.Duration{Duration: 2 * time.Second}
	})

	// 1000 bytes every 100 ms: 10 kB/s for 4 s, two windows of 2 s, each
	// needing 2000 bytes (so a 1.8 s stall of this process is tolerated).
	slowBody := content(1200, 40000)
	slowDone := make(chan error, 1)
	var slowID string
	go func() {
		req, err := s.request(t.Context(), http.MethodPost, hostA, "/_matrix/media/v3/upload?filename=slow.bin", aliceToken,
			&pacedReader{data: slowBody, piece: 1000, tick: time.NewTicker(100 * time.Millisecond)})
		if err != nil {
			slowDone <- err
			return
		}
		req.ContentLength = int64(len(slowBody))
		r, err := s.roundTrip(req)
		if err != nil {
			slowDone <- err
			return
		}
		if r.Status != http.StatusOK {
			slowDone <- fmt.Errorf("%s: status %d, body %s", r.what, r.Status, short(r.Body))
			return
		}
		slowID, _ = strings.CutPrefix(string(r.Body), `{"content_uri":"mxc://a.test/`)
		slowID, _, _ = strings.Cut(slowID, `"`)
		slowDone <- nil
	}()

	// 5 bytes every 100 ms of a declared 100000: 50 bytes/s.
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := "POST /_matrix/media/v3/upload?filename=trickle.bin HTTP/1.1\r\n" +
		"Host: a.test\r\nAuthorization: Bearer " + aliceToken + "\r\n" +
		"Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte("abcde")); err != nil {
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-trickled }()

	conn.SetReadDeadline(time.Now().Add(slowBound))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a trickling upload still has its connection after %v", slowBound)
	}
	if err == nil {
		// The answer, when it gets through before the reset, is 408.
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), `"errcode":"M_UNKNOWN"`) {
			t.Errorf("trickling upload: status %d, body %s; want 408 M_UNKNOWN", resp.StatusCode, short(b))
		}
		_, err = br.ReadByte()
	}
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("trickling upload: connection not closed by the server (read: %v)", err)
	}
	if !s.log.waitFor(slowBound, "minimum transfer rate", `what="request body"`) {
		t.Errorf("the server did not log closing the trickling upload")
	}

	select {
	case err := <-slowDone:
		if err != nil {
			t.Fatalf("slow upload above the minimum rate: %v", err)
		}
	case <-time.After(slowBound):
		t.Fatalf("slow upload not answered after %v", slowBound)
	}
	wantBytes(t, s.download(t, hostA, hostA, slowID, aliceToken), slowBody)

	s.stop(t)
	if rep := mediatest.FsckDir(t, s.dataDir); rep.Media != 1 {
		t.Errorf("store holds %d media, want 1 (the trickling upload must leave no record)", rep.Media)
	}
}

// stallSize is a download large enough to fill the server's socket send
// buffer (its largest size, tcp_wmem's third figure) and the client's
// receive buffer several times over.
func stallSize(t *testing.T) int {
	wmem := 4 << 20
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 3 {
			if v, err := strconv.Atoi(f[2]); err == nil {
				wmem = v
			}
		}
	}
	if wmem > 32<<20 {
		t.Skipf("tcp_wmem allows %d-byte send buffers: a stalled download would need a huge file", wmem)
	}
	return 2*wmem + 4<<20
}

// A download whose client stops reading is closed by the server: after it
// logs giving up, the client, reading again, gets the rest of what was in
// flight and then the end, well short of the file. Meanwhile a download
// waiting longer than two windows for a created ID's content is not cut:
// the write guard starts at its first byte.
func TestE2EStalledDownload(t *testing.T) {
	t.Parallel()
	s := startE2E(t, slowPeers)
	size := stallSize(t)
	body := content(1300, size)
	id := s.upload(t, hostA, aliceToken, "big.bin", "", body)

	start := time.Now()
	pendingID := createMedia(t, s, aliceToken)
	pendingBody := content(1301, 5000)
	polled := make(chan error, 1)
	go func() {
		req, err := s.request(t.Context(), http.MethodGet, hostA,
			"/_matrix/client/v1/media/download/a.test/"+pendingID+"?timeout_ms=30000", aliceToken, nil)
		if err != nil {
			polled <- err
			return
		}
		r, err := s.roundTrip(req)
		if err == nil && (r.Status != http.StatusOK || !bytes.Equal(r.Body, pendingBody)) {
			err = fmt.Errorf("%s: status %d, %d bytes; want 200 and the %d bytes put", r.what, r.Status, len(r.Body), len(pendingBody))
		}
		polled <- err
	}()
	defer func() {
		// The content comes 2.5 s (two and a half windows) after the wait
		// began: the test's input, not a synchronisation.
		<-time.After(time.Until(start.Add(2500 * time.Millisecond)))
		r := s.do(t, http.MethodPut, hostA, "/_matrix/media/v3/upload/a.test/"+pendingID, aliceToken, pendingBody, nil)
		wantStatus(t, r, http.StatusOK)
		select {
		case err := <-polled:
			if err != nil {
				t.Errorf("download waiting for content: %v", err)
			}
			// (The client retries a GET cut before any byte: the log tells.)
			for _, line := range strings.Split(s.log.String(), "\n") {
				if strings.Contains(line, "minimum transfer rate") && strings.Contains(line, pendingID) {
					t.Errorf("download waiting for content was cut: %s", line)
				}
			}
		case <-time.After(slowBound):
			t.Errorf("download waiting for content not answered %v after the content came", slowBound)
		}
	}()

	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET /_matrix/client/v1/media/download/a.test/" + id + " HTTP/1.1\r\n" +
		"Host: a.test\r\nAuthorization: Bearer " + aliceToken + "\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(slowBound))
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(size) {
		t.Fatalf("download: status %d, length %d; want 200, %d", resp.StatusCode, resp.ContentLength, size)
	}

	// The client reads nothing more.
	if !s.log.waitFor(slowBound, "minimum transfer rate", "what=response") {
		t.Fatalf("a download whose client stopped reading was not closed after %v", slowBound)
	}
	conn.SetReadDeadline(time.Now().Add(slowBound))
	n, err := io.Copy(io.Discard, resp.Body)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after the server gave up (read %d bytes)", n)
	}
	if n >= int64(size) {
		t.Errorf("client read all %d bytes: the server did not cut the stalled download", n)
	}
}

// With max_connections = 2, a third connection is not served while two
// are open, and is once one closes.
func TestE2EConnectionCap(t *testing.T) {
	t.Parallel()
	s := startE2E(t, func(c *config.Config) { c.Server.MaxConnections = 2 })
	const healthz = "GET /healthz HTTP/1.1\r\nHost: a.test\r\n\r\n"
	dial := func() (net.Conn, *bufio.Reader) {
		t.Helper()
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write([]byte(healthz)); err != nil {
			t.Fatal(err)
		}
		return c, bufio.NewReader(c)
	}
	served := func(c net.Conn, br *bufio.Reader) error {
		c.SetReadDeadline(time.Now().Add(slowBound))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	// Two kept-alive connections, each served once.
	var open []net.Conn
	for range 2 {
		c, br := dial()
		if err := served(c, br); err != nil {
			t.Fatalf("connection %d: %v", len(open)+1, err)
		}
		open = append(open, c)
	}

	third, br := dial()
	// Nothing may come while two are open. (The wait can only make a
	// broken cap look right on a stalled machine, never fail a good one.)
	third.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := br.Peek(1); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("third connection served while two were open (read: %v)", err)
	}
	open[0].Close()
	if err := served(third, br); err != nil {
		t.Fatalf("third connection after one closed: %v", err)
	}
}

func TestFitConnections(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	for _, c := range []struct {
		configured int
		nofile     uint64
		want       int
	}{
		{4096, 1 << 20, 4096},
		{4096, 20000, 4096},
		{4096, 4096, 1024}, // (4096 - 2048) / 2
		{100, 4096, 100},
		{4096, 2048, 16}, // nothing left after the reserve: a floor
		{8, 1024, 8},
	} {
		if got := fitConnections(c.configured, c.nofile, logger); got != c.want {
			t.Errorf("fitConnections(%d, %d) = %d, want %d", c.configured, c.nofile, got, c.want)
		}
	}
}
