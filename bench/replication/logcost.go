package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mxcas/mxcas/bench/internal/module"
	"github.com/mxcas/mxcas/bench/machine"
	"github.com/mxcas/mxcas/bench/report"
)

// logCommit finds the commit that added the change log.
const logCommit = "index: the change log"

// logCost builds media's test binary at this tree and at the parent of the
// change log's commit, runs BenchmarkUploadNew and BenchmarkUploadSmall
// with each in turn cfg.pairs times (which goes first alternating), and
// prints their medians and ratios.
func logCost(ctx context.Context, cfg config, work string) error {
	root, err := module.Root()
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "git", "-C", root, "log", "-1", "--format=%H", "--grep", logCommit).Output()
	commit := strings.TrimSpace(string(out))
	if err != nil || commit == "" {
		return fmt.Errorf("no commit %q in the history of %s: %v", logCommit, root, err)
	}
	before := filepath.Join(work, "before")
	if err := os.MkdirAll(before, 0o750); err != nil {
		return err
	}
	// The tree before, from git archive: the worktree is left alone.
	arch := exec.CommandContext(ctx, "sh", "-c", `git -C "$1" archive "$2^" | tar -x -C "$3"`, "sh", root, commit, before)
	if out, err := arch.CombinedOutput(); err != nil {
		return fmt.Errorf("extract %s^: %v: %s", commit[:12], err, out)
	}
	bins := [2]string{filepath.Join(work, "before.test"), filepath.Join(work, "after.test")}
	srcs := [2]string{before, root}
	for i, src := range srcs {
		build := exec.CommandContext(ctx, "go", "test", "-c", "-o", bins[i], "./media")
		build.Dir = src
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("go test -c ./media in %s: %v: %s", src, err, out)
		}
	}

	names := [2]string{"before " + commit[:12] + "^", "after (this tree)"}
	var rows [2]struct{ new, small *report.Row }
	for i, n := range names {
		rows[i].new = &report.Row{Name: "BenchmarkUploadNew (8 MiB), " + n, Unit: "MB/s"}
		rows[i].small = &report.Row{Name: "BenchmarkUploadSmall (4 KiB, parallel), " + n, Unit: "uploads/s"}
	}
	for k := range cfg.pairs {
		order := []int{0, 1}
		if k%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			res, err := runBench(ctx, bins[i], filepath.Join(srcs[i], "media"), work)
			if err != nil {
				return err
			}
			rows[i].new.Add(res["BenchmarkUploadNew"].mbps)
			rows[i].small.Add(1e9 / res["BenchmarkUploadSmall"].nsPerOp)
		}
	}
	newRatio := &report.Row{Name: "    UploadNew after/before"}
	smallRatio := &report.Row{Name: "    UploadSmall after/before"}
	for k := range cfg.pairs {
		newRatio.Add(rows[1].new.Vals[k] / rows[0].new.Vals[k])
		smallRatio.Add(rows[1].small.Vals[k] / rows[0].small.Vals[k])
	}
	report.Table(os.Stdout, fmt.Sprintf("The change log's cost on the upload path: media benchmarks, %d alternating pairs (load %s at the end)", cfg.pairs, machine.Load()),
		cfg.pairs, rows[0].new, rows[1].new, newRatio, rows[0].small, rows[1].small, smallRatio)
	return nil
}

// benchResult is one benchmark line's figures.
type benchResult struct{ nsPerOp, mbps float64 }

// runBench runs the two upload benchmarks of test binary bin once, in dir
// (the package's sources), with its temporary files under work.
func runBench(ctx context.Context, bin, dir, work string) (map[string]benchResult, error) {
	cmd := exec.CommandContext(ctx, bin, "-test.run", "^$", "-test.bench", "^Benchmark(UploadNew|UploadSmall)$", "-test.count", "1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+work)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %s%s", bin, err, out, stderr.Bytes())
	}
	res := make(map[string]benchResult)
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name, _, _ := strings.Cut(f[0], "-")
		var r benchResult
		for j := 2; j+1 < len(f); j++ {
			v, err := strconv.ParseFloat(f[j], 64)
			if err != nil {
				continue
			}
			switch f[j+1] {
			case "ns/op":
				r.nsPerOp = v
			case "MB/s":
				r.mbps = v
			}
		}
		res[name] = r
	}
	for _, n := range []string{"BenchmarkUploadNew", "BenchmarkUploadSmall"} {
		if res[n].nsPerOp == 0 {
			return nil, fmt.Errorf("%s: no result for %s in:\n%s", bin, n, out)
		}
	}
	return res, nil
}
