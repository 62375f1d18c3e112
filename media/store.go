package media

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/chunker"
	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/preview"
)

// Sentinel errors. Callers map them to Matrix errors with errors.Is.
var (
	ErrNotFound  = errors.New("media: not found")
	ErrExists    = errors.New("media: media ID already has content")
	ErrTruncated = errors.New("media: body ended before its declared length")
	ErrTooLarge  = errors.New("media: body longer than its declared length or the limit")
	ErrLocked    = cas.ErrLocked
	// ErrStorageUnavailable: the storage behind the chunks (an object
	// store) is unreachable or failing; the same request may pass later.
	ErrStorageUnavailable = cas.ErrUnavailable
	// ErrIndexUnavailable: the database of a PostgreSQL index is down or
	// failing; the request may pass once it is back.
	ErrIndexUnavailable = index.ErrUnavailable
	// ErrForbidden: the user may not do this (fill another user's created ID).
	ErrForbidden = errors.New("media: forbidden")
	// ErrNotYetUploaded: a created ID still had no content when the wait ended.
	ErrNotYetUploaded = errors.New("media: not yet uploaded")
	// ErrPendingLimit: the user has too many created IDs without content.
	ErrPendingLimit = errors.New("media: too many pending uploads")
)

// HashName names the hash in DATA/FORMAT.
const HashName = "blake3-256"

