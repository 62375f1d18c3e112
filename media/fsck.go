package media

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"slices"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/index"
)

// Problem kinds.
const (
	ProblemCorruptChunk    = "corrupt-chunk"    // a chunk file does not hash to its name, or cannot be read
	ProblemMissingChunk    = "missing-chunk"    // a manifest names a chunk that is not stored
	ProblemChunkSize       = "chunk-size"       // a chunk file's length differs from its manifest's
	ProblemBadManifest     = "bad-manifest"     // a manifest cannot be decoded
	ProblemMissingManifest = "missing-manifest" // a record's object has no manifest
	ProblemBadRecord       = "bad-record"       // a media record cannot be decoded
	ProblemRecordedDamage  = "recorded-damage"  // a read found the chunk damaged (cleared by a repair)
)

// Problem is one piece of damage found by Fsck.
type Problem struct {
	Kind   string   `json:"kind"`
	Chunk  cas.Hash `json:"chunk,omitzero"`
	Object cas.Hash `json:"object,omitzero"`
	// Media lists the damaged media as mxc:// URIs.
	Media  []string `json:"media,omitempty"`
	Detail string   `json:"detail,omitempty"`
}

func (p Problem) String() string {
	s := p.Kind
	if !p.Chunk.IsZero() {
		s += " chunk " + p.Chunk.String()
	}
	if !p.Object.IsZero() {
		s += " object " + p.Object.String()
	}
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// FsckReport is the result of Fsck. Healthy when Problems is empty.
type FsckReport struct {
	Media    int       `json:"media"` // records, tombstones of deleted media not counted
	Objects  int       `json:"objects"`
	Chunks   int       `json:"chunks"`
	Bytes    int64     `json:"bytes"`
	Orphans  int       `json:"orphan_chunks"` // stored, no manifest needs them (GC's business, not damage)
	Problems []Problem `json:"problems,omitempty"`
	// Damaged lists every media record that cannot be read back intact, as
	// mxc:// URIs, sorted.
	Damaged []string `json:"damaged,omitempty"`
	// Repaired lists the chunks the check found damaged and Fsck copied
	// back from the store's repair source before checking again; the rest
	// of the report is that second check.
	Repaired []cas.Hash `json:"repaired,omitempty"`
}

// Healthy reports whether Fsck found no damage.
func (r FsckReport) Healthy() bool { return len(r.Problems) == 0 }

// FsckOptions tune Fsck.
type FsckOptions struct {
	// Workers is how many chunks are read and hashed at once (default
	// DefaultFsckWorkers()). The report does not depend on it.
	Workers int `json:"workers,omitempty"`
}

// DefaultFsckWorkers is GOMAXPROCS, at most 8: hashing runs at GB/s a
// core, so more readers than that only queue on the disk.
func DefaultFsckWorkers() int { return min(runtime.GOMAXPROCS(0), 8) }

// Fsck checks the whole store: every chunk file hashes to its name, every
// manifest's chunks exist with the right lengths, every record's object has a
// manifest. It names every damaged media as mxc://server/id. It reads every
// stored byte, with the default workers; uploads may go on meanwhile. A
// store with a repair source (Options.RepairSource) repairs the damaged
// chunks it finds from there, as RepairFromSource does, and reports what it
// found after. A store opened ReadOnly is checked without writing a byte.
func (s *Store) Fsck(ctx context.Context) (FsckReport, error) {
	return s.FsckWith(ctx, FsckOptions{})
}

// FsckWith is Fsck with options. The report is the same for any options:
// its problems come in a fixed order (corrupt chunks sorted by hash, then
// recorded damage, then the manifests' and the records' problems in index
// order).
func (s *Store) FsckWith(ctx context.Context, o FsckOptions) (FsckReport, error) {
	rep, err := s.fsck(ctx, o)
	src := s.repairSource()
	if err != nil || rep.Healthy() || src == nil || len(chunksToRepair(rep)) == 0 {
		return rep, err
	}
	rr, err := s.repairFound(ctx, src, "the repair source", rep)
	if err != nil {
		return rep, err
	}
	rr.After.Repaired = rr.Copied
	return rr.After, nil
}

// fsck is Fsck without the repair.
func (s *Store) fsck(ctx context.Context, o FsckOptions) (FsckReport, error) {
	if o.Workers <= 0 {
		o.Workers = DefaultFsckWorkers()
	}
	s.maint.Lock()
	defer s.maint.Unlock()
	var rep FsckReport

	// The snapshot comes first: every chunk it refers to was durable before
	// it was taken, so the walk below must find it.
	snap := s.idx.Snapshot()
	defer snap.Close()

	damagedObj, err := rep.checkChunks(ctx, s, snap, o.Workers)
	if err != nil {
		return rep, err
	}
	byObj, err := rep.checkRecords(ctx, snap, damagedObj)
	if err != nil {
		return rep, err
	}
	rep.attributeProblems(snap, damagedObj, byObj)
	return rep, nil
}

// fsckChunk is what Fsck's walk found of one chunk file.
type fsckChunk struct {
	h       cas.Hash
	size    int64
	readErr string
	corrupt bool
	gone    bool // deleted while fsck ran: left out
	needed  bool // a manifest lists it
}

// objDamage is the damage of an object: the kind of its last damaged
// chunk reference (ref is its place in the manifest; -1: a bad manifest).
type objDamage struct {
	kind string
	ref  int
}

// manifestProblem is a problem a manifest's check found, and where.
type manifestProblem struct {
	ref int
	p   Problem
}

// checkChunks checks the chunk files and the manifests, in passes over
// ranges of chunk hashes (passes.go): each pass reads and hashes the chunk
// files of its range, then checks against them the references of every
// manifest that fall in it. An object is damaged when a chunk is missing,
// corrupt or the wrong size. It adds the problems found in the report's
// order (corrupt chunks by hash, the recorded damage, then the manifests'
// problems in index order), counts the chunks no manifest needs as
// orphans, and returns the damaged objects with the kind of their damage.
func (r *FsckReport) checkChunks(ctx context.Context, s *Store, snap *index.Snapshot, workers int) (map[cas.Hash]string, error) {
	damaged := make(map[cas.Hash]objDamage)
	var found []manifestProblem
	for hr, first, more := whole, true, true; more; hr, more = hr.next() {
		var chunks []fsckChunk
		var err error
		hr, chunks, err = s.hashChunks(ctx, hr.lo, workers)
		if err != nil {
			return nil, err
		}
		passesRun.Add(1)
		for _, c := range chunks {
			if c.gone {
				continue
			}
			r.Chunks++
			r.Bytes += c.size
			if c.corrupt {
				r.Problems = append(r.Problems, Problem{Kind: ProblemCorruptChunk, Chunk: c.h, Detail: c.readErr})
			}
		}
		if err := r.checkManifests(ctx, snap, hr, chunks, first, damaged, &found); err != nil {
			return nil, err
		}
		for _, c := range chunks {
			if !c.gone && !c.needed {
				r.Orphans++
			}
		}
		first = false
	}
	// Inline chunks no manifest names (the index lost a manifest but not
	// its chunk) are orphans too.
	err := snap.ScanInline(func(obj cas.Hash, _ []byte) error {
		if m, err := snap.Manifest(obj); err == nil {
			if _, ok := m.InlineRef(); ok {
				return ctx.Err()
			}
		} else if !errors.Is(err, index.ErrNotFound) && !errors.Is(err, index.ErrCorruptRecord) {
			return err
		}
		r.Orphans++
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	if err := r.addRecordedDamage(snap); err != nil {
		return nil, err
	}
	slices.SortStableFunc(found, func(a, b manifestProblem) int {
		return cmp.Or(compareHash(a.p.Object, b.p.Object), cmp.Compare(a.ref, b.ref))
	})
	for _, f := range found {
		r.Problems = append(r.Problems, f.p)
	}
	damagedObj := make(map[cas.Hash]string, len(damaged))
	for h, d := range damaged {
		damagedObj[h] = d.kind
	}
	return damagedObj, nil
}

// hashChunks lists the chunk files of the range from lo (the range ends
// where passBudget has it end) and reads every one and checks it against
// its name, workers at a time (each holding one chunk's buffer, from a
// pool). A chunk deleted meanwhile is marked gone.
func (s *Store) hashChunks(ctx context.Context, lo cas.Hash, workers int) (hashRange, []fsckChunk, error) {
	set := newRangeSet(lo, func(c fsckChunk) cas.Hash { return c.h })
	err := s.cas.Walk(func(h cas.Hash, info fs.FileInfo) error {
		set.add(fsckChunk{h: h, size: info.Size()})
		return ctx.Err()
	})
	if err != nil {
		return hashRange{}, nil, err
	}
	hr, chunks := set.done()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	pool := sync.Pool{New: func() any { return new([]byte) }}
	for i := range chunks {
		if err := gctx.Err(); err != nil {
			break
		}
		c := &chunks[i]
		g.Go(func() error {
			bp := pool.Get().(*[]byte)
			defer pool.Put(bp)
			buf, err := s.cas.ReadChunk(c.h, *bp)
			switch {
			case errors.Is(err, cas.ErrCorrupt):
				c.corrupt = true
			case errors.Is(err, cas.ErrNotFound):
				c.gone = true // deleted while we walked: not ours to judge
			case errors.Is(err, cas.ErrUnavailable):
				return err // the object store failed, not the chunk: judge nothing
			case err != nil:
				c.corrupt, c.readErr = true, err.Error() // unreadable: as bad as corrupt
			default:
				*bp = buf
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return hashRange{}, nil, err
	}
	return hr, chunks, ctx.Err()
}

// addRecordedDamage reports the damage that reads found and recorded,
// repaired or not since.
func (r *FsckReport) addRecordedDamage(snap *index.Snapshot) error {
	return snap.ScanDamaged(func(h cas.Hash, d index.DamageRecord, decodeErr error) error {
		p := Problem{Kind: ProblemRecordedDamage, Chunk: h, Detail: "found by a read of " + d.Media + ": " + d.Reason}
		if decodeErr != nil {
			p.Detail = decodeErr.Error()
		}
		r.Problems = append(r.Problems, p)
		return nil
	})
}

// checkManifests checks the references of every manifest to the chunks of
// range hr against chunks, the files found there (sorted), marking those
// needed; the first pass counts the objects and reports the manifests
// that cannot be decoded. It records the damaged objects in damaged and
// the problems in found.
func (r *FsckReport) checkManifests(ctx context.Context, snap *index.Snapshot, hr hashRange, chunks []fsckChunk, first bool,
	damaged map[cas.Hash]objDamage, found *[]manifestProblem) error {
	damage := func(h cas.Hash, ref int, kind string) {
		if d, ok := damaged[h]; !ok || ref > d.ref {
			damaged[h] = objDamage{kind, ref}
		}
	}
	return snap.ScanManifests(func(h cas.Hash, m index.Manifest, decodeErr error) error {
		if decodeErr != nil {
			if first {
				r.Objects++
				damage(h, -1, ProblemBadManifest)
				*found = append(*found, manifestProblem{-1, Problem{Kind: ProblemBadManifest, Object: h, Detail: decodeErr.Error()}})
			}
			return nil
		}
		if first {
			r.Objects++
			if kind, p := checkInline(snap, h, m); kind != "" {
				damage(h, -1, kind)
				*found = append(*found, manifestProblem{-1, p})
			} else if ref, ok := m.InlineRef(); ok {
				r.Bytes += int64(ref.Len)
			}
		}
		for ref, c := range m.Stored() {
			if !hr.contains(c.Hash) {
				continue
			}
			i, ok := slices.BinarySearchFunc(chunks, c.Hash, func(f fsckChunk, h cas.Hash) int { return compareHash(f.h, h) })
			if ok && chunks[i].gone {
				ok = false
			}
			switch {
			case !ok:
				damage(h, ref, ProblemMissingChunk)
				*found = append(*found, manifestProblem{ref, Problem{Kind: ProblemMissingChunk, Chunk: c.Hash, Object: h}})
				continue
			case chunks[i].corrupt:
				damage(h, ref, ProblemCorruptChunk)
			case chunks[i].size != int64(c.Len):
				damage(h, ref, ProblemChunkSize)
				*found = append(*found, manifestProblem{ref, Problem{Kind: ProblemChunkSize, Chunk: c.Hash, Object: h,
					Detail: fmt.Sprintf("file has %d bytes, manifest says %d", chunks[i].size, c.Len)}})
			}
			chunks[i].needed = true
		}
		return ctx.Err()
	})
}

// checkInline checks object h's inline chunk, if m has one, against its
// hash: it returns the kind of the damage and its problem, or "".
func checkInline(snap *index.Snapshot, h cas.Hash, m index.Manifest) (string, Problem) {
	ref, ok := m.InlineRef()
	if !ok {
		return "", Problem{}
	}
	data, err := snap.InlineChunk(h)
	switch {
	case errors.Is(err, index.ErrNotFound):
		return ProblemMissingChunk, Problem{Kind: ProblemMissingChunk, Chunk: ref.Hash, Object: h, Detail: "inline chunk missing from the index"}
	case err != nil:
		return ProblemCorruptChunk, Problem{Kind: ProblemCorruptChunk, Chunk: ref.Hash, Object: h, Detail: "inline chunk unreadable: " + err.Error()}
	case len(data) != int(ref.Len) || cas.Sum(data) != ref.Hash:
		return ProblemCorruptChunk, Problem{Kind: ProblemCorruptChunk, Chunk: ref.Hash, Object: h,
			Detail: fmt.Sprintf("inline chunk of %d bytes does not hash to its name", len(data))}
	}
	return "", Problem{}
}

// checkRecords checks every media record and names the damaged media: a
// record that cannot be decoded, whose object has no manifest, or whose
// object is in damagedObj. It returns the media of each damaged object, to
// attach to that object's problems.
func (r *FsckReport) checkRecords(ctx context.Context, snap *index.Snapshot, damagedObj map[cas.Hash]string) (map[cas.Hash][]string, error) {
	byObj := make(map[cas.Hash][]string)
	err := snap.ScanMediaChecked(func(ir index.MediaRecord, decodeErr error) error {
		rec, keyErr := scannedMedia(ir)
		if !rec.Deleted {
			r.Media++ // a tombstone is no media: nothing to check
		}
		mxc := rec.MXC.String()
		switch {
		case keyErr != nil: // no MXC to name it by; the detail names its key
			r.Problems = append(r.Problems, Problem{Kind: ProblemBadRecord, Detail: keyErr.Error()})
		case decodeErr != nil:
			r.Problems = append(r.Problems, Problem{Kind: ProblemBadRecord, Media: []string{mxc}, Detail: decodeErr.Error()})
			r.Damaged = append(r.Damaged, mxc)
		case rec.Pending || rec.Object.IsZero():
		default:
			if _, err := snap.Manifest(rec.Object); errors.Is(err, index.ErrNotFound) {
				r.Problems = append(r.Problems, Problem{Kind: ProblemMissingManifest, Object: rec.Object, Media: []string{mxc}})
				r.Damaged = append(r.Damaged, mxc)
			} else if _, bad := damagedObj[rec.Object]; bad {
				r.Damaged = append(r.Damaged, mxc)
				byObj[rec.Object] = append(byObj[rec.Object], mxc)
			}
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(r.Damaged)
	return byObj, nil
}

// attributeProblems attaches to each chunk and object problem the media it
// damages (byObj, from checkRecords), sorted.
func (r *FsckReport) attributeProblems(snap *index.Snapshot, damagedObj map[cas.Hash]string, byObj map[cas.Hash][]string) {
	for i, p := range r.Problems {
		switch {
		case p.Kind == ProblemCorruptChunk || p.Kind == ProblemRecordedDamage:
			for obj := range damagedObj {
				if m, err := snap.Manifest(obj); err == nil && containsChunk(m, p.Chunk) {
					r.Problems[i].Media = append(r.Problems[i].Media, byObj[obj]...)
				}
			}
		case !p.Object.IsZero() && p.Media == nil:
			r.Problems[i].Media = byObj[p.Object]
		}
		sort.Strings(r.Problems[i].Media)
	}
}

func containsChunk(m index.Manifest, h cas.Hash) bool {
	for _, c := range m.Chunks {
		if c.Hash == h {
			return true
		}
	}
	return false
}
