package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/ffmpeg"
	"github.com/mxcas/mxcas/httpapi"
	"github.com/mxcas/mxcas/media"
)

// metrics is the Prometheus side of the server: a registry of its own (not
// the global default), the request metrics fed by httpapi's Observe hook,
// the thumbnail histogram fed by media's, and a collector that reads the
// store's and the API's counters at each scrape. The libraries never
// import Prometheus; this file adapts what they expose.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec   // route, method, status
	duration  *prometheus.HistogramVec // route
	received  prometheus.Counter
	sent      prometheus.Counter
	downloads prometheus.Counter
	thumbTime prometheus.Histogram
	status    [600]string // status code labels, made once: no allocation per request
}

// newMetrics makes the registry with the Go and process collectors and
// the request and thumbnail metrics. The store's metrics join it with
// watch, once the store and API exist.
func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxcas_http_requests_total",
			Help: "Requests answered by the media API, by route pattern, method and status code.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mxcas_http_request_duration_seconds",
			Help:    "Time from a request reaching the media API to the end of its answer, by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route"}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxcas_http_received_bytes_total", Help: "Request body bytes read by the media API.",
		}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxcas_http_sent_bytes_total", Help: "Response body bytes written by the media API.",
		}),
		downloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxcas_downloads_total",
			Help: "GET downloads answered with content (200 or 206) on the client, legacy and federation download routes.",
		}),
		thumbTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mxcas_thumbnail_generation_seconds",
			Help:    "Time to make one thumbnail: reading and decoding its source (or its share of one decode), resampling, encoding.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 13), // 5 ms to 20 s
		}),
	}
	for i := range m.status {
		m.status[i] = strconv.Itoa(i)
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.received, m.sent, m.downloads, m.thumbTime)
	return m
}

// observeRequest is httpapi.Options.Observe.
func (m *metrics) observeRequest(ri httpapi.RequestInfo) {
	status := "other"
	if ri.Status >= 0 && ri.Status < len(m.status) {
		status = m.status[ri.Status]
	}
	m.requests.WithLabelValues(ri.Route, ri.Method, status).Inc()
	m.duration.WithLabelValues(ri.Route).Observe(ri.Duration.Seconds())
	if ri.BytesIn > 0 {
		m.received.Add(float64(ri.BytesIn))
	}
	if ri.BytesOut > 0 {
		m.sent.Add(float64(ri.BytesOut))
	}
	if ri.Method == http.MethodGet && (ri.Status == http.StatusOK || ri.Status == http.StatusPartialContent) &&
		strings.Contains(ri.Route, "/download/") {
		m.downloads.Inc()
	}
}

// observeThumbnail is media.ThumbnailOptions.Observe.
func (m *metrics) observeThumbnail(took time.Duration) { m.thumbTime.Observe(took.Seconds()) }

// watch adds the collector of st's and api's counters.
func (m *metrics) watch(st *media.Store, api *httpapi.API) {
	m.reg.MustRegister(&storeCollector{st: st, api: api})
}

// watchFFmpeg adds the counters of the thumbnailer's ffmpeg children.
func (m *metrics) watchFFmpeg(r *ffmpeg.Runner) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mxcas_ffmpeg_children_total",
			Help: "ffmpeg and ffprobe children run for video, audio and AVIF thumbnails.",
		}, func() float64 { return float64(r.Stats().Runs) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mxcas_ffmpeg_child_max_rss_bytes",
			Help: "The largest peak resident set of one ffmpeg or ffprobe child since the start.",
		}, func() float64 { return float64(r.Stats().MaxRSS) }),
	)
}

