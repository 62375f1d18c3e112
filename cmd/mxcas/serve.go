package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/httpapi"
	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/netguard"
)

func cmdServe(args []string, logger *slog.Logger, level *slog.LevelVar, stderr io.Writer) int {
	cfg, _, err := loadConfig("serve", args, stderr, nil)
	if err != nil {
		return 2
	}
	level.Set(cfg.Server.Level())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := serveWith(ctx, cfg, logger, serveHooks{reload: hup, level: level}); err != nil {
		logger.Error("serve failed", "err", err)
		return 1
	}
	return 0
}

// serve runs until ctx ends. ready, when not nil, gets the listening
// address once requests can be served.
func serve(ctx context.Context, cfg config.Config, logger *slog.Logger, ready func(addr string)) error {
	return serveWith(ctx, cfg, logger, serveHooks{ready: ready})
}

// serveHooks are what serveWith tells and is told while it runs.
type serveHooks struct {
	// accepting, when not nil, gets the listening address once the
	// listener is open, before the store is (/readyz answers 503).
	accepting func(addr string)
	// ready, when not nil, gets the listening address once requests can
	// be served.
	ready func(addr string)
	// reload, when not nil, asks for the configuration file to be read
	// again (SIGHUP; see reload.go).
	reload <-chan os.Signal
	// level is the logger's level, set from [server] log_level on reload;
	// nil: the level is the caller's and stays.
	level *slog.LevelVar
}

// serveWith runs until ctx ends. The listener opens first, answering
// /readyz 503 while the store opens (gate).
func serveWith(ctx context.Context, cfg config.Config, logger *slog.Logger, hooks serveHooks) (err error) {
	logStart(cfg, logger)
	opts, mo, resolver, err := serveOptions(cfg, logger)
	if err != nil {
		return err
	}
	// The server's index cache holds the sstables' filter and index
	// blocks (10 MB at a million media) besides the hot records and
	// manifests. At 600k media with 32 MiB, reading such blocks again was
	// 16% of the server's CPU during uploads (perf; most of it, it turned
	// out, Pebble's file limit: index.maxOpenFiles). Filled only as blocks
	// are read: 245 MB server RSS at a million media with 32 MiB, 290 MB
	// with 128 (bench/scale). The maintenance commands keep the default,
	// 8 MiB.
	mo.IndexCacheBytes = 128 << 20
	var m *metrics
	if cfg.Metrics.Listen != "" {
		m = newMetrics()
		mo.CountChunks = true // chunk files and stored bytes are metrics
		mo.Thumbnails.Observe = m.observeThumbnail
		opts.Observe = m.observeRequest
	}
	rs, err := prepareReplication(cfg.Replication)
	if err != nil {
		return err
	}
	opts.Standby = cfg.Replication.Primary
	mo.RepairSource = rs.repair
	as, err := startListener(cfg, logger)
	if err != nil {
		return err
	}
	defer as.closeUnopened()
	if hooks.accepting != nil {
		hooks.accepting(as.addr)
	}
	st, err := openStore(cfg, mo, logger)
	if err != nil {
		return err
	}
	// The whole shutdown (in-flight requests, then the store) ends within
	// shutdown_timeout of the signal: end is set when it starts.
	var end time.Time
	defer func() {
		limit := cfg.Server.ShutdownTimeout.Duration
		if !end.IsZero() {
			limit = time.Until(end)
		}
		if cerr := closeStore(st, limit, logger); err == nil {
			err = cerr
		}
	}()
	logger.Info("store open", "chunker", st.Params().String())

	repl, err := startReplication(rs, st, logger)
	if err != nil {
		return err
	}
	defer repl.stop() // before the store closes
	stopAdmin, err := startAdmin(ctx, cfg.Server.AdminListen, st, repl, logger)
	if err != nil {
		return err
	}
	defer stopAdmin()
	stopGC := startAutoGC(ctx, st, cfg.Storage.GCInterval.Duration, logger)
	defer stopGC() // before the store closes: a GC in progress is cancelled

	if m != nil {
		stopMetrics, err := startMetrics(cfg.Metrics, m, logger)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	opts.Store = st
	if err := as.open(cfg, opts, st, logger); err != nil {
		return err
	}
	repl.setAPI(as.api)
	if m != nil {
		m.watch(st, as.api) // the store's metrics appear from here on
		if mo.Thumbnails.FFmpeg != nil {
			m.watchFFmpeg(mo.Thumbnails.FFmpeg)
		}
	}
	if hooks.ready != nil {
		hooks.ready(as.addr)
	}
	rl := &reloader{cur: cfg, api: as.api, store: st, resolver: resolver, level: hooks.level,
		homeservers: opts.Homeservers, logger: logger}
	failed, err := waitForEnd(ctx, as, st, hooks.reload, rl, logger)
	if err != nil {
		return err
	}
	as.gate.stop()
	timeout := cfg.Server.ShutdownTimeout.Duration
	start := time.Now()
	end = start.Add(timeout)
	if err := as.shutdown(start, timeout, logger); err != nil {
		return err
	}
	return failed
}

// logStart logs the start and applies the soft memory limit when the
// environment sets none.
func logStart(cfg config.Config, logger *slog.Logger) {
	logger.Info("mxcas starting", "version", versionString(), "config", cfg.Source,
		"listen", cfg.Server.Listen, "data_dir", cfg.Server.DataDir)
	if lim := cfg.Server.SoftMemoryLimit; lim > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(lim)
		logger.Info("soft memory limit", "bytes", lim)
	}
}

