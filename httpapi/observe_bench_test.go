package httpapi

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

// BenchmarkServeDownload is a small authenticated download through
// ServeHTTP (static token, no network), without and with an Observe hook
// that does the least a hook can (one atomic add): the cost of counting
// the route, the bodies and the duration for metrics.
func BenchmarkServeDownload(b *testing.B) {
	for _, observed := range []bool{false, true} {
		name := "plain"
		if observed {
			name = "observed"
		}
		b.Run(name, func(b *testing.B) {
			quiet := slog.New(slog.DiscardHandler)
			st, err := media.Open(media.Options{Dir: b.TempDir(), Create: true, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			m, _ := matrix.ParseMXC("mxc://hs.test/bench")
			body := bytes.Repeat([]byte("x"), 1000)
			if _, err := st.Upload(context.Background(), media.UploadInfo{MXC: m, Size: int64(len(body))}, bytes.NewReader(body)); err != nil {
				b.Fatal(err)
			}
			var n atomic.Int64
			o := Options{Store: st, Logger: quiet,
				Homeservers: []Homeserver{{Name: "hs.test", StaticTokens: map[string]string{"t": "@u:hs.test"}}}}
			if observed {
				o.Observe = func(ri RequestInfo) { n.Add(ri.BytesOut) }
			}
			api, err := New(o)
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "http://hs.test/_matrix/client/v1/media/download/hs.test/bench", nil)
			req.Header.Set("Authorization", "Bearer t")
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				api.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}
