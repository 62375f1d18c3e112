package httpapi

import (
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// RequestInfo describes one answered request, for metrics
// (Options.Observe). Its strings are from small fixed sets, fit for metric
// labels.
type RequestInfo struct {
	// Route is the pattern of the endpoint that answered, as registered
	// ("/_matrix/client/v1/media/download/:server/:id"; an admin endpoint's
	// full pattern), never the request's path: RouteUnmatched when no
	// endpoint matched (404 or 405 M_UNRECOGNIZED), RoutePreflight for a
	// CORS preflight, RouteClosed when refused while shutting down.
	Route string
	// Method is the request's method when standard (GET, HEAD, POST, PUT,
	// DELETE, OPTIONS, PATCH), else "other".
	Method string
	// Status is the response's status code.
	Status int
	// BytesIn is the request body bytes read; BytesOut the response body
	// bytes written.
	BytesIn, BytesOut int64
	// Duration is from the request reaching the API to its answer's end.
	Duration time.Duration
}

// Route names for requests that reached no endpoint.
const (
	RouteUnmatched = "unmatched"
	RoutePreflight = "preflight"
	RouteClosed    = "closed"
)

// Stats are the API's counters since New. Safe to read concurrently.
type Stats struct {
	// WhoamiCacheHits counts token checks answered from the cache;
	// WhoamiCacheMisses those that asked the homeserver (static tokens are
	// neither).
	WhoamiCacheHits   int64
	WhoamiCacheMisses int64
}

// Stats returns the API's counters.
func (a *API) Stats() Stats {
	return Stats{
		WhoamiCacheHits:   a.auth.hits.Load(),
		WhoamiCacheMisses: a.auth.misses.Load(),
	}
}

// authCounters count the token checks (authenticator).
type authCounters struct {
	hits, misses atomic.Int64
}

// setRoute records on w, when it is the request's logWriter, the pattern
// of the endpoint answering.
func setRoute(w http.ResponseWriter, route string) {
	if lw, ok := w.(*logWriter); ok {
		lw.route = route
	}
}

// countingBody counts the bytes read from a request body. It lives inside
// the request's logWriter, so counting costs no allocation.
type countingBody struct {
	rc io.ReadCloser
	n  int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

// methodLabel returns m when it is a standard method, else "other": a
// client may send any token as a method.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodDelete, http.MethodOptions, http.MethodPatch:
		return m
	}
	return "other"
}

// observe hands the request's figures to Options.Observe, when set.
func (a *API) observe(r *http.Request, lw *logWriter, took time.Duration) {
	if a.opts.Observe == nil {
		return
	}
	route := lw.route
	if route == "" {
		route = RouteUnmatched
	}
	a.opts.Observe(RequestInfo{Route: route, Method: methodLabel(r.Method), Status: lw.status,
		BytesIn: lw.body.n, BytesOut: lw.bytes, Duration: took})
}
