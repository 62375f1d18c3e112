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
	"syscall"
	"time"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/media"
)

// shutdownTimeout bounds how long in-flight requests may take after a
// signal.
const shutdownTimeout = 30 * time.Second

func cmdServe(args []string, logger *slog.Logger, stderr io.Writer) int {
	cfg, _, err := loadConfig("serve", args, stderr, nil)
	if err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, logger, nil); err != nil {
		logger.Error("serve failed", "err", err)
		return 1
	}
	return 0
}

// serve runs until ctx ends. ready, when not nil, gets the listening
// address once requests can be served.
func serve(ctx context.Context, cfg config.Config, logger *slog.Logger, ready func(addr string)) error {
	logger.Info("mxcas starting", "version", versionString(), "config", cfg.Source,
		"listen", cfg.Server.Listen, "data_dir", cfg.Server.DataDir)
	st, err := media.Open(mediaOptions(cfg, logger))
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			logger.Error("close store", "err", err)
		}
		logger.Info("store closed")
	}()
	logger.Info("store open", "chunker", st.Params().String())

	stopAdmin, err := startAdmin(ctx, cfg.Server.AdminListen, st, logger)
	if err != nil {
		return err
	}
	defer stopAdmin()

	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: newHandler(st), ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String())
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing in-flight requests", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Requests still running after the timeout are cut off (Close) so
		// none of them can touch the store after it is closed.
		logger.Error("shutdown: in-flight requests did not finish in time; closing them", "err", err)
		srv.Close()
	}
	return nil
}

// newHandler answers /healthz; the Matrix media API arrives with package
// httpapi (issue 3). Until then every other path is a Matrix 404.
func newHandler(st *media.Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"})
	})
	return mux
}
