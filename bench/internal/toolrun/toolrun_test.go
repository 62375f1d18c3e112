package toolrun

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

const childEnv = "TOOLRUN_TEST_CHILD_MIB"

// TestMain turns the test binary into the measured child when childEnv
// is set: it touches that many MiB, then prints a summary line.
func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		var mib int
		fmt.Sscan(v, &mib)
		b := make([]byte, mib<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		fmt.Printf("working\nsummary: touched=%d pages=%d\n", mib, len(b)/4096)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestRunMeasuresPeakRSS(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	measure := func(mib int) int64 {
		t.Helper()
		t.Setenv(childEnv, fmt.Sprint(mib))
		res, err := Run(context.Background(), exe)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(res.Out, "summary: touched=") || res.Wall <= 0 {
			t.Fatalf("Run: out %q, wall %v", res.Out, res.Wall)
		}
		return res.PeakRSS
	}
	small, large := measure(1), measure(96)
	if large < 96<<20 || large-small < 90<<20 {
		t.Errorf("peak RSS %d after touching 96 MiB, %d after 1 MiB: want the difference to show", large, small)
	}
}

// A tool's peak is its own, not the memory of the benchmark that runs it
// (which Linux counts in the ru_maxrss of a child forked from it).
func TestRunPeakRSSIsNotTheParents(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	held := make([]byte, 256<<20)
	for i := 0; i < len(held); i += 4096 {
		held[i] = 1
	}
	t.Setenv(childEnv, "1")
	res, err := Run(context.Background(), exe)
	if err != nil {
		t.Fatal(err)
	}
	if res.PeakRSS <= 0 || res.PeakRSS > 64<<20 {
		t.Errorf("peak RSS %d of a child touching 1 MiB, run by a process holding 256 MiB: want its own, a few MB", res.PeakRSS)
	}
	runtime.KeepAlive(held)
}

func TestRunFailure(t *testing.T) {
	_, err := Run(context.Background(), "/bin/sh", "-c", "echo partial; exit 3")
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "partial") {
		t.Errorf("Run of a failing tool: %v; want its status and output", err)
	}
}

func TestSummary(t *testing.T) {
	out := "progress\nsummary: media=3 bytes=1024 entity=@a:b ratio=1.5\nafter\n"
	line, vals, err := Summary("gdpr export", out, "media", "bytes")
	if err != nil {
		t.Fatal(err)
	}
	if line != "summary: media=3 bytes=1024 entity=@a:b ratio=1.5" || vals["media"] != 3 || vals["bytes"] != 1024 || len(vals) != 2 {
		t.Errorf("Summary = %q, %v", line, vals)
	}
	for _, tc := range []struct{ out, want string }{
		{out, "gdpr export's summary has no parts"},
		{"no summary here\n", "no summary line in gdpr export's output"},
	} {
		if _, _, err := Summary("gdpr export", tc.out, "media", "parts"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Summary(%q): %v, want %q", tc.out, err, tc.want)
		}
	}
}
