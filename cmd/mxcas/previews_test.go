package main

import (
	"log/slog"
	"testing"
	"time"

	"github.com/mxcas/mxcas/config"
)

// url_previews.cache_duration reaches the store as PreviewCacheFor, which
// is what GC (serve's and mxcas gc's) expires preview records by.
func TestPreviewCacheDurationReachesStore(t *testing.T) {
	cfg := config.Default()
	cfg.URLPreviews.CacheDuration = config.Duration{Duration: 36 * time.Hour}
	mo, err := mediaOptions(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if mo.PreviewCacheFor != 36*time.Hour {
		t.Errorf("PreviewCacheFor = %v, want 36h", mo.PreviewCacheFor)
	}
}
