package main

import (
	"bytes"
	"image"
	"image/png"
	"io/fs"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mxcas/mxcas/config"
)

var metricsAddrRE = regexp.MustCompile(`msg="metrics listening" addr=(\S+)`)

// startMetricsE2E runs serve with [metrics] on a free loopback port (and
// pprof as asked) and returns the server and the metrics base URL.
func startMetricsE2E(t *testing.T, pprof bool) (*e2eServer, string) {
	t.Helper()
	s := startE2E(t, func(c *config.Config) {
		c.Metrics = config.Metrics{Listen: "127.0.0.1:0", Pprof: pprof}
		c.Thumbnails.Pregenerate = false // thumbnails are made only when asked: exact counts
	})
	m := metricsAddrRE.FindStringSubmatch(s.log.String())
	if m == nil {
		t.Fatalf("no metrics address in the log:\n%s", s.log)
	}
	return s, "http://" + m[1]
}

// scrape reads /metrics with the Prometheus text parser.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// metricValue is the value of the series of name whose labels include
// labels (name=value pairs): a counter's or gauge's value, a histogram's
// count. ok is false when there is no such series.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels ...string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.Label {
				found = found || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetricsE2E: the real server with [metrics] listen serves /metrics in
// the Prometheus text format; an upload of an image and of a text file, a
// download, a thumbnail, a refused thumbnail and a 404 move the request,
// byte, upload, download, thumbnail, token cache and store figures by
// exactly what they did, under route patterns (never raw paths). pprof is
// off: /debug/pprof/ is 404.
func TestMetricsE2E(t *testing.T) {
	s, base := startMetricsE2E(t, false)
	before := scrape(t, base)
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "mxcas_store_chunks",
		"mxcas_store_dedup_ratio", "mxcas_gc_runs_total", "mxcas_damaged_chunks_found_total", "mxcas_damaged_chunks_repaired_total", "mxcas_ratelimit_buckets",
		"mxcas_downloads_waiting"} {
		if _, ok := metricValue(before, name); !ok {
			t.Errorf("no %s before any request", name)
		}
	}

	var b bytes.Buffer
	if err := png.Encode(&b, image.NewNRGBA(image.Rect(0, 0, 64, 64))); err != nil {
		t.Fatal(err)
	}
	pic, txt := b.Bytes(), bytes.Repeat([]byte("plain text, not an image\n"), 40)
	id := s.upload(t, hostA, aliceToken, "a.png", "image/png", pic)
	tid := s.upload(t, hostA, aliceToken, "t.txt", "text/plain", txt)
	wantBytes(t, s.download(t, hostA, "a.test", id, aliceToken), pic)
	wantStatus(t, s.download(t, hostA, "a.test", "nosuchmedia", aliceToken), http.StatusNotFound)
	thumb := "/_matrix/client/v1/media/thumbnail/a.test/"
	wantStatus(t, s.do(t, http.MethodGet, hostA, thumb+id+"?width=32&height=32", aliceToken, nil, nil), http.StatusOK)
	wantStatus(t, s.do(t, http.MethodGet, hostA, thumb+tid+"?width=32&height=32", aliceToken, nil, nil), http.StatusBadRequest)
	// A request is counted before its log line is written: wait for the
	// last one's (the others came before it, from one client).
	if !s.log.waitFor(e2eBound, "msg=request", "path="+thumb+tid, "status=400") {
		t.Fatalf("no log line for the last request:\n%s", s.log)
	}

	after := scrape(t, base)
	const (
		upload   = "/_matrix/media/v3/upload"
		download = "/_matrix/client/v1/media/download/:server/:id"
		thumbR   = "/_matrix/client/v1/media/thumbnail/:server/:id"
	)
	uploaded := float64(len(pic) + len(txt))
	for _, c := range []struct {
		name   string
		labels []string
		delta  float64
	}{
		{"mxcas_http_requests_total", []string{"route", upload, "method", "POST", "status", "200"}, 2},
		{"mxcas_http_requests_total", []string{"route", download, "method", "GET", "status", "200"}, 1},
		{"mxcas_http_requests_total", []string{"route", download, "method", "GET", "status", "404"}, 1},
		{"mxcas_http_requests_total", []string{"route", thumbR, "method", "GET", "status", "200"}, 1},
		{"mxcas_http_requests_total", []string{"route", thumbR, "method", "GET", "status", "400"}, 1},
		{"mxcas_http_request_duration_seconds", []string{"route", download}, 2},
		{"mxcas_http_request_duration_seconds", []string{"route", upload}, 2},
		{"mxcas_http_received_bytes_total", nil, uploaded},
		{"mxcas_uploads_total", nil, 2},
		{"mxcas_upload_bytes_total", nil, uploaded},
		{"mxcas_downloads_total", nil, 1},
		{"mxcas_thumbnails_made_total", nil, 1},
		{"mxcas_thumbnails_served_total", nil, 1},
		{"mxcas_thumbnails_refused_total", nil, 1},
		{"mxcas_thumbnail_generation_seconds", nil, 1},
		{"mxcas_whoami_cache_misses_total", nil, 1},
		{"mxcas_whoami_cache_hits_total", nil, 5},
		{"mxcas_store_media", nil, 2},
		{"mxcas_store_logical_bytes", nil, uploaded},
		{"mxcas_remote_fetches_total", []string{"result", "ok"}, 0},
		{"mxcas_ratelimited_total", []string{"kind", "upload"}, 0},
	} {
		v0, _ := metricValue(before, c.name, c.labels...)
		v1, ok := metricValue(after, c.name, c.labels...)
		if !ok || v1-v0 != c.delta {
			t.Errorf("%s%v: %v -> %v (present %v), want +%v", c.name, c.labels, v0, v1, ok, c.delta)
		}
	}
	if v0, _ := metricValue(before, "mxcas_http_sent_bytes_total"); func() bool {
		v1, _ := metricValue(after, "mxcas_http_sent_bytes_total")
		return v1-v0 < float64(len(pic))
	}() {
		t.Errorf("mxcas_http_sent_bytes_total moved by less than the download")
	}
	// The requests made rate limit buckets (alice's and the client IP's).
	if v, _ := metricValue(after, "mxcas_ratelimit_buckets"); v < 2 {
		t.Errorf("mxcas_ratelimit_buckets = %v after uploads, downloads and thumbnails; want >= 2", v)
	}
	// No series is labelled with a raw path.
	for _, m := range after["mxcas_http_requests_total"].Metric {
		for _, lp := range m.Label {
			if lp.GetName() == "route" && (lp.GetValue() == "/_matrix/client/v1/media/download/a.test/"+id) {
				t.Errorf("a route label holds a raw path: %s", lp.GetValue())
			}
		}
	}
	// The chunk figures are those of DATA/cas, and the stored bytes those
	// and the inline chunks' (the two uploads and the thumbnail are small).
	var files, size int64
	filepath.WalkDir(filepath.Join(s.dataDir, "cas"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			info, err := d.Info()
			if err == nil {
				files++
				size += info.Size()
			}
		}
		return nil
	})
	chunks, _ := metricValue(after, "mxcas_store_chunks")
	stored, _ := metricValue(after, "mxcas_store_stored_bytes")
	ratio, _ := metricValue(after, "mxcas_store_dedup_ratio")
	// Small media are inline in the index: stored counts them beside the files.
	if chunks != float64(files) || stored < float64(size) || stored == 0 || ratio != uploaded/stored {
		t.Errorf("store: %v chunks, %v bytes, ratio %v; DATA/cas holds %d files of %d bytes", chunks, stored, ratio, files, size)
	}

	wantStatus(t, get(t, base+"/debug/pprof/"), http.StatusNotFound)
}

// TestMetricsPprof: with pprof = true, /debug/pprof/ answers on the
// metrics listener (and nowhere on the media API).
func TestMetricsPprof(t *testing.T) {
	s, base := startMetricsE2E(t, true)
	wantStatus(t, get(t, base+"/debug/pprof/"), http.StatusOK)
	wantStatus(t, get(t, base+"/debug/pprof/cmdline"), http.StatusOK)
	wantStatus(t, s.do(t, http.MethodGet, hostA, "/debug/pprof/", "", nil, nil), http.StatusNotFound)
}

// get is a plain GET, read in full.
func get(t *testing.T, url string) *e2eResp {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return &e2eResp{Status: resp.StatusCode, Header: resp.Header, Body: b.Bytes(), what: "GET " + url + " " + strconv.Itoa(resp.StatusCode)}
}