// serveOptions turns the configuration into the API's options (without
// the store) and the options of the store serve opens: created when
// missing, fetching remote media over federation when a homeserver can sign,
// making URL previews unless they are off.
// It also returns the resolver of every outbound federation request, whose
// routes a reload replaces.
func serveOptions(cfg config.Config, logger *slog.Logger) (httpapi.Options, media.Options, *matrix.Resolver, error) {
	opts, err := apiOptions(cfg, nil, logger)
	if err != nil {
		return opts, media.Options{}, nil, err
	}
	fc, keys := federationClient(cfg, opts.Homeservers)
	opts.Keys = keys
	logger.Info("outbound federation refuses internal addresses except routes and allowed_networks",
		"allowed_networks", cfg.Federation.AllowedNetworks)
	mo, err := mediaOptions(cfg, logger)
	if err != nil {
		return opts, mo, nil, err
	}
	mo.Create = true // only serve creates a store (in a missing or empty data_dir)
	mo.Thumbnails.FFmpeg = ffmpegRunner(cfg.Thumbnails, logger)
	if mo.Previews, err = previewer(cfg.URLPreviews, logger); err != nil {
		return opts, mo, nil, err
	}
	mo.KeepBallast = true
	mo.Remote = media.RemoteOptions{
		MaxBytes: cfg.Federation.MaxRemoteBytes,
		Timeout:  cfg.Federation.Timeout.Duration,
		Backoff:  cfg.Federation.Backoff.Duration,
	}
	if fc != nil {
		mo.Remote.Fetcher = media.FederationFetcher{Client: fc}
		logger.Info("remote media is fetched over federation", "origin", fc.Origin, "routes", len(cfg.Federation.Routes))
	} else {
		logger.Warn("no homeserver has a signing_key: remote media cannot be fetched")
	}
	return opts, mo, keys.Client.Resolver, nil
}

// apiServer is the API serving on its listener: the gate until the store
// is open, then the API behind it.
type apiServer struct {
	srv  *http.Server
	gate *gate
	api  *httpapi.API // nil until open
	addr string       // the listening address
	errc chan error   // gets Serve's error when it ends
}

// startListener listens on the configured address and serves the gate
// there (/readyz 503 "starting") until open puts the API behind it.
func startListener(cfg config.Config, logger *slog.Logger) (*apiServer, error) {
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	g := new(gate)
	handler, limited, err := limitSlowPeers(cfg.Server, g, ln, logger)
	if err != nil {
		ln.Close()
		return nil, err
	}
	as := &apiServer{
		srv:  &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute},
		gate: g,
		addr: ln.Addr().String(),
		errc: make(chan error, 1),
	}
	go func() { as.errc <- as.srv.Serve(limited) }()
	logger.Info("accepting connections; not ready until the store is open", "addr", as.addr)
	return as, nil
}

// open builds the API over st and serves it from now on.
func (as *apiServer) open(cfg config.Config, opts httpapi.Options, st *media.Store, logger *slog.Logger) error {
	api, err := httpapi.New(opts)
	if err != nil {
		return err
	}
	for _, hs := range cfg.Homeservers {
		logger.Info("serving homeserver", "name", hs.Name, "client_api", hs.ClientAPI, "static_tokens", len(hs.StaticTokens))
	}
	if g := cfg.GDPR; g.SelfService {
		logger.Info("self-service export is on: users may export their own media", "export_ttl", g.ExportTTL.Duration, "part_size", g.PartSize)
	}
	as.api = api
	as.gate.open(api, st)
	logger.Info("listening", "addr", as.addr)
	return nil
}

// closeUnopened closes the server when serve ends before the API was put
// behind the gate (the store did not open...); shutdown stops it
// otherwise.
func (as *apiServer) closeUnopened() {
	if as.api == nil {
		as.srv.Close()
	}
}

// waitForEnd waits for ctx to end or the store to fail, and returns the
// store's failure. err is the server's, when it stopped by itself.
// Meanwhile each value from reload has rl read the configuration again.
func waitForEnd(ctx context.Context, as *apiServer, st *media.Store, reload <-chan os.Signal, rl *reloader, logger *slog.Logger) (failed, err error) {
	for {
		select {
		case err := <-as.errc:
			return nil, err
		case <-ctx.Done():
			return nil, nil
		case <-reload:
			rl.reload()
		case <-st.Failed():
			// Never a half-alive process: a store that cannot write ends it.
			logger.Error("the store failed; shutting down", "err", st.Err())
			return fmt.Errorf("the store failed: %w", st.Err()), nil
		}
	}
}

