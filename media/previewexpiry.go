package media

import (
	"context"

	"github.com/mxcas/mxcas/index"
)

// previewExpiryBatch bounds the preview records one batch of GC removes.
const previewExpiryBatch = 1000

// previewExpired reports whether the preview record of the hour starting
// at hour has outlived Options.PreviewCacheFor at now (both Unix ms): the
// time is counted from the end of its hour, so a record is kept at least
// that long after its fetch, and the current hour's never expires.
func (s *Store) previewExpired(hour, now int64) bool {
	return hour+hourMs+s.opts.PreviewCacheFor.Milliseconds() <= now
}

// previewHour names one preview record.
type previewHour struct {
	server, url string
	hour        int64
}

// expirePreviews is GC's sweep of preview records: it removes those of
// snap that have expired, in batches of at most previewExpiryBatch,
// counting them in st.PreviewsExpired. Their images stay: they are the
// homeserver's media like any other, and clients have their mxc URIs in
// room history. A request naming an expired hour gets the current hour's
// preview.
func (s *Store) expirePreviews(ctx context.Context, snap *index.Snapshot, st *GCStats) error {
	now := s.opts.Now().UnixMilli()
	var batch []previewHour
	err := snap.ScanPreviews(func(server, url string, hour int64) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !s.previewExpired(hour, now) {
			return nil
		}
		batch = append(batch, previewHour{server, url, hour})
		if len(batch) < previewExpiryBatch {
			return nil
		}
		err := s.deletePreviews(batch, st)
		batch = batch[:0]
		return err
	})
	if err == nil && len(batch) > 0 {
		err = s.deletePreviews(batch, st)
	}
	return err
}

// deletePreviews removes the preview records of hs in one batch.
func (s *Store) deletePreviews(hs []previewHour, st *GCStats) error {
	b := s.idx.NewBatch()
	defer b.Close()
	for _, h := range hs {
		if err := b.DeletePreview(h.server, h.url, h.hour); err != nil {
			return err
		}
	}
	if err := b.Commit(); err != nil {
		return err
	}
	st.PreviewsExpired += len(hs)
	return nil
}
