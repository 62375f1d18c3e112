// Package command is the start every bench command shares: plain log lines
// prefixed with the command's name, a usage error for a wrong command line,
// a work directory made absolute and created, and the measurement run under
// a context that SIGINT or SIGTERM cancels. It exits the process on
// failure, so only a command's main calls it.
package command

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

// SetupLog makes log print bare lines prefixed with "name: ".
func SetupLog(name string) {
	log.SetFlags(0)
	log.SetPrefix(name + ": ")
}

// CheckArgs prints the flags' usage and exits with status 2 unless ok holds
// and no arguments follow the flags. Call it after flag.Parse.
func CheckArgs(ok bool) {
	if !ok || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
}

// WorkDir returns dir made absolute (as given where that fails), having
// created it; it exits through log.Fatal if it cannot.
func WorkDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		log.Fatal(err)
	}
	return dir
}

// Run calls fn with a context that SIGINT or SIGTERM cancels and exits
// through log.Fatal with its error, if any.
func Run(fn func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := fn(ctx)
	stop()
	if err != nil {
		log.Fatal(err)
	}
}
