package pgkv

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
)

// Snapshot is a read-only view of the Store at one point in time: the
// moment Snapshot returned. It holds one pooled connection and an open
// REPEATABLE READ transaction (which also holds back VACUUM): Close it
// promptly. It is safe for concurrent use; its queries run one at a time.
type Snapshot struct {
	mu sync.Mutex
	tx pgx.Tx // nil once closed
}

// Snapshot opens a Snapshot.
func (s *Store) Snapshot(ctx context.Context) (*Snapshot, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("pgkv: snapshot: %w", err)
	}
	// PostgreSQL takes the transaction's snapshot at its first statement,
	// not at BEGIN: take it now.
	if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
		_ = tx.Rollback(context.Background())
		return nil, fmt.Errorf("pgkv: snapshot: %w", err)
	}
	return &Snapshot{tx: tx}, nil
}

// Get is Store.Get at the snapshot's point in time.
func (sn *Snapshot) Get(ctx context.Context, key []byte) ([]byte, error) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.tx == nil {
		return nil, ErrClosed
	}
	return get(ctx, sn.tx, key)
}

// Counter is Store.Counter at the snapshot's point in time.
func (sn *Snapshot) Counter(ctx context.Context, key []byte) (bytes, count int64, err error) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.tx == nil {
		return 0, 0, ErrClosed
	}
	return counter(ctx, sn.tx, key)
}

// ScanCounters is Store.ScanCounters at the snapshot's point in time. fn
// must not use the Snapshot.
func (sn *Snapshot) ScanCounters(ctx context.Context, lower, upper []byte, fn func(k []byte, bytes, count int64) error) error {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.tx == nil {
		return ErrClosed
	}
	return scanCounters(ctx, sn.tx, lower, upper, fn)
}

// Scan is Store.Scan at the snapshot's point in time: every page sees the
// same data. fn may use the Snapshot.
func (sn *Snapshot) Scan(ctx context.Context, lower, upper []byte, fn func(k, v []byte) error) error {
	return scan(ctx, func(sql string, args ...any) ([]kvPair, error) {
		sn.mu.Lock()
		defer sn.mu.Unlock()
		if sn.tx == nil {
			return nil, ErrClosed
		}
		rows, err := sn.tx.Query(ctx, sql, args...)
		if err != nil {
			return nil, err
		}
		return collect(rows)
	}, lower, upper, fn)
}

// Close ends the snapshot and returns its connection to the pool. It may
// be called more than once.
func (sn *Snapshot) Close() {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.tx != nil {
		_ = sn.tx.Rollback(context.Background())
		sn.tx = nil
	}
}
