package index

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/mxcas/mxcas/cas"
)

// The change log is what replication follows. Every synced batch that
// changes a replicated key (every key but d/ damage records and the log
// itself) gets the next sequence number, and its replicated operations are
// written under c/<seq> in that same batch: the log is exactly the
// committed history, in commit order, without gaps. Sequence numbers are
// handed out and batches applied under one lock, so the write-ahead log
// holds them in sequence order; the fsync happens outside it, so
// concurrent commits still share their syncs. A change is published (see
// Head) only once it is durable: a crash never takes back a change a
// reader has seen.
//
// A standby applies the primary's changes with ApplyChanges, which keeps
// their numbers, and logs none of its own (SetFollower): its log is a copy
// of the primary's, and a promoted standby's numbers go on from there.

// prefixChange holds the change log: c/<seq, 8 bytes big-endian> ->
// encoded operations (EncodeOps).
var prefixChange = []byte("c/")

// ErrChangeOrder is returned by ApplyChanges for a change that does not
// follow the last one applied.
var ErrChangeOrder = errors.New("index: change out of order")

// ErrTrimmed is returned by Changes when changes after the given sequence
// number are no longer in the log.
var ErrTrimmed = errors.New("index: change log trimmed")

// OpKind is the kind of one logged operation.
type OpKind byte

const (
	OpSet    OpKind = 1
	OpDelete OpKind = 2
	OpMerge  OpKind = 3 // usage counters: value is added
	// opSetHeld is a set of an inline chunk as the log stores it: without
	// its value, which is what the index holds under the key (an inline
	// chunk's bytes never change; they are named by their object). The
	// stored log would otherwise hold every small media's bytes a second
	// time. Changes read from the log carry OpSet with the value again.
	opSetHeld OpKind = 4
)

// Op is one operation of a change.
type Op struct {
	Kind       OpKind
	Key, Value []byte
}

// Change is one committed batch's replicated operations.
type Change struct {
	Seq uint64
	Ops []byte // EncodeOps
}

// changeLog is the DB's sequencing state.
type changeLog struct {
	mu       sync.Mutex // held while a logged batch is numbered and applied
	next     uint64     // the number the next change gets
	follower bool       // local batches are not logged (a standby)
	durable  atomic.Uint64
	waitMu   sync.Mutex
	wait     chan struct{} // closed when durable advances
}

func changeKey(seq uint64) []byte {
	k := make([]byte, len(prefixChange)+8)
	copy(k, prefixChange)
	binary.BigEndian.PutUint64(k[len(prefixChange):], seq)
	return k
}

// replicatedKey reports whether a change to key is logged.
func replicatedKey(key []byte) bool {
	return !bytes.HasPrefix(key, prefixDamaged) && !bytes.HasPrefix(key, prefixChange)
}

// loadChangeLog finds the last logged change.
func (d *DB) loadChangeLog() error {
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: prefixChange, UpperBound: prefixEnd(prefixChange)})
	if err != nil {
		return err
	}
	var last uint64
	if it.Last() {
		last = binary.BigEndian.Uint64(it.Key()[len(prefixChange):])
	}
	if err := it.Close(); err != nil {
		return err
	}
	d.log.next = last + 1
	d.log.durable.Store(last)
	d.log.wait = make(chan struct{})
	return nil
}

// SetFollower sets whether the DB is a standby's: local batches are then
// not logged, only those ApplyChanges applies. Promotion sets it false.
func (d *DB) SetFollower(f bool) {
	if d.pg != nil {
		return // no change log (pgindex.go)
	}
	d.log.mu.Lock()
	d.log.follower = f
	d.log.mu.Unlock()
}

// Follower reports whether the DB is a standby's (SetFollower).
func (d *DB) Follower() bool {
	d.log.mu.Lock()
	defer d.log.mu.Unlock()
	return d.log.follower
}

// Head returns the number of the last durable change (0: none).
func (d *DB) Head() uint64 { return d.log.durable.Load() }

// HeadChanged returns a channel closed when Head next advances.
func (d *DB) HeadChanged() <-chan struct{} {
	d.log.waitMu.Lock()
	defer d.log.waitMu.Unlock()
	return d.log.wait
}

// published advances Head to seq (if later) and wakes its waiters.
func (d *DB) published(seq uint64) {
	for {
		cur := d.log.durable.Load()
		if seq <= cur {
			return
		}
		if d.log.durable.CompareAndSwap(cur, seq) {
			break
		}
	}
	d.log.waitMu.Lock()
	close(d.log.wait)
	d.log.wait = make(chan struct{})
	d.log.waitMu.Unlock()
}

