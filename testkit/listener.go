package testkit

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// CountingListener is a net.Listener that counts the connections it
// accepts, to show that nothing reached a server (or that something did).
type CountingListener struct {
	net.Listener
	accepts atomic.Int64
}

// Accept accepts a connection from the wrapped listener and counts it.
func (l *CountingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepts.Add(1)
	}
	return c, err
}

// Accepts returns how many connections have been accepted so far.
func (l *CountingListener) Accepts() int64 { return l.accepts.Load() }

// NewCountingServer starts an httptest server for h on a loopback
// CountingListener, closed when the test ends.
func NewCountingServer(t testing.TB, h http.Handler) (*httptest.Server, *CountingListener) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	cl := &CountingListener{Listener: srv.Listener}
	srv.Listener = cl
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, cl
}