// storeCollector reads media.Store.Stats and httpapi.API.Stats at each
// scrape: atomics, no index read, no scan.
type storeCollector struct {
	st  *media.Store
	api *httpapi.API
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descMedia        = desc("mxcas_store_media", "Media with content in the store (local uploads and the remote cache).")
	descLogical      = desc("mxcas_store_logical_bytes", "Sum of the sizes of the media with content: identical content stored twice counts twice.")
	descStored       = desc("mxcas_store_stored_bytes", "Sum of the sizes of the chunk files (media, thumbnails, garbage not yet collected).")
	descChunks       = desc("mxcas_store_chunks", "Chunk files in the store.")
	descDedup        = desc("mxcas_store_dedup_ratio", "Logical bytes over stored bytes (1 when nothing is stored).")
	descUploads      = desc("mxcas_uploads_total", "Local uploads stored (direct and asynchronous).")
	descUploadBytes  = desc("mxcas_upload_bytes_total", "Sum of the sizes of the local uploads stored.")
	descThumbMade    = desc("mxcas_thumbnails_made_total", "Thumbnails generated (on request or pregenerated).")
	descThumbServed  = desc("mxcas_thumbnails_served_total", "Thumbnail requests answered with a thumbnail.")
	descThumbRefused = desc("mxcas_thumbnails_refused_total", "Thumbnail requests refused for their source or parameters (too large, not an image, bad parameters).")
	descRemote       = desc("mxcas_remote_fetches_total", "Remote media fetches, by result.", "result")
	descWhoamiHits   = desc("mxcas_whoami_cache_hits_total", "Access token checks answered from the cache.")
	descWhoamiMisses = desc("mxcas_whoami_cache_misses_total", "Access token checks that asked the homeserver.")
	descGCRuns       = desc("mxcas_gc_runs_total", "GC runs completed.")
	descGCChunks     = desc("mxcas_gc_deleted_chunks_total", "Chunk files GC removed.")
	descGCBytes      = desc("mxcas_gc_reclaimed_bytes_total", "Bytes of the chunk files GC removed.")
	descDamageFound  = desc("mxcas_damaged_chunks_found_total", "Chunks found damaged by reads since the start (each once).")
	descDamaged      = desc("mxcas_damaged_chunks", "Chunks recorded as damaged now.")
	descRepaired     = desc("mxcas_damaged_chunks_repaired_total", "Damaged chunks put back in place since the start (from the repair source on reads and fsck, or by fsck -repair-from).")
	descRateLimited  = desc("mxcas_ratelimited_total", "Requests refused with 429 by a rate limit, by kind.", "kind")
	descRateBuckets  = desc("mxcas_ratelimit_buckets", "Rate limit buckets held now.")
	descWaiting      = desc("mxcas_downloads_waiting", "Downloads waiting now for the content of a created media ID (timeout_ms).")
)

// Describe implements prometheus.Collector: what Collect sends (the chunk
// figures are always there, serve opens the store with CountChunks).
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

// Collect implements prometheus.Collector.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	s, a := c.st.Stats(), c.api.Stats()
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descMedia, s.Media)
	gauge(descLogical, s.LogicalBytes)
	if s.ChunksCounted {
		gauge(descStored, s.StoredBytes)
		gauge(descChunks, s.Chunks)
		ch <- prometheus.MustNewConstMetric(descDedup, prometheus.GaugeValue, s.DedupRatio())
	}
	counter(descUploads, s.Uploads)
	counter(descUploadBytes, s.UploadBytes)
	counter(descThumbMade, s.ThumbnailsMade)
	counter(descThumbServed, s.ThumbnailsServed)
	counter(descThumbRefused, s.ThumbnailsRefused)
	for r := media.FetchResult(0); r < media.NumFetchResults; r++ {
		counter(descRemote, s.RemoteFetches[r], r.String())
	}
	counter(descWhoamiHits, a.WhoamiCacheHits)
	counter(descWhoamiMisses, a.WhoamiCacheMisses)
	counter(descGCRuns, s.GCRuns)
	counter(descGCChunks, s.GCChunksDeleted)
	counter(descGCBytes, s.GCBytesDeleted)
	counter(descDamageFound, s.DamagedChunksFound)
	gauge(descDamaged, s.DamagedChunks)
	counter(descRepaired, s.DamagedChunksRepaired)
	gauge(descWaiting, s.Waiting)
	rl := c.api.RateLimitStats()
	for k, n := range rl.Limited { // every kind, refused or not
		counter(descRateLimited, int64(n), k.String())
	}
	gauge(descRateBuckets, int64(rl.Tracked))
}

// startMetrics serves m's /metrics, and /debug/pprof/ when cfg asks, on
// cfg.Listen until the returned stop is called.
func startMetrics(cfg config.Metrics, m *metrics, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError), Registry: m.reg,
	}))
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != http.ErrServerClosed {
			logger.Error("metrics listener failed", "err", err)
		}
	}()
	logger.Info("metrics listening", "addr", ln.Addr().String(), "pprof", cfg.Pprof)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
		<-done
	}, nil
}
