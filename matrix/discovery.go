package matrix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/sync/singleflight"
)

// Discovery defaults, from the server-server API's "Server Discovery".
const (
	// DefaultFederationPort is the port of a server name without an
	// explicit port, a delegation or an SRV record.
	DefaultFederationPort = 8448
	// DefaultResolveCacheTTL is how long a resolved destination is kept
	// when Resolver.CacheTTL is 0.
	DefaultResolveCacheTTL = time.Hour
	// wellKnownDefaultTTL and wellKnownMaxTTL bound the lifetime of a
	// .well-known answer; wellKnownFailureTTL is that of a missing or
	// invalid one.
	wellKnownDefaultTTL = 24 * time.Hour
	wellKnownMaxTTL     = 48 * time.Hour
	wellKnownFailureTTL = 10 * time.Minute
	// wellKnownMaxBody caps the .well-known document we read.
	wellKnownMaxBody = 64 << 10
	// wellKnownTimeout bounds one .well-known fetch.
	wellKnownTimeout = 10 * time.Second
	// DefaultResolveCacheSize is how many server names the destination
	// cache, and separately the .well-known cache, hold when
	// Resolver.CacheSize is 0.
	DefaultResolveCacheSize = 4096
)

// Destination is where to send requests for a server name, and how.
type Destination struct {
	// BaseURL is scheme://host:port, without a trailing slash.
	BaseURL string
	// Host is the value of the Host header: the server name, or the
	// delegated server name.
	Host string
	// TLSServerName is the name the server's certificate must be valid
	// for (an IP literal without brackets when the name is an IP). It may
	// differ from BaseURL's host when an SRV record points elsewhere.
	TLSServerName string
}

// Resolver turns server names into Destinations following the spec's
// "Resolving server names": IP literal, explicit port, .well-known
// delegation, SRV _matrix-fed._tcp then _matrix._tcp, else port 8448.
// Discovered destinations are always https.
//
// Results are cached (see CacheTTL; a .well-known answer is kept as its
// Cache-Control max-age says, capped at 48 h, 24 h without one, and 10 min
// when missing or invalid), in LRU caches of CacheSize names each, so that
// requests naming many servers do not grow memory without bound. The zero value is usable; set the fields before
// the first call and do not change them afterwards. A Resolver is safe for
// concurrent use.
type Resolver struct {
	// Routes maps a server name to a base URL ("http://127.0.0.1:8008")
	// that overrides discovery, for tests and private deployments; http
	// is allowed here. The Host header is then the server name. SetRoutes
	// replaces it while the resolver is in use.
	Routes map[string]string
	// HTTPClient fetches .well-known documents; nil means
	// http.DefaultClient. Give it a guarded dialer (package netguard).
	// Redirects are followed at most MaxRedirects times and never from
	// https to http, whatever its own CheckRedirect says.
	HTTPClient *http.Client
	// LookupSRV looks up SRV records; nil means
	// net.DefaultResolver.LookupSRV.
	LookupSRV func(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CacheTTL is how long a resolved destination is kept; 0 means
	// DefaultResolveCacheTTL. A destination that depends on a .well-known
	// answer is never kept longer than that answer.
	CacheTTL time.Duration
	// CacheSize caps each cache (destinations, .well-known answers); 0
	// means DefaultResolveCacheSize.
	CacheSize int

	routes    atomic.Pointer[map[string]string] // set by SetRoutes; wins over Routes
	mu        sync.Mutex
	dests     *simplelru.LRU[string, cachedDestination]
	wellKnown *simplelru.LRU[string, cachedWellKnown]
	group     singleflight.Group
}

// SetRoutes replaces Routes: later calls of Resolve (and of the clients
// using r) see routes. Names it no longer lists are discovered again; a
// name it adds is routed at once, as routes are checked before the cache.
// routes must not be changed afterwards. Safe for concurrent use.
func (r *Resolver) SetRoutes(routes map[string]string) { r.routes.Store(&routes) }

// route returns the base URL routed to serverName, if any.
func (r *Resolver) route(serverName string) (string, bool) {
	routes := r.Routes
	if p := r.routes.Load(); p != nil {
		routes = *p
	}
	base, ok := routes[serverName]
	return base, ok
}

// caches makes the caches on first use; r.mu is held.
func (r *Resolver) caches() {
	if r.dests != nil {
		return
	}
	n := r.CacheSize
	if n <= 0 {
		n = DefaultResolveCacheSize
	}
	r.dests, _ = simplelru.NewLRU[string, cachedDestination](n, nil)
	r.wellKnown, _ = simplelru.NewLRU[string, cachedWellKnown](n, nil)
}

// CacheLen returns how many destinations and .well-known answers are
// cached (expired ones included until they are evicted or looked up).
func (r *Resolver) CacheLen() (dests, wellKnown int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.caches()
	return r.dests.Len(), r.wellKnown.Len()
}

type cachedDestination struct {
	dest    Destination
	expires time.Time
}

type cachedWellKnown struct {
	server  string // m.server; "" when missing or invalid
	expires time.Time
}

func (r *Resolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Resolve returns the destination for serverName, which must be a valid
// server name (ValidateServerName). Only an invalid server name, an invalid
// route or a cancelled ctx give an error: an unreachable .well-known or a
// failed SRV lookup fall through to the next step, as the spec says.
// Concurrent calls for one name share one discovery, run with the first
// caller's ctx.
func (r *Resolver) Resolve(ctx context.Context, serverName string) (Destination, error) {
	if err := ValidateServerName(serverName); err != nil {
		return Destination{}, err
	}
	if base, ok := r.route(serverName); ok {
		return routeDestination(serverName, base)
	}
	now := r.now()
	r.mu.Lock()
	r.caches()
	c, ok := r.dests.Get(serverName)
	if ok && !now.Before(c.expires) {
		r.dests.Remove(serverName)
	}
	r.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.dest, nil
	}
	v, err, _ := r.group.Do(serverName, func() (any, error) {
		d, expires, err := r.resolve(ctx, serverName)
		if err != nil {
			return Destination{}, err
		}
		r.mu.Lock()
		r.dests.Add(serverName, cachedDestination{dest: d, expires: expires})
		r.mu.Unlock()
		return d, nil
	})
	if err != nil {
		return Destination{}, err
	}
	return v.(Destination), nil
}

// routeDestination builds the destination of a Routes entry.
func routeDestination(serverName, base string) (Destination, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Destination{}, fmt.Errorf("%w: route for %q: %q is not an http(s) base URL", ErrInvalid, serverName, base)
	}
	return Destination{
		BaseURL:       u.Scheme + "://" + u.Host + strings.TrimSuffix(u.EscapedPath(), "/"),
		Host:          serverName,
		TLSServerName: u.Hostname(),
	}, nil
}