// commitLogged commits b synced, numbering it as the next change when it
// changes replicated keys (and the DB is not a follower).
//
// applied is called once the batch is applied (visible to reads), before
// the wait for its sync.
func (b *Batch) commitLogged(applied func()) error {
	d := b.d
	ops, err := replicatedOps(b.b)
	if err != nil {
		return err
	}
	if len(ops) == 0 || d.Follower() {
		if err := d.db.ApplyNoSyncWait(b.b, pebble.Sync); err != nil {
			return err
		}
		applied()
		return b.syncWait()
	}
	if ops, err = d.withManifests(ops); err != nil {
		return err
	}
	seq, err := d.numberAndApply(b.b, EncodeOps(heldForm(ops)))
	if err != nil {
		return err
	}
	applied()
	if err := b.syncWait(); err != nil {
		return err
	}
	d.published(seq)
	return nil
}

// syncWait waits for an applied batch to be durable. When the
// write-ahead log cannot be made durable Pebble cannot go on, as when it
// fails a synced Commit itself: the index is failed.
func (b *Batch) syncWait() error {
	if err := b.b.SyncWait(); err != nil {
		// The write-ahead log could not be made durable: Pebble cannot go
		// on, as when it fails a synced Commit itself.
		err = fmt.Errorf("%w: %v", ErrFailed, err)
		b.fail.set(err)
		return err
	}
	return nil
}

// numberAndApply gives pb the next number, writes ops under it and applies
// pb without waiting for its sync, all under the log's lock, so the
// write-ahead log holds changes in number order. A follower's batch (it
// may have become one since the caller looked) is committed unlogged.
func (d *DB) numberAndApply(pb *pebble.Batch, ops []byte) (seq uint64, err error) {
	d.log.mu.Lock()
	defer d.log.mu.Unlock()
	if d.log.follower {
		return 0, pb.Commit(pebble.Sync) // published by no one: Head stays
	}
	seq = d.log.next
	if err := pb.Set(changeKey(seq), ops, nil); err != nil {
		return 0, err
	}
	if err := d.db.ApplyNoSyncWait(pb, pebble.Sync); err != nil {
		return 0, err
	}
	d.log.next++
	return seq, nil
}

