package httpapi

import (
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/mxcas/mxcas/media"
)

// LimitListener returns a listener that holds at most n accepted
// connections open at once: Accept waits for one to close, and meanwhile
// new connections wait in the kernel's listen queue.
//
// It is ours rather than golang.org/x/net/netutil's because a wrapped
// connection must keep what net/http looks for on a *net.TCPConn:
// io.ReaderFrom, so file bodies go out with sendfile, and CloseWrite, so an
// error answer sent before the request body was read reaches the client
// before the connection closes. netutil's wrapper hides both.
func LimitListener(ln net.Listener, n int) *LimitedListener {
	return &LimitedListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{})}
}

// LimitedListener is a net.Listener with a cap on open connections. Safe
// for concurrent use.
type LimitedListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	open      atomic.Int64
}

// Accept waits for a free slot, then for a connection.
func (l *LimitedListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	l.open.Add(1)
	return &limitedConn{Conn: c, l: l}, nil
}

// Close closes the listener; an Accept waiting for a slot returns
// net.ErrClosed. Open connections are not closed.
func (l *LimitedListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Open returns the number of accepted connections not yet closed.
func (l *LimitedListener) Open() int { return int(l.open.Load()) }

// limitedConn gives its slot back when closed (once).
type limitedConn struct {
	net.Conn
	l    *LimitedListener
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.Add(-1)
		<-c.l.slots
	})
	return err
}

// ReadFrom splices an object's spans to the socket (spliceSpans) and
// otherwise reaches the TCP connection's ReadFrom (sendfile for files).
func (c *limitedConn) ReadFrom(r io.Reader) (int64, error) {
	if gs, ok := r.(*guardedSpans); ok {
		if n, ok, err := spliceSpans(c.Conn, gs.Spans, gs.moved); ok {
			return n, err
		}
	}
	if sp, ok := r.(*media.Spans); ok {
		if n, ok, err := spliceSpans(c.Conn, sp, nil); ok {
			return n, err
		}
	}
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite shuts down the writing side, as net/http does before closing
// a connection whose request it did not read to the end.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