// resolve runs discovery for a valid server name and returns the
// destination and until when it may be cached.
func (r *Resolver) resolve(ctx context.Context, serverName string) (Destination, time.Time, error) {
	ttl := r.CacheTTL
	if ttl <= 0 {
		ttl = DefaultResolveCacheTTL
	}
	expires := r.now().Add(ttl)

	host, port := splitServerName(serverName)
	// Steps 1 and 2: IP literal, or explicit port.
	if d, ok := direct(serverName, host, port); ok {
		return d, expires, nil
	}
	// Step 3: .well-known delegation.
	delegated, wkExpires, err := r.lookupWellKnown(ctx, host)
	if err != nil {
		return Destination{}, time.Time{}, err
	}
	if wkExpires.Before(expires) {
		expires = wkExpires
	}
	if delegated != "" {
		dhost, dport := splitServerName(delegated)
		if d, ok := direct(delegated, dhost, dport); ok {
			return d, expires, nil
		}
		if d, ok := r.srv(ctx, dhost); ok {
			return d, expires, nil
		}
		return httpsDestination(dhost, DefaultFederationPort, dhost), expires, nil
	}
	// Steps 4 and 5: SRV records.
	if d, ok := r.srv(ctx, host); ok {
		return d, expires, nil
	}
	if err := ctx.Err(); err != nil {
		return Destination{}, time.Time{}, err
	}
	// Step 6: the default port.
	return httpsDestination(host, DefaultFederationPort, host), expires, nil
}

// direct handles the steps that need no lookup: an IP literal (with its
// port or 8448) and a host name with an explicit port. The Host header is
// the whole name, port included.
func direct(name, host string, port int) (Destination, bool) {
	ipHost := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if _, err := netip.ParseAddr(ipHost); err == nil {
		if port == 0 {
			port = DefaultFederationPort
		}
		d := httpsDestination(ipHost, port, name)
		return d, true
	}
	if port != 0 {
		return httpsDestination(host, port, name), true
	}
	return Destination{}, false
}

