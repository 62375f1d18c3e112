package media

import (
	"bytes"
	"slices"
	"sync/atomic"

	"github.com/mxcas/mxcas/cas"
)

// Fsck and GC hold no set of every hash in the store: their memory is
// bounded by passBudget, however big the store. They work in passes over
// contiguous ranges of the hash space, the first from the zero hash: a
// pass collects the hashes of its range (the chunks the store holds, the
// objects the records keep live) into a sorted slice, never a map, and
// merges it with a scan of the index (manifests are scanned in hash order,
// the rest is looked up by binary search). A range has no upper end to
// begin with; when its collection reaches passBudget, the upper half is
// dropped and the range ends where it now stops, so a range holds at most
// passBudget hashes and at least half that, and the next pass starts where
// this one ended. A store that fits in the budget is done in one pass;
// every further pass reads the chunk listing and the index again, trading
// time for memory. Nothing is written: fsck must not write a byte.
//
// Memory, per pass: passBudget entries of a chunk (64 bytes for fsck, 48
// for GC) and, for GC, up to two lists of passBudget object hashes (32
// bytes each) and one bit per manifest: with the default, some 9 MB for
// fsck and 15 MB for GC at most. Measured (offline, Go heap peak): with
// the budget lowered to 1<<14, 6 MB for fsck and GC alike at 30k and
// 120k media, where the maps they used before took 13 and 39 MB.

// passBudget is how many hashes one pass holds at most. Tests lower it.
// 1<<17, about 130,000: a store of 500,000 media (bench/scale) already
// fills it, so memory is flat from there on. At a million media, against
// 1<<19 (offline, /usr/bin/time, peak RSS): fsck 107 MiB instead of 113
// (40 s either way), gc 81 MiB instead of 110, but 28 s instead of 11
// (each pass reads every record again).
var passBudget = 1 << 17

// passesRun counts the passes of fsck and GC over chunk ranges, for tests
// that check a lowered budget makes more of them.
var passesRun atomic.Int64

// hashRange is the range of hashes from lo (included) to hi (excluded), or
// from lo to the end when toEnd.
type hashRange struct {
	lo, hi cas.Hash
	toEnd  bool
}

// whole is the range of every hash.
var whole = hashRange{toEnd: true}

func (r hashRange) contains(h cas.Hash) bool {
	return bytes.Compare(h[:], r.lo[:]) >= 0 && (r.toEnd || bytes.Compare(h[:], r.hi[:]) < 0)
}

// next is the range that follows r, with no upper end yet; ok is false
// when r went to the end.
func (r hashRange) next() (hashRange, bool) {
	return hashRange{lo: r.hi, toEnd: true}, !r.toEnd
}

func compareHash(a, b cas.Hash) int { return bytes.Compare(a[:], b[:]) }

// rangeSet collects the items whose key falls in its range, keeping at
// most budget of them: when full it keeps the lower half and lowers the
// range's upper end to the first item dropped. Items with equal keys are
// one (the first added is kept).
type rangeSet[T any] struct {
	key    func(T) cas.Hash
	r      hashRange
	items  []T
	budget int
}

func newRangeSet[T any](lo cas.Hash, key func(T) cas.Hash) *rangeSet[T] {
	return &rangeSet[T]{key: key, r: hashRange{lo: lo, toEnd: true}, budget: max(passBudget, 2)}
}

func (c *rangeSet[T]) add(x T) {
	if !c.r.contains(c.key(x)) {
		return
	}
	c.items = append(c.items, x)
	if len(c.items) < c.budget {
		return
	}
	c.compact()
	if len(c.items) < c.budget {
		return // duplicates went
	}
	keep := c.budget / 2
	c.r.hi, c.r.toEnd = c.key(c.items[keep]), false
	c.items = slices.Clip(c.items[:keep])
	c.items = append(make([]T, 0, c.budget), c.items...)
}

// compact sorts the items by key and drops the duplicates.
func (c *rangeSet[T]) compact() {
	slices.SortStableFunc(c.items, func(a, b T) int { return compareHash(c.key(a), c.key(b)) })
	c.items = slices.CompactFunc(c.items, func(a, b T) bool { return c.key(a) == c.key(b) })
}

// done returns the range collected and its items, sorted by key.
func (c *rangeSet[T]) done() (hashRange, []T) {
	c.compact()
	return c.r, c.items
}

func self(h cas.Hash) cas.Hash { return h }

// sortedHas reports whether sorted hs holds h, and where.
func sortedHas(hs []cas.Hash, h cas.Hash) (int, bool) {
	return slices.BinarySearchFunc(hs, h, compareHash)
}
