package media

import (
	"cmp"
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/thumbgen"
)

// errClosing fails thumbnail work asked for while the store closes.
var errClosing = errors.New("media: store is closing")

// thumbJob is the pregeneration of one source object's configured sizes:
// one read, one memory reservation and one decode (thumbgen.GenerateAll)
// for all of them. It is registered in thumbnailer.jobs when the upload
// queues it, so that a request for one of its sizes joins it instead of
// decoding again; whoever starts it first runs it (startJob): the queue
// worker, or a request that found it still queued.
type thumbJob struct {
	rec     Media
	sizes   map[string]*thumbSlot // by spec
	queued  bool                  // counted in thumbnailer.pending
	started atomic.Bool
	// done is closed once every slot is resolved; err is then the error
	// that failed every size (not an image, too large, no space), if any.
	done chan struct{}
	err  error
}

// thumbSlot is one size of a thumbJob. Its outcome is written once, by the
// job's goroutine, before done is closed.
type thumbSlot struct {
	spec string
	req  thumbgen.Request
	done chan struct{}
	tr   Thumbnail
	err  error
	// waiting counts the requests waiting for this size: the job makes a
	// size someone waits for before the others.
	waiting atomic.Int32
}

func (sl *thumbSlot) resolve(tr Thumbnail, err error) {
	sl.tr, sl.err = tr, err
	close(sl.done)
}

// wait returns the slot's outcome, or ctx's error if ctx ends first.
func (sl *thumbSlot) wait(ctx context.Context) (Thumbnail, error) {
	select {
	case <-ctx.Done():
		return Thumbnail{}, ctx.Err()
	case <-sl.done:
		return sl.tr, sl.err
	}
}

// newJob is a job for rec's configured sizes.
func (t *thumbnailer) newJob(rec Media) *thumbJob {
	j := &thumbJob{rec: rec, sizes: make(map[string]*thumbSlot), done: make(chan struct{})}
	for _, z := range *t.sizes.Load() {
		req, spec := t.thumbSpec(thumbgen.Request{Width: z.Width, Height: z.Height, Method: z.Method})
		if req.Validate() == nil {
			j.sizes[spec] = &thumbSlot{spec: spec, req: req, done: make(chan struct{})}
		}
	}
	return j
}

// registerJob returns the job registered for rec's content, registering a
// new, unqueued one if there is none.
func (t *thumbnailer) registerJob(rec Media) *thumbJob {
	t.mu.Lock()
	defer t.mu.Unlock()
	if j := t.jobs[rec.Object]; j != nil {
		return j
	}
	j := t.newJob(rec)
	t.jobs[rec.Object] = j
	return j
}

// jobSlot returns the slot of the job registered for src that makes spec,
// with its job, or nil.
func (t *thumbnailer) jobSlot(src cas.Hash, spec string) (*thumbJob, *thumbSlot) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if j := t.jobs[src]; j != nil && j.sizes[spec] != nil {
		return j, j.sizes[spec]
	}
	return nil, nil
}

// startJob runs j in the background unless it has been started already,
// tracked by thumbnailer.active so Close waits for it.
func (s *Store) startJob(j *thumbJob) {
	if !j.started.CompareAndSwap(false, true) {
		return
	}
	t := s.thumbs
	if !t.begin() {
		t.finishJob(j, errClosing)
		return
	}
	go func() {
		defer t.active.Done()
		t.finishJob(j, s.runJob(j))
	}()
}

// begin counts work detached from any request in t.active, so Close
// waits for it; it reports false, counting nothing, once t is closing.
func (t *thumbnailer) begin() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.active.Add(1)
	return true
}

// finishJob fails j's unresolved sizes with err (or, if err is nil, with
// errClosing: a size runJob did not get to), unregisters j and marks it
// done.
func (t *thumbnailer) finishJob(j *thumbJob, err error) {
	for _, sl := range j.sizes {
		select {
		case <-sl.done:
		default:
			sl.resolve(Thumbnail{}, cmp.Or(err, errClosing))
		}
	}
	t.mu.Lock()
	if t.jobs[j.rec.Object] == j {
		delete(t.jobs, j.rec.Object)
	}
	t.mu.Unlock()
	j.err = err
	close(j.done)
	if j.queued {
		t.pending.Done()
	}
}