// httpsDestination is https://host:port with the given Host header;
// host is an IP without brackets or a DNS name.
func httpsDestination(host string, port int, hostHeader string) Destination {
	return Destination{
		BaseURL:       "https://" + net.JoinHostPort(host, strconv.Itoa(port)),
		Host:          hostHeader,
		TLSServerName: host,
	}
}

// splitServerName splits a valid server name into its host (brackets kept
// for IPv6) and port (0 when absent).
func splitServerName(name string) (host string, port int) {
	host = name
	i := strings.LastIndexByte(name, ':')
	if i >= 0 && !strings.HasSuffix(name, "]") && (!strings.HasPrefix(name, "[") || name[i-1] == ']') {
		if p, err := strconv.Atoi(name[i+1:]); err == nil {
			return name[:i], p
		}
	}
	return host, 0
}

// srv tries _matrix-fed._tcp then the deprecated _matrix._tcp for host.
// The Host header and TLS name stay host; only the address changes.
func (r *Resolver) srv(ctx context.Context, host string) (Destination, bool) {
	lookup := r.LookupSRV
	if lookup == nil {
		lookup = net.DefaultResolver.LookupSRV
	}
	for _, service := range []string{"matrix-fed", "matrix"} {
		_, addrs, err := lookup(ctx, service, "tcp", host)
		if err != nil || len(addrs) == 0 {
			continue
		}
		// LookupSRV sorts by priority and shuffles by weight; a lone "."
		// target means the service is decidedly not available.
		target := strings.TrimSuffix(addrs[0].Target, ".")
		if target == "" {
			continue
		}
		return Destination{
			BaseURL:       "https://" + net.JoinHostPort(target, strconv.Itoa(int(addrs[0].Port))),
			Host:          host,
			TLSServerName: host,
		}, true
	}
	return Destination{}, false
}

// lookupWellKnown returns the m.server of https://host/.well-known/matrix/server
// ("" when there is none or it is invalid) and until when that answer holds.
func (r *Resolver) lookupWellKnown(ctx context.Context, host string) (string, time.Time, error) {
	now := r.now()
	r.mu.Lock()
	r.caches()
	c, ok := r.wellKnown.Get(host)
	if ok && !now.Before(c.expires) {
		r.wellKnown.Remove(host)
	}
	r.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.server, c.expires, nil
	}
	server, ttl, err := r.fetchWellKnown(ctx, host)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return "", time.Time{}, ctxErr // not the remote's fault: do not cache
		}
		server, ttl = "", wellKnownFailureTTL
	}
	expires := now.Add(ttl)
	r.mu.Lock()
	r.wellKnown.Add(host, cachedWellKnown{server: server, expires: expires})
	r.mu.Unlock()
	return server, expires, nil
}

// errNoWellKnown marks a .well-known that is missing or invalid.
var errNoWellKnown = errors.New("matrix: no valid .well-known/matrix/server")

func (r *Resolver) fetchWellKnown(ctx context.Context, host string) (string, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, wellKnownTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/.well-known/matrix/server", nil)
	if err != nil {
		return "", 0, err
	}
	client := r.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := withRedirectPolicy(client).Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("%w: status %d", errNoWellKnown, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, wellKnownMaxBody+1))
	if err != nil {
		return "", 0, err
	}
	if len(body) > wellKnownMaxBody {
		return "", 0, fmt.Errorf("%w: too large", errNoWellKnown)
	}
	var doc struct {
		Server string `json:"m.server"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", 0, fmt.Errorf("%w: %v", errNoWellKnown, err)
	}
	if err := ValidateServerName(doc.Server); err != nil {
		return "", 0, fmt.Errorf("%w: m.server: %v", errNoWellKnown, err)
	}
	return doc.Server, wellKnownTTL(resp.Header), nil
}

// wellKnownTTL reads Cache-Control max-age, capped at 48 h; 24 h without
// one. no-store and no-cache are read as max-age=0.
func wellKnownTTL(h http.Header) time.Duration {
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			if d == "no-store" || d == "no-cache" {
				return 0
			}
			if s, ok := strings.CutPrefix(d, "max-age="); ok {
				n, err := strconv.ParseInt(strings.Trim(s, `"`), 10, 64)
				if err != nil || n < 0 {
					continue
				}
				if n > int64(wellKnownMaxTTL/time.Second) {
					return wellKnownMaxTTL
				}
				return time.Duration(n) * time.Second
			}
		}
	}
	return wellKnownDefaultTTL
}
