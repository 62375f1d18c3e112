package index

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/index/pgkv"
)

// The PostgreSQL index (OpenPostgres) holds the same keys and values as
// the Pebble one, in pgkv's kv table, and the usage counters in its
// counters table; a batch is one transaction. Several processes (nodes)
// share it: InsertMedia and FillPending settle races on one media ID
// between them, TryLock and Lock give cluster-wide locks, and every commit
// tells the other nodes which keys it changed (Watch), so that their
// caches follow. It keeps no change log: replication of a PostgreSQL index
// is PostgreSQL's own.

// ErrUnsupported is returned for what only the Pebble index does: the
// change log that replication follows, and checkpoints.
var ErrUnsupported = errors.New("index: not supported by the PostgreSQL index")

// ErrUnavailable wraps a failure of the PostgreSQL index's database (down,
// unreachable, out of connections): the request may pass once it is back.
var ErrUnavailable = errors.New("index: database unavailable")

// unavailable wraps err, from the database, in ErrUnavailable.
func unavailable(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
}

// notifyChannel is the channel commits announce their keys on.
const notifyChannel = "mxcas_index"

// maxNotify bounds a notification's payload: past it the commit says
// "everything changed" (PostgreSQL refuses payloads of 8000 bytes).
const maxNotify = 7000

// commitTimeout bounds one commit's transaction.
const commitTimeout = 30 * time.Second

// pgIndex is the PostgreSQL side of a DB.
type pgIndex struct {
	s    *pgkv.Store
	node string // this process's name in notifications
	log  *slog.Logger

	// lockSlots bounds the Locks held or waited for (see Lock).
	lockSlots chan struct{}

	mu       sync.Mutex
	watchers []func(ops []Op, all bool)
	stop     func() // the listener's, once started
}

// OpenPostgres opens the index in the PostgreSQL database named by dsn,
// creating its tables when missing. Several processes may open one
// database at once.
func OpenPostgres(ctx context.Context, dsn string, opts Options) (*DB, error) {
	lg := opts.Logger
	if lg == nil {
		lg = slog.Default()
	}
	s, err := pgkv.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	var id [6]byte
	rand.Read(id[:])
	p := &pgIndex{s: s, node: hex.EncodeToString(id[:]), log: lg,
		lockSlots: make(chan struct{}, max(1, s.MaxConns()/4))}
	d := &DB{reader: reader{kv: pgReader{r: s}}, pg: p, fail: newFailure()}
	d.log.wait = make(chan struct{})
	return d, nil
}

// Backend names the index's store: "pebble" or "postgres".
func (d *DB) Backend() string {
	if d.pg != nil {
		return "postgres"
	}
	return "pebble"
}

// Shared reports whether other processes may change the index (it is the
// PostgreSQL one): caches must then follow Watch, and locks be TryLock's.
func (d *DB) Shared() bool { return d.pg != nil }

// Watch calls fn after other processes commit changes to the index, with
// the keys they changed (ops with Kind and Key only; damage records are
// left out), or with all set when what changed is not known (a
// notification was too long, or the connection that listens was lost and
// notifications may be missing): the caller then forgets everything it
// caches. Calls come from one goroutine, in order; fn must return quickly
// and must not write to the index. The Pebble index has no other writers:
// Watch does nothing.
func (d *DB) Watch(fn func(ops []Op, all bool)) error {
	p := d.pg
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.watchers = append(p.watchers, fn)
	if p.stop != nil {
		return nil
	}
	stop, err := p.s.Listen(context.Background(), notifyChannel, p.notified)
	if err != nil {
		p.watchers = p.watchers[:len(p.watchers)-1]
		return fmt.Errorf("index: watch: %w", err)
	}
	p.stop = stop
	return nil
}

// notified hands a notification to the watchers.
func (p *pgIndex) notified(payload string) {
	node, body, _ := strings.Cut(payload, ":")
	if payload != "" && node == p.node {
		return // our own commit: the caller saw to its caches
	}
	var ops []Op
	all := payload == "" || body == "*"
	if !all {
		b, err := base64.RawStdEncoding.DecodeString(body)
		if err == nil {
			ops, err = DecodeOps(b)
		}
		if err != nil {
			p.log.Warn("index: a change notification could not be read; forgetting every cached record", "err", err)
			ops, all = nil, true
		}
	}
	p.mu.Lock()
	ws := p.watchers
	p.mu.Unlock()
	for _, fn := range ws {
		fn(ops, all)
	}
}

