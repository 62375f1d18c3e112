package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

const (
	// logFlushDelay is the longest an info line waits in memory.
	logFlushDelay = 50 * time.Millisecond
	// logBufferMax is how much is gathered before it is written at once.
	logBufferMax = 64 << 10
)

// logBuffer gathers the server's log lines in memory and writes them with
// one write: logFlushDelay after the first unwritten line, when
// logBufferMax bytes are waiting, on Flush and on Close. The request log
// writes a line per request; a write syscall each was a tenth of the CPU
// of a small download. slog handlers write a record with one Write, so
// lines stay whole and, under the mutex, in order. A crash (or SIGKILL)
// loses what was not written yet: at most logFlushDelay of info lines, as
// flushingHandler writes warnings and errors at once. Safe for concurrent
// use.
type logBuffer struct {
	mu     sync.Mutex
	w      io.Writer
	buf    []byte
	delay  time.Duration
	timer  *time.Timer // running while buf holds bytes
	closed bool
}

// newLogBuffer writes to w lines at most delay old (logFlushDelay).
func newLogBuffer(w io.Writer, delay time.Duration) *logBuffer {
	b := &logBuffer{w: w, delay: delay}
	b.timer = time.AfterFunc(delay, func() { b.Flush() })
	b.timer.Stop()
	return b
}

// Write takes p to be written later (at once after Close).
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.w.Write(p)
	}
	first := len(b.buf) == 0
	b.buf = append(b.buf, p...)
	if len(b.buf) >= logBufferMax {
		return len(p), b.flushLocked()
	}
	if first {
		b.timer.Reset(b.delay)
	}
	return len(p), nil
}

// Flush writes what is waiting.
func (b *logBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *logBuffer) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	b.timer.Stop()
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// Close writes what is waiting; later writes go straight through.
func (b *logBuffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return b.flushLocked()
}

// flushingHandler writes a warning or an error, and everything logged
// before it, as soon as it is logged.
type flushingHandler struct {
	slog.Handler
	b *logBuffer
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if ferr := h.b.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(attrs), h.b}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.b}
}

// bufferedLogger is a text logger to w through a logBuffer whose lines
// wait at most delay, logging from level up (nil: info); close the buffer
// when done.
func bufferedLogger(w io.Writer, delay time.Duration, level slog.Leveler) (*slog.Logger, *logBuffer) {
	b := newLogBuffer(w, delay)
	return slog.New(flushingHandler{slog.NewTextHandler(b, &slog.HandlerOptions{Level: level}), b}), b
}
