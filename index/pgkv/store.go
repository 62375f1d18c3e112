package pgkv

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	// ErrNotFound is returned by Get when the key is absent.
	ErrNotFound = errors.New("pgkv: not found")
	// ErrExists fails a Batch whose Insert finds its key present.
	ErrExists = errors.New("pgkv: key exists")
	// ErrChanged fails a Batch whose Expect finds its key absent or holding
	// another value.
	ErrChanged = errors.New("pgkv: key changed")
	// ErrPresent fails a Batch whose Absent finds one of its keys.
	ErrPresent = errors.New("pgkv: key present")
	// ErrAbsent fails a Batch whose DeleteExisting finds its key absent.
	ErrAbsent = errors.New("pgkv: key absent")
	// ErrClosed is returned by a Snapshot used after Close.
	ErrClosed = errors.New("pgkv: closed")
)

// DefaultMaxConns is the pool's size unless the DSN sets pool_max_conns.
const DefaultMaxConns = 32

// pageSize is how many rows one query of a Scan reads.
const pageSize = 1000

// schemaLockID is the transaction advisory lock Open holds while it creates
// the schema, so that nodes starting at once do not race on the catalog.
const schemaLockID = 0x6d786361732d6b76 // "mxcas-kv"

const schema = `
CREATE TABLE IF NOT EXISTS kv (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE IF NOT EXISTS counters (key bytea PRIMARY KEY, bytes bigint NOT NULL, count bigint NOT NULL);
`

// Store is a connection pool to one database holding the kv and counters
// tables. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to the database named by dsn (a PostgreSQL URL or keyword
// string, as pgxpool.ParseConfig takes) and creates the tables when they are
// missing. Open is idempotent and safe when several nodes call it at once.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgkv: open: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		// pgxpool's default (the number of CPUs, at least 4) is too few
		// for a server whose requests each want a connection.
		cfg.MaxConns = DefaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgkv: open: %w", err)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(schemaLockID)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schema)
		return err
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgkv: create schema: %w", err)
	}
	return &Store{pool: pool}, nil
}

// MaxConns is the pool's size.
func (s *Store) MaxConns() int { return int(s.pool.Config().MaxConns) }

// Close closes the pool. Stop listeners and release locks first.
func (s *Store) Close() { s.pool.Close() }

// querier is what reads need: the pool or a Snapshot's transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Get returns the value of key, or ErrNotFound. The caller owns the result.
func (s *Store) Get(ctx context.Context, key []byte) ([]byte, error) {
	return get(ctx, s.pool, key)
}

// Counter returns the sums that Batch.Add accumulated for key: zeros when it
// has none.
func (s *Store) Counter(ctx context.Context, key []byte) (bytes, count int64, err error) {
	return counter(ctx, s.pool, key)
}

// Scan calls fn for each key in [lower, upper) in memcmp order; a nil upper
// scans to the end. It reads pageSize rows per query and calls fn between
// queries, never while a query is open, so fn may use the Store. Each page
// is read at its own point in time: use a Snapshot for a consistent scan.
// fn owns k and v. An error from fn stops the scan and is returned.
func (s *Store) Scan(ctx context.Context, lower, upper []byte, fn func(k, v []byte) error) error {
	return scan(ctx, func(sql string, args ...any) ([]kvPair, error) {
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			return nil, err
		}
		return collect(rows)
	}, lower, upper, fn)
}

// ScanCounters calls fn for each counter key in [lower, upper) in memcmp
// order, as Scan does for keys.
func (s *Store) ScanCounters(ctx context.Context, lower, upper []byte, fn func(k []byte, bytes, count int64) error) error {
	return scanCounters(ctx, s.pool, lower, upper, fn)
}

// scanCounters pages through the counters in [lower, upper).
func scanCounters(ctx context.Context, q querier, lower, upper []byte, fn func(k []byte, bytes, count int64) error) error {
	first, next := rangeSQL("key, bytes, count", "counters", upper)
	type row struct {
		k            []byte
		bytes, count int64
	}
	sql, from := first, nonNil(lower)
	for {
		rows, err := q.Query(ctx, sql, from, upper, pageSize)
		if err != nil {
			return fmt.Errorf("pgkv: scan counters: %w", err)
		}
		var page []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.k, &r.bytes, &r.count); err != nil {
				rows.Close()
				return fmt.Errorf("pgkv: scan counters: %w", err)
			}
			page = append(page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("pgkv: scan counters: %w", err)
		}
		for _, r := range page {
			if err := fn(r.k, r.bytes, r.count); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		sql, from = next, page[len(page)-1].k
	}
}

func get(ctx context.Context, q querier, key []byte) ([]byte, error) {
	var v []byte
	err := q.QueryRow(ctx, "SELECT value FROM kv WHERE key = $1", nonNil(key)).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("pgkv: get: %w", err)
	}
	return v, nil
}

func counter(ctx context.Context, q querier, key []byte) (bytes, count int64, err error) {
	err = q.QueryRow(ctx, "SELECT bytes, count FROM counters WHERE key = $1", nonNil(key)).Scan(&bytes, &count)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("pgkv: counter: %w", err)
	}
	return bytes, count, nil
}

type kvPair struct{ k, v []byte }

func collect(rows pgx.Rows) ([]kvPair, error) {
	defer rows.Close()
	var page []kvPair
	for rows.Next() {
		var p kvPair
		if err := rows.Scan(&p.k, &p.v); err != nil {
			return nil, err
		}
		page = append(page, p)
	}
	return page, rows.Err()
}

// scan pages through [lower, upper) with query, which runs one statement
// and returns its rows.
func scan(ctx context.Context, query func(sql string, args ...any) ([]kvPair, error), lower, upper []byte, fn func(k, v []byte) error) error {
	first, next := rangeSQL("key, value", "kv", upper)
	sql, from := first, nonNil(lower)
	for {
		page, err := query(sql, from, upper, pageSize)
		if err != nil {
			return fmt.Errorf("pgkv: scan: %w", err)
		}
		for _, p := range page {
			if err := fn(p.k, p.v); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		sql, from = next, page[len(page)-1].k
	}
}

// rangeSQL returns the queries of the first and the next pages of a scan
// of table up to upper (nil: to the end), with parameters $1 the key to
// start from, $2 upper and $3 the page size. The upper bound is written
// only when there is one: a cached plan of "($2 IS NULL OR key < $2)" (a
// generic plan, which PostgreSQL picks for a statement run often) cannot
// bound the index scan by it, and reads every key from $1 to the table's
// end to find none.
func rangeSQL(cols, table string, upper []byte) (first, next string) {
	cond := "key < $2"
	if upper == nil {
		cond = "$2::bytea IS NULL"
	}
	sel, rest := "SELECT "+cols+" FROM "+table+" WHERE key ", " AND "+cond+" ORDER BY key LIMIT $3"
	return sel + ">= $1" + rest, sel + "> $1" + rest
}

// nonNil maps a nil key to the empty key: pgx sends a nil slice as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// retryable reports whether a transaction failed only because of a
// concurrent one (deadlock or serialization failure) and may run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}
