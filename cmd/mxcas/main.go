// Command mxcas is the mxcas media repository: the server and its
// maintenance commands. It only wires packages together.
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

const usage = `mxcas: a content-addressed Matrix media repository

Usage:
  mxcas serve  [-config FILE]          run the server
  mxcas fsck   [-config FILE]          check every chunk, manifest and record (exit 1 on damage)
  mxcas gc     [-config FILE] [-force]  remove content no media refers to (-force: even when
                                       the index looks lost: most chunks unknown to it)
  mxcas backup [-config FILE] DEST     write a consistent copy of the store to DEST
  mxcas migrate [-config FROM] -to TO_CONFIG
                                       copy the stopped store (index and chunks, verified)
                                       to TO_CONFIG's data_dir and [storage] (local disk
                                       to S3 or back); run again to resume
  mxcas replication status [-config FILE]
                                       print the running server's replication role, last
                                       change applied, the primary's head and the lag (JSON)
  mxcas promote [-config FILE]         make the running standby a primary at once: it stops
                                       following and takes writes
  mxcas keygen [-version V] FILE       write a new signing key (Synapse's format)
  mxcas version                        print the version

Without -config, ./mxcas.toml is read when present, else the embedded
default (data in ./data). fsck, gc and backup ask the running server to do
the work when it holds the store, and open the store themselves otherwise;
replication status and promote need the running server.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the exit, for tests. It returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	switch args[0] {
	case "serve":
		// The server logs a line per request: buffered (logBuffer).
		// Its level is [server] log_level, which a reload may change.
		level := new(slog.LevelVar)
		logger, lb := bufferedLogger(stderr, logFlushDelay, level)
		defer lb.Close()
		return cmdServe(args[1:], logger, level, stderr)
	case "fsck":
		return cmdFsck(args[1:], logger, stdout, stderr)
	case "gc":
		return cmdGC(args[1:], logger, stdout, stderr)
	case "backup":
		return cmdBackup(args[1:], logger, stdout, stderr)
	case "migrate":
		return cmdMigrate(args[1:], logger, stdout, stderr)
	case "replication":
		return cmdReplication(args[1:], stdout, stderr)
	case "promote":
		return cmdPromote(args[1:], stdout, stderr)
	case "keygen":
		return cmdKeygen(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "mxcas", versionString())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "mxcas: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
		return v
	}
	return "unknown"
}
