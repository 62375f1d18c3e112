package main

import (
	"log/slog"
	"net"
	"net/http"

	"golang.org/x/sys/unix"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/httpapi"
)

// Descriptors kept for the store when sizing the connection cap: Pebble's
// table cache may hold up to 1000 files open, the chunk store's pool of
// idle chunk files up to cas.MaxPooledFiles. Each connection may hold two
// more: its socket and a chunk or temporary file.
const (
	reservedFiles       = 1024 + cas.MaxPooledFiles
	filesPerConnection  = 2
	minConnectionsLimit = 16
)

// connectionLimit is configured, lowered to what the open-files limit
// leaves (the Go runtime has already raised the soft limit to the hard one).
func connectionLimit(configured int, logger *slog.Logger) int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		logger.Warn("cannot read the open-files limit; max_connections taken as configured", "err", err)
		return configured
	}
	return fitConnections(configured, lim.Cur, logger)
}

// fitConnections caps configured at (nofile - reservedFiles) /
// filesPerConnection, and at least minConnectionsLimit.
func fitConnections(configured int, nofile uint64, logger *slog.Logger) int {
	fit := uint64(minConnectionsLimit)
	if nofile > reservedFiles+filesPerConnection*minConnectionsLimit {
		fit = (nofile - reservedFiles) / filesPerConnection
	}
	if uint64(configured) <= fit {
		return configured
	}
	logger.Warn("max_connections lowered to fit the open-files limit (raise it with ulimit -n or LimitNOFILE)",
		"configured", configured, "max_connections", fit, "open_files_limit", nofile)
	return int(fit)
}

// limitSlowPeers puts the [server] slow-peer rate and the connection cap
// in front of the API's handler and listener.
func limitSlowPeers(cfg config.Server, h http.Handler, ln net.Listener, logger *slog.Logger) (http.Handler, net.Listener, error) {
	h, err := httpapi.RateGuard(h, httpapi.RateOptions{
		MinRate: cfg.MinTransferRate,
		Window:  cfg.TransferWindow.Duration,
		Logger:  logger,
	})
	if err != nil {
		return nil, nil, err
	}
	n := connectionLimit(cfg.MaxConnections, logger)
	logger.Info("slow-peer limits", "min_transfer_rate", cfg.MinTransferRate,
		"transfer_window", cfg.TransferWindow.String(), "max_connections", n)
	return h, httpapi.LimitListener(ln, n), nil
}
