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
	"syscall"
	"time"

	"github.com/mxcas/mxcas/bench/internal/module"
	"github.com/mxcas/mxcas/bench/machine"
	"github.com/mxcas/mxcas/bench/report"
)

// logCommit finds the commit that added the change log.
const logCommit = "index: the change log"

// logCost builds media's test binary at this tree and at the parent of the
// change log's commit, runs BenchmarkUploadNew and BenchmarkUploadSmall
// with each in turn cfg.pairs times (which goes first alternating), and
// prints their medians, their CPU per upload (steadier than throughput on a
// shared machine) and the ratios.
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

	names := [2]string{"before (" + commit[:12] + "^)", "after (this tree)"}
	var rows [2][len(logBenches)]struct{ rate, cpu *report.Row }
	for i, n := range names {
		for j, b := range logBenches {
			rows[i][j].rate = &report.Row{Name: fmt.Sprintf("%s, %s", b.label, n), Unit: b.unit}
			rows[i][j].cpu = &report.Row{Name: "    CPU per " + b.op, Unit: "ms"}
		}
	}
	for k := range cfg.pairs {
		order := []int{0, 1}
		if k%2 == 1 {
			order = []int{1, 0}
		}
		for j, b := range logBenches {
			for _, i := range order {
				res, err := runBench(ctx, bins[i], filepath.Join(srcs[i], "media"), work, b)
				if err != nil {
					return err
				}
				rows[i][j].rate.Add(b.rate(res))
				rows[i][j].cpu.Add(res.cpuPerOp.Seconds() * 1000)
			}
		}
	}
	var all []*report.Row
	for j, b := range logBenches {
		ratio := &report.Row{Name: fmt.Sprintf("    %s after/before", b.name)}
		cpuRatio := &report.Row{Name: "    CPU per " + b.op + " after/before"}
		for k := range cfg.pairs {
			ratio.Add(rows[1][j].rate.Vals[k] / rows[0][j].rate.Vals[k])
			cpuRatio.Add(rows[1][j].cpu.Vals[k] / rows[0][j].cpu.Vals[k])
		}
		all = append(all, rows[0][j].rate, rows[0][j].cpu, rows[1][j].rate, rows[1][j].cpu, ratio, cpuRatio)
	}
	report.Table(os.Stdout, fmt.Sprintf("The change log's cost on the upload path: media benchmarks, %d alternating pairs (load %s at the end)", cfg.pairs, machine.Load()),
		cfg.pairs, all...)
	return nil
}

// logBench is one of media's benchmarks logCost runs, a fixed number of
// iterations (-test.benchtime Nx) so that both builds do the same work and
// the CPU of the whole process, divided by it, compares.
type logBench struct {
	name, label, benchtime string
	op, unit               string
	rate                   func(benchResult) float64
}

var logBenches = [...]logBench{
	{"UploadNew", "BenchmarkUploadNew (8 MiB), 20 uploads", "20x", "8 MiB upload", "MB/s", func(r benchResult) float64 { return r.mbps }},
	{"UploadSmall", "BenchmarkUploadSmall (4 KiB, parallel), 2000 uploads", "2000x", "4 KiB upload", "uploads/s", func(r benchResult) float64 { return 1e9 / r.nsPerOp }},
}

// benchResult is one benchmark run's figures; cpuPerOp is the process's
// user and system CPU over the iterations.
type benchResult struct {
	nsPerOp, mbps float64
	cpuPerOp      time.Duration
}

// runBench runs benchmark b of test binary bin once, in dir (the package's
// sources), with its temporary files under work.
func runBench(ctx context.Context, bin, dir, work string, b logBench) (benchResult, error) {
	cmd := exec.CommandContext(ctx, bin, "-test.run", "^$", "-test.bench", "^Benchmark"+b.name+"$", "-test.benchtime", b.benchtime, "-test.count", "1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+work)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return benchResult{}, fmt.Errorf("%s: %v: %s%s", bin, err, out, stderr.Bytes())
	}
	var r benchResult
	n := 0.0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark"+b.name) {
			continue
		}
		n, _ = strconv.ParseFloat(f[1], 64)
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
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if r.nsPerOp == 0 || n == 0 || !ok {
		return r, fmt.Errorf("%s: no result for Benchmark%s in:\n%s", bin, b.name, out)
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	r.cpuPerOp = time.Duration(float64(cpu) / n)
	return r, nil
}