// shutdown stops the server, started at start with timeout for the whole
// shutdown: three quarters of the time for requests to finish, an eighth
// for those cut off to leave the store (the last eighth is the store's,
// to close).
func (as *apiServer) shutdown(start time.Time, timeout time.Duration, logger *slog.Logger) error {
	logger.Info("shutting down: finishing in-flight requests", "timeout", timeout)
	sctx, cancel := context.WithDeadline(context.Background(), start.Add(timeout*3/4))
	defer cancel()
	if err := as.srv.Shutdown(sctx); err != nil {
		logger.Error("shutdown: in-flight requests did not finish in time; closing them", "err", err)
		as.srv.Close()
	}
	// Handlers cut off by Close may still be running: wait for them to
	// leave the store before it is closed.
	actx, acancel := context.WithDeadline(context.Background(), start.Add(timeout*7/8))
	defer acancel()
	if err := as.api.Close(actx); err != nil {
		return fmt.Errorf("requests still using the store %s after the signal: %w", time.Since(start).Round(time.Millisecond), err)
	}
	return nil
}

// closeStore closes st, giving up after timeout: a store wedged on a
// failing disk must not keep the process from exiting (the files are then
// as a crash leaves them, which the next open recovers from).
func closeStore(st *media.Store, timeout time.Duration, logger *slog.Logger) error {
	done := make(chan error, 1)
	go func() { done <- st.Close() }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			logger.Error("close store", "err", err)
			return fmt.Errorf("close store: %w", err)
		}
		logger.Info("store closed")
		return nil
	case <-t.C:
		logger.Error("the store did not close in time; exiting without it", "timeout", timeout)
		return fmt.Errorf("close store: not done after %s", timeout)
	}
}

// federationClient builds the signed federation client (origin: the first
// homeserver with a signing key; nil when none has one) and the key fetcher
// that verifies other servers' requests. Every outbound connection goes
// through one guarded dialer (netguard: no internal address unless
// allowed_networks lists it), except those to the base URLs of
// [federation.routes], which the operator named.
func federationClient(cfg config.Config, hss []httpapi.Homeserver) (*matrix.FedClient, *matrix.KeyFetcher) {
	// Both clients share one resolver: a reload replaces its routes
	// (KeyFetcher.Client.Resolver).
	guard := netguard.New(netguard.Options{Allowed: cfg.Federation.AllowedPrefixes()})
	// .well-known goes to every server name asked about: its transport is
	// recycled so that net/http's per-host state stays bounded. The
	// resolver applies matrix's redirect policy itself.
	wellKnown := &http.Client{Transport: matrix.NewRecyclingTransport(guard.Transport, 0)}
	resolver := &matrix.Resolver{Routes: cfg.Federation.Routes, HTTPClient: wellKnown}
	newClient := func(origin string, key matrix.SigningKey) *matrix.FedClient {
		return &matrix.FedClient{Resolver: resolver, Origin: origin, Key: key, Timeout: cfg.Federation.Timeout.Duration,
			DialContext: guard.DialContext}
	}
	var fc *matrix.FedClient
	for _, hs := range hss {
		if hs.SigningKey != nil {
			fc = newClient(hs.Name, *hs.SigningKey)
			break
		}
	}
	keyClient := fc
	if keyClient == nil {
		keyClient = newClient("", matrix.SigningKey{})
	}
	return fc, &matrix.KeyFetcher{Client: keyClient}
}

// apiOptions turns the configuration into the API's options.
func apiOptions(cfg config.Config, st *media.Store, logger *slog.Logger) (httpapi.Options, error) {
	o := httpapi.Options{
		Store:          st,
		TrustForwarded: cfg.Server.TrustForwarded,
		MaxUploadBytes: cfg.Server.MaxUploadBytes,
		Auth: httpapi.AuthOptions{
			CacheTTL:  cfg.Auth.CacheTTL.Duration,
			CacheSize: cfg.Auth.CacheSize,
			Timeout:   cfg.Auth.WhoamiTimeout.Duration,
		},
		RateLimits: rateLimits(cfg.RateLimits),
		SelfExport: selfExport(cfg.GDPR),
		Logger:     logger,
	}
	if o.Auth.CacheTTL == 0 {
		o.Auth.CacheTTL = -1 // 0 in the file means: no cache
	}
	for _, hs := range cfg.Homeservers {
		h := httpapi.Homeserver{Name: hs.Name, ClientAPI: hs.ClientAPI, Admins: hs.Admins, StaticTokens: hs.StaticTokens}
		if hs.SigningKey != "" {
			data, err := os.ReadFile(hs.SigningKey)
			if err != nil {
				return o, fmt.Errorf("homeserver %s: signing key: %w", hs.Name, err)
			}
			k, err := matrix.ParseSigningKeyFile(data)
			if err != nil {
				return o, fmt.Errorf("homeserver %s: signing key %s: %w", hs.Name, hs.SigningKey, err)
			}
			h.SigningKey = &k
			logger.Info("signing key loaded", "homeserver", hs.Name, "key", k.ID)
		}
		o.Homeservers = append(o.Homeservers, h)
	}
	return o, nil
}
