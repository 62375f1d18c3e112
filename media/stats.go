package media

import (
	"errors"
	"fmt"
	"io/fs"
	"sync/atomic"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/index"
)

// Stats are a store's running figures, for monitoring: gauges of what the
// store holds and counters of what it did since Open. Reading them costs a
// few atomic loads: no index read, no scan.
type Stats struct {
	// Media counts the media with content (local uploads and the remote
	// cache; not pending, not deleted) and LogicalBytes is the sum of their
	// sizes: identical content stored twice counts twice. Both are read
	// from the index's usage counters at Open and follow every record
	// committed or dropped since.
	Media        int64
	LogicalBytes int64
	// ChunksCounted says whether Chunks and StoredBytes are known: the
	// store was opened with Options.CountChunks.
	ChunksCounted bool
	// Chunks counts the chunk files and StoredBytes is the sum of their
	// sizes and of the inline chunks' (content, thumbnails and not yet
	// collected garbage alike): counted at Open, then kept as chunks are
	// written and GC removes them.
	Chunks      int64
	StoredBytes int64

	// Uploads counts the local uploads stored (Upload and Fill) and
	// UploadBytes the sum of their sizes.
	Uploads     int64
	UploadBytes int64
	// ThumbnailsMade counts the thumbnails generated (on request or
	// pregenerated), ThumbnailsServed the successful Thumbnail calls
	// (stored or made), ThumbnailsRefused the Thumbnail calls refused for
	// their source or parameters (ErrThumbnailTooLarge, ErrCannotThumbnail,
	// ErrBadParam).
	ThumbnailsMade    int64
	ThumbnailsServed  int64
	ThumbnailsRefused int64
	// RemoteFetches counts the remote fetches by result.
	RemoteFetches [NumFetchResults]int64
	// GCRuns counts the GC runs that completed; GCChunksDeleted and
	// GCBytesDeleted what they removed.
	GCRuns          int64
	GCChunksDeleted int64
	GCBytesDeleted  int64
	// DamagedChunksFound counts the chunks found damaged since Open (each
	// once); DamagedChunks is how many are recorded as damaged now.
	DamagedChunksFound int64
	DamagedChunks      int64
	// DamagedChunksRepaired counts the chunks put back in place since
	// Open: from the repair source by reads and Fsck, or by RepairFrom.
	DamagedChunksRepaired int64
	// Waiting counts the reads waiting now for the content of a created
	// media ID (a download's timeout_ms): each has found the ID empty and
	// is woken when its content lands, on any node of a shared index.
	Waiting int64
}

// DedupRatio is LogicalBytes over StoredBytes, 1 when nothing is stored
// or the chunks are not counted.
func (s Stats) DedupRatio() float64 {
	if !s.ChunksCounted || s.StoredBytes <= 0 {
		return 1
	}
	return float64(s.LogicalBytes) / float64(s.StoredBytes)
}

// FetchResult classifies how a remote fetch ended.
type FetchResult int

// The results of a remote fetch, the index into Stats.RemoteFetches.
const (
	FetchOK          FetchResult = iota // fetched and stored
	FetchNotFound                       // the remote has no such media
	FetchTooLarge                       // over RemoteOptions.MaxBytes
	FetchUnavailable                    // the remote failed or could not be reached
	FetchBackoff                        // not asked: it failed recently
	FetchFailed                         // our side failed (no space, quarantined, ...)
	NumFetchResults
)

var fetchResultNames = [NumFetchResults]string{"ok", "not_found", "too_large", "unavailable", "backoff", "failed"}

// String names the result (a metric label: "ok", "not_found", ...).
func (r FetchResult) String() string {
	if r < 0 || r >= NumFetchResults {
		return fmt.Sprintf("FetchResult(%d)", int(r))
	}
	return fetchResultNames[r]
}

// fetchResult classifies the error a fetch ended with.
func fetchResult(err error) FetchResult {
	switch {
	case err == nil:
		return FetchOK
	case errors.Is(err, ErrNotFound):
		return FetchNotFound
	case errors.Is(err, ErrRemoteTooLarge):
		return FetchTooLarge
	case errors.Is(err, ErrRemoteUnavailable):
		return FetchUnavailable
	}
	return FetchFailed
}

