package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrForbidden is wrapped by every refused dial: the address is internal
// and not in Options.Allowed.
var ErrForbidden = errors.New("netguard: connection to an internal address refused")

// Options configure a Guard.
type Options struct {
	// Allowed are the operator's exceptions, checked first: an address in
	// one of them is always allowed.
	Allowed []netip.Prefix
	// Denied extends the built-in deny list.
	Denied []netip.Prefix
}

// Guard decides which IP addresses may be dialled. It is safe for
// concurrent use; its zero value refuses exactly the built-in list.
type Guard struct {
	allowed []netip.Prefix
	denied  []netip.Prefix
}

// New returns a Guard for o; prefixes are masked, invalid ones are
// skipped (config validates them).
func New(o Options) *Guard {
	g := &Guard{}
	for _, p := range o.Allowed {
		if p.IsValid() {
			g.allowed = append(g.allowed, p.Masked())
		}
	}
	for _, p := range o.Denied {
		if p.IsValid() {
			g.denied = append(g.denied, p.Masked())
		}
	}
	return g
}

// Check returns nil when ip may be dialled, else an error wrapping
// ErrForbidden that names ip. An invalid address is refused.
func (g *Guard) Check(ip netip.Addr) error {
	ip = ip.WithZone("")
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrForbidden)
	}
	if g != nil {
		for _, p := range g.allowed {
			if p.Contains(ip) || (ip.Is4In6() && p.Contains(ip.Unmap())) {
				return nil
			}
		}
		for _, p := range g.denied {
			if p.Contains(ip) || (ip.Is4In6() && p.Contains(ip.Unmap())) {
				return fmt.Errorf("%w: %s is in %s", ErrForbidden, ip, p)
			}
		}
	}
	if why := Internal(ip); why != "" {
		return fmt.Errorf("%w: %s (%s)", ErrForbidden, ip, why)
	}
	return nil
}

// Control is a net.Dialer Control hook: address is the "ip:port" about
// to be connected, after name resolution.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not an IP address", ErrForbidden, network, address)
	}
	return g.Check(ap.Addr())
}

// Dialer returns a copy of base (nil: a net.Dialer with a 30 s timeout and
// keep-alives) whose connections are checked by g. base's own Control
// hooks are dropped.
func (g *Guard) Dialer(base *net.Dialer) *net.Dialer {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if base != nil {
		*d = *base
	}
	d.Control = nil
	d.ControlContext = func(_ context.Context, network, address string, c syscall.RawConn) error {
		return g.Control(network, address, c)
	}
	return d
}

// DialContext dials through a guarded default Dialer.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return g.Dialer(nil).DialContext(ctx, network, addr)
}

// Transport returns a new http.Transport that dials through g, uses no
// proxy (a proxy would be dialled instead of the destination), speaks
// HTTP/1.1 and keeps a bounded number of idle connections. net/http still
// keeps a little state for every host a transport has dialled: a client
// of unboundedly many hosts should replace its transport now and then.
func (g *Guard) Transport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           g.Dialer(nil).DialContext,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}
