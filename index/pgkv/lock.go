package pgkv

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// TryLock takes the session advisory lock called name, cluster-wide, without
// waiting: ok is false when another holder (on any node) has it. The lock
// lives on a dedicated connection; unlock releases it (another TryLock after
// unlock returns can succeed) and closes the connection; unlock may be
// called more than once. When that connection dies (server restart, network,
// pg_terminate_backend) the server releases the lock and another node may
// take it while this holder still believes it has it: work under the lock
// must remain correct (for example check its preconditions in the
// transactions it commits). Names are hashed to 64 bits (FNV-1a).
func (s *Store) TryLock(ctx context.Context, name string) (unlock func(), ok bool, err error) {
	conn, err := s.dedicated(ctx, "mxcas-pgkv-lock")
	if err != nil {
		return nil, false, fmt.Errorf("pgkv: lock %s: %w", name, err)
	}
	id := lockID(name)
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", id).Scan(&ok); err != nil {
		_ = conn.Close(context.Background())
		return nil, false, fmt.Errorf("pgkv: lock %s: %w", name, err)
	}
	if !ok {
		_ = conn.Close(context.Background())
		return nil, false, nil
	}
	var once sync.Once
	unlock = func() {
		once.Do(func() {
			// Unlock before closing: the server releases a closed
			// connection's locks only when its backend exits, later.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _ = conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", id)
			_ = conn.Close(ctx)
		})
	}
	return unlock, true, nil
}

func lockID(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// dedicated opens a connection outside the pool, named app in
// pg_stat_activity.
func (s *Store) dedicated(ctx context.Context, app string) (*pgx.Conn, error) {
	cfg := s.pool.Config().ConnConfig
	cfg.RuntimeParams["application_name"] = app
	return pgx.ConnectConfig(ctx, cfg)
}

// Lock takes the session advisory lock called name, waiting until its
// holder (on any node) releases it or ctx ends. It holds one pooled
// connection until unlock, which may be called more than once. The same
// caveat as TryLock's holds when the connection dies.
func (s *Store) Lock(ctx context.Context, name string) (unlock func(), err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("pgkv: lock %s: %w", name, err)
	}
	id := lockID(name)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", id); err != nil {
		// The wait may have been cancelled after the server granted it:
		// a connection whose state is unknown is not returned to the pool.
		_ = conn.Conn().Close(context.Background())
		conn.Release()
		return nil, fmt.Errorf("pgkv: lock %s: %w", name, err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", id); err != nil {
				_ = conn.Conn().Close(context.Background())
			}
			conn.Release()
		})
	}, nil
}
