package pgkv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// errEmptyPayload: the empty payload is reserved for "reconnected".
var errEmptyPayload = errors.New("pgkv: notify: empty payload (reserved for reconnects)")

// Notify sends payload to every listener of channel, on every node. payload
// must not be empty (Listen reserves "" for reconnects) and must be shorter
// than 8000 bytes (PostgreSQL's limit). Delivery is at most once: a listener
// that is reconnecting misses it.
func (s *Store) Notify(ctx context.Context, channel, payload string) error {
	if payload == "" {
		return errEmptyPayload
	}
	if _, err := s.pool.Exec(ctx, "SELECT pg_notify($1, $2)", channel, payload); err != nil {
		return fmt.Errorf("pgkv: notify %s: %w", channel, err)
	}
	return nil
}

// Listen calls fn with the payload of each notification on channel, from one
// goroutine, in order, until stop is called; fn should return quickly (a
// slow fn delays the ones after it; the server queues them meanwhile). The
// channel is listened to when Listen returns: a Notify after that reaches fn.
//
// Listen holds a dedicated connection. When it drops, Listen reconnects
// (retrying with a backoff up to 5 s) and then calls fn(""): notifications
// sent meanwhile are lost, so the caller must treat "" as "invalidate
// everything". stop waits for the goroutine to end; it may be called more
// than once.
func (s *Store) Listen(ctx context.Context, channel string, fn func(payload string)) (stop func(), err error) {
	conn, err := s.listenConn(ctx, channel)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.listen(lctx, conn, channel, fn)
	}()
	return func() { cancel(); <-done }, nil
}

func (s *Store) listenConn(ctx context.Context, channel string) (*pgx.Conn, error) {
	conn, err := s.dedicated(ctx, "mxcas-pgkv-listen")
	if err != nil {
		return nil, fmt.Errorf("pgkv: listen %s: %w", channel, err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		_ = conn.Close(context.Background())
		return nil, fmt.Errorf("pgkv: listen %s: %w", channel, err)
	}
	return conn, nil
}

// listen delivers notifications from conn, reconnecting when it fails,
// until ctx ends.
func (s *Store) listen(ctx context.Context, conn *pgx.Conn, channel string, fn func(string)) {
	for {
		for {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				break
			}
			fn(n.Payload)
		}
		_ = conn.Close(context.Background())
		if ctx.Err() != nil {
			return
		}
		conn = s.reconnect(ctx, channel)
		if conn == nil {
			return
		}
		fn("")
	}
}

// reconnect returns a new listening connection, or nil when ctx ends first.
func (s *Store) reconnect(ctx context.Context, channel string) *pgx.Conn {
	wait := 50 * time.Millisecond
	for {
		conn, err := s.listenConn(ctx, channel)
		if err == nil {
			return conn
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}
