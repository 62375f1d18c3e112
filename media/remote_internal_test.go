package media

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/mxcas/mxcas/matrix"
)

// downFetcher fails every fetch as an unreachable server does.
type downFetcher struct{ calls atomic.Int64 }

func (f *downFetcher) Fetch(context.Context, matrix.MXC) (RemoteMedia, error) {
	f.calls.Add(1)
	return RemoteMedia{}, errors.New("connection refused")
}

// TestBackoffBounded: many distinct failing server names do not grow the
// backoff list past its cap, and the most recent ones are still backed off.
func TestBackoffBounded(t *testing.T) {
	const names, capacity = 2000, 50
	f := &downFetcher{}
	s, err := Open(Options{Dir: t.TempDir(), Create: true, Remote: RemoteOptions{Fetcher: f, BackoffServers: capacity}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for i := range names {
		m := mustMXC(fmt.Sprintf("down%d.test", i), "x")
		if _, err := s.FetchRemote(ctx, m); !errors.Is(err, ErrRemoteUnavailable) {
			t.Fatalf("fetch from %s: %v", m.Server(), err)
		}
	}
	s.remote.mu.Lock()
	n := s.remote.failed.Len()
	s.remote.mu.Unlock()
	if n != capacity {
		t.Errorf("backoff list holds %d servers, want %d", n, capacity)
	}
	before := f.calls.Load()
	last := mustMXC(fmt.Sprintf("down%d.test", names-1), "y")
	if _, err := s.FetchRemote(ctx, last); !errors.Is(err, ErrRemoteUnavailable) || f.calls.Load() != before {
		t.Errorf("a server that just failed was asked again (%v)", err)
	}
}
