package testkit

import (
	"net"
	"sync/atomic"
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
