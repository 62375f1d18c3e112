package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/ffmpeg"
	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/thumbgen"
)

// ThumbnailSize is one size generated ahead of requests.
type ThumbnailSize struct {
	Width, Height int
	Method        thumbgen.Method
}

// DefaultThumbnailSizes are the sizes the Matrix spec suggests.
var DefaultThumbnailSizes = []ThumbnailSize{
	{32, 32, "crop"}, {96, 96, "crop"}, {320, 240, "scale"}, {640, 480, "scale"}, {800, 600, "scale"},
}

// ThumbnailOptions bound thumbnail work. Zero fields take the defaults.
type ThumbnailOptions struct {
	// Sizes are generated in the background after an image upload.
	Sizes []ThumbnailSize
	// Workers decode at once (default: the number of CPUs).
	Workers int
	// MemoryBudget bounds the bytes of sources and decoded pixels held by
	// all thumbnail work at once (default 512 MiB); a single image needing
	// more is ErrTooLarge.
	MemoryBudget int64
	// MaxWaiting requests may wait for a worker; more get ErrBusy (64).
	MaxWaiting int
	// Queue is the length of the background queue (256); when it is full,
	// an upload's thumbnails are made on first request instead.
	Queue int
	// MaxDimension caps a requested width or height (1600).
	MaxDimension int
	Limits       thumbgen.Limits
	// Disabled turns the background generation off (requests still work).
	Disabled bool
	// FFmpeg, when set, thumbnails video, audio and AVIF (avContent) from
	// a frame, the cover art or a waveform it makes of a verified copy of
	// the media; each such job holds a worker and its share of the memory
	// budget like an image. nil: those are ErrCannotThumbnail.
	FFmpeg *ffmpeg.Runner
	// Observe, when set, is called after each thumbnail is generated (on
	// request or pregenerated) with how long making it took: its read and
	// decode of the source, or its share of one shared by several sizes,
	// and its resampling and encoding, not its storing. It is called from
	// several goroutines at once and must return quickly (a metric).
	Observe func(took time.Duration)
}

func (o *ThumbnailOptions) withDefaults() {
	if o.Sizes == nil {
		o.Sizes = DefaultThumbnailSizes
	}
	if o.Workers <= 0 {
		o.Workers = runtime.NumCPU()
	}
	if o.MemoryBudget <= 0 {
		o.MemoryBudget = 512 << 20
	}
	if o.MaxWaiting <= 0 {
		o.MaxWaiting = 64
	}
	if o.Queue <= 0 {
		o.Queue = 256
	}
	if o.MaxDimension <= 0 {
		o.MaxDimension = 1600
	}
	o.Limits = o.Limits.WithDefaults()
}

// Thumbnail errors; Store.Thumbnail's errors wrap these (and thumbgen's,
// for detail), never thumbgen's alone.
var (
	// ErrBusy means too many thumbnail requests are already waiting.
	ErrBusy = errors.New("media: too many thumbnail requests")
	// ErrCannotThumbnail: the media is not an image this server can
	// thumbnail, or its image data is corrupt.
	ErrCannotThumbnail = errors.New("media: cannot thumbnail this media")
	// ErrThumbnailTooLarge: the source is over the thumbnail limits or the
	// memory budget.
	ErrThumbnailTooLarge = errors.New("media: too large to thumbnail")
)

// thumbnailer is the store's thumbnail machinery: a worker limit, a memory
// budget, single flight per (source, size), and a background queue of
// pregeneration jobs, one per source object.
type thumbnailer struct {
	opts    ThumbnailOptions
	sizes   atomic.Pointer[[]ThumbnailSize] // opts.Sizes, then SetThumbnailSizes's
	workers *semaphore.Weighted
	memory  *semaphore.Weighted
	waiting atomic.Int64
	flight  singleflight.Group

	queue   chan *thumbJob
	pending sync.WaitGroup // queued jobs not yet done

	mu      sync.Mutex
	closed  bool
	jobs    map[cas.Hash]*thumbJob // pregeneration jobs queued or running, by source object
	active  sync.WaitGroup         // makeThumbnail calls and jobs running
	made    atomic.Int64           // thumbnails generated (not served from the store)
	decodes atomic.Int64           // sources read and decoded
	stop    context.CancelFunc
	done    chan struct{}

	// hookRun, for tests, is called as a job starts running.
	hookRun func(Media)
	// hookJoin, for tests, is called when a request joins a job.
	hookJoin func(Media, string)
	// hookMade, for tests, is called as a job has made a size (by spec).
	hookMade func(string)
	// hookWait, for tests, is called as a request is admitted to wait for
	// a worker (counted against MaxWaiting).
	hookWait func()

	// refusals remembers the sources ffmpeg refused (loadStill).
	refusals *lru.Cache[cas.Hash, refusal]
}