// Options configure a Store.
type Options struct {
	// Dir is the data directory.
	Dir string
	// Chunks is where the chunks are stored. nil: the filesystem store
	// under Dir (cas.Open, or cas.OpenReadOnly with ReadOnly), which also
	// holds the data directory's lock. Tests give a cas.MemStore; the index,
	// FORMAT and the free-space checks stay in Dir either way, and Pebble's
	// own lock then keeps a second process out of the index. The Store owns
	// it: Close closes it, also when Open fails. ReadOnly does not make a
	// given Chunks read-only.
	Chunks cas.Storage
	// Chunker parameters. Zero means: those recorded in DATA/FORMAT, or
	// NewChunker (default chunker.DefaultParams) for a new store. Non-zero
	// parameters that differ from the store's are an error.
	Chunker chunker.Params
	// NewChunker are the chunker parameters of a store this Open creates
	// (zero: chunker.DefaultParams); an existing store keeps those in its
	// FORMAT. A backend whose requests cost more than its bytes (an object
	// store) wants larger chunks.
	NewChunker chunker.Params
	// ChunksAt says where Chunks keeps the chunks ("s3 host:port/bucket/
	// prefix"; "" for the local cas/ directory). It is recorded in FORMAT
	// when the store is created, and opening a store whose FORMAT names
	// another place is an error wrapping ErrFormat: its index would refer
	// to chunks that are not there. No newlines.
	ChunksAt string
	// IndexDSN, when set, keeps the index in that PostgreSQL database
	// instead of Pebble under Dir/index: several processes (nodes), each
	// with a data directory of its own, then share one store, whose
	// chunks must be shared too (ChunksAt names an object store). FORMAT
	// records "index postgres"; the store's hash, chunker and chunk place
	// are recorded in the database as well, and a node whose FORMAT
	// disagrees with them refuses to open.
	IndexDSN string
	// GCGrace protects chunks younger than this from GC (default 1 h).
	GCGrace time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// VerifyTTL is how long a chunk file verified by a read is trusted
	// (sent with sendfile without hashing it again) while its identity is
	// unchanged: default 5 s; negative: every read hashes (see cas.Verifier).
	VerifyTTL time.Duration
	// Thumbnails bound thumbnail work.
	Thumbnails ThumbnailOptions
	// Remote configures fetching other servers' media.
	Remote RemoteOptions
	// Previews makes URL previews (PreviewURL); nil: previews are off.
	Previews preview.Previewer
	// PreviewCacheFor is how long after the end of its hour a preview
	// record is kept (default 24 h, at least 1 h): GC removes older ones,
	// and PreviewURL no longer serves them. Their images are media and stay.
	PreviewCacheFor time.Duration
	// Local reports whether a server name (as the mxc URI writes it) is one
	// this store serves media for: its media is never fetched over
	// federation, and a read of an unknown local ID is not found. nil: no
	// server is local.
	Local func(server string) bool
	// FreezeUnauthenticated marks media stored while it is set (uploads,
	// created IDs, remote media fetched) as requiring authentication: the
	// unauthenticated legacy paths refuse it, and under the freeze they
	// fetch no remote media (see Resolve).
	FreezeUnauthenticated bool
	// UnusedExpires is how long a created ID waits for its content
	// (default 24 h).
	UnusedExpires time.Duration
	// MaxPendingPerUser caps a user's created IDs without content
	// (default 10; negative: no cap).
	MaxPendingPerUser int
	// Quotas bound what users upload, first match wins (see Quota);
	// SetQuotas replaces them while the store runs.
	Quotas []Quota
	// ReadOnly opens an existing store without changing a byte of it
	// (verification tools); writes fail.
	ReadOnly bool
	// KeepChanges is how many of the latest changes GC keeps in the
	// change log, for standbys to catch up from (0: DefaultKeepChanges).
	KeepChanges uint64
	// RepairSource is where damaged chunks are fetched again (a standby's
	// primary): a read that finds a chunk damaged (wrong bytes, short,
	// missing) or recorded as damaged repairs it from there and goes on
	// with the good bytes, and Fsck repairs what it finds (see
	// readrepair.go). nil: none; a read-only store ignores it.
	// SetRepairSource replaces it while the store runs.
	RepairSource cas.Reader
	// RepairTimeout bounds how long a read waits for the repair source
	// (default 30 s).
	RepairTimeout time.Duration
	// Follower opens a standby's store: its own changes are not logged,
	// only those ApplyChange brings from the primary (see replica.go),
	// until Promote.
	Follower bool
	// Create lets Open create a new store when Dir is missing or empty (the
	// server and the importer set it). Without it, a directory that holds no
	// store is ErrNoStore and nothing is created. Either way, a store whose
	// index is gone is ErrIndexMissing, and a non-empty directory that is
	// not a store is refused.
	Create bool
	// MinFreeBytes: writes (uploads, remote fetches, thumbnails, records)
	// are refused with ErrNoSpace while the store's filesystem has less free
	// space. 0: the smaller of 2% of the filesystem and 512 MiB, read at
	// Open; negative: no limit.
	MinFreeBytes int64
	// BallastBytes is the size of DATA/ballast, space held back and
	// released when the index finds the disk full so it can still commit
	// and open; it is made again (before writes resume) once there is room.
	// 0: the smaller of 1% of the filesystem and 64 MiB; negative: none.
	BallastBytes int64
	// KeepBallast makes DATA/ballast (at open and whenever there is room
	// again): for the long-running writer, the server or the importer.
	// Without it an existing ballast is left as it is, and still released
	// when the index finds the disk full; none is made (fsck and gc must
	// not write 64 MiB into what they check).
	KeepBallast bool
	// FreeSpace returns the free and total bytes of the store's filesystem
	// (default: statfs of Dir).
	FreeSpace func() (free, total uint64, err error)
	// CountChunks makes Open count the chunk files (one walk of the chunk
	// store) so that Stats reports Chunks and StoredBytes: for the server,
	// whose metrics show them. Tools that open a store skip the walk.
	CountChunks bool
	// IndexCacheBytes is the index's block cache (0: index.Options'
	// default, for the maintenance commands; serve asks for more).
	IndexCacheBytes int64
}

