package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/media"
)

// withStore runs local on a store it opens itself, or, when a running
// server holds the store, asks that server to run op instead. readOnly
// opens the store without writing a byte of it (media.Options.ReadOnly):
// for an op that only reads.
func withStore(cfg config.Config, logger *slog.Logger, op string, readOnly bool, req, res any, local func(context.Context, *media.Store) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	mo, err := mediaOptions(cfg, logger)
	if err != nil {
		return err
	}
	mo.ReadOnly = readOnly
	st, err := openStore(cfg, mo, logger)
	if errors.Is(err, media.ErrLocked) {
		logger.Info("the store is held by a running server; asking it", "op", op)
		return callAdmin(ctx, cfg.Server.DataDir, op, req, res)
	}
	if err != nil {
		return err
	}
	err = local(ctx, st)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return err
}

// offlineHeapLimit is the soft limit on the Go memory of an offline fsck
// or gc (debug.SetMemoryLimit), unless GOMEMLIMIT sets one: their live
// heap is bounded by media's pass budget (under 25 MB at a million media,
// gctrace), and without a limit the heap grows to twice its live size
// before a collection and Go keeps what it freed. At a million media
// (offline, /usr/bin/time), peak RSS with no limit, 64 MiB (pass budget
// 1<<19) and 48 MiB (budget 1<<17): fsck 148, 120 and 98-105 MiB; gc 159,
// 110 and 84 MiB. Neither slower for the limit.
const offlineHeapLimit = 48 << 20

// boundHeap sets offlineHeapLimit, unless the environment set a limit.
func boundHeap() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(offlineHeapLimit)
	}
}

// refusedStatus is the exit status of a failed maintenance command: 2 when
// it refused to run and changed nothing (no store, its index missing, or
// one of the command's own refusals), 1 when the operation failed.
func refusedStatus(err error, refusals ...error) int {
	for _, r := range append(refusals, media.ErrNoStore, media.ErrIndexMissing, media.ErrNotEmpty) {
		if errors.Is(err, r) {
			return 2
		}
	}
	return 1
}

func cmdFsck(args []string, logger *slog.Logger, stdout, stderr io.Writer) int {
	var from, secretFile string
	var workers int
	cfg, rest, err := loadConfig("fsck", args, stderr, func(fs *flag.FlagSet) {
		fs.IntVar(&workers, "workers", media.DefaultFsckWorkers(), "read and hash this many chunks at once")
		fs.StringVar(&from, "repair-from", "", "copy damaged or missing chunks back from this data `directory` (a backup, say), "+
			"or from a live peer's replication listener (http(s)://host:port)")
		fs.StringVar(&secretFile, "secret-file", "", "with -repair-from URL: the `file` holding the replication secret (default: [replication] secret_file)")
	})
	if err != nil {
		return 2
	}
	if len(rest) != 0 || workers < 1 {
		fmt.Fprintln(stderr, "usage: mxcas fsck [-config FILE] [-workers N] [-repair-from DIR | -repair-from URL -secret-file FILE]")
		return 2
	}
	boundHeap()
	var rep media.FsckReport
	if from != "" {
		if secretFile == "" && isPeerURL(from) {
			secretFile = cfg.Replication.SecretFile // [replication] secret_file, when set
		}
		op, err := newRepairOp(from, secretFile)
		if err != nil {
			fmt.Fprintln(stderr, "mxcas fsck:", err)
			return 2
		}
		rr, err := repairStore(cfg, logger, op, stdout)
		if err != nil {
			fmt.Fprintln(stderr, "mxcas fsck:", err)
			return refusedStatus(err, media.ErrRepairSource)
		}
		rep = rr.After
	} else {
		// Offline, the store is opened read-only: a check writes nothing.
		fo := media.FsckOptions{Workers: workers}
		err = withStore(cfg, logger, "fsck", true, fo, &rep, func(ctx context.Context, st *media.Store) (err error) {
			rep, err = st.FsckWith(ctx, fo)
			return err
		})
		if err != nil {
			fmt.Fprintln(stderr, "mxcas fsck:", err)
			return 2
		}
	}
	return printFsckReport(rep, stdout)
}