func (s *Store) startThumbnailer() {
	o := s.opts.Thumbnails
	o.withDefaults()
	t := &thumbnailer{
		opts:    o,
		workers: semaphore.NewWeighted(int64(o.Workers)),
		memory:  semaphore.NewWeighted(o.MemoryBudget),
		queue:   make(chan *thumbJob, o.Queue),
		jobs:    make(map[cas.Hash]*thumbJob),
		done:    make(chan struct{}),
	}
	t.sizes.Store(&o.Sizes)
	t.refusals, _ = lru.New[cas.Hash, refusal](refusalsKept) // fails only for a size <= 0
	ctx, cancel := context.WithCancel(context.Background())
	t.stop = cancel
	s.thumbs = t
	go func() {
		defer close(t.done)
		for {
			select {
			case <-ctx.Done():
				return
			case j := <-t.queue:
				if !j.started.Load() { // else a request started it
					s.startJob(j)
					select {
					case <-j.done:
					case <-ctx.Done():
					}
				}
			}
		}
	}()
}

// stopThumbnailer ends the background work; queued jobs not started are
// dropped.
func (s *Store) stopThumbnailer() {
	t := s.thumbs
	t.stop()
	<-t.done
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.active.Wait() // generations detached from their requests
	for {
		select {
		case j := <-t.queue:
			if j.started.CompareAndSwap(false, true) {
				t.finishJob(j, errClosing)
			}
		default:
			return
		}
	}
}

// enqueueThumbnails queues the pregeneration of rec's thumbnails, never
// blocking: a full queue skips it, as does a job for the same content
// already queued or running. The job is registered at once, so requests for
// its sizes join it from now on.
func (s *Store) enqueueThumbnails(rec Media) {
	t := s.thumbs
	if t.opts.Disabled {
		return
	}
	if !strings.HasPrefix(strings.ToLower(rec.ContentType), "image/") && (t.opts.FFmpeg == nil || !avContent(rec.ContentType)) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.jobs[rec.Object] != nil {
		return
	}
	j := t.newJob(rec)
	j.queued = true
	t.pending.Add(1)
	select {
	case t.queue <- j:
		t.jobs[rec.Object] = j
	default:
		t.pending.Done()
	}
}

// Pregenerate makes every configured size of rec's thumbnails that is not
// stored yet, reading and decoding the source once for all of them (or
// waits for the job already doing so). It returns the error that failed
// every size (not an image, too large, no space, damaged); other failures
// of one size are logged.
func (s *Store) Pregenerate(ctx context.Context, rec Media) error {
	if rec.Pending || rec.Object.IsZero() {
		return fmt.Errorf("%w: %s has no content", ErrNotFound, rec.MXC)
	}
	j := s.thumbs.registerJob(rec)
	s.startJob(j)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-j.done:
		return thumbnailErr(j.err)
	}
}

// Thumbnail returns a thumbnail of rec's content as req asks, making and
// storing it on first use: concurrent requests for the same source and size
// make it once. Thumbnails are keyed by the source object, so identical
// uploads share them. Errors: ErrBadParam, ErrCannotThumbnail (not an image
// this server can thumbnail, or corrupt), ErrThumbnailTooLarge (over the
// limits or the memory budget), ErrBusy (too many waiting), or ctx's error
// while waiting.
func (s *Store) Thumbnail(ctx context.Context, rec Media, req ThumbnailRequest) (*Reader, Thumbnail, error) {
	r, tr, err := s.thumbnail(ctx, rec, req.thumbgen())
	err = thumbnailErr(err)
	switch {
	case err == nil:
		s.stats.thumbServed.Add(1)
	case errors.Is(err, ErrThumbnailTooLarge), errors.Is(err, ErrCannotThumbnail), errors.Is(err, ErrBadParam):
		s.stats.thumbRefd.Add(1)
	}
	return r, tr, err
}

func (s *Store) thumbnail(ctx context.Context, rec Media, req thumbgen.Request) (*Reader, Thumbnail, error) {
	if s.thumbs.opts.FFmpeg != nil && avContent(rec.ContentType) {
		req.Animated = false // a still either way: one thumbnail, made once
	}
	req, spec := s.thumbs.thumbSpec(req)
	if err := req.Validate(); err != nil {
		return nil, Thumbnail{}, err
	}
	if rec.Pending || rec.Object.IsZero() {
		return nil, Thumbnail{}, fmt.Errorf("%w: %s has no content", ErrNotFound, rec.MXC)
	}
	tr, err := s.readThumbnail(rec.Object, spec)
	if errors.Is(err, index.ErrNotFound) {
		tr, err = s.awaitThumbnail(ctx, rec, req, spec)
	}
	if err != nil {
		return nil, Thumbnail{}, err
	}
	r, err := s.OpenObject(tr.Object)
	return r, tr, err
}

