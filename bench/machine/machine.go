// Package machine describes the computer a benchmark runs on, so that every
// figure the bench harness prints comes with the machine it was measured on.
package machine

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"
)

// String returns one line such as
// "linux/amd64, 2 CPUs, AMD EPYC 9B14, go1.26.0".
func String() string {
	return fmt.Sprintf("%s/%s, %d CPUs, %s, %s",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel(), runtime.Version())
}

// Note prints the line "machine: " String() that heads every bench
// command's output.
func Note() { fmt.Printf("machine: %s\n", String()) }

// cpuModel returns the first "model name" of /proc/cpuinfo, or "unknown CPU".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// Load returns the load averages over 1, 5 and 15 minutes as
// /proc/loadavg gives them ("0.18 0.57 0.33"), or "unknown".
func Load() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
