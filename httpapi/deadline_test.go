package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxcas/mxcas/testkit"
)

// deadlineWriter is a ResponseWriter that records what the guard does with
// it: the deadlines set (through http.ResponseController) and the sources
// handed to ReadFrom.
type deadlineWriter struct {
	header    http.Header
	body      bytes.Buffer
	write     []time.Time
	read      []time.Time
	fromTypes []string
	fromN     []int64
}

func (d *deadlineWriter) Header() http.Header {
	if d.header == nil {
		d.header = make(http.Header)
	}
	return d.header
}
func (d *deadlineWriter) WriteHeader(int)             {}
func (d *deadlineWriter) Write(p []byte) (int, error) { return d.body.Write(p) }
func (d *deadlineWriter) SetWriteDeadline(t time.Time) error {
	d.write = append(d.write, t)
	return nil
}
func (d *deadlineWriter) SetReadDeadline(t time.Time) error     { d.read = append(d.read, t); return nil }
func (d *deadlineWriter) ReadFrom(src io.Reader) (int64, error) { return d.readFrom(src) }

func (d *deadlineWriter) readFrom(src io.Reader) (int64, error) {
	lr, ok := src.(*io.LimitedReader)
	typ := "other"
	if ok {
		if _, isFile := lr.R.(*os.File); isFile {
			typ = "limited file"
		}
		d.fromN = append(d.fromN, lr.N)
	}
	d.fromTypes = append(d.fromTypes, typ)
	return io.Copy(&d.body, src)
}

func newGuard(t *testing.T, h http.Handler, clock *testkit.Clock) http.Handler {
	t.Helper()
	g, err := RateGuard(h, RateOptions{MinRate: 1000, Window: time.Second, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// A file body reaches the connection as pieces of one window's due, each
// an *io.LimitedReader over the file itself (so sendfile still applies),
// each under a fresh deadline.
func TestRateGuardKeepsSendfile(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 250)
	path := filepath.Join(t.TempDir(), "chunk")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	clock := testkit.NewClock(time.Unix(1000, 0))
	g := newGuard(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		// As media.Reader.WriteTo hands a chunk to the response.
		if n, err := io.Copy(w, io.LimitReader(f, 2500)); n != 2500 || err != nil {
			t.Errorf("copy: %d, %v; want 2500, nil", n, err)
		}
	}), clock)
	dw := &deadlineWriter{}
	g.ServeHTTP(dw, httpRequest(t, nil))

	if !bytes.Equal(dw.body.Bytes(), data) {
		t.Errorf("body: got %d bytes, want the file's %d", dw.body.Len(), len(data))
	}
	if got, want := fmt.Sprint(dw.fromTypes), "[limited file limited file]"; got != want {
		t.Errorf("ReadFrom got %s, want %s", got, want)
	}
	// The window's due (1000) plus one more window's worth, then the rest.
	if got, want := fmt.Sprint(dw.fromN), "[2000 500]"; got != want {
		t.Errorf("pieces %s, want %s", got, want)
	}
	// Cleared at the start; the window's; one window more for the long
	// piece; a fresh window after it (the short piece needs none); one for
	// net/http's final flush.
	w := clock.Now().Add(time.Second)
	want := fmt.Sprint([]time.Time{{}, w, w.Add(time.Second), w, w})
	if got := fmt.Sprint(dw.write); got != want {
		t.Errorf("write deadlines %s, want %s", got, want)
	}
}

// The write guard starts at the first byte written: a handler that waits
// (a long poll) is not cut off, and a window that ran out while the
// handler, not the peer, was idle is renewed.
func TestRateGuardStartsAtFirstWrite(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1000, 0))
	var dw *deadlineWriter
	g := newGuard(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if len(dw.write) != 1 || !dw.write[0].IsZero() {
			t.Errorf("before any write: deadlines %v, want only the cleared one", dw.write)
		}
		clock.Advance(30 * time.Second) // waited for content
		w.Write([]byte("first"))
		if got, want := dw.write[len(dw.write)-1], clock.Now().Add(time.Second); !got.Equal(want) {
			t.Errorf("first write: deadline %v, want %v", got, want)
		}
		n := len(dw.write)
		w.Write([]byte("second")) // within the window: no new deadline
		if len(dw.write) != n {
			t.Errorf("a write within the window moved the deadline: %v", dw.write)
		}
		clock.Advance(5 * time.Second) // the handler idled
		w.Write([]byte("third"))
		if got, want := dw.write[len(dw.write)-1], clock.Now().Add(time.Second); !got.Equal(want) {
			t.Errorf("write after idling: deadline %v, want %v", got, want)
		}
	}), clock)
	dw = &deadlineWriter{}
	g.ServeHTTP(dw, httpRequest(t, nil))
	if len(dw.read) != 0 {
		t.Errorf("a request without a body got read deadlines %v", dw.read)
	}
}