// thumbSpec fills req's method and shrinks a size over the cap, keeping its
// aspect ratio (a crop keeps its shape); it returns req with its spec, the
// key of its thumbnail record.
func (t *thumbnailer) thumbSpec(req thumbgen.Request) (thumbgen.Request, string) {
	if req.Method == "" {
		req.Method = thumbgen.Scale
	}
	if maxDim, big := t.opts.MaxDimension, max(req.Width, req.Height); big > maxDim {
		req.Width = max(1, int(int64(req.Width)*int64(maxDim)/int64(big)))
		req.Height = max(1, int(int64(req.Height)*int64(maxDim)/int64(big)))
	}
	anim := 0
	if req.Animated {
		anim = 1
	}
	return req, fmt.Sprintf("%dx%d/%s/%d", req.Width, req.Height, req.Method, anim)
}

// awaitThumbnail waits for thumbnail spec of rec, not stored yet: from the
// pregeneration job that makes it (started now if still queued), or else
// from a single flight of its own.
func (s *Store) awaitThumbnail(ctx context.Context, rec Media, req thumbgen.Request, spec string) (Thumbnail, error) {
	t := s.thumbs
	if j, sl := t.jobSlot(rec.Object, spec); sl != nil {
		sl.waiting.Add(1) // before the job can choose what to make next
		defer sl.waiting.Add(-1)
		s.startJob(j)
		if t.hookJoin != nil {
			t.hookJoin(rec, spec)
		}
		return sl.wait(ctx)
	}
	ch := t.flight.DoChan(rec.Object.String()+"/"+spec, func() (any, error) {
		if !t.begin() {
			return nil, errClosing
		}
		defer t.active.Done()
		return s.makeThumbnail(rec, req, spec)
	})
	select {
	case <-ctx.Done():
		return Thumbnail{}, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return Thumbnail{}, res.Err
		}
		return res.Val.(Thumbnail), nil
	}
}

// makeThumbnail generates and stores one thumbnail. It runs once per
// (source, spec) at a time, detached from any one request's context so a
// client that goes away does not fail the others waiting on it.
func (s *Store) makeThumbnail(rec Media, req thumbgen.Request, spec string) (Thumbnail, error) {
	t := s.thumbs
	// A flight that finished between our caller's lookup and this one
	// already stored it.
	if tr, err := s.readThumbnail(rec.Object, spec); err == nil {
		return tr, nil
	}
	// No decoding for a thumbnail that could not be stored.
	if err := s.space.reserve(0); err != nil {
		return Thumbnail{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	unlock, err := s.lockThumbnails(ctx, rec.Object)
	if err != nil {
		return Thumbnail{}, err
	}
	defer unlock()
	if s.idx.Shared() { // another node may have made it meanwhile
		if tr, err := s.readThumbnail(rec.Object, spec); err == nil {
			return tr, nil
		}
	}
	start := s.opts.Now()
	src, release, err := s.loadThumbSource(ctx, rec, func(info thumbgen.Info) int64 { return thumbgen.DecodeMemory(info, req) })
	if err != nil {
		return Thumbnail{}, err
	}
	defer release()
	res, err := src.generate(req, t.opts.Limits)
	if err != nil {
		return Thumbnail{}, err
	}
	t.madeOne(s.opts.Now().Sub(start))
	return s.storeThumbnail(ctx, rec, spec, src.own(), res)
}

// madeOne counts a thumbnail generated, which took took.
func (t *thumbnailer) madeOne(took time.Duration) {
	t.made.Add(1)
	if t.opts.Observe != nil {
		t.opts.Observe(took)
	}
}

// loadSource is the admitted, budgeted read of rec's content for
// thumbnailing: it waits for a worker, reads the head (verified: never a
// thumbnail of damaged bytes), reserves what memoryNeed says with cost for
// the decoding, and reads the rest. On success the caller calls release
// when done with src, which returns the worker and the memory.
func (s *Store) loadSource(ctx context.Context, rec Media, cost func(thumbgen.Info) int64) (src []byte, release func(), err error) {
	t := s.thumbs
	releaseWorker, err := t.admit(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			releaseWorker()
		}
	}()
	// The header tells the cost before the source is read whole.
	r, err := s.OpenMedia(rec)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	head := make([]byte, min(rec.Size, 256<<10))
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, nil, err
	}
	need, err := t.memoryNeed(head, rec.Size, cost)
	if err != nil {
		return nil, nil, err
	}
	if err := t.memory.Acquire(ctx, need); err != nil {
		return nil, nil, err
	}
	if src, err = readRest(head, r, rec.Size); err != nil {
		t.memory.Release(need)
		return nil, nil, err
	}
	t.decodes.Add(1)
	return src, func() { t.memory.Release(need); releaseWorker() }, nil
}

