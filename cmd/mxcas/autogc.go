package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/mxcas/mxcas/media"
)

// startAutoGC runs GC on st every interval (none when interval is 0) until
// the returned stop is called or ctx ends: serve's own GC, so deleted media
// is erased without anyone running `mxcas gc`. stop cancels a GC in
// progress and returns once the goroutine has ended; call it before the
// store is closed. Each run logs "gc done" (the store does); a refused run
// is a warning and the next interval tries again.
func startAutoGC(ctx context.Context, st *media.Store, interval time.Duration, logger *slog.Logger) (stop func()) {
	if interval <= 0 {
		logger.Info("automatic gc is off (storage.gc_interval = 0s)")
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			gs, err := st.GC(ctx)
			switch {
			case err == nil && gs.Busy:
				logger.Info("automatic gc skipped: another node's gc holds the lock")
			case err == nil, ctx.Err() != nil:
			case errors.Is(err, media.ErrGCRefused):
				logger.Warn("automatic gc refused; nothing deleted: check the store with mxcas fsck", "err", err)
			default:
				logger.Error("automatic gc failed", "err", err)
			}
		}
	}()
	logger.Info("automatic gc", "interval", interval)
	return func() { cancel(); wg.Wait() }
}
