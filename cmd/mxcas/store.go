package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/ffmpeg"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/thumbgen"
)

// loadConfig parses the -config flag (plus any flags the command adds with
// extra) and finds the configuration.
func loadConfig(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (config.Config, []string, error) {
	fs := flag.NewFlagSet("mxcas "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration `file` (default ./mxcas.toml, else the embedded default)")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return config.Config{}, nil, err
	}
	cfg, err := config.Find(*path)
	if err != nil {
		fmt.Fprintln(stderr, "mxcas:", err)
	}
	return cfg, fs.Args(), err
}

// mediaOptions turns the configuration into the store's options. An error
// names the configuration key whose value the store cannot take. The
// chunk storage of backend s3 is not opened here: openChunkStore does it
// just before media.Open, which then owns it.
func mediaOptions(cfg config.Config, logger *slog.Logger) (media.Options, error) {
	t := cfg.Thumbnails
	local := make(map[string]bool)
	for _, hs := range cfg.Homeservers {
		local[strings.ToLower(hs.Name)] = true
	}
	o := media.Options{
		Dir:                   cfg.Server.DataDir,
		ChunksAt:              chunksAt(cfg.Storage),
		GCGrace:               cfg.Storage.GCGrace.Duration,
		Logger:                logger,
		Local:                 func(s string) bool { return local[strings.ToLower(s)] },
		FreezeUnauthenticated: cfg.Server.FreezeUnauthenticated,
		UnusedExpires:         cfg.Uploads.UnusedExpires.Duration,
		PreviewCacheFor:       cfg.URLPreviews.CacheDuration.Duration,
		MaxPendingPerUser:     cfg.Uploads.MaxPendingPerUser,
		Quotas:                mediaQuotas(cfg.Quotas),
		// 0 is the default in both; the file's -1 (none) is negative here.
		MinFreeBytes: cfg.Storage.MinFreeBytes,
		BallastBytes: cfg.Storage.BallastBytes,
		Thumbnails: media.ThumbnailOptions{
			Workers:      t.Workers,
			MemoryBudget: t.MemoryBudget,
			MaxDimension: t.MaxDimension,
			Limits:       thumbgen.Limits{MaxPixels: t.MaxPixels, MaxBytes: t.MaxBytes},
			Disabled:     !t.Pregenerate,
		},
	}
	if cfg.Storage.Backend == config.BackendS3 {
		o.NewChunker = s3ChunkParams
	}
	if cfg.Index.Backend == config.IndexPostgres {
		o.IndexDSN = cfg.Index.DSN
	}
	var err error
	if o.Thumbnails.Sizes, err = thumbnailSizes(t.Sizes); err != nil {
		return media.Options{}, err
	}
	// A standby's store logs none of its own writes, whichever command
	// opens it: its log holds the primary's numbers only.
	o.KeepChanges = uint64(cfg.Replication.KeepChanges)
	if o.Follower = cfg.Replication.Primary != ""; o.Follower {
		if err := checkNotPromoted(cfg.Server.DataDir); err != nil {
			return media.Options{}, err
		}
	}
	return o, nil
}

// ffmpegRunner is the runner of [thumbnails] ffmpeg for video, audio and
// AVIF thumbnails, or nil, logged, when the key is empty or a binary is
// not found (those media are then "cannot thumbnail").
func ffmpegRunner(t config.Thumbnails, logger *slog.Logger) *ffmpeg.Runner {
	if t.FFmpeg == "" {
		logger.Info("video and audio thumbnails are off: [thumbnails] ffmpeg is empty")
		return nil
	}
	probe := t.FFprobe
	if probe == "" {
		probe = "ffprobe"
		if strings.ContainsRune(t.FFmpeg, filepath.Separator) {
			probe = filepath.Join(filepath.Dir(t.FFmpeg), "ffprobe")
		}
	}
	r, err := ffmpeg.New(ffmpeg.Options{
		Path:           t.FFmpeg,
		ProbePath:      probe,
		Timeout:        t.FFmpegTimeout.Duration,
		MaxCPUSeconds:  t.FFmpegCPUSeconds,
		MaxMemoryBytes: t.FFmpegMemory,
		MaxPixels:      t.MaxPixels,
		MaxDuration:    t.MaxMediaDuration.Duration,
		MaxFrameSide:   max(ffmpeg.DefaultMaxFrameSide, t.MaxDimension),
	})
	if err != nil {
		logger.Warn("video and audio thumbnails are off: ffmpeg not found (apt-get install ffmpeg)", "err", err)
		return nil
	}
	mp, pp := r.Paths()
	logger.Info("video, audio and AVIF thumbnails through ffmpeg", "ffmpeg", mp, "ffprobe", pp,
		"timeout", t.FFmpegTimeout.Duration, "cpu_seconds", t.FFmpegCPUSeconds, "memory_bytes", t.FFmpegMemory)
	return r
}

// thumbnailSizes turns [[thumbnails.sizes]] into the store's sizes.
func thumbnailSizes(sizes []config.ThumbnailSize) ([]media.ThumbnailSize, error) {
	var out []media.ThumbnailSize
	for _, z := range sizes {
		m, err := thumbgen.ParseMethod(z.Method)
		if err != nil {
			return nil, fmt.Errorf("thumbnails.sizes: %dx%d: %w", z.Width, z.Height, err)
		}
		out = append(out, media.ThumbnailSize{Width: z.Width, Height: z.Height, Method: m})
	}
	return out, nil
}