// admit is thumbnail admission: it waits for a worker, or refuses with
// ErrBusy when MaxWaiting requests already wait. On success the caller
// calls release when its work is done.
func (t *thumbnailer) admit(ctx context.Context) (release func(), err error) {
	if t.waiting.Add(1) > int64(t.opts.MaxWaiting) {
		t.waiting.Add(-1)
		return nil, ErrBusy
	}
	if t.hookWait != nil {
		t.hookWait()
	}
	err = t.workers.Acquire(ctx, 1)
	t.waiting.Add(-1)
	if err != nil {
		return nil, err
	}
	return func() { t.workers.Release(1) }, nil
}

// memoryNeed is thumbnail costing: from the head of a source of size bytes,
// it returns the memory its thumbnails need (the source plus what cost says
// of decoding it). A header that is not in head is taken to need the most
// the limits allow. Errors: not an image, over the limits (thumbgen's
// ErrTooLarge), or over the memory budget.
func (t *thumbnailer) memoryNeed(head []byte, size int64, cost func(thumbgen.Info) int64) (int64, error) {
	lim := t.opts.Limits
	// Sniff with the size limit lifted: a large file that is not an image
	// is "cannot thumbnail", not "too large".
	headLim := lim
	headLim.MaxBytes = max(lim.MaxBytes, size)
	info, err := thumbgen.Sniff(head, headLim)
	if err != nil && !errors.Is(err, thumbgen.ErrCorrupt) {
		return 0, err // not an image, or too many pixels by its header
	}
	if size > lim.MaxBytes {
		return 0, fmt.Errorf("%w: %d bytes", thumbgen.ErrTooLarge, size)
	}
	need := size + cost(info)
	if err != nil || info.Width == 0 {
		need = size + int64(lim.MaxPixels)*4 // header past the prefix: assume the worst allowed
	}
	if need > t.opts.MemoryBudget {
		return 0, fmt.Errorf("%w: needs %d bytes, budget %d", thumbgen.ErrTooLarge, need, t.opts.MemoryBudget)
	}
	return need, nil
}

// readRest reads the rest of a source of size bytes from r, after head,
// and returns the whole source.
func readRest(head []byte, r io.Reader, size int64) ([]byte, error) {
	src := make([]byte, size)
	copy(src, head)
	if _, err := io.ReadFull(r, src[len(head):]); err != nil {
		return nil, err
	}
	return src, nil
}

// storeThumbnail stores res, made from src (rec's content, or nil when
// made from something else), as rec's thumbnail spec: its object (src's
// own when res is src unchanged), its
// manifest when new, and its thumbnail record, committed in one batch.
func (s *Store) storeThumbnail(ctx context.Context, rec Media, spec string, src []byte, res thumbgen.Result) (Thumbnail, error) {
	tr := Thumbnail{Size: int64(len(res.Data)), ContentType: res.ContentType, Width: res.Width, Height: res.Height}
	pins := s.newPinSet()
	defer pins.release()
	b := s.idx.NewBatch()
	defer b.Close()
	committed := func() {}
	if len(res.Data) == len(src) && bytes.Equal(res.Data, src) {
		tr.Object = rec.Object // the source as it is: no copy
	} else {
		obj, m, known, err := s.writeObject(ctx, bytes.NewReader(res.Data), int64(len(res.Data)), -1, "thumbnail of "+rec.Object.Short(), pins)
		if err != nil {
			return Thumbnail{}, err
		}
		tr.Object = obj
		if !known || s.idx.Shared() { // written again: see commitRecord
			if err := s.putManifest(b, obj, m, known); err != nil {
				return Thumbnail{}, err
			}
		}
		b.GuardObject(obj, pins.found, pins.own)
		committed = func() { s.manifestCommitted(m, known) }
	}
	if err := b.PutThumbnail(rec.Object, spec, tr.record()); err != nil {
		return Thumbnail{}, err
	}
	if err := condemned(s.commitRecords(b)); err != nil {
		return Thumbnail{}, err
	}
	committed()
	return tr, nil
}
