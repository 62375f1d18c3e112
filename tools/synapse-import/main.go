// Command synapse-import moves a Synapse media store into mxcas: every
// local and cached remote media row with its media ID, name, type, creation
// time, uploader, quarantine state (and who set it), protection from
// quarantine and last access time, its bytes read from Synapse's
// media_store (or, when missing there, fetched from the homeserver),
// deduplicated into the mxcas data directory. It runs while mxcas is
// stopped, is idempotent (media already imported is skipped) and so also
// resumable, and never changes Synapse's database or files.
//
//	synapse-import -config mxcas.toml -serverName example.org \
//	    -dbHost localhost -dbUsername synapse -dbName synapse -mediaStore /var/lib/synapse/media_store
//	synapse-import -config mxcas.toml -serverName example.org -sqlite homeserver.db -mediaStore ./media_store
//
// Flags keep matrix-media-repo's import_synapse names where they fit.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/mxcas/mxcas/matrix"
)

type options struct {
	config, serverName                     string
	dbHost, dbUsername, dbPassword, dbName string
	dbPort                                 int
	sqlite, mediaStore, baseURL, token     string
	workers                                int
	dryRun, verify                         bool
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("synapse-import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.config, "config", "", "mxcas configuration `file` (its data_dir receives the media)")
	fs.StringVar(&o.serverName, "serverName", "", "the homeserver's server name (the server part of its mxc:// URIs)")
	fs.StringVar(&o.dbHost, "dbHost", "localhost", "PostgreSQL host of Synapse's database")
	fs.IntVar(&o.dbPort, "dbPort", 5432, "PostgreSQL port")
	fs.StringVar(&o.dbUsername, "dbUsername", "synapse", "PostgreSQL user")
	fs.StringVar(&o.dbPassword, "dbPassword", "", "PostgreSQL password (prompted for when omitted on a terminal)")
	fs.StringVar(&o.dbName, "dbName", "synapse", "PostgreSQL database")
	fs.StringVar(&o.sqlite, "sqlite", "", "Synapse's SQLite database `file` (instead of PostgreSQL)")
	fs.StringVar(&o.mediaStore, "mediaStore", "", "Synapse's media_store `dir`ectory (read directly: the fast, offline path)")
	fs.StringVar(&o.baseURL, "baseUrl", "", "homeserver `URL` to fetch files missing from -mediaStore")
	fs.StringVar(&o.token, "accessToken", "", "an admin's access token for -baseUrl")
	fs.IntVar(&o.workers, "workers", 4, "concurrent imports")
	fs.BoolVar(&o.dryRun, "dryRun", false, "read everything, report what would be imported, change nothing")
	fs.BoolVar(&o.verify, "verify", false, "check that every row is imported and byte-identical; change nothing")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.serverName == "" || (o.mediaStore == "" && o.baseURL == "") || o.workers < 1 {
		fmt.Fprintln(stderr, "synapse-import: -serverName and one of -mediaStore or -baseUrl are required; -workers must be positive")
		fs.Usage()
		return 2
	}
	if err := matrix.ValidateServerName(o.serverName); err != nil {
		fmt.Fprintln(stderr, "synapse-import:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := importAll(ctx, o, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "synapse-import:", err)
	}
	return code
}
