package matrix

import (
	"net/http"
	"sync"
)

// DefaultRecycleHosts is how many distinct hosts a RecyclingTransport sends
// to before it starts a new transport.
const DefaultRecycleHosts = 1024

// RecyclingTransport is an http.RoundTripper over a transport that it
// replaces with a new one after MaxHosts distinct scheme://host:port
// targets. net/http's Transport keeps some state per host it has dialled,
// even after a failed dial and after CloseIdleConnections (golang/go#50798),
// so one long-lived transport grows with every server name a client asks
// about; recycling bounds that state whatever the number of names. Requests
// in flight on the old transport finish normally; its idle connections are
// closed. Safe for concurrent use.
type RecyclingTransport struct {
	newTransport func() *http.Transport
	maxHosts     int

	mu      sync.Mutex
	current *http.Transport
	hosts   map[string]struct{}
	renewed int
}

// NewRecyclingTransport returns a RecyclingTransport making its transports
// with newTransport; maxHosts <= 0 means DefaultRecycleHosts.
func NewRecyclingTransport(newTransport func() *http.Transport, maxHosts int) *RecyclingTransport {
	if maxHosts <= 0 {
		maxHosts = DefaultRecycleHosts
	}
	return &RecyclingTransport{newTransport: newTransport, maxHosts: maxHosts,
		current: newTransport(), hosts: make(map[string]struct{})}
}

// transportFor returns the transport to send to key on, renewing it when
// key would be one host too many.
func (r *RecyclingTransport) transportFor(key string) *http.Transport {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.hosts[key]; !ok {
		if len(r.hosts) >= r.maxHosts {
			r.current.CloseIdleConnections()
			r.current = r.newTransport()
			clear(r.hosts)
			r.renewed++
		}
		r.hosts[key] = struct{}{}
	}
	return r.current
}

// RoundTrip implements http.RoundTripper.
func (r *RecyclingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return r.transportFor(req.URL.Scheme + "://" + req.URL.Host).RoundTrip(req)
}

// CloseIdleConnections closes the current transport's idle connections.
func (r *RecyclingTransport) CloseIdleConnections() {
	r.mu.Lock()
	t := r.current
	r.mu.Unlock()
	t.CloseIdleConnections()
}

// stats returns the number of hosts the current transport has sent to and
// how many times it was renewed.
func (r *RecyclingTransport) stats() (hosts, renewed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.hosts), r.renewed
}
