package httpapi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/mxcas/mxcas/media"
)

// ErrTooSlow is what a request body read or a response write returns,
// wrapped, when RateGuard closed a peer that moved fewer than MinRate ×
// Window bytes in a window.
var ErrTooSlow = errors.New("httpapi: peer below the minimum transfer rate")

// RateOptions configure RateGuard.
type RateOptions struct {
	// MinRate is the least bytes per second a request body must arrive at,
	// and a response be taken at. 0 turns the guard off.
	MinRate int64
	// Window is the span the rate is measured over: every window must move
	// MinRate × Window bytes, so a stalled or trickling peer keeps its
	// connection about one window after it last kept up (default 1 min).
	Window time.Duration
	Logger *slog.Logger
	// Now is the clock the deadlines are computed from. The runtime checks
	// connection deadlines against the wall clock, so this must follow it;
	// it defaults to time.Now.
	Now func() time.Time
}

// Validate checks the options.
func (o RateOptions) Validate() error {
	if o.MinRate < 0 {
		return errors.New("httpapi: RateOptions.MinRate is negative")
	}
	if o.Window < 0 {
		return errors.New("httpapi: RateOptions.Window is negative")
	}
	if o.MinRate > 0 && o.Window > 0 && o.MinRate*int64(o.Window/time.Millisecond) < 1000 {
		return errors.New("httpapi: RateOptions: MinRate × Window is under one byte")
	}
	return nil
}

// RateGuard wraps next so that a peer too slow to send its request body or
// to take the response has its connection closed.
//
// A deadline that only moves on progress never ends a trickle, so the guard
// asks for an amount per window instead: the first read of the body sets the
// connection's read deadline one Window ahead, and every MinRate × Window
// bytes read move it one Window past the moment they were complete; a peer
// sending slower meets the deadline, the read fails with ErrTooSlow, and
// net/http closes the connection once the handler has answered. Responses
// get the same treatment through the write deadline, starting at the first
// byte written, so a handler that waits before it answers (a long poll for
// a pending upload, a remote fetch) is not cut off. A deadline only matters
// while a read or write is blocked on the peer: when the handler itself
// idled past it, the next read or write starts a fresh window. Writes are cut
// where a window's due ends. ReadFrom (file bodies) hands the connection
// pieces of up to the window's due plus one more window's worth, with one
// more window of deadline, as *io.LimitedReaders over the file: chunk files
// still go out whole with sendfile, and a stalled download is closed within
// two windows.
//
// After the handler returns, what net/http still does with the connection
// (discard an unread rest of the body, flush the buffered end of the
// response) gets one more window. next must not set read or write deadlines
// itself. The connection's deadlines are set through
// http.ResponseController; where they are unsupported the guard does
// nothing.
func RateGuard(next http.Handler, o RateOptions) (http.Handler, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.MinRate == 0 {
		return next, nil
	}
	if o.Window == 0 {
		o.Window = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	quota := o.MinRate * int64(o.Window/time.Millisecond) / 1000
	return &rateGuard{next: next, o: o, quota: quota}, nil
}

type rateGuard struct {
	next  http.Handler
	o     RateOptions
	quota int64 // bytes each window must move
}

func (g *rateGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// net/http sets no write deadline of its own (WriteTimeout is 0): one
	// left by the previous request on this connection must not cut this one.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		g.next.ServeHTTP(w, r) // deadlines unsupported: nothing to guard with
		return
	}
	rq := &rateRequest{g: g, r: r}
	body := &guardedBody{rq: rq, rc: rc, body: r.Body}
	if r.Body != nil && r.Body != http.NoBody {
		r2 := new(http.Request)
		*r2 = *r
		r2.Body = body
		r = r2
	} else {
		body.eof = true
	}
	gw := &guardedWriter{ResponseWriter: w, rq: rq, rc: rc}
	g.next.ServeHTTP(gw, r)
	now := g.o.Now()
	if !body.eof {
		rc.SetReadDeadline(now.Add(g.o.Window))
	}
	rc.SetWriteDeadline(now.Add(g.o.Window))
}

// rateRequest is what a request's guarded body and writer share.
type rateRequest struct {
	g      *rateGuard
	r      *http.Request
	logged atomic.Bool
}

// window tracks one direction: the deadline in force and the bytes still
// due before it moves.
type window struct {
	started  bool
	deadline time.Time
	due      int64
}

// begin starts a fresh window when none runs, or when the one running ended
// while the handler was not waiting on the peer. It reports whether it did.
func (w *window) begin(g *rateGuard) (time.Time, bool) {
	now := g.o.Now()
	if w.started && now.Before(w.deadline) {
		return time.Time{}, false
	}
	w.renew(g, now)
	return w.deadline, true
}

func (w *window) renew(g *rateGuard, now time.Time) {
	w.started, w.deadline, w.due = true, now.Add(g.o.Window), g.quota
}

// moved counts n bytes and reports the new deadline when they complete the
// window's due.
func (w *window) moved(g *rateGuard, n int64) (time.Time, bool) {
	w.due -= n
	if w.due > 0 {
		return time.Time{}, false
	}
	w.renew(g, g.o.Now())
	return w.deadline, true
}

// failed wraps a deadline error in ErrTooSlow and logs the closing once.
func (rq *rateRequest) failed(err error, what string, moved int64) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	if rq.logged.CompareAndSwap(false, true) {
		rq.g.o.Logger.Info("peer below the minimum transfer rate: closing its connection",
			"what", what, "remote", rq.r.RemoteAddr, "method", rq.r.Method, "path", rq.r.URL.Path,
			"bytes", moved, "min_rate", rq.g.o.MinRate, "window", rq.g.o.Window.String())
	}
	return fmt.Errorf("%w: %w", ErrTooSlow, err)
}

