package config

import (
	"fmt"
	"net"
)

// Metrics is the [metrics] table: Prometheus metrics on a listener of
// their own.
type Metrics struct {
	// Listen is the host:port serving /metrics; "" (the default) serves
	// none. It should not be reachable from the internet: keep it on
	// loopback or a private network.
	Listen string `toml:"listen"`
	// Pprof adds Go's profiler, /debug/pprof/, on the same listener.
	Pprof bool `toml:"pprof"`
}

// validate checks the listen address, and that pprof has a listener to be
// served on.
func (m Metrics) validate() error {
	if m.Listen == "" {
		if m.Pprof {
			return bad(`needs [metrics] listen: /debug/pprof/ is served on the metrics listener`, "metrics", "pprof")
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(m.Listen); err != nil {
		return bad(fmt.Sprintf("want host:port or \"\" (off), got %q", m.Listen), "metrics", "listen")
	}
	return nil
}
