package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/media"
)

// StandbyOptions configure NewStandby.
type StandbyOptions struct {
	Store   *media.Store // opened with media.Options.Follower
	Primary string       // base URL of the primary's replication listener, e.g. http://10.0.0.1:8009
	Secret  []byte       // the shared secret; at least 16 bytes
	Client  *http.Client // nil: a default with sane timeouts; its Timeout, if set, must exceed 30 s (the long poll)
	Logger  *slog.Logger
	Now     func() time.Time // nil: time.Now
}

// Status is a standby's replication state, as Standby.Status reports it.
type Status struct {
	Role          string    `json:"role"` // "standby" (cmd fills "primary" for a primary)
	Primary       string    `json:"primary,omitempty"`
	Applied       uint64    `json:"applied"`      // last change applied here
	PrimaryHead   uint64    `json:"primary_head"` // the primary's head at last contact
	LagChanges    uint64    `json:"lag_changes"`
	LagBytes      int64     `json:"lag_bytes"`   // chunk bytes known to be still missing for fetched, unapplied changes
	LagSeconds    float64   `json:"lag_seconds"` // 0 when caught up; else now - when it was last caught up (or Run began)
	LastContact   time.Time `json:"last_contact"`
	ChunksFetched int64     `json:"chunks_fetched"`
	BytesFetched  int64     `json:"bytes_fetched"`
	Err           string    `json:"error,omitempty"`
}

// The standby's pacing. Variables, so that internal tests can make
// batches small.
var (
	changesPerRequest = 256
	longPoll          = 25 * time.Second
	fetchBatchChunks  = maxChunksPerRequest
	fetchBatchBytes   = int64(64 << 20) // what one fetch may hold in memory
	fetchTimeout      = 10 * time.Minute
	minBackoff        = 500 * time.Millisecond
	maxBackoff        = 30 * time.Second
)

// Standby follows a primary: it fetches the primary's changes, the chunks
// they need, and applies them to its store. Status is safe for concurrent
// use; Run must not run twice at once.
type Standby struct {
	store   *media.Store
	primary string
	c       client
	log     *slog.Logger
	now     func() time.Time

	mu         sync.Mutex
	st         Status    // Applied, LagChanges and LagSeconds are filled by Status
	caughtUpAt time.Time // when Applied last equalled the primary's head
	failures   int       // consecutive failed steps
}