// repairStore runs op, copying damaged or missing chunks back from a data
// directory or a live peer, and prints what it did to each chunk.
func repairStore(cfg config.Config, logger *slog.Logger, op repairOp, stdout io.Writer) (media.RepairReport, error) {
	var rr media.RepairReport
	err := withStore(cfg, logger, op.op, false, op.req, &rr, func(ctx context.Context, st *media.Store) (err error) {
		rr, err = op.run(ctx, st)
		return err
	})
	if err != nil {
		return rr, err
	}
	for _, h := range rr.Copied {
		fmt.Fprintln(stdout, "repaired: chunk", h, "copied from", op.from)
	}
	for _, h := range rr.Cleared {
		fmt.Fprintln(stdout, "cleared: chunk", h, "checks out; its damage record is removed")
	}
	for _, h := range rr.Unrepaired {
		fmt.Fprintln(stdout, "not repaired: chunk", h, "is not intact in", op.from)
	}
	return rr, nil
}

// printFsckReport prints rep and returns the exit status: 1 when the store
// is damaged.
func printFsckReport(rep media.FsckReport, stdout io.Writer) int {
	fmt.Fprintf(stdout, "checked %d media, %d objects, %d chunks (%d bytes); %d orphan chunks\n",
		rep.Media, rep.Objects, rep.Chunks, rep.Bytes, rep.Orphans)
	for _, h := range rep.Repaired {
		fmt.Fprintln(stdout, "repaired: chunk", h, "copied back from the repair source")
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(stdout, "problem:", p.String())
	}
	for _, m := range rep.Damaged {
		fmt.Fprintln(stdout, "damaged:", m)
	}
	if !rep.Healthy() {
		fmt.Fprintf(stdout, "DAMAGED: %d problems, %d media affected\n", len(rep.Problems), len(rep.Damaged))
		return 1
	}
	fmt.Fprintln(stdout, "healthy")
	return 0
}

func cmdGC(args []string, logger *slog.Logger, stdout, stderr io.Writer) int {
	var force bool
	cfg, _, err := loadConfig("gc", args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&force, "force", false, "delete even when most chunks are unknown to the index (a lost index looks like that)")
	})
	if err != nil {
		return 2
	}
	boundHeap()
	var gs media.GCStats
	req := map[string]bool{"force": force}
	err = withStore(cfg, logger, "gc", false, req, &gs, func(ctx context.Context, st *media.Store) (err error) {
		gs, err = st.RunGC(ctx, media.GCOptions{Force: force})
		return err
	})
	if err != nil {
		fmt.Fprintln(stderr, "mxcas gc:", err)
		return refusedStatus(err, media.ErrGCRefused)
	}
	if gs.Busy {
		fmt.Fprintln(stdout, "another node's gc holds the lock; nothing done")
		return 0
	}
	fmt.Fprintf(stdout, "kept %d objects and %d chunks (%d young); removed %d objects and %d chunks (%d bytes) and %d expired url previews\n",
		gs.Objects, gs.Chunks, gs.ChunksYoung, gs.ObjectsDeleted, gs.ChunksDeleted, gs.BytesDeleted, gs.PreviewsExpired)
	return 0
}

func cmdBackup(args []string, logger *slog.Logger, stdout, stderr io.Writer) int {
	cfg, rest, err := loadConfig("backup", args, stderr, nil)
	if err != nil {
		return 2
	}
	if len(rest) != 1 {
		fmt.Fprintln(stderr, "usage: mxcas backup [-config FILE] DEST")
		return 2
	}
	dest, err := filepath.Abs(rest[0])
	if err != nil {
		fmt.Fprintln(stderr, "mxcas backup:", err)
		return 2
	}
	var bs media.BackupStats
	req := map[string]string{"dest": dest}
	err = withStore(cfg, logger, "backup", false, req, &bs, func(ctx context.Context, st *media.Store) (err error) {
		bs, err = st.Backup(ctx, dest)
		return err
	})
	if err != nil && refusedStatus(err, media.ErrBackupDest) == 2 {
		fmt.Fprintln(stderr, "mxcas backup:", err) // refused: nothing was copied
		return 2
	}
	fmt.Fprintf(stdout, "copied %d chunks (%d bytes); %d already present; %d corrupt skipped\n",
		bs.ChunksCopied, bs.BytesCopied, bs.ChunksPresent, bs.ChunksCorrupt)
	if err != nil {
		fmt.Fprintln(stderr, "mxcas backup:", err)
		return 1
	}
	fmt.Fprintln(stdout, "backup complete:", dest)
	return 0
}