// guardedBody is the request body under the read deadline.
type guardedBody struct {
	rq    *rateRequest
	rc    *http.ResponseController
	body  io.ReadCloser
	win   window
	total int64
	eof   bool
}

func (b *guardedBody) Read(p []byte) (int, error) {
	if b.eof {
		return b.body.Read(p)
	}
	if d, ok := b.win.begin(b.rq.g); ok {
		b.rc.SetReadDeadline(d)
	}
	n, err := b.body.Read(p)
	b.total += int64(n)
	if err == io.EOF {
		// net/http now reads the connection in the background (to notice
		// the client going away): no deadline may stay on it.
		b.eof = true
		b.rc.SetReadDeadline(time.Time{})
		return n, err
	}
	if err != nil {
		return n, b.rq.failed(err, "request body", b.total)
	}
	if d, ok := b.win.moved(b.rq.g, int64(n)); ok {
		b.rc.SetReadDeadline(d)
	}
	return n, nil
}

func (b *guardedBody) Close() error { return b.body.Close() }

// guardedWriter is the response writer under the write deadline. It passes
// io.ReaderFrom through (sendfile) and Unwrap for http.ResponseController.
type guardedWriter struct {
	http.ResponseWriter
	rq    *rateRequest
	rc    *http.ResponseController
	win   window
	total int64
	piece io.LimitedReader
}

// start begins a window when needed and returns the bytes it may still
// take before the deadline moves.
func (w *guardedWriter) start() int64 {
	if d, ok := w.win.begin(w.rq.g); ok {
		w.rc.SetWriteDeadline(d)
	}
	return w.win.due
}

// account counts n bytes written and turns a deadline error into
// ErrTooSlow.
func (w *guardedWriter) account(n int64, err error) error {
	w.total += n
	if err != nil {
		return w.rq.failed(err, "response", w.total)
	}
	if d, ok := w.win.moved(w.rq.g, n); ok {
		w.rc.SetWriteDeadline(d)
	}
	return nil
}

func (w *guardedWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return w.ResponseWriter.Write(p)
	}
	written := 0
	for len(p) > 0 {
		due := w.start()
		piece := p[:min(int64(len(p)), due)]
		n, err := w.ResponseWriter.Write(piece)
		written += n
		p = p[n:]
		if err := w.account(int64(n), err); err != nil {
			return written, err
		}
	}
	return written, nil
}

// ReadFrom copies src in pieces, each an *io.LimitedReader over src's own
// reader: a piece of an *io.LimitedReader over a file is one over that file,
// so the connection still uses sendfile. A piece is at most the window's due
// plus one more window's worth, and its deadline is one window later than
// the window's, so chunk files go out whole (one sendfile each) while a
// stalled peer is still closed within two windows.
func (w *guardedWriter) ReadFrom(src io.Reader) (int64, error) {
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if !ok {
		return io.Copy(writerOnly{w}, src)
	}
	if sp, ok := src.(*media.Spans); ok {
		return w.readSpans(rf, sp)
	}
	inner, limit := src, int64(-1)
	if lr, ok := src.(*io.LimitedReader); ok {
		if lr.N <= 0 {
			return 0, nil
		}
		inner, limit = lr.R, lr.N
	}
	g := w.rq.g
	var total int64
	for limit != 0 {
		size := w.start() + g.quota
		if limit > 0 {
			size = min(size, limit)
		}
		longer := size > w.win.due
		if longer {
			w.rc.SetWriteDeadline(w.win.deadline.Add(g.o.Window))
		}
		w.piece = io.LimitedReader{R: inner, N: size}
		n, err := rf.ReadFrom(&w.piece)
		w.piece.R = nil
		total += n
		if limit > 0 {
			limit -= n
			src.(*io.LimitedReader).N = limit
		}
		due := w.win.due
		if err := w.account(n, err); err != nil {
			return total, err
		}
		if longer && n < due {
			w.rc.SetWriteDeadline(w.win.deadline) // the window goes on
		}
		if n < size {
			break // src ended
		}
	}
	return total, nil
}

// readSpans hands an object's verified spans to the connection (splice),
// which reports each write back (guardedSpans.moved): the deadline moves
// as bytes reach the socket, as on the Write path.
func (w *guardedWriter) readSpans(rf io.ReaderFrom, sp *media.Spans) (int64, error) {
	w.start()
	gs := &guardedSpans{Spans: sp, w: w}
	n, err := rf.ReadFrom(gs)
	return n, w.account(n-gs.reported, err)
}

// guardedSpans is an object's spans under the write guard. When they are
// copied through Read instead of spliced (TLS), each Read first reports
// the bytes the previous one gave (written since) and gives at most the
// window's due, as Write does.
type guardedSpans struct {
	*media.Spans
	w        *guardedWriter
	reported int64
	pending  int64
}

// moved accounts n bytes written.
func (g *guardedSpans) moved(n int64) {
	g.reported += n
	g.w.account(n, nil)
}

func (g *guardedSpans) Read(p []byte) (int, error) {
	if g.pending > 0 {
		g.moved(g.pending)
		g.pending = 0
	}
	if due := g.w.start(); int64(len(p)) > due {
		p = p[:max(due, 1)]
	}
	n, err := g.Spans.Read(p)
	g.pending = int64(n)
	return n, err
}

// FlushError lets http.ResponseController flush through the guard.
func (w *guardedWriter) FlushError() error {
	w.start()
	err := w.rc.Flush()
	return w.account(0, err)
}

func (w *guardedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writerOnly hides ReadFrom, so io.Copy uses Write.
type writerOnly struct{ io.Writer }
