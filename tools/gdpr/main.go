// Command gdpr exports a user's or a server's media as an archive in
// matrix-media-repo's v2 format (its gdpr_export writes the same), and
// imports such archives into mxcas: to answer a data-subject request, to
// move a homeserver's media between stores, or to move off
// matrix-media-repo.
//
//	gdpr export -config mxcas.toml -entity @alice:example.org -destination ./alice
//	gdpr import -config mxcas.toml -directory ./alice [-onlyEntity ENTITY] [-verify] [-allowDeleted]
//
// It opens the store itself when no server holds it; while mxcas runs it
// asks the server's local admin endpoint (DATA/admin.json), which reads and
// writes the files itself, so paths are sent absolute.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/mxcas/mxcas/archive"
	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/media"
)

const usage = `usage:
  gdpr export -config FILE -entity ENTITY -destination DIR [-partSize BYTES]
  gdpr import -config FILE -directory DIR [-onlyEntity ENTITY] [-verify] [-allowDeleted]`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs one command and returns the exit status: 0 done, 1 something
// failed (or, verifying, is missing), 2 a usage or configuration error
// (nothing was changed).
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "export":
		return cmdExport(ctx, args[1:], stdout, stderr)
	case "import":
		return cmdImport(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, usage)
	return 2
}

type exportOptions struct {
	config, entity, destination string
	partSize                    int64
}

func cmdExport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o exportOptions
	fs := flag.NewFlagSet("gdpr export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.config, "config", "", "mxcas configuration `file` (default ./mxcas.toml, else the embedded default)")
	fs.StringVar(&o.entity, "entity", "", "a user ID (@user:server: every media they uploaded) or a server name (every media of that origin held here)")
	fs.StringVar(&o.destination, "destination", "", "`dir`ectory to write the archive into (created if missing; must hold no *.tgz)")
	fs.Int64Var(&o.partSize, "partSize", archive.DefaultPartSize, "media `bytes` per part")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.entity == "" || o.destination == "" || o.partSize <= 0 || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "gdpr export: -entity and -destination are required; -partSize must be positive")
		fs.Usage()
		return 2
	}
	ent, err := media.ParseEntity(o.entity)
	if err != nil {
		fmt.Fprintln(stderr, "gdpr export:", err)
		return 2
	}
	dest, err := filepath.Abs(o.destination)
	if err != nil {
		fmt.Fprintln(stderr, "gdpr export:", err)
		return 2
	}
	cfg, err := config.Find(o.config)
	if err != nil {
		fmt.Fprintln(stderr, "gdpr export:", err)
		return 2
	}
	var rep media.ExportReport
	err = withStore(ctx, cfg, true, stderr, "export", func(st *media.Store) (err error) {
		rep, err = st.ExportToDir(ctx, dest, media.ExportOptions{Entity: ent, PartSize: o.partSize})
		return err
	}, func(s *adminSession) error {
		req := exportRequest{Entity: ent.String(), Dest: dest, PartSize: o.partSize}
		return s.call(ctx, "export", req, nil, &rep)
	})
	if err != nil {
		fmt.Fprintln(stderr, "gdpr export:", err)
		if errors.Is(err, media.ErrExportDest) || refused(err) {
			return 2
		}
		return 1
	}
	fmt.Fprintf(stdout, "summary: entity=%s media=%d bytes=%d parts=%d quarantined=%d\n",
		rep.Entity, rep.Media, rep.Bytes, len(rep.Parts), rep.Quarantined)
	return 0
}

type importOptions struct {
	config, directory, onlyEntity string
	verify, allowDeleted          bool
}

func cmdImport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o importOptions
	fs := flag.NewFlagSet("gdpr import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.config, "config", "", "mxcas configuration `file` (default ./mxcas.toml, else the embedded default)")
	fs.StringVar(&o.directory, "directory", "", "`dir`ectory holding the archives (every directory under it holding *.tgz parts is one)")
	fs.StringVar(&o.onlyEntity, "onlyEntity", "", "import only this user's or server's media (and admit that server's local media as cached copies)")
	fs.BoolVar(&o.verify, "verify", false, "change nothing; report each media not held here byte for byte")
	fs.BoolVar(&o.allowDeleted, "allowDeleted", false, "restore media deleted here under its old ID")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.directory == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "gdpr import: -directory is required")
		fs.Usage()
		return 2
	}
	opts := media.ArchiveImportOptions{Verify: o.verify, AllowDeleted: o.allowDeleted}
	if o.onlyEntity != "" {
		ent, err := media.ParseEntity(o.onlyEntity)
		if err != nil {
			fmt.Fprintln(stderr, "gdpr import:", err)
			return 2
		}
		opts.OnlyEntity = &ent
	}
	dir, err := filepath.Abs(o.directory)
	if err != nil {
		fmt.Fprintln(stderr, "gdpr import:", err)
		return 2
	}
	cfg, err := config.Find(o.config)
	if err != nil {
		fmt.Fprintln(stderr, "gdpr import:", err)
		return 2
	}
	opts.Problem = func(p media.ArchiveProblem) { printProblem(stderr, p) }
	var rep media.DirImportReport
	err = withStore(ctx, cfg, o.verify, stderr, "import", func(st *media.Store) (err error) {
		rep, err = st.ImportDir(ctx, dir, opts)
		return err
	}, func(s *adminSession) error {
		req := importRequest{Dir: dir, OnlyEntity: o.onlyEntity, Verify: o.verify, AllowDeleted: o.allowDeleted}
		return s.call(ctx, "import", req, opts.Problem, &rep)
	})
	if err != nil {
		fmt.Fprintln(stderr, "gdpr import:", err)
		switch {
		case errors.Is(err, media.ErrNoStore) && o.verify:
			return 1 // nothing is held: everything is missing
		case errors.Is(err, media.ErrNoArchive) || refused(err):
			return 2
		case rep.Archives == 0:
			return 1
		}
	}
	fmt.Fprintf(stdout, "summary: archives=%d imported=%d present=%d other=%d refused=%d failed=%d missing=%d bytes_read=%d bytes_stored=%d\n",
		rep.Archives, rep.Imported, rep.Present, rep.Other, rep.Refused, rep.Failed, rep.Missing, rep.BytesRead, rep.BytesStored)
	if err != nil || rep.Problems() {
		return 1
	}
	return 0
}

// printProblem writes one problem line: "<kind>: <mxc>: <reason>", or
// "failed: archive <dir>: <err>" for an archive that failed as a whole.
// Text from the archive is quoted when it holds anything but printable
// ASCII, so a hostile manifest cannot forge lines.
func printProblem(w io.Writer, p media.ArchiveProblem) {
	if p.MXC == "" && p.Archive != "" {
		fmt.Fprintf(w, "%s: archive %s: %s\n", plain(p.Kind), plain(p.Archive), plain(p.Reason))
		return
	}
	fmt.Fprintf(w, "%s: %s: %s\n", plain(p.Kind), plain(p.MXC), plain(p.Reason))
}

// plain returns s as it is when it is printable ASCII, else quoted.
func plain(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return fmt.Sprintf("%q", s)
		}
	}
	return s
}
