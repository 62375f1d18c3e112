package httpapi

import (
	"net/http"
	"net/netip"
	"strings"
)

// SetRateLimits replaces the rate limits of every request from now on (a
// configuration reload). Buckets already held keep their tokens and take
// the new rates when next used. Bad limits are refused whole and the old
// ones stay. Safe for concurrent use.
func (a *API) SetRateLimits(l RateLimits) error { return a.rates.set(l) }

// RateLimitStats returns how many requests were refused per kind and how
// many buckets are held. Safe for concurrent use.
func (a *API) RateLimitStats() RateLimitStats { return a.rates.stats() }

// limited is h behind kind's rate limits, checked after the access checks
// and before h reads anything of the request.
func (a *API) limited(kind RateKind, h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
		if err := a.limit(r, rc, kind); err != nil {
			return err
		}
		return h(w, r, rc)
	}
}

// limit counts r against kind's buckets of its user (none for the
// unauthenticated legacy paths) and its client IP.
func (a *API) limit(r *http.Request, rc *reqCtx, kind RateKind) error {
	q := requester{who: rc.user.ID, ip: a.clientIP(r)}
	q.admin = q.who != "" && rc.hs != nil && rc.hs.isAdmin(q.who)
	return a.rates.take(a.opts.Now(), kind, q)
}

// limitServer counts a federation request against kind's bucket of its
// origin server, once the signature is checked. Not per IP: one server's
// address carries all its users' requests.
func (a *API) limitServer(origin string, kind RateKind) error {
	return a.rates.take(a.opts.Now(), kind, requester{who: origin})
}

// clientIP is the address requests are counted against: the peer's, or,
// with TrustForwarded, the last X-Forwarded-For entry (the one our proxy
// added; earlier entries are whatever the client claimed). An IPv6
// address counts by its /64, what one subscriber usually holds.
func (a *API) clientIP(r *http.Request) string {
	addr := r.RemoteAddr
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		addr = ap.Addr().String()
	}
	if a.opts.TrustForwarded {
		if f := r.Header.Values("X-Forwarded-For"); len(f) > 0 {
			last := f[len(f)-1]
			last = strings.TrimSpace(last[strings.LastIndexByte(last, ',')+1:])
			if _, err := netip.ParseAddr(last); err == nil {
				addr = last
			}
		}
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr // not an IP (a unix socket, a test): counted as it is
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
