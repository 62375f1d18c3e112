package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/media"
)

// errServerRunning: migrate found the source store served.
var errServerRunning = errors.New("the store is in use")

// cmdMigrate copies the stopped store of -config to the data directory,
// chunk storage and index of -to: Pebble or PostgreSQL either side.
func cmdMigrate(args []string, logger *slog.Logger, stdout, stderr io.Writer) int {
	var toPath string
	from, rest, err := loadConfig("migrate", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&toPath, "to", "", "the destination's configuration `file`: its data_dir, [storage] and [index]")
	})
	if err != nil {
		return 2
	}
	if toPath == "" || len(rest) != 0 {
		fmt.Fprintln(stderr, "usage: mxcas migrate [-config FROM] -to TO_CONFIG")
		return 2
	}
	to, err := config.Load(toPath)
	if err != nil {
		fmt.Fprintln(stderr, "mxcas migrate:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := migrate(ctx, from, to, logger)
	fmt.Fprintf(stdout, "copied %d chunks (%d bytes); %d already present\n", st.ChunksCopied, st.BytesCopied, st.ChunksPresent)
	if err != nil {
		fmt.Fprintln(stderr, "mxcas migrate:", err)
		return refusedStatus(err, media.ErrMigrateDest, media.ErrLocked, errServerRunning)
	}
	fmt.Fprintf(stdout, "migration complete: %s (chunks: %s, index: %s); start the server with %s\n",
		to.Server.DataDir, to.Storage.Backend, to.Index.Backend, toPath)
	return 0
}

// migrate opens the source store, which no server may hold, and the
// destination's chunk storage, and runs media's Migrate. A source indexed
// in PostgreSQL is checked on this node only: every node must be stopped.
func migrate(ctx context.Context, from, to config.Config, logger *slog.Logger) (media.BackupStats, error) {
	var st media.BackupStats
	if pid, ok := serverRunning(from.Server.DataDir); ok {
		return st, fmt.Errorf("%w: a server (pid %d) is serving %s; stop it first", errServerRunning, pid, from.Server.DataDir)
	}
	mo, err := mediaOptions(from, logger)
	if err != nil {
		return st, err
	}
	mo.Thumbnails.Disabled = true
	dst, err := openChunks(to)
	if err != nil {
		return st, err
	}
	if dst != nil {
		defer dst.Close()
	}
	src, err := openStore(from, mo, logger) // with the source's lock, for either backend
	if errors.Is(err, media.ErrLocked) {
		return st, fmt.Errorf("%w: another process holds %s; stop the server first: %w", errServerRunning, from.Server.DataDir, err)
	}
	if err != nil {
		return st, err
	}
	logger.Info("migrating", "from", from.Server.DataDir, "from_backend", from.Storage.Backend,
		"from_index", from.Index.Backend, "to", to.Server.DataDir, "to_backend", to.Storage.Backend,
		"to_index", to.Index.Backend)
	mig := media.MigrateOptions{Dir: to.Server.DataDir, Chunks: dst, ChunksAt: chunksAt(to.Storage),
		Progress: func(st media.BackupStats) {
			logger.Info("migrate progress", "chunks_copied", st.ChunksCopied, "bytes_copied", st.BytesCopied,
				"chunks_present", st.ChunksPresent)
		}}
	if to.Index.Backend == config.IndexPostgres {
		mig.IndexDSN = to.Index.DSN
	}
	st, err = src.Migrate(ctx, mig)
	if cerr := src.Close(); err == nil {
		err = cerr
	}
	return st, err
}

// serverRunning reports whether DATA/admin.json names a live process: a
// server serving the store (it removes the file when it stops).
func serverRunning(dataDir string) (pid int, ok bool) {
	b, err := os.ReadFile(filepath.Join(dataDir, adminFile))
	if err != nil {
		return 0, false
	}
	var info adminInfo
	if json.Unmarshal(b, &info) != nil || info.PID <= 0 {
		return 0, false
	}
	err = unix.Kill(info.PID, 0)
	return info.PID, err == nil || errors.Is(err, unix.EPERM)
}
