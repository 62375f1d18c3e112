package index

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sync"
)

// ErrFailed means the index can no longer be written: Pebble met an error
// it cannot go on from (a write-ahead log or MANIFEST write that failed,
// say on a full disk). The process must end; reopening the index recovers
// every commit that was acknowledged.
var ErrFailed = errors.New("index: failed, restart needed")

// failure records the first fatal error of one DB.
//
// Pebble reports such errors through its logger's Fatalf and expects it
// not to return (by default it exits the process). Ours does not return
// either, but it does not kill the process: when the error happens inside
// one of our own calls into Pebble (a Commit, say), Fatalf panics with a
// fatalPanic that guarded turns into an error wrapping ErrFailed; on one of
// Pebble's background goroutines, which no one could recover from, it parks
// that goroutine for good (unwinding it could run Pebble's deferred unlocks
// out of order, which is a crash). Either way the DB is marked failed:
// later writes are refused at once instead of hanging in Pebble's wedged
// commit pipeline, Close does not wait on it, and Failed tells the owner
// to shut down.
type failure struct {
	once sync.Once
	done chan struct{}
	mu   sync.Mutex
	err  error
}

func newFailure() *failure { return &failure{done: make(chan struct{})} }

func (f *failure) get() error {
	select {
	case <-f.done:
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.err
	default:
		return nil
	}
}

func (f *failure) set(err error) {
	f.once.Do(func() {
		f.mu.Lock()
		f.err = err
		f.mu.Unlock()
		close(f.done)
	})
}

// fatalPanic carries a Fatalf from Pebble up to guarded.
type fatalPanic struct{ err error }

// fatal marks the DB failed and never returns.
func (f *failure) fatal(msg string) {
	err := fmt.Errorf("%w: %s", ErrFailed, msg)
	f.set(err)
	if calledFromGuarded() {
		panic(fatalPanic{err})
	}
	select {} // the owner sees Failed and ends the process
}

// guarded runs fn, a call into Pebble, turning a Fatalf inside it into an
// error wrapping ErrFailed. Other panics go on.
//
//go:noinline
func guarded(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			fp, ok := p.(fatalPanic)
			if !ok {
				panic(p)
			}
			err = fp.err
		}
	}()
	return fn()
}

// guardedName is guarded's function name as the runtime reports it.
var guardedName = runtime.FuncForPC(reflect.ValueOf(guarded).Pointer()).Name()

// calledFromGuarded reports whether guarded is on the calling goroutine's
// stack, that is, whether a panic here would be recovered by it.
func calledFromGuarded() bool {
	pcs := make([]uintptr, 512)
	n := runtime.Callers(2, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	for {
		fr, more := frames.Next()
		if fr.Function == guardedName {
			return true
		}
		if !more {
			return false
		}
	}
}
