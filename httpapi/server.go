package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

// Options configure the API. The legacy freeze and the limits of created
// IDs are the store's options, as is what a read gets
// (media.Store.Resolve).
type Options struct {
	Store       *media.Store
	Homeservers []Homeserver
	// TrustForwarded takes the host from X-Forwarded-Host.
	TrustForwarded bool
	// MaxUploadBytes caps an upload (default 100 MiB).
	MaxUploadBytes int64
	Auth           AuthOptions
	// RateLimits are the initial limits (SetRateLimits replaces them).
	RateLimits RateLimits
	// SelfExport are the initial self-service export settings
	// (SetSelfExport replaces them).
	SelfExport SelfExport
	// Keys verifies the X-Matrix signatures of federation requests.
	Keys   KeySource
	Logger *slog.Logger
	Now    func() time.Time
	// Observe, when set, is called once for every request the API answered,
	// as it ends, from the request's goroutine: many at once. It must
	// return quickly (it updates metrics) and keep nothing of the
	// RequestInfo's but copies.
	Observe func(RequestInfo)
}

// API is the HTTP handler of the media API. Close waits for requests in
// flight to leave the store.
type API struct {
	opts  Options
	hosts atomic.Pointer[map[string]*Homeserver] // lower-case name -> homeserver (SetHomeservers)
	auth  *authenticator
	rates *rateLimiter
	// selfExport are the self-service export settings (SetSelfExport).
	selfExport atomic.Pointer[SelfExport]
	router     *httprouter.Router
	log        *slog.Logger

	inflight sync.WaitGroup
	mu       sync.Mutex
	closed   bool
}

// New builds the API.
func New(opts Options) (*API, error) {
	if opts.Store == nil {
		return nil, errors.New("httpapi: Options.Store is nil")
	}
	if opts.MaxUploadBytes <= 0 {
		opts.MaxUploadBytes = 100 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	rates, err := newRateLimiter(opts.RateLimits)
	if err != nil {
		return nil, err
	}
	a := &API{opts: opts, auth: newAuthenticator(opts.Auth), rates: rates, log: opts.Logger}
	if err := a.SetHomeservers(opts.Homeservers); err != nil {
		return nil, err
	}
	if err := a.SetSelfExport(opts.SelfExport); err != nil {
		return nil, err
	}
	a.routes()
	return a, nil
}

// Close stops taking requests and waits for those in flight to finish
// with the store, or for ctx to end.
func (a *API) Close(ctx context.Context) error {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	done := make(chan struct{})
	go func() { a.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *API) enter() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false
	}
	a.inflight.Add(1)
	return true
}

// handler is what every endpoint is: it returns an error instead of
// writing one.
type handler func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error

// reqCtx is what the middleware found out about a request.
type reqCtx struct {
	hs     *Homeserver
	user   user
	params httprouter.Params
	result []slog.Attr // an admin action's figures, for its log line
}

// param returns a path parameter, percent-decoded.
func (rc *reqCtx) param(name string) string { return unescape(rc.params.ByName(name)) }

type access int

const (
	public        access = iota
	authenticated        // any user, guests too (download, thumbnail)
	member               // no guests (upload, create, config)
	federation           // another server: X-Matrix checked by the handler
	admin                // an admin of the Host's homeserver (admin.go)
)

// handle registers h for method and path with the given access.
func (a *API) handle(method, path string, acc access, h handler) {
	a.router.Handle(method, path, a.wrap(path, acc, h))
}

// wrap is h, the endpoint of pattern route, behind the checks acc asks
// for, answering its error.
func (a *API) wrap(route string, acc access, h handler) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		setRoute(w, route)
		rc := &reqCtx{params: ps}
		tok := token(r)
		var err error
		if (acc == authenticated || acc == member || acc == admin) && tok == "" {
			// No token: 401 before anything else is looked at.
			err = errorf(http.StatusUnauthorized, "M_MISSING_TOKEN", "Missing access token")
		}
		var hs *Homeserver
		if err == nil && acc == federation {
			hs, err = a.federationHomeserver(r)
		} else if err == nil {
			hs, err = a.homeserver(r)
		}
		if err == nil && acc != public && acc != federation {
			rc.user, err = a.auth.check(r.Context(), hs, tok, r.URL.Query().Get("user_id"))
		}
		if err == nil && acc == member && rc.user.Guest {
			err = errorf(http.StatusForbidden, "M_GUEST_ACCESS_FORBIDDEN", "Guest access is not allowed here")
		}
		if err == nil && acc == admin && (rc.user.Guest || !hs.isAdmin(rc.user.ID)) {
			err = errorf(http.StatusForbidden, "M_FORBIDDEN", "You are not a server admin")
		}
		rc.hs = hs
		if err == nil {
			err = h(w, r, rc)
		}
		if err != nil {
			me := writeError(w, err)
			if me.Status >= 500 {
				a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
		}
	}
}

