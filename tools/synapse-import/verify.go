package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

// verify checks every row against the store, byte for byte.
func verify(ctx context.Context, o options, st *media.Store, rows []row, src source, stdout, _ io.Writer) (int, error) {
	var bad, ok atomic.Int64
	var mu sync.Mutex
	report := func(m matrix.MXC, why string) {
		bad.Add(1)
		mu.Lock()
		fmt.Fprintf(stdout, "verify: MISMATCH %s %s\n", m, why)
		mu.Unlock()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.workers)
	for _, r := range rows {
		if !r.length.Valid {
			continue
		}
		m, err := r.mxc(o.serverName)
		if err != nil {
			continue // not importable, so not verified (the import said so)
		}
		g.Go(func() error {
			rd, rec, err := st.Open(m)
			if err != nil {
				report(m, "not imported: "+err.Error())
				return nil
			}
			defer rd.Close()
			if rec.ContentType != r.contentType || rec.UploadName != r.uploadName {
				report(m, "name or type differs")
				return nil
			}
			want, err := src.open(gctx, r, m)
			if err != nil {
				report(m, "source unreadable: "+err.Error())
				return nil
			}
			defer want.Close()
			if same, err := equalReaders(rd, want); err != nil || !same {
				report(m, fmt.Sprintf("content differs (%v)", err))
				return nil
			}
			ok.Add(1)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 1, err
	}
	if bad.Load() > 0 {
		fmt.Fprintf(stdout, "verify: %d ok, %d MISMATCH\n", ok.Load(), bad.Load())
		return 1, nil
	}
	fmt.Fprintf(stdout, "verify: ok %d\n", ok.Load())
	return 0, nil
}

func equalReaders(a, b io.Reader) (bool, error) {
	ba := make([]byte, 64<<10)
	bb := make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(a, ba)
		nb, eb := io.ReadFull(b, bb)
		if na != nb || string(ba[:na]) != string(bb[:nb]) {
			return false, nil
		}
		aEnd := ea == io.EOF || ea == io.ErrUnexpectedEOF
		bEnd := eb == io.EOF || eb == io.ErrUnexpectedEOF
		if ea != nil && !aEnd {
			return false, ea
		}
		if eb != nil && !bEnd {
			return false, eb
		}
		if aEnd || bEnd {
			return aEnd && bEnd, nil
		}
	}
}
