package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/media"
)

// refusedError is an error by which the command refused to run and changed
// nothing (exit status 2): the store cannot be opened, the server refused
// the request.
type refusedError struct{ err error }

func (e refusedError) Error() string { return e.err.Error() }
func (e refusedError) Unwrap() error { return e.err }

// refused reports whether err is a refusal.
func refused(err error) bool {
	var r refusedError
	return errors.As(err, &r)
}

// storeOptions are the store's options for the tool: the configuration's
// data directory and served homeservers (compared without regard to case,
// as the server does), no thumbnails, no log.
func storeOptions(cfg config.Config, readOnly bool) media.Options {
	local := make(map[string]bool)
	for _, hs := range cfg.Homeservers {
		local[strings.ToLower(hs.Name)] = true
	}
	return media.Options{
		Dir:          cfg.Server.DataDir,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Local:        func(s string) bool { return local[strings.ToLower(s)] },
		ReadOnly:     readOnly,
		Create:       !readOnly,
		KeepBallast:  !readOnly,
		MinFreeBytes: cfg.Storage.MinFreeBytes,
		BallastBytes: cfg.Storage.BallastBytes,
		Thumbnails:   media.ThumbnailOptions{Disabled: true},
	}
}

// withStore runs local on the store it opens (read-only, or creating it),
// or, when a running server holds the store, remote against that server's
// admin endpoint, saying so on stderr. An error opening the store is
// a refusedError.
func withStore(ctx context.Context, cfg config.Config, readOnly bool, stderr io.Writer, op string,
	local func(*media.Store) error, remote func(*adminSession) error) error {
	st, err := media.Open(storeOptions(cfg, readOnly))
	if errors.Is(err, media.ErrLocked) {
		s, err := openAdmin(cfg.Server.DataDir)
		if err != nil {
			return refusedError{err}
		}
		fmt.Fprintf(stderr, "gdpr: the store is held by a running mxcas server (pid %d): it runs the %s\n", s.info.PID, op)
		return remote(s)
	}
	if err != nil {
		return refusedError{fmt.Errorf("open the store: %w", err)}
	}
	err = local(st)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return err
}
