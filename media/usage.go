package media

import (
	"context"
	"errors"
	"strings"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/index"
)

// Usage is what a set of media costs the store. Media that is deleted or
// pending (created, no content yet) is not in it; quarantined media is.
type Usage struct {
	// Media counts the media.
	Media int64
	// LogicalBytes is the sum of their sizes: every media counts, identical
	// content uploaded twice counts twice.
	LogicalBytes int64
	// StoredBytes is the size of the unique chunks of their content: a
	// chunk shared by several of them (the same bytes uploaded again, or a
	// file sharing chunks with another) counts once; but an inline chunk
	// once per object, each keeping its own copy. Chunks they share with
	// media outside the set count too: this is what the set needs on disk,
	// not what deleting it would free.
	StoredBytes int64
	// Thumbnails and ThumbnailBytes count the unique thumbnail objects of
	// their content and the sum of those objects' sizes.
	Thumbnails     int64
	ThumbnailBytes int64
}

// DedupRatio is LogicalBytes over StoredBytes: how many bytes were
// uploaded for each byte stored. 1 when nothing is stored.
func (u Usage) DedupRatio() float64 {
	if u.StoredBytes == 0 {
		return 1
	}
	return float64(u.LogicalBytes) / float64(u.StoredBytes)
}

// ServerUsage is the Usage of one homeserver's local media, and the
// remote cache.
type ServerUsage struct {
	Usage
	// RemoteMedia and RemoteBytes count the cached copies of other servers'
	// media and the sum of their sizes. The remote cache is shared by every
	// homeserver the store serves: these figures are the same for each.
	RemoteMedia int64
	RemoteBytes int64
}

// counted reports whether rec is in usage figures and lists: it has
// content (not pending, not a quarantine placeholder) and is not deleted.
func counted(rec Media) bool { return !rec.Pending && !rec.Placeholder() && !rec.Deleted }

// usageCounter adds media to a Usage, reading manifests and thumbnails
// from one snapshot. It holds the sets of objects, chunks and thumbnail
// objects met so far, never the records.
type usageCounter struct {
	snap    *index.Snapshot
	u       Usage
	objects map[cas.Hash]struct{}
	chunks  map[cas.Hash]struct{}
	thumbs  map[cas.Hash]struct{}
}

func newUsageCounter(snap *index.Snapshot) *usageCounter {
	return &usageCounter{snap: snap, objects: make(map[cas.Hash]struct{}),
		chunks: make(map[cas.Hash]struct{}), thumbs: make(map[cas.Hash]struct{})}
}

// add counts rec; its object's chunks and thumbnails only the first time
// the object is met.
func (c *usageCounter) add(rec Media) error {
	c.u.Media++
	c.u.LogicalBytes += rec.Size
	if _, seen := c.objects[rec.Object]; seen {
		return nil
	}
	c.objects[rec.Object] = struct{}{}
	m, err := c.snap.Manifest(rec.Object)
	if err != nil {
		return err
	}
	if ref, ok := m.InlineRef(); ok {
		c.u.StoredBytes += int64(ref.Len) // the object's own copy, in the index
	}
	for _, ch := range m.Stored() {
		if _, seen := c.chunks[ch.Hash]; !seen {
			c.chunks[ch.Hash] = struct{}{}
			c.u.StoredBytes += int64(ch.Len)
		}
	}
	return c.snap.ScanThumbnailsOf(rec.Object, func(_ string, tr index.ThumbRecord) error {
		if _, seen := c.thumbs[tr.Object]; !seen {
			c.thumbs[tr.Object] = struct{}{}
			c.u.Thumbnails++
			c.u.ThumbnailBytes += tr.Size
		}
		return nil
	})
}

// ServerUsage scans the index for the usage of server's local media (the
// server name compared without regard to case) and of the remote cache.
// It holds sets of hashes, not records, so it runs in memory proportional
// to the unique content; it reads one snapshot, so the figures agree with
// each other. Cancelling ctx stops it with ctx's error.
func (s *Store) ServerUsage(ctx context.Context, server string) (ServerUsage, error) {
	snap := s.idx.Snapshot()
	defer snap.Close()
	c := newUsageCounter(snap)
	var su ServerUsage
	err := snap.ScanMedia(func(r index.MediaRecord) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := scannedMedia(r)
		if err != nil || !counted(rec) {
			return err
		}
		switch {
		case rec.Remote:
			su.RemoteMedia++
			su.RemoteBytes += rec.Size
		case strings.EqualFold(rec.MXC.Server(), server):
			return c.add(rec)
		}
		return nil
	})
	su.Usage = c.u
	return su, err
}

// UserUsage is the usage of the local media user uploaded (see
// ServerUsage).
func (s *Store) UserUsage(ctx context.Context, user string) (Usage, error) {
	snap := s.idx.Snapshot()
	defer snap.Close()
	c := newUsageCounter(snap)
	err := scanUserMedia(ctx, snap, user, c.add)
	return c.u, err
}

// scanUserMedia calls fn for every counted local media user uploaded,
// read from snap.
func scanUserMedia(ctx context.Context, snap *index.Snapshot, user string, fn func(Media) error) error {
	return snap.ScanOwned(user, func(server, id string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := snap.Media(server, id)
		if errors.Is(err, index.ErrNotFound) {
			return nil // ownership without a record: nothing to count
		}
		if err != nil {
			return err
		}
		rec, err := scannedMedia(r)
		if err != nil || !counted(rec) || rec.Remote {
			return err
		}
		return fn(rec)
	})
}
