package main

import (
	"testing"
	"time"

	"github.com/mxcas/mxcas/httpapi"
)

// BenchmarkObserveRequest is what the metrics add to each request: the
// Prometheus side of httpapi's Observe hook.
func BenchmarkObserveRequest(b *testing.B) {
	m := newMetrics()
	ri := httpapi.RequestInfo{Route: "/_matrix/client/v1/media/download/:server/:id", Method: "GET",
		Status: 200, BytesOut: 1000, Duration: 3 * time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		m.observeRequest(ri)
	}
}
