package httpapi

import (
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mxcas/mxcas/media"
)

// pipeSize is what a splice pipe is enlarged to: the bytes that go to the
// socket in one call.
const pipeSize = 1 << 20

// splicePipe is a pipe chunk files are spliced into, and from it to the
// socket; n bytes are in it.
type splicePipe struct {
	r, w int
	n    int // bytes in the pipe
	size int // its capacity
}

var splicePipes = sync.Pool{New: func() any { return newSplicePipe() }}

func newSplicePipe() *splicePipe {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil
	}
	size, err := unix.FcntlInt(uintptr(fds[1]), unix.F_SETPIPE_SZ, pipeSize)
	if err != nil { // a smaller pipe still works
		size, _ = unix.FcntlInt(uintptr(fds[1]), unix.F_GETPIPE_SZ, 0)
	}
	p := &splicePipe{r: fds[0], w: fds[1], size: max(size, 4096)}
	runtime.SetFinalizer(p, (*splicePipe).close)
	return p
}

func (p *splicePipe) close() {
	unix.Close(p.r)
	unix.Close(p.w)
}

// spliceSpans sends the rest of src to c: each chunk file, verified by
// src, spliced into a pipe (at its offset: a pooled descriptor's position
// does not matter), the pipe spliced to the socket when half full and at
// the end, with SPLICE_F_MORE until the last bytes. moved, when not nil,
// is told of every write (the rate guard). ok is false when c is not a
// socket splice can reach; nothing was sent then.
func spliceSpans(c net.Conn, src *media.Spans, moved func(int64)) (int64, bool, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, false, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	p, _ := splicePipes.Get().(*splicePipe)
	if p == nil {
		return 0, false, nil
	}
	s := &splicer{rc: rc, p: p, src: src, c: c, moved: moved}
	n, err := s.send()
	if err == nil {
		splicePipes.Put(p)
	} else {
		runtime.SetFinalizer(p, nil)
		p.close()
	}
	return n, true, err
}

// splicer is one spliceSpans call's state.
type splicer struct {
	rc      syscall.RawConn
	p       *splicePipe
	src     *media.Spans
	c       net.Conn
	written int64
	moved   func(int64) // reports bytes that reached the socket, or nil
}

func (s *splicer) send() (int64, error) {
	for {
		sp, err := s.src.Next(int64(s.p.size))
		if err == io.EOF {
			break
		}
		if err != nil {
			// The verified bytes before the damage go out, as
			// they would have without splice.
			if derr := s.drain(false); derr != nil {
				return s.written, derr
			}
			return s.written, err
		}
		if sp.File == nil {
			err = s.addBytes(sp)
		} else {
			err = s.addFile(sp)
		}
		if err != nil {
			return s.written, err
		}
	}
	return s.written, s.drain(false)
}

// addBytes writes a span not in a file (a chunk hashed from memory now)
// after what the pipe holds.
func (s *splicer) addBytes(sp media.Span) error {
	if err := s.drain(true); err != nil {
		return err
	}
	if sp.Data == nil {
		_, err := io.Copy(s, io.LimitReader(s.src, sp.N))
		return err
	}
	for d := sp.Data; len(d) > 0; {
		k := min(len(d), 32<<10)
		if _, err := s.Write(d[:k]); err != nil {
			return err
		}
		d = d[k:]
	}
	return nil
}

// addFile splices a file span into the pipe, draining it when half full
// or when it takes no more. A file that ends early is damage.
func (s *splicer) addFile(sp media.Span) error {
	fd := int(sp.File.Fd())
	off, left := sp.Off, sp.N
	for left > 0 {
		n, err := unix.Splice(fd, &off, s.p.w, nil, min(int(left), s.p.size-s.p.n), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN && s.p.n > 0 { // full (an empty pipe never is)
			n, err = 0, s.drain(true)
		}
		if err != nil {
			return err
		}
		if n == 0 && s.p.n == 0 {
			return s.src.Shrank(sp)
		}
		s.p.n += int(n)
		left -= n
		if s.p.n >= s.p.size/2 || n == 0 {
			if err := s.drain(true); err != nil {
				return err
			}
		}
	}
	return nil
}

// drain splices the pipe's bytes to the socket.
func (s *splicer) drain(more bool) error {
	flags := unix.SPLICE_F_MOVE | unix.SPLICE_F_NONBLOCK
	if more || s.src.Remaining() > 0 {
		flags |= unix.SPLICE_F_MORE
	}
	var serr error
	err := s.rc.Write(func(fd uintptr) bool {
		for s.p.n > 0 {
			n, err := unix.Splice(s.p.r, nil, int(fd), nil, s.p.n, flags)
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				return false
			}
			if err == nil && n == 0 {
				err = errors.New("splice: socket took nothing")
			}
			if err != nil {
				serr = err
				return true
			}
			s.p.n -= int(n)
			s.wrote(n)
		}
		return true
	})
	if serr != nil {
		return serr
	}
	return err
}

func (s *splicer) wrote(n int64) {
	s.written += n
	if s.moved != nil {
		s.moved(n)
	}
}

// Write writes p to the connection, reporting it (for spans not in files).
// Each call is at most 32 KiB, so the guard's deadline moves often.
func (s *splicer) Write(p []byte) (int, error) {
	n, err := s.c.Write(p)
	s.wrote(int64(n))
	return n, err
}
