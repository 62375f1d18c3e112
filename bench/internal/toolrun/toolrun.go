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
	// PeakRSS is the tool's peak resident memory in bytes: getrusage's
	// ru_maxrss of the tool, as wait4 returns it to the small launcher
	// that started it (see Run).
	PeakRSS int64
}

// shimEnv, set, makes a binary that imports this package the launcher of
// Run (shim) instead of itself.
const shimEnv = "MXCAS_TOOLRUN_SHIM"

func init() {
	if os.Getenv(shimEnv) != "" {
		os.Exit(shim())
	}
}

// Run runs bin with args, its stderr passed through, and returns its
// stdout, wall time and peak memory. A tool that exits other than 0 is an
// error that quotes its stdout.
//
// The tool is started by a launcher, this very binary run afresh (shim),
// which reports the tool's ru_maxrss: Linux counts in a child's ru_maxrss
// the memory of the process it was forked from, as it stood at the fork,
// so a benchmark holding hundreds of MB would have every tool it starts
// seem to peak there (a 300 MB parent saw /bin/true peak at 302 MB). The
// launcher holds a few MB.
func Run(ctx context.Context, bin string, args ...string) (Result, error) {
	self, err := os.Executable()
	if err != nil {
		return Result{}, err
	}
	rusage, w, err := os.Pipe()
	if err != nil {
		return Result{}, err
	}
	defer rusage.Close()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, self, append([]string{bin}, args...)...)
	cmd.Env = append(os.Environ(), shimEnv+"=1")
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	cmd.ExtraFiles = []*os.File{w}
	// The tool is in the launcher's process group: a cancel ends both.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	t0 := time.Now()
	err = cmd.Start()
	w.Close()
	if err == nil {
		err = cmd.Wait()
	}
	res := Result{Out: out.String(), Wall: time.Since(t0)}
	var kib int64
	if _, serr := fmt.Fscan(rusage, &kib); serr == nil {
		res.PeakRSS = kib << 10
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w\n%s", filepath.Base(bin), err, res.Out)
	}
	if res.PeakRSS == 0 {
		return res, fmt.Errorf("%s: the launcher reported no peak memory", filepath.Base(bin))
	}
	return res, nil
}

// shim is the launcher's part of Run: it runs os.Args[1:] with this
// process's standard files, writes the tool's ru_maxrss (KiB) to file
// descriptor 3, and returns the tool's exit status.
func shim() int {
	os.Unsetenv(shimEnv)
	report := os.NewFile(3, "rusage")
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	if cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, "toolrun:", err)
		return 127
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		fmt.Fprintln(report, ru.Maxrss)
	}
	return cmd.ProcessState.ExitCode()
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
