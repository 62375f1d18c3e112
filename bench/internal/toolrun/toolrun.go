// Package toolrun runs this module's offline tools (tools/...) as the bench
// commands measure them: built from the module's source, run as a child
// process timed from start to exit, with the child's peak resident memory,
// and their closing "summary: key=value ..." line read back.
package toolrun

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Build builds the package ./pkg of the module at root (such as
// "tools/gdpr") into dir, as a binary named after the package's last
// element, and returns the binary's path.
func Build(ctx context.Context, root, dir, pkg string) (string, error) {
	bin := filepath.Join(dir, filepath.Base(pkg))
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./"+pkg)
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("go build ./%s: %w", pkg, err)
	}
	return bin, nil
}

// Result is one run of a tool.
type Result struct {
	Out  string        // what it wrote to stdout
	Wall time.Duration // from start to exit
	// PeakRSS is the process's peak resident memory in bytes: getrusage's
	// ru_maxrss of the child, as wait4 returns it.
	PeakRSS int64
}

// Run runs bin with args, its stderr passed through, and returns its
// stdout, wall time and peak memory. A tool that exits other than 0 is an
// error that quotes its stdout.
func Run(ctx context.Context, bin string, args ...string) (Result, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	t0 := time.Now()
	err := cmd.Run()
	res := Result{Out: out.String(), Wall: time.Since(t0)}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			res.PeakRSS = ru.Maxrss << 10 // Linux counts KiB
		}
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w\n%s", filepath.Base(bin), err, res.Out)
	}
	return res, nil
}

// Summary finds tool's "summary: k=v ..." line in out and returns it with
// its integer values, which must include every one of keys.
func Summary(tool, out string, keys ...string) (string, map[string]int64, error) {
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, "summary: ")
		if !ok {
			continue
		}
		vals := make(map[string]int64)
		for f := range strings.FieldsSeq(rest) {
			k, v, _ := strings.Cut(f, "=")
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				vals[k] = n
			}
		}
		for _, k := range keys {
			if _, ok := vals[k]; !ok {
				return "", nil, fmt.Errorf("%s's summary has no %s: %s", tool, k, line)
			}
		}
		return line, vals, nil
	}
	return "", nil, fmt.Errorf("no summary line in %s's output:\n%s", tool, out)
}