// NewStandby returns a Standby for o; Run starts it.
func NewStandby(o StandbyOptions) (*Standby, error) {
	if o.Store == nil {
		return nil, errors.New("replication: StandbyOptions.Store is nil")
	}
	base, err := parseBase(o.Primary)
	if err != nil {
		return nil, err
	}
	if err := checkSecret(o.Secret); err != nil {
		return nil, err
	}
	hc := o.Client
	if hc == nil {
		hc = defaultHTTPClient()
	}
	s := &Standby{store: o.Store, primary: base, c: clientFor(base, o.Secret, hc, o.Now), log: o.Logger, now: o.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.st = Status{Role: "standby", Primary: base}
	return s, nil
}

// Status returns the standby's state now.
func (s *Standby) Status() Status {
	s.mu.Lock()
	st := s.st
	since := s.caughtUpAt
	s.mu.Unlock()
	st.Applied = s.store.Head()
	if st.PrimaryHead > st.Applied {
		st.LagChanges = st.PrimaryHead - st.Applied
		if !since.IsZero() {
			st.LagSeconds = s.now().Sub(since).Seconds()
		}
	}
	return st
}

// Run follows the primary until ctx ends (it returns ctx.Err()) or a
// fatal error: ErrTrimmed or ErrDiverged (the standby must be seeded again) or
// ErrUnauthorized (wrong secret). Other errors are retried with capped
// exponential backoff and show in Status().Err; each change of error
// state is logged once.
func (s *Standby) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.caughtUpAt.IsZero() {
		s.caughtUpAt = s.now()
	}
	s.mu.Unlock()
	s.log.Info("replication: following the primary", "primary", s.primary, "applied", s.store.Head())
	backoff := minBackoff
	for {
		err := s.step(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			s.healthy()
			backoff = minBackoff
			continue
		}
		s.failed(err)
		if errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrTrimmed) || errors.Is(err, ErrDiverged) {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// failed records err in the status and logs it when it is a new state.
func (s *Standby) failed(err error) {
	s.mu.Lock()
	prev := s.st.Err
	s.st.Err = err.Error()
	s.failures++
	s.mu.Unlock()
	if prev != err.Error() {
		s.log.Error("replication: following the primary failed; retrying with backoff", "primary", s.primary, "err", err)
	}
}

// healthy clears the error state, logging the recovery once.
func (s *Standby) healthy() {
	s.mu.Lock()
	prev, n := s.st.Err, s.failures
	s.st.Err, s.failures = "", 0
	s.mu.Unlock()
	if prev != "" {
		s.log.Info("replication: following the primary again", "primary", s.primary, "failed_attempts", n, "applied", s.store.Head())
	}
}

// contact records an answer of the primary's.
func (s *Standby) contact(head uint64) {
	s.mu.Lock()
	s.st.PrimaryHead = head
	s.st.LastContact = s.now()
	if s.store.Head() >= head {
		s.caughtUpAt = s.st.LastContact
		s.st.LagBytes = 0
	}
	s.mu.Unlock()
}

// fetched counts one chunk received and verified.
func (s *Standby) fetched(n int) {
	s.mu.Lock()
	s.st.ChunksFetched++
	s.st.BytesFetched += int64(n)
	s.st.LagBytes = max(0, s.st.LagBytes-int64(n))
	s.mu.Unlock()
}

// step asks for the changes after the store's head (waiting for some when
// there are none), fetches and stores the chunks they need, then applies
// them in order.
func (s *Standby) step(ctx context.Context) error {
	applied := s.store.Head()
	digest, err := s.store.ChangeDigest(applied)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, longPoll+30*time.Second)
	b, err := s.c.changes(pctx, applied, digest, changesPerRequest, longPoll)
	cancel()
	if err != nil {
		return err
	}
	s.contact(b.Head)
	if len(b.Changes) == 0 {
		if b.Head < applied {
			return fmt.Errorf("replication: the primary's head %d is behind this standby's %d: wrong or restored primary", b.Head, applied)
		}
		return nil
	}
	changes := make([]media.Change, len(b.Changes))
	for i, wc := range b.Changes {
		if wc.Seq != applied+1+uint64(i) {
			return fmt.Errorf("%w: change %d where %d was due", ErrProtocol, wc.Seq, applied+1+uint64(i))
		}
		changes[i] = media.Change{Seq: wc.Seq, Ops: wc.Ops}
	}
	missing, err := s.missing(changes)
	if err != nil {
		return err
	}
	unavailable, err := s.fetch(ctx, missing)
	if err != nil {
		return err
	}
	if len(unavailable) == 0 {
		// Every chunk is here: the whole run in one synced commit.
		if err := s.store.ApplyChanges(changes); err != nil {
			return fmt.Errorf("apply changes %d-%d: %w", changes[0].Seq, changes[len(changes)-1].Seq, err)
		}
		changes = nil
	}
	for _, c := range changes {
		if err := s.store.ApplyChange(c); err != nil {
			if errors.Is(err, media.ErrChunksMissing) && len(unavailable) > 0 {
				return fmt.Errorf("change %d: %w: %d chunks, the first %s", c.Seq, ErrChunkUnavailable, len(unavailable), unavailable[0])
			}
			return fmt.Errorf("apply change %d: %w", c.Seq, err)
		}
	}
	if s.store.Head() >= b.Head {
		s.contact(b.Head)
	}
	return nil
}

// missing lists, without repeats, the chunks changes need that the store
// lacks, and sets LagBytes to their total length.
func (s *Standby) missing(changes []media.Change) ([]media.ChunkRef, error) {
	seen := make(map[cas.Hash]bool)
	var out []media.ChunkRef
	var total int64
	for _, c := range changes {
		refs, err := s.store.MissingChunkRefs(c)
		if err != nil {
			return nil, fmt.Errorf("change %d: %w", c.Seq, err)
		}
		for _, r := range refs {
			if !seen[r.Hash] {
				seen[r.Hash] = true
				out = append(out, r)
				total += int64(r.Len)
			}
		}
	}
	s.mu.Lock()
	s.st.LagBytes = total
	s.mu.Unlock()
	return out, nil
}

// fetch fetches refs in batches of at most fetchBatchChunks chunks and
// fetchBatchBytes bytes and stores each batch durably before the next. It
// returns the chunks the primary could not serve; an error (a transport
// failure, a chunk not matching its hash) ends it, with the batches before
// stored.
func (s *Standby) fetch(ctx context.Context, refs []media.ChunkRef) (unavailable []cas.Hash, err error) {
	for len(refs) > 0 {
		n, bytes := 0, int64(0)
		for n < len(refs) && n < fetchBatchChunks && (n == 0 || bytes+int64(refs[n].Len) <= fetchBatchBytes) {
			bytes += int64(refs[n].Len)
			n++
		}
		hs := make([]cas.Hash, n)
		for i, r := range refs[:n] {
			hs[i] = r.Hash
		}
		refs = refs[n:]
		got := make(map[cas.Hash][]byte, n)
		fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
		err := s.c.fetchChunks(fctx, hs, nil, func(h cas.Hash, data []byte) error {
			if data == nil {
				unavailable = append(unavailable, h)
				return nil
			}
			got[h] = data
			s.fetched(len(data))
			return nil
		})
		cancel()
		if err != nil {
			return nil, err
		}
		if err := s.store.PutChunks(got); err != nil {
			return nil, fmt.Errorf("store fetched chunks: %w", err)
		}
	}
	return unavailable, nil
}
