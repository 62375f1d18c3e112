package pgkv

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

type opKind int

const (
	opSet opKind = iota
	opDelete
	opInsert
	opAdd
	opDeleteCounter
	opNotify
	opDeleteExisting
	opXactLock
	opAbsent
	opExpect
)

type op struct {
	kind         opKind
	key, value   []byte
	keys         [][]byte // opAbsent's
	shared       bool     // opXactLock's mode
	bytes, count int64
	channel      string
}

// Batch collects writes that Commit applies in one transaction, in the
// order they were added: all of them or none. The methods copy their
// arguments. A Batch is not safe for concurrent use; after Commit it may
// be committed again (the same writes) or dropped.
type Batch struct {
	s   *Store
	ops []op
}

// NewBatch returns an empty Batch on s.
func (s *Store) NewBatch() *Batch { return &Batch{s: s} }

// Len returns the number of writes in b.
func (b *Batch) Len() int { return len(b.ops) }

// Set sets key to value, replacing any value.
func (b *Batch) Set(key, value []byte) {
	b.ops = append(b.ops, op{kind: opSet, key: clone(key), value: clone(value)})
}

// Delete removes key from the kv key space; an absent key is no error.
func (b *Batch) Delete(key []byte) {
	b.ops = append(b.ops, op{kind: opDelete, key: clone(key)})
}

// Insert sets key to value when key is absent. When it is present (committed
// by another transaction, or Set earlier in b), Commit fails with ErrExists
// and applies nothing. When two batches Insert one key at once, the second
// waits for the first: exactly one of them commits.
func (b *Batch) Insert(key, value []byte) {
	b.ops = append(b.ops, op{kind: opInsert, key: clone(key), value: clone(value)})
}

// DeleteExisting removes key, which must be present: when it is absent
// (never set, or removed by a transaction that committed first), Commit
// fails with ErrAbsent and applies nothing. Of two batches that
// DeleteExisting one key at once, exactly one commits.
func (b *Batch) DeleteExisting(key []byte) {
	b.ops = append(b.ops, op{kind: opDeleteExisting, key: clone(key)})
}

// XactLock takes the advisory lock called name (as TryLock names them) for
// the rest of the transaction, shared or exclusive, waiting for a holder of
// the other mode. Put it before the operations it is to guard.
func (b *Batch) XactLock(name string, shared bool) {
	b.ops = append(b.ops, op{kind: opXactLock, key: []byte(name), shared: shared})
}

// Expect fails Commit with ErrChanged, applying nothing, unless key holds
// value when this operation runs; it then holds key's row until the commit,
// so no other transaction changes it in between (one that tries waits, and
// then sees this one's writes).
func (b *Batch) Expect(key, value []byte) {
	b.ops = append(b.ops, op{kind: opExpect, key: clone(key), value: clone(value)})
}

// Absent fails Commit with ErrPresent, applying nothing, when one of keys
// is present when this operation runs (committed by another transaction,
// or set earlier in b).
func (b *Batch) Absent(keys ...[]byte) {
	o := op{kind: opAbsent}
	for _, k := range keys {
		o.keys = append(o.keys, nonNil(clone(k)))
	}
	b.ops = append(b.ops, o)
}

// Add adds bytes and count to the counter of key (created at zero). Adds
// from concurrent batches all count.
func (b *Batch) Add(key []byte, bytes, count int64) {
	b.ops = append(b.ops, op{kind: opAdd, key: clone(key), bytes: bytes, count: count})
}

// DeleteCounter removes the counter of key; an absent counter is no error.
func (b *Batch) DeleteCounter(key []byte) {
	b.ops = append(b.ops, op{kind: opDeleteCounter, key: clone(key)})
}

// Notify sends payload on channel when, and only when, b commits (see
// Store.Notify for the rules on payload).
func (b *Batch) Notify(channel, payload string) {
	b.ops = append(b.ops, op{kind: opNotify, channel: channel, value: []byte(payload)})
}

// Commit applies b in one transaction, committed durably before it returns.
// On any error nothing is applied; a conflicting Insert returns an error
// that wraps ErrExists. A transaction aborted by a deadlock or a
// serialization failure with another one is retried a few times.
func (b *Batch) Commit(ctx context.Context) error {
	for _, o := range b.ops {
		if o.kind == opNotify && len(o.value) == 0 {
			return errEmptyPayload
		}
	}
	var err error
	for try := 0; try < 3; try++ {
		// READ COMMITTED whatever the database's default: each statement
		// sees what committed before it, so an Absent or Expect after an
		// XactLock sees what the lock's holder committed while this waited.
		err = pgx.BeginTxFunc(ctx, b.s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted},
			func(tx pgx.Tx) error { return b.apply(ctx, tx) })
		if !retryable(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("pgkv: commit: %w", err)
	}
	return nil
}

// apply sends every write in one pipeline and checks each result.
func (b *Batch) apply(ctx context.Context, tx pgx.Tx) (err error) {
	var q pgx.Batch
	for _, o := range b.ops {
		switch o.kind {
		case opSet:
			q.Queue("INSERT INTO kv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value", nonNil(o.key), nonNil(o.value))
		case opDelete, opDeleteExisting:
			q.Queue("DELETE FROM kv WHERE key = $1", nonNil(o.key))
		case opInsert:
			q.Queue("INSERT INTO kv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", nonNil(o.key), nonNil(o.value))
		case opAdd:
			q.Queue(`INSERT INTO counters (key, bytes, count) VALUES ($1, $2, $3) ON CONFLICT (key)
				DO UPDATE SET bytes = counters.bytes + excluded.bytes, count = counters.count + excluded.count`,
				nonNil(o.key), o.bytes, o.count)
		case opDeleteCounter:
			q.Queue("DELETE FROM counters WHERE key = $1", nonNil(o.key))
		case opNotify:
			q.Queue("SELECT pg_notify($1, $2)", o.channel, string(o.value))
		case opXactLock:
			if o.shared {
				q.Queue("SELECT pg_advisory_xact_lock_shared($1)", lockID(string(o.key)))
			} else {
				q.Queue("SELECT pg_advisory_xact_lock($1)", lockID(string(o.key)))
			}
		case opAbsent:
			q.Queue("SELECT count(*) FROM kv WHERE key = ANY($1)", o.keys)
		case opExpect:
			q.Queue("SELECT count(*) FROM (SELECT 1 FROM kv WHERE key = $1 AND value = $2 FOR UPDATE) AS held", nonNil(o.key), nonNil(o.value))
		}
	}
	if q.Len() == 0 {
		return nil
	}
	res := tx.SendBatch(ctx, &q)
	defer func() {
		if cerr := res.Close(); err == nil {
			err = cerr
		}
	}()
	for _, o := range b.ops {
		if o.kind == opAbsent || o.kind == opExpect {
			var n int64
			if err := res.QueryRow().Scan(&n); err != nil {
				return err
			}
			if o.kind == opAbsent && n > 0 {
				return fmt.Errorf("%d of %d keys: %w", n, len(o.keys), ErrPresent)
			}
			if o.kind == opExpect && n == 0 {
				return fmt.Errorf("%x: %w", o.key, ErrChanged)
			}
			continue
		}
		tag, err := res.Exec()
		if err != nil {
			return err
		}
		if o.kind == opInsert && tag.RowsAffected() == 0 {
			return fmt.Errorf("insert %x: %w", o.key, ErrExists)
		}
		if o.kind == opDeleteExisting && tag.RowsAffected() == 0 {
			return fmt.Errorf("delete %x: %w", o.key, ErrAbsent)
		}
	}
	return nil
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}
