package media

import (
	"context"
	"errors"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/index"
)

// liveObjects is GC's mark of the objects of one snapshot of the index, in
// passes over ranges of object hashes (passes.go), never all at once: an
// object is live when a media record that is not a tombstone refers to it
// (a source), or when it is the thumbnail of a live source. A thumbnail
// record is found under its source's hash, so a pass over one range of
// live objects goes through the ranges of sources, each a scan of the
// records and one of the thumbnails. When the sources, or the live
// objects, fit in one range, that range is kept and the scans are not
// made again, and an index without thumbnails needs no ranges of sources.
type liveObjects struct {
	ctx  context.Context
	snap *index.Snapshot

	sources, objects  []cas.Hash // the only range of each, once known
	oneSource, oneObj bool
	thumbs            int // 1: the index has thumbnail records, -1: none, 0: not known yet

	// manifests holds one bit per manifest, in hash order: live. Set by
	// the first markChunks, so that the later ones scan the manifests
	// once, not once per range of live objects (1 bit a manifest: 125 KB
	// a million).
	manifests []uint64
	marked    bool

	// deadThumbs, until the first pass over the objects is done, lists
	// the thumbnails of sources no record refers to.
	deadThumbs *[]thumbKey
}

func newLiveObjects(ctx context.Context, snap *index.Snapshot) *liveObjects {
	return &liveObjects{ctx: ctx, snap: snap}
}

// sourceRanges calls fn with each range of the objects that media records
// refer to, tombstones left out, and those objects, sorted.
func (l *liveObjects) sourceRanges(fn func(r hashRange, objs []cas.Hash) error) error {
	if l.oneSource {
		return fn(whole, l.sources)
	}
	for r, more := whole, true; more; r, more = r.next() {
		set := newRangeSet(r.lo, self)
		err := l.snap.ScanMediaObjects(func(obj cas.Hash, deleted bool) error {
			if !obj.IsZero() && !deleted {
				set.add(obj)
			}
			return l.ctx.Err()
		})
		if err != nil {
			return err
		}
		var objs []cas.Hash
		r, objs = set.done()
		if r == whole {
			l.sources, l.oneSource = objs, true
		}
		if err := fn(r, objs); err != nil {
			return err
		}
	}
	return nil
}

// collect returns the live objects of the range from lo, sorted. With
// l.deadThumbs set it lists there the dead thumbnails.
func (l *liveObjects) collect(lo cas.Hash) (hashRange, []cas.Hash, error) {
	set := newRangeSet(lo, self)
	if has, err := l.hasThumbnails(); err != nil || !has {
		if err == nil {
			err = l.snap.ScanMediaObjects(func(obj cas.Hash, deleted bool) error {
				if !obj.IsZero() && !deleted {
					set.add(obj)
				}
				return l.ctx.Err()
			})
		}
		r, objs := set.done()
		return r, objs, err
	}
	err := l.sourceRanges(func(sr hashRange, srcs []cas.Hash) error {
		for _, h := range srcs {
			set.add(h)
		}
		return l.snap.ScanThumbnails(func(src cas.Hash, spec string, tr index.ThumbRecord, decodeErr error) error {
			if !sr.contains(src) {
				return nil // its source is judged in its own range
			}
			if _, ok := sortedHas(srcs, src); !ok {
				if l.deadThumbs != nil {
					*l.deadThumbs = append(*l.deadThumbs, thumbKey{src, spec})
				}
				return nil
			}
			if decodeErr != nil {
				return decodeErr
			}
			set.add(tr.Object)
			return l.ctx.Err()
		})
	})
	r, objs := set.done()
	return r, objs, err
}

// errStop stops a scan that found what it looked for.
var errStop = errors.New("media: stop")

