package matrix

import (
	"context"
	"net"
	"sync"
)

// pipeListener is a net.Listener whose connections are the server ends of
// net.Pipe pairs made by its DialContext. Inside a testing/synctest bubble a
// goroutine reading a loopback socket is not durably blocked, so
// synctest.Wait would never return while an HTTP connection is open; on a
// pipe made in the bubble it is, so a real http.Server and http.Transport
// can run there over a pipeListener.
type pipeListener struct {
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept returns the server end of the next DialContext's pipe.
func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close makes Accept and DialContext fail; open connections stay open.
func (l *pipeListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

// Addr returns a placeholder address.
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// DialContext is a DialFunc that ignores addr and returns the client end
// of a new pipe whose server end Accept returns.
func (l *pipeListener) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		client.Close()
		return nil, net.ErrClosed
	case <-ctx.Done():
		client.Close()
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
