package config

import (
	"errors"
	"strings"
	"testing"
)

// [metrics] is off by default; listen and pprof are read from the file;
// pprof without a listener and a listen that is not host:port are refused
// with their key and line.
func TestMetricsTable(t *testing.T) {
	if m := Default().Metrics; m != (Metrics{}) {
		t.Errorf("default [metrics] = %+v, want off", m)
	}
	c, err := Parse("[metrics]\nlisten = \"127.0.0.1:9100\"\npprof = true\n", "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Metrics{Listen: "127.0.0.1:9100", Pprof: true}); c.Metrics != want {
		t.Errorf("[metrics] = %+v, want %+v", c.Metrics, want)
	}
	for _, tc := range []struct{ text, want string }{
		{"[metrics]\npprof = true\n", "t.toml:2: metrics.pprof: needs [metrics] listen"},
		{"[metrics]\nlisten = \"localhost\"\n", `t.toml:2: metrics.listen: want host:port or "" (off), got "localhost"`},
		{"[metrics]\nlisten = \"127.0.0.1:9100\"\npath = \"/m\"\n", `t.toml:3: unknown key "metrics.path"`},
	} {
		_, err := Parse(tc.text, "t.toml")
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want ErrInvalid containing %q", tc.text, err, tc.want)
		}
	}
}
