package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mxcas/mxcas/matrix"
)

// ReadPath is where a read comes from: what it may get differs.
type ReadPath int

const (
	// ClientRead is the authenticated client API: local media, and remote
	// media fetched on first use.
	ClientRead ReadPath = iota
	// LegacyRead is the unauthenticated legacy client paths: never media
	// stored under the freeze (RequiresAuth), and while
	// Options.FreezeUnauthenticated is set no remote fetch either (what
	// they may serve predates the freeze; Synapse stops fetching for them
	// too).
	LegacyRead
	// FederationRead is another server asking for our media: local media
	// only, never fetched from elsewhere.
	FederationRead
)

// Waiting for a created ID's content.
const (
	// DefaultWait is how long a read waits when its request does not say
	// (the spec's default timeout_ms).
	DefaultWait = 20 * time.Second
	// MaxWait caps ReadOptions.Wait.
	MaxWait = 60 * time.Second
)

// ReadOptions say who reads and how.
type ReadOptions struct {
	Path ReadPath
	// NoRemote refuses fetching remote media that is not cached
	// (allow_remote=false); cached remote media is still served.
	NoRemote bool
	// Wait is how long to wait for a created ID's content (capped at
	// MaxWait; 0: do not wait).
	Wait time.Duration
}

// Resolve decides what a read of m gets: its record, ready to be opened,
// or an error. It is the one read policy for client and federation
// requests alike:
//   - unknown media of another server is fetched and cached (FetchRemote)
//     unless the server is local (Options.Local), the read comes over
//     federation, asks for NoRemote, or is a LegacyRead under
//     Options.FreezeUnauthenticated;
//   - quarantined media (by ID or by content, see quarantine.go) is
//     ErrNotFound, as is remote media read over federation;
//   - a created ID without content is waited for up to opt.Wait, then
//     ErrNotYetUploaded (an expired one is ErrNotFound);
//   - media with content stored under the freeze (RequiresAuth) is
//     ErrNotFound on a LegacyRead;
//   - deleted media is ErrNotFound (Stat).
//
// A read it answers with a record notes the access (noteAccess).
//
// A remote fetch that fails is ErrRemoteDisabled (no fetcher configured),
// ErrRemoteUnavailable, ErrRemoteTooLarge, ErrNotFound or ErrNoSpace.
func (s *Store) Resolve(ctx context.Context, m matrix.MXC, opt ReadOptions) (Media, error) {
	rec, _, err := s.ResolveTo(ctx, m, opt, nil)
	return rec, err
}

// ResolveTo is Resolve that, when it fetches remote media, streams it as
// FetchRemoteTo does: start is called once with the remote's metadata and
// returns where the bytes go. streamed reports that this happened; the
// answer has then been written (err says whether all of it was), and rec
// is the stored record. Otherwise the caller serves rec as from Resolve.
// start may be nil.
func (s *Store) ResolveTo(ctx context.Context, m matrix.MXC, opt ReadOptions, start func(RemoteMedia) io.Writer) (rec Media, streamed bool, err error) {
	rec, err = s.Stat(m)
	if errors.Is(err, ErrNotFound) && s.mayFetch(m, opt) {
		rec, streamed, err = s.FetchRemoteTo(ctx, m, start)
		if streamed {
			return rec, true, err
		}
	}
	if err != nil {
		return Media{}, false, err
	}
	if err := s.refuse(m, rec, opt); err != nil {
		return Media{}, false, err
	}
	if rec.Pending {
		wctx, cancel := context.WithTimeout(ctx, min(max(opt.Wait, 0), MaxWait))
		rec, err = s.Wait(wctx, m)
		cancel()
		if err != nil {
			return Media{}, false, err
		}
		if err := s.refuse(m, rec, opt); err != nil {
			return Media{}, false, err
		}
	}
	// Only once it has content: a created ID still answers
	// ErrNotYetUploaded on the legacy paths, as Synapse does.
	if opt.Path == LegacyRead && rec.RequiresAuth {
		return Media{}, false, fmt.Errorf("%w: %s is stored under the freeze of unauthenticated media", ErrNotFound, m)
	}
	s.noteAccess(rec)
	return rec, false, nil
}

// WillFetch reports whether a read of m with opt would fetch it from its
// server now: m is not stored here (or was deleted) and opt may fetch
// it. The answer can change before the read runs; it is for counting
// (rate limits), not for deciding.
func (s *Store) WillFetch(m matrix.MXC, opt ReadOptions) bool {
	if !s.mayFetch(m, opt) {
		return false
	}
	_, err := s.Stat(m)
	return errors.Is(err, ErrNotFound)
}

// mayFetch reports whether a read of m, not stored here, may fetch it from
// its server.
func (s *Store) mayFetch(m matrix.MXC, opt ReadOptions) bool {
	switch {
	case s.local(m.Server()), opt.NoRemote, opt.Path == FederationRead:
		return false
	case opt.Path == LegacyRead:
		return !s.opts.FreezeUnauthenticated
	}
	return true
}

// refuse says why rec is not served to opt's reader, or nil.
func (s *Store) refuse(m matrix.MXC, rec Media, opt ReadOptions) error {
	if err := s.refuseQuarantined(m, rec); err != nil {
		return err
	}
	if opt.Path == FederationRead && rec.Remote {
		return fmt.Errorf("%w: %s is not ours to serve over federation", ErrNotFound, m)
	}
	return nil
}

// local reports whether server is one this store serves (Options.Local).
func (s *Store) local(server string) bool {
	return s.opts.Local != nil && s.opts.Local(server)
}