// The request body is read under a deadline one window ahead, moved by
// every window's due, and cleared at its end.
func TestRateGuardBodyDeadlines(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1000, 0))
	var dw *deadlineWriter
	g := newGuard(t, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 600)
		io.ReadFull(r.Body, buf) // 600 of 1000: deadline set, not moved
		if len(dw.read) != 1 || !dw.read[0].Equal(clock.Now().Add(time.Second)) {
			t.Errorf("after 600 bytes: read deadlines %v, want [now+1s]", dw.read)
		}
		clock.Advance(500 * time.Millisecond)
		io.ReadFull(r.Body, buf) // 1200: the window's due is met
		if len(dw.read) != 2 || !dw.read[1].Equal(clock.Now().Add(time.Second)) {
			t.Errorf("after 1200 bytes: read deadlines %v, want a second at now+1s", dw.read)
		}
		io.Copy(io.Discard, r.Body)
		if last := dw.read[len(dw.read)-1]; !last.IsZero() {
			t.Errorf("after the body's end: read deadline %v, want none", last)
		}
	}), clock)
	dw = &deadlineWriter{}
	g.ServeHTTP(dw, httpRequest(t, bytes.Repeat([]byte("x"), 1500)))
	if last := dw.read[len(dw.read)-1]; !last.IsZero() {
		t.Errorf("after the handler: read deadline %v, want none (the body was read)", last)
	}
}

func httpRequest(t *testing.T, body []byte) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := http.NewRequest(http.MethodPost, "http://a.test/x", rd)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRateOptionsValidate(t *testing.T) {
	for _, o := range []RateOptions{{MinRate: -1}, {MinRate: 1, Window: -time.Second}, {MinRate: 1, Window: time.Millisecond}} {
		if _, err := RateGuard(http.NotFoundHandler(), o); err == nil {
			t.Errorf("%+v: accepted", o)
		}
	}
}

// The listener holds at most n connections; the next waits until one
// closes; the connections keep sendfile and CloseWrite; Close ends a
// waiting Accept.
func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListener(inner, 2)
	defer ln.Close()
	var clients []net.Conn
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	dial := func() {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	var accepted []net.Conn
	for range 2 {
		dial()
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		accepted = append(accepted, c)
	}
	if _, ok := accepted[0].(io.ReaderFrom); !ok {
		t.Error("accepted connection hides io.ReaderFrom: no sendfile")
	}
	if _, ok := accepted[0].(interface{ CloseWrite() error }); !ok {
		t.Error("accepted connection hides CloseWrite")
	}
	if ln.Open() != 2 {
		t.Errorf("Open() = %d, want 2", ln.Open())
	}

	dial()
	var released atomic.Bool
	third := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			if !released.Load() {
				err = errors.New("third connection accepted while two were open")
			}
			c.Close()
		}
		third <- err
	}()
	released.Store(true)
	accepted[0].Close()
	accepted[0].Close() // twice gives back one slot only
	select {
	case err := <-third:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("third connection not accepted after one closed")
	}

	// Full again (one held, one slot free): fill it, then a waiting Accept
	// ends with the listener.
	dial()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waiting := make(chan error, 1)
	go func() { _, err := ln.Accept(); waiting <- err }()
	ln.Close()
	select {
	case err := <-waiting:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept waiting for a slot did not end with Close")
	}
	accepted[1].Close()
	c.Close()
	if ln.Open() != 0 {
		t.Errorf("Open() = %d after every connection closed, want 0", ln.Open())
	}
}
