package pgkv

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mxcas/mxcas/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.RunWithPG(m)) }

// newDB creates a fresh database and returns its DSN.
func newDB(t *testing.T) string {
	t.Helper()
	c := testkit.SharedPG(t, "mxcas")
	return c.DSN(c.CreateDB(t, "pgkv"))
}

func open(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func newStore(t *testing.T) *Store {
	t.Helper()
	return open(t, newDB(t))
}

func commit(t *testing.T, b *Batch) {
	t.Helper()
	if err := b.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func wantValue(t *testing.T, s interface {
	Get(context.Context, []byte) ([]byte, error)
}, key, want []byte) {
	t.Helper()
	got, err := s.Get(context.Background(), key)
	if want == nil {
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(%x) = %x, %v; want ErrNotFound", key, got, err)
		}
		return
	}
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Get(%x) = %x, %v; want %x", key, got, err, want)
	}
}

func wantCounter(t *testing.T, s interface {
	Counter(context.Context, []byte) (int64, int64, error)
}, key []byte, wantBytes, wantCount int64) {
	t.Helper()
	b, c, err := s.Counter(context.Background(), key)
	if err != nil || b != wantBytes || c != wantCount {
		t.Fatalf("Counter(%x) = %d, %d, %v; want %d, %d", key, b, c, err, wantBytes, wantCount)
	}
}