// hasThumbnails reports whether the index has any thumbnail record.
func (l *liveObjects) hasThumbnails() (bool, error) {
	if l.thumbs == 0 {
		err := l.snap.ScanThumbnails(func(cas.Hash, string, index.ThumbRecord, error) error { return errStop })
		if err != nil && !errors.Is(err, errStop) {
			return false, err
		}
		l.thumbs = -1
		if err != nil {
			l.thumbs = 1
		}
	}
	return l.thumbs > 0, nil
}

// ranges calls fn with each range of the live objects and those objects,
// sorted.
func (l *liveObjects) ranges(fn func(r hashRange, live []cas.Hash) error) error {
	if l.oneObj {
		return fn(whole, l.objects)
	}
	for r, more := whole, true; more; r, more = r.next() {
		var live []cas.Hash
		var err error
		r, live, err = l.collect(r.lo)
		l.deadThumbs = nil // listed once
		if err != nil {
			return err
		}
		if r == whole {
			l.objects, l.oneObj = live, true
		}
		if err := fn(r, live); err != nil {
			return err
		}
	}
	return nil
}

// liveOf reports which of hs (in any order) are live objects.
func (l *liveObjects) liveOf(hs []cas.Hash) ([]bool, error) {
	out := make([]bool, len(hs))
	err := l.ranges(func(r hashRange, live []cas.Hash) error {
		for i, h := range hs {
			if r.contains(h) {
				_, out[i] = sortedHas(live, h)
			}
		}
		return nil
	})
	return out, err
}

// chunkMark is what the mark found of a chunk.
type chunkMark uint8

const (
	chunkUnknown chunkMark = iota // no manifest lists it
	chunkKnown                    // only dead manifests list it
	chunkLive                     // a live manifest lists it
)

// markChunks marks the chunks of a sorted list from the manifests: find
// says where in the list a chunk is, marks[i] gets the mark of the i-th.
// With m not nil, it records there the live manifests' count and the dead
// manifests, sorted, and lists the dead thumbnails when no pass over the
// live objects has been made yet.
func (l *liveObjects) markChunks(find func(cas.Hash) (int, bool), marks []chunkMark, m *gcMark) error {
	if !l.marked {
		if m != nil && !l.oneObj {
			l.deadThumbs = &m.deadThumbs
		}
		if err := l.markManifests(); err != nil {
			return err
		}
	}
	i := 0
	return l.snap.ScanManifests(func(h cas.Hash, man index.Manifest, decodeErr error) error {
		live := i < len(l.manifests)<<6 && l.manifests[i>>6]&(1<<(i&63)) != 0
		i++
		mark := chunkLive
		if !live {
			if m != nil {
				m.deadObj = append(m.deadObj, h)
				if ref, ok := man.InlineRef(); ok {
					if m.deadInline == nil {
						m.deadInline = make(map[cas.Hash]int64)
					}
					m.deadInline[h] = int64(ref.Len)
				}
			}
			if decodeErr != nil {
				return nil
			}
			mark = chunkKnown
		} else if decodeErr != nil {
			return decodeErr // never sweep what an unreadable manifest may need
		} else if m != nil {
			m.objects++
		}
		for _, c := range man.Stored() {
			if j, ok := find(c.Hash); ok && marks[j] < mark {
				marks[j] = mark
			}
		}
		return l.ctx.Err()
	})
}

// markManifests sets l.manifests: which manifests are live, in hash order.
func (l *liveObjects) markManifests() error {
	i := 0
	err := l.ranges(func(r hashRange, live []cas.Hash) error {
		return l.snap.ScanManifestsIn(r.lo, r.hi, r.toEnd, func(h cas.Hash, _ index.Manifest, _ error) error {
			if i>>6 == len(l.manifests) {
				l.manifests = append(l.manifests, 0)
			}
			if _, ok := sortedHas(live, h); ok {
				l.manifests[i>>6] |= 1 << (i & 63)
			}
			i++
			return l.ctx.Err()
		})
	})
	l.marked = err == nil
	return err
}
