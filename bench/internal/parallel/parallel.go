// Package parallel runs a benchmark's concurrent clients: all start
// together and are timed to the last one's end.
package parallel

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"
)

// Run runs fn for clients 0..c-1 at once and times them from a common
// start to the last one's end. The first error cancels the others' ctx and
// is returned.
func Run(ctx context.Context, c int, fn func(ctx context.Context, client int) error) (time.Duration, error) {
	g, gctx := errgroup.WithContext(ctx)
	start := make(chan struct{})
	for i := range c {
		g.Go(func() error {
			<-start
			return fn(gctx, i)
		})
	}
	t0 := time.Now()
	close(start)
	err := g.Wait()
	return time.Since(t0), err
}