// Validate fills defaults and checks the options.
func (o *Options) Validate() error {
	if o.Dir == "" {
		return errors.New("media: Options.Dir is empty")
	}
	if o.GCGrace == 0 {
		o.GCGrace = time.Hour
	}
	if o.GCGrace < 0 {
		return errors.New("media: Options.GCGrace is negative")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PreviewCacheFor == 0 {
		o.PreviewCacheFor = 24 * time.Hour
	}
	if o.PreviewCacheFor < time.Hour {
		return errors.New("media: Options.PreviewCacheFor is under an hour")
	}
	if o.UnusedExpires == 0 {
		o.UnusedExpires = 24 * time.Hour
	}
	if o.UnusedExpires < 0 {
		return errors.New("media: Options.UnusedExpires is negative")
	}
	if o.RepairTimeout == 0 {
		o.RepairTimeout = 30 * time.Second
	}
	if o.RepairTimeout < 0 {
		return errors.New("media: Options.RepairTimeout is negative")
	}
	if o.MaxPendingPerUser == 0 {
		o.MaxPendingPerUser = 10
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := ValidateQuotas(o.Quotas); err != nil {
		return err
	}
	if strings.ContainsAny(o.ChunksAt, "\r\n") {
		return fmt.Errorf("media: ChunksAt %q holds a line break", o.ChunksAt)
	}
	if o.NewChunker != (chunker.Params{}) {
		if err := o.NewChunker.Validate(); err != nil {
			return err
		}
	}
	if o.Chunker != (chunker.Params{}) {
		return o.Chunker.Validate()
	}
	return nil
}

// Store is the media repository of one data directory. Safe for concurrent
// use; one process at a time may open a data directory.
type Store struct {
	opts   Options
	params chunker.Params
	// inlineMax: chunks up to this length that end an object are kept in
	// the index (layoutInline; 0: none, layoutNested).
	inlineMax int
	format    storeFormat
	cas       cas.Storage
	idx       *index.DB
	space     *space // nil when read-only
	pins      pins
	claims    claims
	waiters   waiters
	thumbs    *thumbnailer
	remote    *remote
	previews  *previewFlights
	previewer atomic.Pointer[previewerBox] // Options.Previews, then SetPreviewer's
	records   *recordCache
	manifests *manifestCache
	verifier  *cas.Verifier
	damage    damage
	repairs   readRepairs // Options.RepairSource, then SetRepairSource's
	// quarantine is the content quarantine (quarantine.go).
	quarantine contentQuarantine
	// quotas are the quotas in force and the reservations of uploads in
	// flight (quota.go).
	quotas quotas
	// stats are the figures Stats reports (stats.go).
	stats storeStats
	// pendingMu makes counting and adding a user's created IDs one step.
	pendingMu sync.Mutex
	// userExports are the self-service exports being written
	// (selfexport.go).
	userExports userExports
	// maint serialises GC, Fsck, Backup and Close: each needs the chunk set
	// to stay put while it looks at it.
	maint sync.Mutex
	// gcHook, set only by tests, runs between GC's snapshot and its sweep.
	gcHook func()
}

// Open opens the store in opts.Dir, or creates it there when opts.Create
// is set and the directory is missing or empty.
func Open(opts Options) (*Store, error) {
	isNew, err := prepareDir(&opts)
	if err != nil {
		return nil, err
	}
	// FORMAT, read once for the layout and the chunker parameters
	// (openIndex checks it against them).
	existing, ferr := readFormat(opts.Dir)
	layout, err := layoutOf(existing, ferr, isNew)
	if err != nil {
		if opts.Chunks != nil {
			opts.Chunks.Close()
		}
		return nil, err
	}
	cs, err := openChunks(opts, layout)
	if err != nil {
		return nil, err
	}
	params := storeParams(opts, existing, ferr == nil)
	format := storeFormat{Version: formatVersion, Hash: HashName, Chunker: params.String(), Chunks: opts.ChunksAt, Layout: layout}
	if opts.IndexDSN != "" {
		format.Index = indexPostgres
	}
	idx, sp, f, err := openIndex(opts, isNew, format)
	if err != nil {
		cs.Close()
		return nil, err
	}
	// The store's ID, given to a store made before IDs at its first
	// writable open: backups carry it, and only go into a backup of it.
	if !opts.ReadOnly {
		f, err = ensureStoreID(opts.Dir, f)
	}
	if err != nil {
		idx.Close()
		cs.Close()
		return nil, err
	}
	format.ID = f.ID
	sp.ready() // after opening the index, which wrote to the disk
	s := &Store{opts: opts, params: params, format: format, cas: cs, idx: idx, space: sp,
		records: newRecordCache(), manifests: newManifestCache()}
	if layout >= layoutInline {
		s.inlineMax = MaxInline
	}
	s.quotas.list = newRules(opts.Quotas)
	s.startThumbnailer()
	ro := opts.Remote
	ro.withDefaults()
	s.remote = &remote{opts: ro, failed: newBackoff(ro.BackoffServers), inflight: make(map[matrix.MXC]*fetchInFlight)}
	s.previews = newPreviewFlights()
	s.previewer.Store(&previewerBox{opts.Previews})
	s.pins.n = make(map[cas.Hash]int)
	s.verifier = cas.NewVerifier(cs, cas.VerifyOptions{TTL: opts.VerifyTTL, Now: opts.Now})
	s.damage.s = s
	s.repairs.init(opts.RepairSource)
	idx.SetFollower(opts.Follower)
	if err := s.damage.load(idx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.quarantine.load(idx); err != nil {
		s.Close()
		return nil, err
	}
	if idx.Shared() {
		s.quarantine.shared = idx // read for the object at hand: other nodes change it
	}
	if err := s.loadStats(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.watchShared(); err != nil {
		s.Close()
		return nil, err
	}
	if !opts.ReadOnly {
		s.expireUserExports(true)
	}
	return s, nil
}

// prepareDir validates opts and checks the store's directory, creating it
// for a writable open, and reports whether the store is new. A read-only
// store makes no thumbnails in the background. On error it closes
// opts.Chunks, which Open owns.
func prepareDir(opts *Options) (isNew bool, err error) {
	defer func() {
		if err != nil && opts.Chunks != nil {
			opts.Chunks.Close()
		}
	}()
	if err := opts.Validate(); err != nil {
		return false, err
	}
	isNew, err = checkStoreDir(opts.Dir, opts.Create && !opts.ReadOnly)
	if err != nil {
		return false, err
	}
	if opts.ReadOnly {
		opts.Thumbnails.Disabled = true
	} else if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return false, fmt.Errorf("media: open: %w", err)
	}
	return isNew, nil
}

// storeParams returns the chunker parameters opts asks for, or else those
// of the store's FORMAT f (when it has one), or else those of a new store.
func storeParams(opts Options, f storeFormat, hasFormat bool) chunker.Params {
	if opts.Chunker != (chunker.Params{}) {
		return opts.Chunker
	}
	if hasFormat {
		if p, err := chunker.ParseParams(f.Chunker); err == nil {
			return p
		}
	}
	if opts.NewChunker != (chunker.Params{}) {
		return opts.NewChunker
	}
	return chunker.DefaultParams
}

// openIndex checks the store's FORMAT against format (compares it, when
// read-only) and opens its index, with the free-space guard of a writable
// store (nil when read-only). A new store gets its index before its FORMAT:
// FORMAT is the mark of a complete store, so a store with one must have an
// index too, and opening one that lost its index is ErrIndexMissing. It
// also returns what FORMAT holds.
func openIndex(opts Options, isNew bool, format storeFormat) (*index.DB, *space, storeFormat, error) {
	check := checkFormat
	if opts.ReadOnly {
		check = compareFormat
	}
	var got storeFormat
	if !isNew {
		var err error
		if got, err = check(opts.Dir, format); err != nil {
			return nil, nil, got, err
		}
	}
	iopts := index.Options{Logger: opts.Logger, ReadOnly: opts.ReadOnly, MustExist: !isNew, CacheBytes: opts.IndexCacheBytes}
	var sp *space
	if !opts.ReadOnly {
		sp = newSpace(opts)
		iopts.OnDiskFull = sp.releaseBallast
	}
	var idx *index.DB
	var err error
	idxDir := filepath.Join(opts.Dir, "index")
	if opts.IndexDSN != "" {
		idx, err = openShared(opts, iopts, format)
	} else {
		idx, err = index.Open(idxDir, iopts)
	}
	if errors.Is(err, index.ErrMissing) {
		err = fmt.Errorf("%w: %s has a FORMAT file but %s holds no index; refusing to start an empty one "+
			"over the existing chunks. Mount or restore the index (from a backup: mxcas backup copies it), "+
			"or check data_dir: %w", ErrIndexMissing, opts.Dir, idxDir, err)
	}
	if err != nil {
		return nil, nil, got, err
	}
	if isNew {
		if got, err = check(opts.Dir, format); err != nil {
			idx.Close()
			return nil, nil, got, err
		}
	}
	return idx, sp, got, nil
}

// openChunks returns opts.Chunks, or opens the filesystem chunk store
// under opts.Dir.
func openChunks(opts Options, layout int) (cas.Storage, error) {
	if opts.Chunks != nil {
		return opts.Chunks, nil
	}
	return cas.OpenLayout(opts.Dir, casLayout(layout), opts.ReadOnly)
}

// Close closes the index and releases the data directory, after any GC,
// Fsck or Backup in progress ends (cancel their contexts to hurry them).
// Uploads must have returned.
func (s *Store) Close() error {
	s.stopThumbnailer()
	s.maint.Lock() // a GC, Fsck or Backup still running finishes first
	defer s.maint.Unlock()
	err := s.idx.Close()
	if e := s.cas.Close(); err == nil {
		err = e
	}
	return err
}

// Params returns the store's chunker parameters.
func (s *Store) Params() chunker.Params { return s.params }

// Dir returns the data directory.
func (s *Store) Dir() string { return s.opts.Dir }