func keys(t *testing.T, s interface {
	Scan(context.Context, []byte, []byte, func(k, v []byte) error) error
}, lower, upper []byte) [][]byte {
	t.Helper()
	var got [][]byte
	err := s.Scan(context.Background(), lower, upper, func(k, _ []byte) error {
		got = append(got, k)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestOpenConcurrent(t *testing.T) {
	dsn := newDB(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), dsn)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s := open(t, dsn) // the schema is there, and Open again is fine
	b := s.NewBatch()
	b.Set([]byte("k"), []byte("v"))
	commit(t, b)
	wantValue(t, s, []byte("k"), []byte("v"))
}

func TestGetSetDelete(t *testing.T) {
	s := newStore(t)
	k := []byte{0, 'k', 0xff}
	wantValue(t, s, k, nil)
	b := s.NewBatch()
	v := []byte("v1")
	b.Set(k, v)
	v[0] = 'X' // the batch copied it
	commit(t, b)
	wantValue(t, s, k, []byte("v1"))

	b = s.NewBatch()
	b.Set(k, []byte{})
	commit(t, b)
	wantValue(t, s, k, []byte{})

	b = s.NewBatch()
	b.Delete(k)
	b.Delete([]byte("absent"))
	commit(t, b)
	wantValue(t, s, k, nil)
}

func TestScanOrder(t *testing.T) {
	s := newStore(t)
	sorted := [][]byte{
		{}, {0x00}, {0x00, 0x00}, {0x00, 0xff}, {0x01}, {0x7f}, {0x7f, 0xff}, {0x80}, {0xc3, 0xa9},
		{0xfe, 0xff, 0xff}, {0xff}, {0xff, 0x00}, {0xff, 0xff},
	}
	b := s.NewBatch()
	for i := len(sorted) - 1; i >= 0; i-- {
		b.Set(sorted[i], append([]byte("v"), sorted[i]...))
	}
	commit(t, b)

	var got [][]byte
	err := s.Scan(context.Background(), nil, nil, func(k, v []byte) error {
		if !bytes.Equal(v, append([]byte("v"), k...)) {
			t.Errorf("value of %x = %x", k, v)
		}
		got = append(got, k)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got, sorted, bytes.Equal) {
		t.Fatalf("Scan(nil, nil) = %x\nwant %x", got, sorted)
	}

	tests := []struct {
		lower, upper []byte
		want         [][]byte // indexes into sorted
	}{
		{[]byte{0x00}, []byte{0xff}, sorted[1:10]},
		{[]byte{0x00, 0xff}, nil, sorted[3:]},
		{nil, []byte{0x01}, sorted[:4]},
		{[]byte{0x7f}, []byte{0x80}, sorted[5:7]},
		{[]byte{0xff}, nil, sorted[10:]},
		{[]byte{0x01}, []byte{0x01}, nil},
		{[]byte{0x80}, []byte{0x7f}, nil},
		{nil, []byte{}, nil},
	}
	for _, tt := range tests {
		if got := keys(t, s, tt.lower, tt.upper); !slices.EqualFunc(got, tt.want, bytes.Equal) {
			t.Errorf("Scan(%x, %x) = %x, want %x", tt.lower, tt.upper, got, tt.want)
		}
	}

	stop := errors.New("stop")
	n := 0
	err = s.Scan(context.Background(), nil, nil, func(k, v []byte) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("Scan with fn failing: %v after %d calls, want stop after 1", err, n)
	}
}

func be(i int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(i)) }

func TestScanPages(t *testing.T) {
	s := newStore(t)
	const n = 2*pageSize + 500
	b := s.NewBatch()
	for i := range n {
		b.Set(be(i), be(i))
	}
	commit(t, b)

	check := func(lower, upper []byte, from, to int) {
		t.Helper()
		i := from
		err := s.Scan(context.Background(), lower, upper, func(k, v []byte) error {
			if !bytes.Equal(k, be(i)) || !bytes.Equal(v, be(i)) {
				t.Fatalf("row %d: %x = %x", i, k, v)
			}
			i++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if i != to {
			t.Fatalf("Scan(%x, %x) ended at %d, want %d", lower, upper, i, to)
		}
	}
	check(nil, nil, 0, n)
	check(be(999), be(2001), 999, 2001)         // crosses two page boundaries
	check(be(1), be(pageSize+1), 1, pageSize+1) // exactly one full page, then an empty one

	// fn may use the Store: no query is open while it runs.
	m := 0
	err := s.Scan(context.Background(), nil, be(pageSize+10), func(k, _ []byte) error {
		m++
		_, err := s.Get(context.Background(), k)
		return err
	})
	if err != nil || m != pageSize+10 {
		t.Fatalf("Scan with Get in fn: %d rows, %v", m, err)
	}
}

// TestScanPlanBounded: a page of a bounded scan reads only the keys in its
// range even under a generic plan, which PostgreSQL uses for a statement
// run often: with the bound as "($2 IS NULL OR key < $2)" the index scan
// ran from the lower key to the table's end, filtering out every key past
// the upper one (a quarantine check per download read all later keys).
func TestScanPlanBounded(t *testing.T) {
	s := newStore(t)
	const n = 3000
	b := s.NewBatch()
	for i := range n {
		b.Set(be(i), be(i))
		b.Add(be(i), 1, 1)
	}
	commit(t, b)
	ctx := context.Background()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
		t.Fatal(err)
	}
	for _, table := range []struct{ name, cols string }{{"kv", "key, value"}, {"counters", "key, bytes, count"}} {
		first, next := rangeSQL(table.cols, table.name, be(10))
		for i, sql := range []string{first, next} {
			name := fmt.Sprintf("page_%s_%d", table.name, i)
			if _, err := conn.Exec(ctx, "PREPARE "+name+" (bytea, bytea, int) AS "+sql); err != nil {
				t.Fatal(err)
			}
			rows, err := conn.Query(ctx, fmt.Sprintf(`EXPLAIN (ANALYZE, COSTS OFF) EXECUTE %s('\x%x', '\x%x', %d)`, name, be(0), be(10), pageSize))
			if err != nil {
				t.Fatal(err)
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			plan := strings.Join(lines, "\n")
			if !strings.Contains(plan, "key < $2") || strings.Contains(plan, "Rows Removed by Filter") {
				t.Errorf("generic plan of %s page %d over 10 of %d keys:\n%s", table.name, i, n, plan)
			}
		}
	}
}

func TestBatchAtomic(t *testing.T) {
	s := newStore(t)
	b := s.NewBatch()
	b.Set([]byte("a"), []byte("1"))
	b.Add([]byte("c"), 10, 1)
	commit(t, b)

	b = s.NewBatch()
	b.Set([]byte("b"), []byte("2"))
	b.Add([]byte("c"), 5, 1)
	b.Delete([]byte("a"))
	b.Insert([]byte("new"), []byte("x"))
	b.Insert([]byte("b"), []byte("3")) // Set earlier in this batch: exists
	err := b.Commit(context.Background())
	if !errors.Is(err, ErrExists) {
		t.Fatalf("Commit = %v, want ErrExists", err)
	}
	wantValue(t, s, []byte("a"), []byte("1"))
	wantValue(t, s, []byte("b"), nil)
	wantValue(t, s, []byte("new"), nil)
	wantCounter(t, s, []byte("c"), 10, 1)

	b = s.NewBatch()
	b.Insert([]byte("a"), []byte("2"))
	if err := b.Commit(context.Background()); !errors.Is(err, ErrExists) {
		t.Fatalf("Insert of a committed key: %v, want ErrExists", err)
	}
	b = s.NewBatch()
	b.Insert([]byte("new"), []byte("x"))
	b.Add([]byte("c"), -10, -1)
	commit(t, b)
	wantValue(t, s, []byte("new"), []byte("x"))
	wantCounter(t, s, []byte("c"), 0, 0)

	b = s.NewBatch()
	b.DeleteCounter([]byte("c"))
	commit(t, b)
	wantCounter(t, s, []byte("c"), 0, 0)
	if got := keys(t, s, nil, nil); len(got) != 2 { // a, new: counters are not in kv
		t.Fatalf("kv keys = %q", got)
	}
}

// raceRounds runs rounds in which each node commits, at once, a batch
// that fill(b, round, node) fills, and checks that in each exactly one
// commits, entirely, and the other fails with want, entirely: every batch
// also sets a side key of its own, present only for the winner. It returns
// the winners.
func raceRounds(t *testing.T, nodes []*Store, rounds int, want error, fill func(b *Batch, round, node int)) []int {
	t.Helper()
	var winners []int
	for round := range rounds {
		start := make(chan struct{})
		errs := make([]error, len(nodes))
		var wg sync.WaitGroup
		for i, s := range nodes {
			b := s.NewBatch()
			fill(b, round, i)
			b.Set([]byte{'s', byte(round), byte(i)}, []byte("side"))
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = b.Commit(context.Background())
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: both batches committed", round)
				}
				winner = i
			case errors.Is(err, want):
			default:
				t.Fatalf("round %d: node %d: %v, want %v", round, i, err, want)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no batch committed: %v", round, errs)
		}
		for i := range nodes {
			var side []byte
			if i == winner {
				side = []byte("side")
			}
			wantValue(t, nodes[(i+1)%len(nodes)], []byte{'s', byte(round), byte(i)}, side)
		}
		winners = append(winners, winner)
	}
	return winners
}

// Two nodes Insert the same keys at once: for each key exactly one batch
// commits, entirely, and the other fails with ErrExists, entirely.
func TestInsertRace(t *testing.T) {
	dsn := newDB(t)
	nodes := []*Store{open(t, dsn), open(t, dsn)}
	winners := raceRounds(t, nodes, 20, ErrExists, func(b *Batch, round, node int) {
		b.Insert([]byte{'m', byte(round)}, []byte{byte(node)})
	})
	for round, w := range winners {
		wantValue(t, nodes[0], []byte{'m', byte(round)}, []byte{byte(w)})
	}
}

// DeleteExisting of an absent key fails the whole batch with ErrAbsent.
func TestDeleteExisting(t *testing.T) {
	s := newStore(t)
	b := s.NewBatch()
	b.Set([]byte("k"), []byte("v"))
	commit(t, b)

	b = s.NewBatch()
	b.Set([]byte("side"), []byte("x"))
	b.Add([]byte("c"), 1, 1)
	b.DeleteExisting([]byte("k"))
	b.DeleteExisting([]byte("absent"))
	if err := b.Commit(context.Background()); !errors.Is(err, ErrAbsent) {
		t.Fatalf("DeleteExisting of an absent key: %v, want ErrAbsent", err)
	}
	wantValue(t, s, []byte("k"), []byte("v"))
	wantValue(t, s, []byte("side"), nil)
	wantCounter(t, s, []byte("c"), 0, 0)

	b = s.NewBatch()
	b.DeleteExisting([]byte("k"))
	commit(t, b)
	wantValue(t, s, []byte("k"), nil)
	if err := b.Commit(context.Background()); !errors.Is(err, ErrAbsent) {
		t.Fatalf("DeleteExisting of a deleted key: %v, want ErrAbsent", err)
	}

	// Set earlier in the batch: present; deleted earlier: absent.
	b = s.NewBatch()
	b.Set([]byte("k"), []byte("v"))
	b.DeleteExisting([]byte("k"))
	commit(t, b)
	wantValue(t, s, []byte("k"), nil)
	b = s.NewBatch()
	b.Set([]byte("k"), []byte("v"))
	commit(t, b)
	b = s.NewBatch()
	b.Delete([]byte("k"))
	b.DeleteExisting([]byte("k"))
	if err := b.Commit(context.Background()); !errors.Is(err, ErrAbsent) {
		t.Fatalf("DeleteExisting after Delete in one batch: %v, want ErrAbsent", err)
	}
	wantValue(t, s, []byte("k"), []byte("v"))
}

// Two nodes DeleteExisting one key at once: exactly one commits.
func TestDeleteExistingRace(t *testing.T) {
	dsn := newDB(t)
	nodes := []*Store{open(t, dsn), open(t, dsn)}
	const rounds = 20
	b := nodes[0].NewBatch()
	for round := range rounds {
		b.Set([]byte{'p', byte(round)}, nil)
	}
	commit(t, b)
	raceRounds(t, nodes, rounds, ErrAbsent, func(b *Batch, round, _ int) {
		b.DeleteExisting([]byte{'p', byte(round)})
	})
	if got := keys(t, nodes[0], []byte("p"), []byte("q")); len(got) != 0 {
		t.Fatalf("keys left: %x", got)
	}
}

func TestAddConcurrent(t *testing.T) {
	dsn := newDB(t)
	nodes := []*Store{open(t, dsn), open(t, dsn)}
	const workers, adds = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := nodes[w%len(nodes)]
			for i := range adds {
				b := s.NewBatch()
				b.Add([]byte("total"), int64(i+1), 1)
				b.Add([]byte{'w', byte(w % 4)}, 1<<40, 1) // beyond 32 bits
				if err := b.Commit(context.Background()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wantCounter(t, nodes[0], []byte("total"), workers*adds*(adds+1)/2, workers*adds)
	for w := range 4 {
		wantCounter(t, nodes[1], []byte{'w', byte(w)}, workers/4*adds<<40, workers/4*adds)
	}
}

func TestSnapshot(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	b := s.NewBatch()
	b.Set([]byte("a"), []byte("1"))
	b.Add([]byte("c"), 7, 1)
	commit(t, b)

	sn, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()

	b = s.NewBatch()
	b.Set([]byte("a"), []byte("2"))
	b.Set([]byte("b"), []byte("1"))
	b.Add([]byte("c"), 7, 1)
	commit(t, b)
	wantValue(t, s, []byte("a"), []byte("2"))
	wantCounter(t, s, []byte("c"), 14, 2)

	wantValue(t, sn, []byte("a"), []byte("1"))
	wantValue(t, sn, []byte("b"), nil)
	wantCounter(t, sn, []byte("c"), 7, 1)
	err = sn.Scan(ctx, nil, nil, func(k, v []byte) error {
		if string(k) != "a" || string(v) != "1" {
			t.Errorf("snapshot Scan: %q = %q", k, v)
		}
		wantValue(t, sn, k, v) // fn may use the Snapshot
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	sn.Close()
	sn.Close()
	if _, err := sn.Get(ctx, []byte("a")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
}

// Pages of a Snapshot's Scan all see its point in time.
func TestSnapshotScanPages(t *testing.T) {
	s := newStore(t)
	const n = pageSize + 10
	b := s.NewBatch()
	for i := range n {
		b.Set(be(2*i), nil)
	}
	commit(t, b)
	sn, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	m := 0
	err = sn.Scan(context.Background(), nil, nil, func(k, _ []byte) error {
		if m == 0 { // before the second page is read
			b := s.NewBatch()
			b.Set(be(2*n-1), nil) // in the second page's range
			b.Delete(be(2 * (n - 1)))
			commit(t, b)
		}
		m++
		return nil
	})
	if err != nil || m != n {
		t.Fatalf("snapshot Scan: %d rows, %v; want %d", m, err, n)
	}
}

// pids returns the server processes that query selects.
func pids(t *testing.T, s *Store, query string, args ...any) []int32 {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int32
	for rows.Next() {
		var pid int32
		if err := rows.Scan(&pid); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return pids
}

// terminate ends the one server process that query selects and waits
// until it is gone.
func terminate(t *testing.T, s *Store, query string, args ...any) {
	t.Helper()
	pids := pids(t, s, query, args...)
	if len(pids) != 1 {
		t.Fatalf("%d server processes, want 1: %s", len(pids), query)
	}
	var ok bool
	if err := s.pool.QueryRow(context.Background(), "SELECT pg_terminate_backend($1, 20000)", pids[0]).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminate %d: %v, %v", pids[0], ok, err)
	}
}

func TestTryLock(t *testing.T) {
	dsn := newDB(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := context.Background()
	tryLock := func(s *Store, name string, want bool) func() {
		t.Helper()
		unlock, ok, err := s.TryLock(ctx, name)
		if err != nil || ok != want {
			t.Fatalf("TryLock(%s) = %v, %v; want %v", name, ok, err, want)
		}
		return unlock
	}
	unlockA := tryLock(a, "gc", true)
	tryLock(b, "gc", false)
	tryLock(a, "gc", false) // each TryLock is its own holder
	unlockOther := tryLock(b, "other", true)
	unlockOther()
	unlockA()
	unlockA()
	unlockB := tryLock(b, "gc", true)
	tryLock(a, "gc", false)

	// b's connection dies: the server releases its lock.
	terminate(t, a, `SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
		WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()`)
	unlockA = tryLock(a, "gc", true)
	unlockB() // closing a dead connection is fine
	tryLock(b, "gc", false)
	unlockA()
}

func TestListen(t *testing.T) {
	dsn := newDB(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := context.Background()
	got := make(chan string, 16)
	stop, err := a.Listen(ctx, "inval", func(p string) { got <- p })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	next := func(want string) {
		t.Helper()
		select {
		case p := <-got:
			if p != want {
				t.Fatalf("notification %q, want %q", p, want)
			}
		case <-time.After(15 * time.Second): // a guard against hanging, not a measure
			t.Fatalf("no notification, want %q", want)
		}
	}

	if err := b.Notify(ctx, "inval", "m1"); err != nil {
		t.Fatal(err)
	}
	next("m1")
	if err := b.Notify(ctx, "other", "x"); err != nil {
		t.Fatal(err)
	}
	if err := b.Notify(ctx, "inval", ""); err == nil {
		t.Fatal("Notify with an empty payload succeeded")
	}

	// A batch notifies when it commits, and only then.
	bt := b.NewBatch()
	bt.Insert([]byte("k"), nil)
	commit(t, bt)
	bt = b.NewBatch()
	bt.Notify("inval", "lost")
	bt.Insert([]byte("k"), nil)
	if err := bt.Commit(ctx); !errors.Is(err, ErrExists) {
		t.Fatalf("Commit = %v, want ErrExists", err)
	}
	bt = b.NewBatch()
	bt.Notify("inval", "m2")
	commit(t, bt)
	next("m2")

	// The listening connection dies: fn hears "" once it listens again.
	terminate(t, b, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
		"mxcas-pgkv-listen")
	next("")
	if err := b.Notify(ctx, "inval", "m3"); err != nil {
		t.Fatal(err)
	}
	next("m3")

	stop()
	stop()
}

// counterKeys returns the keys and sums ScanCounters gives for
// [lower, upper), checking that each sum is what TestScanCountersPages added.
func counterKeys(t *testing.T, s interface {
	ScanCounters(context.Context, []byte, []byte, func([]byte, int64, int64) error) error
}, lower, upper []byte) []int {
	t.Helper()
	var got []int
	err := s.ScanCounters(context.Background(), lower, upper, func(k []byte, b, c int64) error {
		i := int(binary.BigEndian.Uint32(k))
		if len(k) != 4 || b != int64(i)<<32 || c != 1 {
			t.Fatalf("counter %x = %d, %d", k, b, c)
		}
		got = append(got, i)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// ScanCounters goes through more counters than a page in key order, on the
// Store and on a Snapshot, which sees none added after it.
func TestScanCountersPages(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const n = 2*pageSize + 500
	b := s.NewBatch()
	for i := n - 1; i >= 0; i-- { // added in reverse: the order is the scan's
		b.Add(be(i), int64(i)<<32, 1)
	}
	b.Set(be(n+1), nil) // a kv key is not a counter
	commit(t, b)
	sn, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	b = s.NewBatch()
	b.Add(be(n), int64(n)<<32, 1)
	b.DeleteCounter(be(pageSize + 3))
	commit(t, b)

	seq := func(from, to int) []int {
		var r []int
		for i := from; i < to; i++ {
			r = append(r, i)
		}
		return r
	}
	live := slices.Concat(seq(0, pageSize+3), seq(pageSize+4, n+1))
	for _, tt := range []struct {
		name         string
		s            *Snapshot
		lower, upper []byte
		want         []int
	}{
		{"store, all", nil, nil, nil, live},
		{"store, across two page boundaries", nil, be(999), be(2001), slices.Concat(seq(999, pageSize+3), seq(pageSize+4, 2001))},
		{"store, one full page then an empty one", nil, be(1), be(pageSize + 1), seq(1, pageSize+1)},
		{"snapshot, all", sn, nil, nil, seq(0, n)},
		{"snapshot, across two page boundaries", sn, be(999), be(2001), seq(999, 2001)},
		{"snapshot, empty range", sn, be(5), be(5), nil},
	} {
		var got []int
		if tt.s != nil {
			got = counterKeys(t, tt.s, tt.lower, tt.upper)
		} else {
			got = counterKeys(t, s, tt.lower, tt.upper)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: ScanCounters(%x, %x) gave %d counters, want %d (first difference at %d)",
				tt.name, tt.lower, tt.upper, len(got), len(tt.want), firstDiff(got, tt.want))
		}
	}

	stop := errors.New("stop")
	calls := 0
	err = s.ScanCounters(ctx, nil, nil, func([]byte, int64, int64) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("ScanCounters with fn failing: %v after %d calls, want stop after 1", err, calls)
	}
}

func firstDiff(a, b []int) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// lockWaiters returns how many sessions of s's database wait for an
// advisory lock.
func lockWaiters(t *testing.T, s *Store) int {
	t.Helper()
	return len(pids(t, s, `SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
		WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()`))
}

// awaitLockWaiters waits until n sessions wait for an advisory lock (a
// generous guard against hanging, not a measure).
func awaitLockWaiters(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for lockWaiters(t, s) != n {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%d sessions wait for an advisory lock after 30s, want %d", lockWaiters(t, s), n)
		}
	}
}

// Lock waits for the holder on another node; a waiting Lock whose ctx ends
// returns an error and gives its pooled connection back.
func TestLock(t *testing.T) {
	dsn := newDB(t) + "&pool_max_conns=2" // a leaked connection shows soon
	ctx := context.Background()
	// Closed only when the test passes: Close waits for leaked connections.
	var nodes [2]*Store
	for i := range nodes {
		s, err := Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = s
	}
	a, b := nodes[0], nodes[1]
	unlockA, err := a.Lock(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	acquired := make(chan func(), 1)
	go func() {
		unlock, err := b.Lock(ctx, "x")
		if err != nil {
			t.Error(err)
			unlock = func() {}
		}
		acquired <- unlock
	}()
	awaitLockWaiters(t, a, 1)
	select {
	case <-acquired:
		t.Fatal("b's Lock returned while a holds the lock")
	default:
	}
	unlockA()
	unlockA()
	var unlockB func()
	select {
	case unlockB = <-acquired:
	case <-time.After(30 * time.Second): // a guard against hanging
		t.Fatal("b's Lock still waits after a unlocked")
	}

	for range 3 { // more waits than a's pool has connections
		cctx, cancel := context.WithCancel(ctx)
		errs := make(chan error, 1)
		go func() {
			unlock, err := a.Lock(cctx, "x")
			if err == nil {
				unlock()
			}
			errs <- err
		}()
		awaitLockWaiters(t, b, 1) // b: a's pool may be what fails
		cancel()
		select {
		case err := <-errs:
			if err == nil {
				t.Fatal("a Lock cancelled while waiting took the lock")
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a cancelled Lock still waits")
		}
	}
	if _, err := a.Get(ctx, []byte("k")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after cancelled Locks: %v", err)
	}
	unlockB()
	unlock, err := a.Lock(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	a.Close()
	b.Close()
}

// The pool has DefaultMaxConns connections unless the DSN says otherwise.
func TestPoolMaxConns(t *testing.T) {
	c := testkit.SharedPG(t, "mxcas")
	db := c.CreateDB(t, "pgkv")
	dsn := c.DSN(db)
	keywords := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable", c.Port, c.User, db)
	for _, tt := range []struct {
		dsn  string
		want int32
	}{
		{dsn, DefaultMaxConns},
		{dsn + "&pool_max_conns=3", 3},
		{keywords, DefaultMaxConns},
		{keywords + " pool_max_conns=5", 5},
	} {
		if got := open(t, tt.dsn).pool.Config().MaxConns; got != tt.want {
			t.Errorf("%s: MaxConns = %d, want %d", tt.dsn, got, tt.want)
		}
	}
}

// Absent after XactLock sees what the lock's exclusive holder committed
// while the batch waited, whatever the database's default isolation: a
// REPEATABLE READ default would take the batch's snapshot at its first
// statement, before the wait, and miss it (GC's condemnations, which a
// commit under GuardObject must see).
func TestAbsentAfterLockSeesHolder(t *testing.T) {
	ctx := context.Background()
	s := open(t, newDB(t)+"&default_transaction_isolation=repeatable%20read")
	holder, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockID("sweep")); err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	b.Set([]byte("before"), []byte("v")) // the snapshot would be taken here
	b.XactLock("sweep", true)
	b.Absent([]byte("condemned"))
	b.Set([]byte("after"), []byte("v"))
	done := make(chan error, 1)
	go func() { done <- b.Commit(ctx) }()
	awaitLockWaiters(t, s, 1)
	if _, err := holder.Exec(ctx, "INSERT INTO kv (key, value) VALUES ($1, '')", []byte("condemned")); err != nil {
		t.Fatal(err)
	}
	if err := holder.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrPresent) {
		t.Fatalf("commit after the holder committed the key: %v, want ErrPresent", err)
	}
	wantValue(t, s, []byte("after"), nil)
}
