// Package proccpu reads the CPU time processes have used from /proc, for
// the bench commands that report CPU per request: on a shared machine it
// varies much less than throughput does.
package proccpu

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// stat returns the fields of /proc/PID/stat after the command name (which
// ends with the last ')'): state is f[0], ppid f[1], utime f[11], stime
// f[12], cutime f[13] and cstime f[14].
func stat(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 15 {
		return nil, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	return f, nil
}

// ticks sums fields i.. of f, CPU times in USER_HZ ticks (100 a second).
func ticks(pid int, f []string, fields ...int) (float64, error) {
	var sum int64
	for _, i := range fields {
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		sum += v
	}
	return float64(sum) / 100, nil
}

// Seconds returns the user and system CPU seconds process pid has used.
func Seconds(pid int) (float64, error) {
	f, err := stat(pid)
	if err != nil {
		return 0, err
	}
	return ticks(pid, f, 11, 12)
}

// Tree returns the CPU seconds of process pid, its live children and the
// children it has waited for: a PostgreSQL postmaster and its backends.
func Tree(pid int) (float64, error) {
	f, err := stat(pid)
	if err != nil {
		return 0, err
	}
	sum, err := ticks(pid, f, 11, 12, 13, 14)
	if err != nil {
		return 0, err
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	parent := strconv.Itoa(pid)
	for _, d := range dirs {
		child, _ := strconv.Atoi(filepath.Base(d))
		cf, err := stat(child)
		if err != nil || cf[1] != parent {
			continue // gone, or not a child
		}
		s, err := ticks(child, cf, 11, 12)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		sum += s
	}
	return sum, nil
}
