package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mxcas/mxcas/matrix"
)

// RemoteMedia is another server's media as its server sent it.
type RemoteMedia struct {
	Body        io.ReadCloser
	ContentType string
	UploadName  string
	Size        int64 // -1 when unknown
}

// RemoteFetcher gets another server's media (over federation, in package
// matrix); errors wrapping ErrNotFound mean the remote server has no such
// media.
type RemoteFetcher interface {
	Fetch(ctx context.Context, m matrix.MXC) (RemoteMedia, error)
}

// RemoteOptions configure fetching remote media.
type RemoteOptions struct {
	Fetcher RemoteFetcher
	// MaxBytes caps a remote file (default 100 MiB): more is ErrRemoteTooLarge.
	MaxBytes int64
	// Timeout bounds one fetch (default 60 s).
	Timeout time.Duration
	// Backoff is how long a failing server is not asked again (default 60 s).
	Backoff time.Duration
	// Local reports whether a server name is one of ours: never fetched.
	Local func(server string) bool
}

// Remote fetch errors.
var (
	ErrRemoteTooLarge    = errors.New("media: remote media too large")
	ErrRemoteUnavailable = errors.New("media: remote server unavailable")
	ErrRemoteDisabled    = errors.New("media: fetching remote media is not configured")
)

type remote struct {
	opts   RemoteOptions
	flight singleflight.Group
	mu     sync.Mutex
	failed map[string]time.Time // server name -> backed off until
}

func (o *RemoteOptions) withDefaults() {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 100 << 20
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Backoff <= 0 {
		o.Backoff = 60 * time.Second
	}
}

// FetchRemote returns the record of remote media m, fetching it from its
// server and storing it (deduplicated like any upload) on first use.
// Concurrent requests for the same media make one fetch. A server that
// just failed is not asked again for RemoteOptions.Backoff.
func (s *Store) FetchRemote(ctx context.Context, m matrix.MXC) (Record, error) {
	if rec, err := s.Stat(m); err == nil && !rec.Pending {
		return rec, nil
	}
	r := s.remote
	if r == nil || r.opts.Fetcher == nil {
		return Record{}, fmt.Errorf("%w: %s", ErrRemoteDisabled, m)
	}
	if r.opts.Local != nil && r.opts.Local(m.Server) {
		return Record{}, fmt.Errorf("%w: %s", ErrNotFound, m) // ours: never over federation
	}
	r.mu.Lock()
	until, backedOff := r.failed[m.Server]
	r.mu.Unlock()
	if backedOff && s.opts.Now().Before(until) {
		return Record{}, fmt.Errorf("%w: %s failed recently; retrying after %s", ErrRemoteUnavailable, m.Server, until.Format(time.RFC3339))
	}
	ch := r.flight.DoChan(m.String(), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
		defer cancel()
		rec, err := s.fetch(ctx, m)
		if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrRemoteTooLarge) {
			r.mu.Lock()
			r.failed[m.Server] = s.opts.Now().Add(r.opts.Backoff)
			r.mu.Unlock()
		}
		return rec, err
	})
	select {
	case <-ctx.Done():
		return Record{}, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return Record{}, res.Err
		}
		return res.Val.(Record), nil
	}
}

func (s *Store) fetch(ctx context.Context, m matrix.MXC) (Record, error) {
	rm, err := s.remote.opts.Fetcher.Fetch(ctx, m)
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrRemoteTooLarge) {
			return Record{}, err
		}
		return Record{}, fmt.Errorf("%w: %s: %w", ErrRemoteUnavailable, m.Server, err)
	}
	defer rm.Body.Close()
	max := s.remote.opts.MaxBytes
	if rm.Size > max {
		return Record{}, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrRemoteTooLarge, m, rm.Size, max)
	}
	if !s.claims.try(m) {
		return Record{}, fmt.Errorf("%w: %s", ErrExists, m)
	}
	defer s.claims.release(m)
	pins := s.newPinSet()
	defer pins.release()
	obj, man, known, err := s.writeObject(ctx, io.LimitReader(rm.Body, max+1), -1, max, m.String(), pins)
	if errors.Is(err, ErrTooLarge) {
		return Record{}, fmt.Errorf("%w: %s is over %d bytes", ErrRemoteTooLarge, m, max)
	}
	if err != nil {
		return Record{}, fmt.Errorf("%w: %s: %w", ErrRemoteUnavailable, m, err)
	}
	ct := rm.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	rec := Record{
		Server: m.Server, MediaID: m.MediaID, Object: obj, Size: man.Size, ContentType: ct,
		UploadName: rm.UploadName, Created: s.opts.Now().UnixMilli(), Remote: true,
	}
	if err := s.commitRecord(rec, man, known, nil); err != nil {
		return Record{}, err
	}
	return rec, nil
}
