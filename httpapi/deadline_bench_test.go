package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// benchGuard times 4 KiB answers over loopback, client and server in this
// process, with or without RateGuard: the guard's cost per small request.
func benchGuard(b *testing.B, guard bool) {
	payload := make([]byte, 4096)
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "4096")
		w.Write(payload)
	})
	if guard {
		h, _ = RateGuard(h, RateOptions{MinRate: 1024, Window: time.Minute})
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := srv.Client()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(srv.URL)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

func BenchmarkRateGuard(b *testing.B) {
	b.Run("off", func(b *testing.B) { benchGuard(b, false) })
	b.Run("on", func(b *testing.B) { benchGuard(b, true) })
}