// runJob makes every size of j not stored yet from one read and one decode
// of the source, storing each and resolving its slot as it goes, the
// largest first. It returns the error that fails every size, if any;
// detached from any request, within the same two minutes a single
// thumbnail gets.
func (s *Store) runJob(j *thumbJob) error {
	t := s.thumbs
	if t.hookRun != nil {
		t.hookRun(j.rec)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	unlock, err := s.lockThumbnails(ctx, j.rec.Object)
	if err != nil {
		return err
	}
	defer func() { unlock() }()
	todo := s.unstoredSlots(j)
	if len(todo) == 0 {
		return nil
	}
	if err := s.space.reserve(0); err != nil {
		return err
	}
	reqs := make([]thumbgen.Request, len(todo))
	for i, sl := range todo {
		reqs[i] = sl.req
	}
	last := s.opts.Now() // each size's time runs from the end of the previous one
	src, release, err := s.loadThumbSource(ctx, j.rec, func(info thumbgen.Info) int64 { return thumbgen.DecodeMemoryAll(info, reqs) })
	if errors.Is(err, thumbgen.ErrTooLarge) && len(todo) > 1 {
		unlock() // makeThumbnail takes it for each size
		unlock = func() {}
		return s.makeEachSize(j.rec, todo) // the set is over the budget; a size alone may not be
	}
	if err != nil {
		return err
	}
	defer release()
	var shared error
	// A size a client is waiting for is made first; each is stored and
	// handed to its waiters as soon as it is made.
	src.generateEach(reqs, t.opts.Limits, func(left []int) int {
		return mostAwaited(todo, left)
	}, func(i int, o thumbgen.Outcome) {
		tr, err := Thumbnail{}, o.Err
		if err == nil {
			t.madeOne(s.opts.Now().Sub(last))
			if t.hookMade != nil {
				t.hookMade(todo[i].spec)
			}
			tr, err = s.storeThumbnail(ctx, j.rec, todo[i].spec, src.own(), o.Result)
		}
		last = s.opts.Now()
		if err != nil && failsEverySize(thumbnailErr(err)) {
			shared = cmp.Or(shared, err)
		} else if err != nil {
			s.opts.Logger.Warn("thumbnail pregeneration failed", "media", j.rec.MXC.String(), "size", todo[i].spec, "err", err)
		}
		todo[i].resolve(tr, err)
	})
	return shared
}

// mostAwaited returns the one of left (indexes into slots, in the order
// they would be made) that the most requests wait for; the first if none
// is awaited.
func mostAwaited(slots []*thumbSlot, left []int) int {
	best, most := left[0], int32(0)
	for _, i := range left {
		if n := slots[i].waiting.Load(); n > most {
			best, most = i, n
		}
	}
	return best
}

// makeEachSize makes the sizes in todo one at a time, each with its own
// read and decode, as requests do. It returns the first error that would
// fail every size.
func (s *Store) makeEachSize(rec Media, todo []*thumbSlot) error {
	var shared error
	for _, sl := range todo {
		tr, err := s.makeThumbnail(rec, sl.req, sl.spec)
		if err != nil && failsEverySize(thumbnailErr(err)) {
			shared = cmp.Or(shared, err)
		}
		sl.resolve(tr, err)
	}
	return shared
}

// unstoredSlots resolves the sizes of j already stored and returns the
// others.
func (s *Store) unstoredSlots(j *thumbJob) []*thumbSlot {
	var todo []*thumbSlot
	for spec, sl := range j.sizes {
		if tr, err := s.readThumbnail(j.rec.Object, spec); err == nil {
			sl.resolve(tr, nil)
		} else {
			todo = append(todo, sl)
		}
	}
	return todo
}

// failsEverySize reports whether err, from one size's pregeneration,
// would fail the others too: not an image, too large, no space, damaged.
func failsEverySize(err error) bool {
	return errors.Is(err, ErrCannotThumbnail) || errors.Is(err, ErrThumbnailTooLarge) ||
		errors.Is(err, ErrNoSpace) || errors.Is(err, ErrFailed)
}
