package matrix

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ErrRedirectRefused is wrapped when a redirect or a Location media part
// is not followed: too many redirects, https to http, or a scheme other
// than http(s).
var ErrRedirectRefused = errors.New("matrix: redirect refused")

// Outbound connection limits. One set of transports serves every remote
// server, so their state is bounded whatever the number of server names.
const (
	// MaxRedirects is how many HTTP redirects a request follows.
	MaxRedirects = 5
	// maxIdleConns and maxIdleConnsPerHost bound the idle connections
	// kept per transport; idleConnTimeout closes them.
	maxIdleConns        = 64
	maxIdleConnsPerHost = 2
	idleConnTimeout     = 30 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
)

// DialFunc opens a connection, as net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// checkRedirect is the redirect policy of every client here: at most
// MaxRedirects, http(s) only, never from https to http. Where a redirect
// goes is checked by the dialer, like any connection.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects {
		return fmt.Errorf("%w: more than %d redirects", ErrRedirectRefused, MaxRedirects)
	}
	switch req.URL.Scheme {
	case "https":
	case "http":
		for _, v := range via {
			if v.URL.Scheme == "https" {
				return fmt.Errorf("%w: https to http (%s)", ErrRedirectRefused, req.URL.Redacted())
			}
		}
	default:
		return fmt.Errorf("%w: scheme %q", ErrRedirectRefused, req.URL.Scheme)
	}
	return nil
}

// withRedirectPolicy returns a copy of hc whose CheckRedirect applies
// checkRedirect before hc's own policy.
func withRedirectPolicy(hc *http.Client) *http.Client {
	c := *hc
	own := hc.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := checkRedirect(req, via); err != nil {
			return err
		}
		if own != nil {
			return own(req, via)
		}
		return nil
	}
	return &c
}

// Context keys that tell fedTransport how to send one request.
type (
	// routeKey holds the scheme://host of an operator route: a request to
	// exactly that URL origin is sent with the route dialer.
	routeKey struct{}
	// tlsNameKey holds a tlsPin: a request to pin.host checks the
	// certificate against pin.name.
	tlsNameKey struct{}
)

type tlsPin struct{ host, name string }

// fedTransport sends federation requests. Three transports, built once:
//
//   - guarded: everything not below, dialled with FedClient.DialContext
//     (the guard), keep-alive with bounded idle connections;
//   - pinned: https requests whose certificate must be valid for a name
//     other than the URL's host (a destination found by SRV), dialled
//     with the guard and tls.Client with that name; no keep-alive, so a
//     connection checked for one name is never reused for another;
//   - route: requests to the exact scheme://host of an operator route,
//     dialled with a plain dialer (trusted). Redirects and
//     Location targets elsewhere do not get that trust.
//
// guarded and pinned send to any host, so they are recycled (see
// RecyclingTransport); route sends only to the operator's routes.
type fedTransport struct {
	guarded, pinned *RecyclingTransport
	route           *http.Transport
}

func newFedTransport(dial DialFunc, tlsConfig *tls.Config) *fedTransport {
	routeDial := (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	if dial == nil {
		dial = routeDial
	}
	var base *tls.Config
	if tlsConfig != nil {
		base = tlsConfig.Clone()
	}
	bounded := func(d DialFunc) *http.Transport {
		return &http.Transport{
			Proxy:               nil, // a proxy would be dialled instead of the destination
			DialContext:         d,
			TLSClientConfig:     base,
			MaxIdleConns:        maxIdleConns,
			MaxIdleConnsPerHost: maxIdleConnsPerHost,
			IdleConnTimeout:     idleConnTimeout,
			TLSHandshakeTimeout: tlsHandshakeTimeout,
		}
	}
	t := &fedTransport{
		guarded: NewRecyclingTransport(func() *http.Transport { return bounded(dial) }, 0),
		route:   bounded(routeDial),
	}
	t.pinned = NewRecyclingTransport(func() *http.Transport { return pinnedTransport(dial, base) }, 0)
	return t
}

// pinnedTransport checks each https server's certificate against the TLS
// name the request's context pins (tlsNameKey), dialling with dial.
func pinnedTransport(dial DialFunc, base *tls.Config) *http.Transport {
	return &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		DialContext:       dial,
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			pin, _ := ctx.Value(tlsNameKey{}).(tlsPin)
			if pin.name == "" {
				return nil, fmt.Errorf("matrix: no TLS name for %s", addr)
			}
			conn, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			cfg := &tls.Config{}
			if base != nil {
				cfg = base.Clone()
			}
			cfg.ServerName = pin.name
			hctx, cancel := context.WithTimeout(ctx, tlsHandshakeTimeout)
			defer cancel()
			tc := tls.Client(conn, cfg)
			if err := tc.HandshakeContext(hctx); err != nil {
				conn.Close()
				return nil, err
			}
			return tc, nil
		},
	}
}

// RoundTrip implements http.RoundTripper.
func (t *fedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if route, ok := ctx.Value(routeKey{}).(string); ok && route == req.URL.Scheme+"://"+req.URL.Host {
		return t.route.RoundTrip(req)
	}
	if pin, ok := ctx.Value(tlsNameKey{}).(tlsPin); ok && req.URL.Scheme == "https" && pin.host == req.URL.Host {
		return t.pinned.RoundTrip(req)
	}
	return t.guarded.RoundTrip(req)
}

// CloseIdleConnections closes the idle connections of every transport.
func (t *fedTransport) CloseIdleConnections() {
	t.guarded.CloseIdleConnections()
	t.route.CloseIdleConnections()
}