// homeserver picks the homeserver by the request's host, port removed.
func (a *API) homeserver(r *http.Request) (*Homeserver, error) {
	host := r.Host
	if a.opts.TrustForwarded {
		if f := r.Header.Get("X-Forwarded-Host"); f != "" {
			host, _, _ = strings.Cut(f, ",")
			host = strings.TrimSpace(host)
		}
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]" // IPv6 server names keep their brackets
		}
	}
	hosts := *a.hosts.Load()
	if hs, ok := hosts[strings.ToLower(host)]; ok {
		return hs, nil
	}
	// A name with a port ("example.org:8448") is matched as written too.
	if hs, ok := hosts[strings.ToLower(r.Host)]; ok {
		return hs, nil
	}
	return nil, errorf(http.StatusNotFound, "M_NOT_FOUND", "This server does not serve media for host %q", host)
}

// federationHomeserver picks the homeserver a server-to-server request is
// for: the X-Matrix destination when it is ours (other servers do not
// always send our name as Host: a delegated name or an address), else the
// Host, else the only homeserver with a signing key, else the only one.
func (a *API) federationHomeserver(r *http.Request) (*Homeserver, error) {
	if x, err := matrix.ParseXMatrix(r.Header.Get("Authorization")); err == nil && x.Destination != "" {
		if hs, ok := (*a.hosts.Load())[strings.ToLower(x.Destination)]; ok {
			return hs, nil
		}
	}
	if hs, err := a.homeserver(r); err == nil {
		return hs, nil
	}
	var keyed, any *Homeserver
	nKeyed := 0
	hosts := *a.hosts.Load()
	for _, hs := range hosts {
		any = hs
		if hs.SigningKey != nil {
			keyed = hs
			nKeyed++
		}
	}
	switch {
	case nKeyed == 1:
		return keyed, nil
	case len(hosts) == 1:
		return any, nil
	}
	return a.homeserver(r)
}

// local reports whether server is one of the homeservers we serve.
func (a *API) local(server string) bool {
	_, ok := (*a.hosts.Load())[strings.ToLower(server)]
	return ok
}

// ServeHTTP routes on the raw (still escaped) path, so "%2F" inside a
// segment stays inside it, and adds the headers every answer carries.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !a.enter() {
		w.Header().Set("Connection", "close")
		me := writeError(w, errorf(http.StatusServiceUnavailable, "M_UNKNOWN", "The server is shutting down"))
		if a.opts.Observe != nil {
			a.opts.Observe(RequestInfo{Route: RouteClosed, Method: methodLabel(r.Method), Status: me.Status})
		}
		return
	}
	defer a.inflight.Done()
	start := a.opts.Now()
	corsHeaders.set(w.Header())
	lw := &logWriter{ResponseWriter: w, status: http.StatusOK}
	if r.Body != nil && r.Body != http.NoBody {
		lw.body.rc = r.Body
		r.Body = &lw.body
	}
	if r.Method == http.MethodOptions {
		lw.route = RoutePreflight
		// CORS preflight: never runs the endpoint.
		lw.Header().Set("Content-Type", "application/json")
		lw.WriteHeader(http.StatusOK)
		lw.Write([]byte("{}"))
	} else {
		path, raw := r.URL.Path, r.URL.RawPath
		r.URL.Path, r.URL.RawPath = r.URL.EscapedPath(), ""
		a.router.ServeHTTP(lw, r)
		r.URL.Path, r.URL.RawPath = path, raw
	}
	if lw.body.rc != nil {
		// net/http looks at the request's own body type when it finishes
		// the response: given ours, it would read what the handler left
		// unread (a refused upload's body, which may never come) before
		// answering, where with its own it closes the connection instead.
		r.Body = lw.body.rc
	}
	// LogAttrs with typed attributes: this line is written for every
	// request, and boxing each value costs a measurable share of a small
	// download.
	took := a.opts.Now().Sub(start)
	a.observe(r, lw, took) // before the log line: once it is written, metrics count the request
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("method", r.Method),
		slog.String("path", r.URL.Path), slog.String("host", r.Host), slog.Int("status", lw.status),
		slog.Int64("bytes", lw.bytes), slog.Float64("duration_ms", float64(took.Microseconds())/1000))
}

// corsHeaders are on every answer.
var corsHeaders = newFixedHeaders(
	"Access-Control-Allow-Origin", "*",
	"Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS",
	"Access-Control-Allow-Headers", "X-Requested-With, Content-Type, Authorization",
)

// logWriter records status and size for the request log and metrics,
// with the route that answered and the request body's count. It passes
// io.ReaderFrom through so file bodies can still use sendfile.
type logWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
	route  string       // the endpoint's pattern (setRoute)
	body   countingBody // the request body, counted
}

func (l *logWriter) WriteHeader(code int) {
	if !l.wrote {
		l.status, l.wrote = code, true
	}
	l.ResponseWriter.WriteHeader(code)
}

func (l *logWriter) Write(b []byte) (int, error) {
	l.wrote = true
	n, err := l.ResponseWriter.Write(b)
	l.bytes += int64(n)
	return n, err
}

// ReadFrom lets io.Copy reach the connection's ReadFrom (sendfile for
// files).
func (l *logWriter) ReadFrom(src io.Reader) (int64, error) {
	l.wrote = true
	var n int64
	var err error
	if rf, ok := l.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{l.ResponseWriter}, src)
	}
	l.bytes += n
	return n, err
}

func (l *logWriter) Unwrap() http.ResponseWriter { return l.ResponseWriter }

func unescape(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