// withManifests makes a change self-contained: for every media or
// thumbnail record it sets whose object's manifest it does not set, it adds
// that manifest as the index holds it, with its inline chunk. An upload of content the store
// already knows writes no manifest, and a standby may not hold it (its own
// GC, a chain of standbys after a promotion): the change must name the
// chunks it needs. Setting a manifest again is harmless.
func (d *DB) withManifests(ops []Op) ([]Op, error) {
	set := make(map[cas.Hash]bool)
	var need []cas.Hash
	for _, op := range ops {
		if op.Kind != OpSet {
			continue
		}
		switch {
		case bytes.HasPrefix(op.Key, prefixObject) && len(op.Key) == len(prefixObject)+cas.HashSize:
			set[cas.Hash(op.Key[len(prefixObject):])] = true
		case bytes.HasPrefix(op.Key, prefixMedia), bytes.HasPrefix(op.Key, prefixThumb):
			var rec struct {
				Object cas.Hash `json:"object"`
			}
			if json.Unmarshal(op.Value, &rec) == nil && !rec.Object.IsZero() {
				need = append(need, rec.Object)
			}
		}
	}
	for _, h := range need {
		if set[h] {
			continue
		}
		set[h] = true
		inline := false
		err := d.get(objectKey(h), func(v []byte) error {
			ops = append(ops, Op{Kind: OpSet, Key: objectKey(h), Value: bytes.Clone(v)})
			inline = len(v) > 0 && v[0] == manifestVersionInline
			return nil
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if !inline {
			continue
		}
		err = d.get(inlineKey(h), func(v []byte) error {
			ops = append(ops, Op{Kind: OpSet, Key: inlineKey(h), Value: bytes.Clone(v)})
			return nil
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	return ops, nil
}

// replicatedOps returns the replicated operations of pb; they point into
// pb's buffer.
func replicatedOps(pb *pebble.Batch) ([]Op, error) {
	var out []Op
	r := pb.Reader()
	for {
		kind, k, v, ok, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("index: read batch: %w", err)
		}
		if !ok {
			return out, nil
		}
		if !replicatedKey(k) {
			continue
		}
		var op OpKind
		switch kind {
		case pebble.InternalKeyKindSet:
			op = OpSet
		case pebble.InternalKeyKindDelete:
			op = OpDelete
		case pebble.InternalKeyKindMerge:
			op = OpMerge
		default:
			return nil, fmt.Errorf("index: batch operation %v cannot be logged", kind)
		}
		out = append(out, Op{Kind: op, Key: k, Value: v})
	}
}

// appendOp appends op's encoding: kind byte, uvarint key length, key,
// uvarint value length, value.
func appendOp(b []byte, op Op) []byte {
	b = append(b, byte(op.Kind))
	b = binary.AppendUvarint(b, uint64(len(op.Key)))
	b = append(b, op.Key...)
	b = binary.AppendUvarint(b, uint64(len(op.Value)))
	return append(b, op.Value...)
}

// EncodeOps encodes ops as a change's Ops.
func EncodeOps(ops []Op) []byte {
	var b []byte
	for _, op := range ops {
		b = appendOp(b, op)
	}
	return b
}

// heldForm returns ops as the log stores them: sets of inline chunks
// without their values (opSetHeld).
func heldForm(ops []Op) []Op {
	if !slices.ContainsFunc(ops, isInlineSet) {
		return ops // most changes: no copy on the commit path
	}
	out := make([]Op, 0, len(ops))
	for _, op := range ops {
		if isInlineSet(op) {
			op = Op{Kind: opSetHeld, Key: op.Key}
		}
		out = append(out, op)
	}
	return out
}

func isInlineSet(op Op) bool { return op.Kind == OpSet && bytes.HasPrefix(op.Key, prefixInline) }

// withHeld returns the operations of a change as the log stores them
// (stored), with each opSetHeld made an OpSet of the value r holds under its
// key, or left out when r holds none (the object was collected since: a
// later change deletes its manifest too).
func (r reader) withHeld(stored []byte) ([]byte, error) {
	ops, err := decodeOps(stored, true)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(ops, func(op Op) bool { return op.Kind == opSetHeld }) {
		return bytes.Clone(stored), nil
	}
	out := ops[:0]
	for _, op := range ops {
		if op.Kind == opSetHeld {
			err := r.get(op.Key, func(v []byte) error {
				op = Op{Kind: OpSet, Key: op.Key, Value: bytes.Clone(v)}
				return nil
			})
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
		}
		out = append(out, op)
	}
	return EncodeOps(out), nil
}

// DecodeOps decodes a change's operations. The slices point into b.
func DecodeOps(b []byte) ([]Op, error) { return decodeOps(b, false) }

// decodeOps is DecodeOps, of the log's stored form too when held.
func decodeOps(b []byte, held bool) ([]Op, error) {
	var ops []Op
	for len(b) > 0 {
		op := Op{Kind: OpKind(b[0])}
		if op.Kind < OpSet || op.Kind > OpMerge && !(held && op.Kind == opSetHeld) {
			return nil, fmt.Errorf("%w: change operation kind %d", ErrCorruptRecord, b[0])
		}
		b = b[1:]
		for _, dst := range []*[]byte{&op.Key, &op.Value} {
			n, w := binary.Uvarint(b)
			if w <= 0 || n > uint64(len(b)-w) {
				return nil, fmt.Errorf("%w: truncated change operation", ErrCorruptRecord)
			}
			*dst = b[w : w+int(n)]
			b = b[w+int(n):]
		}
		if len(op.Key) == 0 || !replicatedKey(op.Key) {
			return nil, fmt.Errorf("%w: change operation on key %q", ErrCorruptRecord, op.Key)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// errStopScan ends a scan early; it never leaves the function that uses it.
var errStopScan = errors.New("index: stop scan")

// Changes returns up to limit durable changes after seq, in order.
func (r reader) changes(after, head uint64, limit int) ([]Change, error) {
	var out []Change
	err := r.kv.scan(changeKey(after+1), changeKey(head+1), func(k, v []byte) error {
		seq := binary.BigEndian.Uint64(k[len(prefixChange):])
		if len(out) == 0 && seq != after+1 {
			return fmt.Errorf("%w: the oldest change kept is %d, wanted %d", ErrTrimmed, seq, after+1)
		}
		ops, err := r.withHeld(v)
		if err != nil {
			return err
		}
		out = append(out, Change{Seq: seq, Ops: ops})
		if len(out) == limit {
			return errStopScan
		}
		return nil
	})
	if errors.Is(err, errStopScan) {
		err = nil
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Changes returns up to limit published changes after seq, in order
// (none when after is the head). ErrTrimmed means the log no longer holds
// the change after seq.
func (d *DB) Changes(after uint64, limit int) ([]Change, error) {
	head := d.Head()
	if after >= head || limit <= 0 {
		return nil, nil
	}
	return d.changes(after, head, limit)
}

// ApplyChanges applies a primary's consecutive changes cs, in one synced
// batch, each under its own number: the first must follow the last
// applied (those already applied are left out; a gap is ErrChangeOrder and
// applies nothing). The caller makes sure every chunk their manifests name
// is durable first. Operations skip returns true for are left out; the log
// keeps each change as the primary made it.
func (d *DB) ApplyChanges(cs []Change, skip func(Op) bool) error {
	if d.pg != nil {
		return fmt.Errorf("%w: apply a replica's changes", ErrUnsupported)
	}
	d.log.mu.Lock()
	defer d.log.mu.Unlock()
	for len(cs) > 0 && cs[0].Seq < d.log.next {
		cs = cs[1:]
	}
	if len(cs) == 0 {
		return nil
	}
	pb := d.db.NewBatch()
	defer pb.Close()
	for i, c := range cs {
		if c.Seq != d.log.next+uint64(i) {
			return fmt.Errorf("%w: got %d, next is %d", ErrChangeOrder, c.Seq, d.log.next+uint64(i))
		}
		ops, err := DecodeOps(c.Ops)
		if err != nil {
			return err
		}
		for _, op := range ops {
			if skip != nil && skip(op) {
				continue
			}
			switch op.Kind {
			case OpSet:
				err = pb.Set(op.Key, op.Value, nil)
			case OpDelete:
				err = pb.Delete(op.Key, nil)
			case OpMerge:
				err = pb.Merge(op.Key, op.Value, nil)
			}
			if err != nil {
				return err
			}
		}
		if err := pb.Set(changeKey(c.Seq), EncodeOps(heldForm(ops)), nil); err != nil {
			return err
		}
	}
	if err := d.fail.get(); err != nil {
		return err
	}
	last := cs[len(cs)-1].Seq
	if err := guarded(func() error { return pb.Commit(pebble.Sync) }); err != nil {
		return fmt.Errorf("index: apply changes %d-%d: %w", cs[0].Seq, last, err)
	}
	d.log.next = last + 1
	d.published(last)
	return nil
}

// ChangeAt returns the operations of change seq, or ErrNotFound when the
// log does not hold it.
func (r reader) ChangeAt(seq uint64) ([]byte, error) {
	var ops []byte
	err := r.get(changeKey(seq), func(v []byte) (err error) {
		ops, err = r.withHeld(v)
		return err
	})
	return ops, err
}

// FirstChange returns the number of the oldest change kept (0: none).
func (r reader) FirstChange() (uint64, error) {
	var first uint64
	err := r.scan(prefixChange, func(k, _ []byte) error {
		first = binary.BigEndian.Uint64(k[len(prefixChange):])
		return errStopScan
	})
	if errors.Is(err, errStopScan) {
		err = nil
	}
	return first, err
}

// TrimChanges deletes the logged changes numbered up to seq.
func (d *DB) TrimChanges(upTo uint64) error {
	if upTo == 0 || d.pg != nil {
		return nil
	}
	b := d.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(changeKey(0), changeKey(upTo+1), nil); err != nil {
		return err
	}
	return guarded(func() error { return b.Commit(pebble.Sync) })
}

// ManifestChunks returns the chunks, with their lengths, named by the
// manifests a change sets and kept in the chunk store (not inline chunks,
// which the change carries): what a standby must hold before applying it.
func ManifestChunks(ops []Op) ([]ChunkRef, error) {
	var refs []ChunkRef
	for _, op := range ops {
		if op.Kind != OpSet || !bytes.HasPrefix(op.Key, prefixObject) {
			continue
		}
		m, err := decodeManifest(op.Value)
		if err != nil {
			return nil, err
		}
		refs = append(refs, m.Stored()...)
	}
	return refs, nil
}

// MediaOf returns the media an operation writes or deletes, if it is on a
// media record.
func (op Op) MediaOf() (server, id string, ok bool) {
	if !bytes.HasPrefix(op.Key, prefixMedia) {
		return "", "", false
	}
	server, id, err := parseMediaKey(op.Key)
	return server, id, err == nil
}

// DeletedObject returns the object whose manifest, or inline chunk, an
// operation deletes.
func (op Op) DeletedObject() (cas.Hash, bool) {
	if op.Kind != OpDelete {
		return cas.Hash{}, false
	}
	return op.ManifestObject()
}

// ManifestObject returns the object whose manifest, or inline chunk, an
// operation sets or deletes.
func (op Op) ManifestObject() (cas.Hash, bool) {
	for _, p := range [][]byte{prefixObject, prefixInline} {
		if bytes.HasPrefix(op.Key, p) && len(op.Key) == len(p)+cas.HashSize {
			return cas.Hash(op.Key[len(p):]), true
		}
	}
	return cas.Hash{}, false
}

// Quarantine reports whether an operation is on a content quarantine
// record.
func (op Op) Quarantine() bool { return bytes.HasPrefix(op.Key, prefixQuarant) }

// ServerUsageDelta sums what ops add to the usage counters of server names:
// the change in media and bytes held.
func ServerUsageDelta(ops []Op) Usage {
	var u Usage
	for _, op := range ops {
		if op.Kind != OpMerge || !bytes.HasPrefix(op.Key, prefixSiteUse) {
			continue
		}
		if d, err := decodeUsage(op.Value); err == nil {
			u.Bytes += d.Bytes
			u.Count += d.Count
		}
	}
	return u
}