// storeStats are the atomics behind Stats (the thumbnail and damage
// figures live with the thumbnailer and the damage set).
type storeStats struct {
	media, logical         atomic.Int64
	chunksCounted          atomic.Bool
	chunks, stored         atomic.Int64
	uploads, uploadBytes   atomic.Int64
	thumbServed, thumbRefd atomic.Int64
	remote                 [NumFetchResults]atomic.Int64
	gcRuns, gcChunks       atomic.Int64
	gcBytes                atomic.Int64
	damageFound            atomic.Int64
	chunksRepaired         atomic.Int64
	waiting                atomic.Int64
}

// Stats returns the store's figures. Safe for concurrent use.
func (s *Store) Stats() Stats {
	c := &s.stats
	st := Stats{
		Media:                 c.media.Load(),
		LogicalBytes:          c.logical.Load(),
		ChunksCounted:         c.chunksCounted.Load(),
		Uploads:               c.uploads.Load(),
		UploadBytes:           c.uploadBytes.Load(),
		ThumbnailsServed:      c.thumbServed.Load(),
		ThumbnailsRefused:     c.thumbRefd.Load(),
		GCRuns:                c.gcRuns.Load(),
		GCChunksDeleted:       c.gcChunks.Load(),
		GCBytesDeleted:        c.gcBytes.Load(),
		DamagedChunksFound:    c.damageFound.Load(),
		DamagedChunks:         s.damage.n.Load(),
		DamagedChunksRepaired: c.chunksRepaired.Load(),
		Waiting:               c.waiting.Load(),
	}
	if s.idx.Shared() {
		// Other nodes add media too: the store-wide gauges are read from
		// the shared counters (one query a scrape), not kept here.
		if total, err := s.idx.TotalServerUsage(); err == nil {
			st.Media, st.LogicalBytes = total.Count, total.Bytes
		}
	}
	if st.ChunksCounted {
		st.Chunks, st.StoredBytes = c.chunks.Load(), c.stored.Load()
	}
	if s.thumbs != nil {
		st.ThumbnailsMade = s.thumbs.made.Load()
	}
	for i := range c.remote {
		st.RemoteFetches[i] = c.remote[i].Load()
	}
	return st
}

// loadStats sets the store-wide gauges at Open: media and logical bytes
// from the index's merged usage counters (one key per server name, durable
// with the records they count, so right after any crash), and, when
// Options.CountChunks asks, the chunk files from one walk of the chunk
// store, before any write can race it.
func (s *Store) loadStats() error {
	total, err := s.idx.TotalServerUsage()
	if err != nil {
		return fmt.Errorf("media: open: usage counters: %w", err)
	}
	s.stats.media.Store(total.Count)
	s.stats.logical.Store(total.Bytes)
	if !s.opts.CountChunks {
		return nil
	}
	var n, bytes int64
	err = s.cas.Walk(func(_ cas.Hash, info fs.FileInfo) error {
		n++
		bytes += info.Size()
		return nil
	})
	if err != nil {
		return fmt.Errorf("media: open: count chunks: %w", err)
	}
	if !s.idx.Shared() {
		_, inline, err := s.idx.InlineBytes()
		if err != nil {
			return fmt.Errorf("media: open: count inline chunks: %w", err)
		}
		bytes += inline
	}
	s.stats.chunks.Store(n)
	s.stats.stored.Store(bytes)
	s.stats.chunksCounted.Store(true)
	return nil
}

// recordsChanged follows a committed change of usage (commitRecord,
// commitDrops): delta as the index's counters got it.
func (c *storeStats) recordsChanged(delta index.Usage) {
	c.media.Add(delta.Count)
	c.logical.Add(delta.Bytes)
}

// chunksChanged follows chunk files written (n, bytes > 0) or removed.
func (c *storeStats) chunksChanged(n, bytes int64) {
	c.chunks.Add(n)
	c.stored.Add(bytes)
}

// uploaded counts an Upload or Fill that ended with err.
func (c *storeStats) uploaded(rec Media, err error) {
	if err == nil {
		c.uploads.Add(1)
		c.uploadBytes.Add(rec.Size)
	}
}
