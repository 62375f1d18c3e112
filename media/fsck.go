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
	// DefaultFsckWorkers()), and how many ranges of objects are checked at
	// once, at most twice GOMAXPROCS (objectWorkers). The report does not
	// depend on it.
	Workers int `json:"workers,omitempty"`
}

// DefaultFsckWorkers is 16, or GOMAXPROCS when more: hashing runs at GB/s
// a core, but a reader waiting for the disk holds no core, and a disk
// (or an object store) reads faster with more requests in flight. Cold,
// on 2 cores, a store of 200k media: 17.3 s with 2 workers, 13.2 with 8,
// 12.3 with 16.
func DefaultFsckWorkers() int { return max(runtime.GOMAXPROCS(0), 16) }

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

// checkChunks checks the objects (their manifests and inline chunks, in
// checkObjects), then the chunk files and the manifests' references to
// them, in passes over ranges of chunk hashes (passes.go): each pass reads
// and hashes the chunk files of its range, then checks against them the
// references of every manifest that fall in it. An object is damaged when
// a chunk is missing, corrupt or the wrong size. It adds the problems
// found in the report's order (corrupt chunks by hash, the recorded
// damage, then the manifests' problems in index order), counts the chunks
// no manifest needs as orphans, and returns the damaged objects with the
// kind of their damage.
func (r *FsckReport) checkChunks(ctx context.Context, s *Store, snap *index.Snapshot, workers int) (map[cas.Hash]string, error) {
	damaged := make(map[cas.Hash]objDamage)
	var found []manifestProblem
	if err := r.checkObjects(ctx, snap, workers, damaged, &found); err != nil {
		return nil, err
	}
	for hr, more := whole, true; more; hr, more = hr.next() {
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
		if err := r.checkManifests(ctx, snap, hr, chunks, damaged, &found); err != nil {
			return nil, err
		}
		for _, c := range chunks {
			if !c.gone && !c.needed {
				r.Orphans++
			}
		}
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

// objectRanges is how many ranges of object hashes checkObjects shares
// among its workers: enough that one slow range does not leave the rest
// idle.
const objectRanges = 64

// objectWorkers is how many ranges of objects checkObjects checks at once:
// workers, at most twice GOMAXPROCS. Each holds the index's iterators
// (their blocks: about a megabyte), and the work is mostly hashing inline
// chunks the index reads in large blocks. At a million media, offline,
// from a cold page cache on 2 CPUs: 4 at once, 75 s and 96 MiB peak; 16
// at once, 103 s and 112 MiB.
func objectWorkers(workers int) int { return min(workers, 2*runtime.GOMAXPROCS(0)) }

// objectsChecked is what checkObjects found in one range of objects.
type objectsChecked struct {
	objects, orphans int
	bytes            int64
	found            []manifestProblem // ref -1: the object's own
	kinds            []string          // the kind of each found's damage
}

// checkObjects walks the manifests and the inline chunks together, the
// ranges of object hashes workers at a time: it counts the objects,
// reports the manifests that cannot be decoded and the inline chunks that
// are missing or do not hash to their name, and counts inline chunks no
// manifest names (the index lost a manifest but not its chunk) as
// orphans. It records the damaged objects in damaged and the problems in
// found.
func (r *FsckReport) checkObjects(ctx context.Context, snap *index.Snapshot, workers int,
	damaged map[cas.Hash]objDamage, found *[]manifestProblem) error {
	results := make([]objectsChecked, objectRanges)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(objectWorkers(workers))
	for i := range results {
		var lo, hi cas.Hash
		lo[0], hi[0] = byte(i*256/objectRanges), byte((i+1)*256/objectRanges)
		g.Go(func() error {
			return snap.ScanObjectsIn(lo, hi, i == objectRanges-1, func(e index.ObjectEntry) error {
				results[i].check(e)
				return gctx.Err()
			})
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, res := range results {
		r.Objects += res.objects
		r.Orphans += res.orphans
		r.Bytes += res.bytes
		for j, f := range res.found {
			damaged[f.p.Object] = objDamage{res.kinds[j], -1}
		}
		*found = append(*found, res.found...)
	}
	return nil
}

// check checks one object of checkObjects' walk.
func (c *objectsChecked) check(e index.ObjectEntry) {
	add := func(kind string, p Problem) {
		c.found = append(c.found, manifestProblem{-1, p})
		c.kinds = append(c.kinds, kind)
	}
	if !e.HasManifest {
		c.orphans++
		return
	}
	c.objects++
	if e.DecodeErr != nil {
		add(ProblemBadManifest, Problem{Kind: ProblemBadManifest, Object: e.Hash, Detail: e.DecodeErr.Error()})
		if e.HasInline {
			c.orphans++ // no manifest that can be read names it
		}
		return
	}
	ref, ok := e.Manifest.InlineRef()
	switch {
	case !ok:
		if e.HasInline {
			c.orphans++
		}
	case !e.HasInline:
		add(ProblemMissingChunk, Problem{Kind: ProblemMissingChunk, Chunk: ref.Hash, Object: e.Hash, Detail: "inline chunk missing from the index"})
	default:
		if kind, p := checkInline(e, ref); kind != "" {
			add(kind, p)
		} else {
			c.bytes += int64(ref.Len)
		}
	}
}

// checkManifests checks the references of every manifest to the chunks of
// range hr against chunks, the files found there (sorted), marking those
// needed (checkObjects reported the manifests that cannot be decoded). It
// records the damaged objects in damaged and the problems in found.
func (r *FsckReport) checkManifests(ctx context.Context, snap *index.Snapshot, hr hashRange, chunks []fsckChunk,
	damaged map[cas.Hash]objDamage, found *[]manifestProblem) error {
	damage := func(h cas.Hash, ref int, kind string) {
		if d, ok := damaged[h]; !ok || ref > d.ref {
			damaged[h] = objDamage{kind, ref}
		}
	}
	return snap.ScanManifests(func(h cas.Hash, m index.Manifest, decodeErr error) error {
		if decodeErr != nil {
			return nil
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

// checkInline checks the inline chunk of e, ref in its manifest, against
// its hash: it returns the kind of the damage and its problem, or "".
func checkInline(e index.ObjectEntry, ref index.ChunkRef) (string, Problem) {
	h := e.Hash
	data, err := e.Inline()
	switch {
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
// attach to that object's problems. The records are read once, in index
// order; their objects are looked for in the manifests a batch at a time
// (recordObjects), and the problems come in the records' order.
func (r *FsckReport) checkRecords(ctx context.Context, snap *index.Snapshot, damagedObj map[cas.Hash]string) (map[cas.Hash][]string, error) {
	byObj := make(map[cas.Hash][]string)
	type numbered struct {
		n int
		p Problem
	}
	var problems []numbered
	objs := recordObjects{snap: snap}
	missing := make(map[int]cas.Hash) // records whose object has no manifest, by place
	n := 0
	err := snap.ScanMediaChecked(func(ir index.MediaRecord, decodeErr error) error {
		n++
		rec, keyErr := scannedMedia(ir)
		if !rec.Deleted {
			r.Media++ // a tombstone is no media: nothing to check
		}
		switch {
		case keyErr != nil: // no MXC to name it by; the detail names its key
			problems = append(problems, numbered{n, Problem{Kind: ProblemBadRecord, Detail: keyErr.Error()}})
		case decodeErr != nil:
			problems = append(problems, numbered{n, Problem{Kind: ProblemBadRecord, Media: []string{rec.MXC.String()}, Detail: decodeErr.Error()}})
		case rec.Pending || rec.Object.IsZero():
		default:
			if _, bad := damagedObj[rec.Object]; bad { // it has a manifest, damaged
				mxc := rec.MXC.String()
				r.Damaged = append(r.Damaged, mxc)
				byObj[rec.Object] = append(byObj[rec.Object], mxc)
				break
			}
			if err := objs.add(rec.Object, n, missing); err != nil {
				return err
			}
		}
		return ctx.Err()
	})
	if err == nil {
		err = objs.flush(missing)
	}
	if err == nil && len(missing) > 0 { // rare: name them
		n = 0
		err = snap.ScanMediaChecked(func(ir index.MediaRecord, _ error) error {
			n++
			if obj, ok := missing[n]; ok {
				rec, _ := scannedMedia(ir)
				problems = append(problems, numbered{n, Problem{Kind: ProblemMissingManifest, Object: obj, Media: []string{rec.MXC.String()}}})
			}
			return ctx.Err()
		})
	}
	if err != nil {
		return nil, err
	}
	slices.SortFunc(problems, func(a, b numbered) int { return cmp.Compare(a.n, b.n) })
	for _, p := range problems {
		r.Problems = append(r.Problems, p.p)
		r.Damaged = append(r.Damaged, p.p.Media...)
	}
	sort.Strings(r.Damaged)
	return byObj, nil
}

// recordObjects finds the records' objects that have no manifest without
// a lookup each (a random read of the index each): it collects them, up to
// half of passBudget, sorts them, and walks the manifests from the first
// of them, side by side.
type recordObjects struct {
	snap  *index.Snapshot
	batch []recordObject
}

type recordObject struct {
	obj cas.Hash
	n   int // the record's place in the scan
}

func (o *recordObjects) add(obj cas.Hash, n int, missing map[int]cas.Hash) error {
	o.batch = append(o.batch, recordObject{obj, n})
	if len(o.batch) < max(passBudget/2, 1) {
		return nil
	}
	return o.flush(missing)
}

// flush looks for the batch's objects in the manifests and adds those
// without one to missing.
func (o *recordObjects) flush(missing map[int]cas.Hash) error {
	b := o.batch
	o.batch = o.batch[:0]
	if len(b) == 0 {
		return nil
	}
	slices.SortFunc(b, func(x, y recordObject) int { return compareHash(x.obj, y.obj) })
	err := o.snap.ScanManifestsIn(b[0].obj, cas.Hash{}, true, func(h cas.Hash, _ index.Manifest, _ error) error {
		for ; len(b) > 0 && compareHash(b[0].obj, h) <= 0; b = b[1:] {
			if b[0].obj != h {
				missing[b[0].n] = b[0].obj
			}
		}
		if len(b) == 0 {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	for _, x := range b {
		missing[x.n] = x.obj
	}
	return nil
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
