package media

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/mxcas/mxcas/index"
)

// previewFlights makes one preview per key at a time and remembers recent
// failures. Safe for concurrent use.
type previewFlights struct {
	mu      sync.Mutex
	flights map[string]*previewFlight
	failed  *simplelru.LRU[string, previewFailure]
	// joined, set only by tests, runs whenever a call has joined a flight
	// (as its leader or a follower), before it waits.
	joined func()
}

type previewFlight struct {
	done chan struct{}
	rec  index.PreviewRecord
	err  error
}

type previewFailure struct {
	err   error
	until time.Time
}

// errLeaderGone: the call making a flight's preview went away (its context
// ended) before it was made; a follower still waiting takes over.
var errLeaderGone = errors.New("media: preview abandoned by its request")

func newPreviewFlights() *previewFlights {
	failed, _ := simplelru.NewLRU[string, previewFailure](previewFailures, nil)
	return &previewFlights{flights: make(map[string]*previewFlight), failed: failed}
}

// do returns the result of fn for key: made by this call, or by the one
// already making it. fn runs under the context of the call making it:
// when that ends first, a call still waiting makes it again, so no work
// outlives every request that wanted it.
func (p *previewFlights) do(ctx context.Context, key string, fn func(context.Context) (index.PreviewRecord, error)) (index.PreviewRecord, error) {
	for {
		p.mu.Lock()
		f, follower := p.flights[key]
		if !follower {
			f = &previewFlight{done: make(chan struct{})}
			p.flights[key] = f
		}
		joined := p.joined
		p.mu.Unlock()
		if joined != nil {
			joined()
		}
		if !follower {
			f.rec, f.err = fn(ctx)
			if f.err != nil && ctx.Err() != nil {
				f.err = fmt.Errorf("%w: %w", errLeaderGone, ctx.Err())
			}
			p.mu.Lock()
			delete(p.flights, key)
			p.mu.Unlock()
			close(f.done)
			return f.rec, f.err
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return index.PreviewRecord{}, ctx.Err()
		}
		if !errors.Is(f.err, errLeaderGone) {
			return f.rec, f.err
		}
	}
}

// failure returns the failure remembered for key at now, or nil.
func (p *previewFlights) failure(key string, now time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, ok := p.failed.Get(key)
	if !ok {
		return nil
	}
	if !now.Before(f.until) {
		p.failed.Remove(key)
		return nil
	}
	return f.err
}

// fail remembers err for key from now for previewFailureTTL.
func (p *previewFlights) fail(key string, err error, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failed.Add(key, previewFailure{err: err, until: now.Add(previewFailureTTL)})
}

// forgetFailures drops every remembered failure (the previewer changed:
// what it refused may now be allowed).
func (p *previewFlights) forgetFailures() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failed.Purge()
}