// close stops listening and closes the pool.
func (p *pgIndex) close() {
	p.mu.Lock()
	stop := p.stop
	p.stop = nil
	p.mu.Unlock()
	if stop != nil {
		stop()
	}
	p.s.Close()
}

// TryLock takes the lock called name without waiting: ok is false when
// another holder has it. With PostgreSQL the lock is cluster-wide (a
// session advisory lock, lost if its connection is); with Pebble it is
// this process's (one process holds a Pebble index). Call unlock when done.
func (d *DB) TryLock(ctx context.Context, name string) (unlock func(), ok bool, err error) {
	if d.pg != nil {
		unlock, ok, err = d.pg.s.TryLock(ctx, name)
		if err != nil {
			err = fmt.Errorf("index: %w", err)
		}
		return unlock, ok, err
	}
	d.locksMu.Lock()
	defer d.locksMu.Unlock()
	if d.locks[name] {
		return nil, false, nil
	}
	if d.locks == nil {
		d.locks = make(map[string]bool)
	}
	d.locks[name] = true
	var once sync.Once
	return func() {
		once.Do(func() {
			d.locksMu.Lock()
			delete(d.locks, name)
			d.locksMu.Unlock()
		})
	}, true, nil
}

// Lock takes the cluster-wide lock called name, waiting for its holder on
// any node to release it, until ctx ends. With Pebble it returns at once
// (callers serialise within the process themselves): it is for work that
// only across processes needs it, such as making one thumbnail once.
func (d *DB) Lock(ctx context.Context, name string) (unlock func(), err error) {
	if d.pg == nil {
		return func() {}, nil
	}
	// A held lock holds a pooled connection, and its holder reads and
	// commits through others: at most a quarter of the pool holds or
	// waits for locks, so the rest always serves.
	select {
	case d.pg.lockSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("index: lock %s: %w", name, ctx.Err())
	}
	held, err := d.pg.s.Lock(ctx, name)
	if err != nil {
		<-d.pg.lockSlots
		return nil, fmt.Errorf("index: %w", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			held()
			<-d.pg.lockSlots
		})
	}, nil
}

// pgBatch is a Batch of the PostgreSQL index: pgkv's, with the keys it
// changes for the notification sent with it.
type pgBatch struct {
	p    *pgIndex
	b    *pgkv.Batch
	keys []Op
}

func (p *pgIndex) newBatch() *pgBatch { return &pgBatch{p: p, b: p.s.NewBatch()} }

func (b *pgBatch) changed(kind OpKind, key []byte) {
	if !replicatedKey(key) {
		return // damage records: no node caches them, and DecodeOps refuses them
	}
	b.keys = append(b.keys, Op{Kind: kind, Key: append([]byte(nil), key...)})
}

func (b *pgBatch) set(key, v []byte) {
	b.b.Set(key, v)
	b.changed(OpSet, key)
}

func (b *pgBatch) insert(key, v []byte) {
	b.b.Insert(key, v)
	b.changed(OpSet, key)
}

func (b *pgBatch) delete(key []byte) {
	b.b.Delete(key)
	b.changed(OpDelete, key)
}

func (b *pgBatch) deleteExisting(key []byte) {
	b.b.DeleteExisting(key)
	b.changed(OpDelete, key)
}

func (b *pgBatch) add(key []byte, u Usage) { b.b.Add(key, u.Bytes, u.Count) }

// commit runs the batch's transaction, with its notification.
func (b *pgBatch) commit() error {
	if len(b.keys) > 0 {
		body := base64.RawStdEncoding.EncodeToString(EncodeOps(b.keys))
		if len(body) > maxNotify {
			body = "*"
		}
		b.b.Notify(notifyChannel, b.p.node+":"+body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	err := b.b.Commit(ctx)
	if errors.Is(err, pgkv.ErrPresent) {
		return fmt.Errorf("%w: %w", ErrCondemned, err)
	}
	if errors.Is(err, pgkv.ErrExists) || errors.Is(err, pgkv.ErrAbsent) || errors.Is(err, pgkv.ErrChanged) {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	if err != nil {
		return unavailable("commit", err)
	}
	return nil
}

// pgSource is what pgReader reads: the Store or a Snapshot.
type pgSource interface {
	Get(ctx context.Context, key []byte) ([]byte, error)
	Scan(ctx context.Context, lower, upper []byte, fn func(k, v []byte) error) error
	Counter(ctx context.Context, key []byte) (bytes, count int64, err error)
	ScanCounters(ctx context.Context, lower, upper []byte, fn func(k []byte, bytes, count int64) error) error
}

// pgReader is the kvReader of the PostgreSQL index or one of its snapshots.
// Lookups are bounded by readTimeout; scans, which may be as long as the
// index (GC, fsck), by PostgreSQL's own settings.
type pgReader struct{ r pgSource }

var _ kvReader = pgReader{}

// readTimeout bounds a lookup, so that a database that stops answering
// fails requests (503) rather than holding them.
const readTimeout = 30 * time.Second

func (p pgReader) get(key []byte, fn func(v []byte) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	v, err := p.r.Get(ctx, key)
	if errors.Is(err, pgkv.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return unavailable("get", err)
	}
	return fn(v)
}

func (p pgReader) scan(lower, upper []byte, fn func(k, v []byte) error) error {
	failed := false // the database's failure, not fn's
	err := p.r.Scan(context.Background(), lower, upper, func(k, v []byte) error {
		err := fn(k, v)
		failed = err != nil
		return err
	})
	if err != nil && !failed {
		return unavailable("scan", err)
	}
	return err
}

// scanLazy reads the values with the keys: PostgreSQL sends them together.
func (p pgReader) scanLazy(lower, upper []byte, fn func(k []byte, value func() ([]byte, error)) error) error {
	return p.scan(lower, upper, func(k, v []byte) error {
		return fn(k, func() ([]byte, error) { return v, nil })
	})
}

func (p pgReader) counter(key []byte) (Usage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	b, n, err := p.r.Counter(ctx, key)
	if err != nil {
		return Usage{}, unavailable("counter", err)
	}
	return Usage{Bytes: b, Count: n}, nil
}

func (p pgReader) scanCounters(lower, upper []byte, fn func(k []byte, u Usage) error) error {
	// Collected first: a Snapshot's ScanCounters holds it while fn runs.
	type kc struct {
		k []byte
		u Usage
	}
	var all []kc
	err := p.r.ScanCounters(context.Background(), lower, upper, func(k []byte, b, n int64) error {
		all = append(all, kc{k, Usage{Bytes: b, Count: n}})
		return nil
	})
	if err != nil {
		return unavailable("scan counters", err)
	}
	for _, c := range all {
		if err := fn(c.k, c.u); err != nil {
			return err
		}
	}
	return nil
}

// errReader is the reader of a snapshot that could not be taken: every
// read returns its error.
type errReader struct{ err error }

func (e errReader) get([]byte, func([]byte) error) error              { return e.err }
func (e errReader) scan(_, _ []byte, _ func(k, v []byte) error) error { return e.err }
func (e errReader) scanLazy(_, _ []byte, _ func([]byte, func() ([]byte, error)) error) error {
	return e.err
}
func (e errReader) counter([]byte) (Usage, error)                               { return Usage{}, e.err }
func (e errReader) scanCounters(_, _ []byte, _ func([]byte, Usage) error) error { return e.err }

// prefixMeta holds the PostgreSQL index's description of the store it
// indexes (x/<name>): what a data directory's FORMAT says, shared by the
// nodes, none of which holds the store's only FORMAT.
var prefixMeta = []byte("x/")

// Meta returns the value stored under name, or ErrNotFound.
func (d *DB) Meta(name string) ([]byte, error) {
	var got []byte
	err := d.get(append(append([]byte(nil), prefixMeta...), name...), func(v []byte) error {
		got = append([]byte(nil), v...)
		return nil
	})
	return got, err
}

// EnsureMeta stores value under name unless a value is there already, and
// returns the value stored: value, or the one another process stored
// first.
func (d *DB) EnsureMeta(name string, value []byte) ([]byte, error) {
	key := append(append([]byte(nil), prefixMeta...), name...)
	for try := 0; try < 2; try++ {
		var got []byte
		err := d.get(key, func(v []byte) error { got = append([]byte(nil), v...); return nil })
		if err == nil {
			return got, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		b := d.NewBatch()
		err = nil
		if b.pg != nil {
			b.pg.insert(key, value)
		} else {
			b.conds = append(b.conds, cond{key: key})
			err = b.set(key, value)
		}
		if err == nil {
			err = b.Commit()
		}
		b.Close()
		if err == nil {
			return value, nil
		}
		if !errors.Is(err, ErrConflict) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%w: meta %s", ErrConflict, name)
}

// GC of a shared index and the commits of other nodes. A node's GC finds
// the objects and chunks no record refers to in a snapshot; a commit on
// another node may refer to them again meanwhile (an upload of content
// whose chunks are orphaned but still stored). So GC condemns them first
// (Condemn: g/o/<hash> and g/c/<hash> keys, under the sweep lock held
// exclusive), then looks again in a snapshot taken after that (any commit
// before it is in it, and is spared: Absolve), and only then deletes. A
// commit that records a manifest (GuardObject) holds the sweep lock shared
// and fails with ErrCondemned when its object or a chunk of it is
// condemned: it either committed before the condemnation, and GC's second
// look sees it, or it fails. Pebble has one process, whose pins do this.

var (
	prefixCondemned = []byte("g/")
	condemnedObj    = []byte("g/o/")
	condemnedChunk  = []byte("g/c/")
)

// sweepLock is the name of the lock GuardObject shares and Condemn holds.
const sweepLock = "mxcas-gc-sweep"

// ErrCondemned fails the commit of a batch whose GuardObject names an
// object or chunk that GC on another node is removing: the content must be
// uploaded again (a retry finds its chunks gone, or spared).
var ErrCondemned = errors.New("index: content is being collected by GC")

func condemnedKey(p []byte, h cas.Hash) []byte {
	return append(append([]byte(nil), p...), h[:]...)
}

// GuardObject makes the commit fail with ErrCondemned when object h, whose
// manifest the batch records, is condemned, or when one of found (chunks of
// it that the write found already stored rather than uploaded) is: they may
// be gone. own are the chunks the write uploaded itself, after any
// deletion: their condemnations are dropped. Shared index only; Pebble: nothing.
func (b *Batch) GuardObject(h cas.Hash, found, own []cas.Hash) {
	if b.pg == nil {
		return
	}
	b.pg.b.XactLock(sweepLock, true)
	b.pg.b.Absent(condemnedKey(condemnedObj, h))
	if len(found) > 0 {
		keys := make([][]byte, len(found))
		for i, c := range found {
			keys[i] = condemnedKey(condemnedChunk, c)
		}
		b.pg.b.Absent(keys...)
	}
	for _, c := range own {
		b.pg.b.Delete(condemnedKey(condemnedChunk, c))
	}
}

// Condemn marks objects and chunks as being removed by GC, waiting for
// the commits under GuardObject in progress. A chunk GC deleted stays
// condemned until the next GC (AbsolveAll): a write that found it stored
// before the deletion must not record it. Shared index only.
func (d *DB) Condemn(objs, chunks []cas.Hash) error {
	return d.condemned(func(b *pgkv.Batch) {
		b.XactLock(sweepLock, false)
		for _, h := range objs {
			b.Set(condemnedKey(condemnedObj, h), nil)
		}
		for _, h := range chunks {
			b.Set(condemnedKey(condemnedChunk, h), nil)
		}
	})
}

// Absolve removes the condemnation of objects and chunks (GC spares them,
// or has removed them). Shared index only.
func (d *DB) Absolve(objs, chunks []cas.Hash) error {
	return d.condemned(func(b *pgkv.Batch) {
		for _, h := range objs {
			b.Delete(condemnedKey(condemnedObj, h))
		}
		for _, h := range chunks {
			b.Delete(condemnedKey(condemnedChunk, h))
		}
	})
}

// AbsolveAll removes every condemnation: those of a GC that did not finish
// (GC calls it first, holding the GC lock). Shared index only.
func (d *DB) AbsolveAll() error {
	var keys [][]byte
	err := d.scan(prefixCondemned, func(k, _ []byte) error {
		keys = append(keys, bytes.Clone(k))
		return nil
	})
	if err != nil || len(keys) == 0 {
		return err
	}
	return d.condemned(func(b *pgkv.Batch) {
		for _, k := range keys {
			b.Delete(k)
		}
	})
}

func (d *DB) condemned(fill func(b *pgkv.Batch)) error {
	if d.pg == nil {
		return fmt.Errorf("%w: condemn", ErrUnsupported)
	}
	b := d.pg.s.NewBatch()
	fill(b)
	if b.Len() == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	if err := b.Commit(ctx); err != nil {
		return unavailable("condemn", err)
	}
	return nil
}
