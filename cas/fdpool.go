package cas

import (
	"container/list"
	"os"
	"sync"
)

// fdPool keeps the descriptors of chunk files recently read and closed, so
// that reading a hot chunk again costs an fstat and an lseek rather than a
// path walk, an open and a close (per chunk of a 10 MiB download that is
// most of the server's CPU beyond sendfile itself). A pooled file is owned
// by whoever takes it out, so its offset is never shared; a chunk file
// deleted or renamed over after it was pooled is caught at take (no links
// left) and opened again. Delete and place drop a chunk's files at once.
// Safe for concurrent use.
type fdPool struct {
	mu     sync.Mutex
	max    int                    // idle files kept, all chunks together
	n      int                    // idle files now
	byHash map[Hash]*list.Element // value *pooled
	lru    list.List              // front: most recently returned
	closed bool
}

type pooled struct {
	h     Hash
	files []*os.File
}

func newFDPool(max int) *fdPool {
	return &fdPool{max: max, byHash: make(map[Hash]*list.Element)}
}

// take returns an idle file of chunk h, or nil.
func (p *fdPool) take(h Hash) *os.File {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.byHash[h]
	if !ok {
		return nil
	}
	pe := e.Value.(*pooled)
	f := pe.files[len(pe.files)-1]
	pe.files = pe.files[:len(pe.files)-1]
	p.n--
	if len(pe.files) == 0 {
		p.lru.Remove(e)
		delete(p.byHash, h)
	}
	return f
}

// give returns f, a file of chunk h, to the pool, closing the least
// recently returned files beyond the bound (or f itself when the pool is
// closed or holds nothing).
func (p *fdPool) give(h Hash, f *os.File) error {
	p.mu.Lock()
	if p.closed || p.max <= 0 {
		p.mu.Unlock()
		return f.Close()
	}
	if e, ok := p.byHash[h]; ok {
		pe := e.Value.(*pooled)
		pe.files = append(pe.files, f)
		p.lru.MoveToFront(e)
	} else {
		p.byHash[h] = p.lru.PushFront(&pooled{h: h, files: []*os.File{f}})
	}
	p.n++
	var evicted []*os.File
	for p.n > p.max {
		e := p.lru.Back()
		pe := e.Value.(*pooled)
		evicted = append(evicted, pe.files[0])
		pe.files = pe.files[1:]
		p.n--
		if len(pe.files) == 0 {
			p.lru.Remove(e)
			delete(p.byHash, pe.h)
		}
	}
	p.mu.Unlock()
	closeAll(evicted)
	return nil
}

// drop closes every idle file of chunk h.
func (p *fdPool) drop(h Hash) {
	p.mu.Lock()
	var files []*os.File
	if e, ok := p.byHash[h]; ok {
		files = e.Value.(*pooled).files
		p.n -= len(files)
		p.lru.Remove(e)
		delete(p.byHash, h)
	}
	p.mu.Unlock()
	closeAll(files)
}

// close closes every idle file; files given back later are closed.
func (p *fdPool) close() {
	p.mu.Lock()
	var files []*os.File
	for _, e := range p.byHash {
		files = append(files, e.Value.(*pooled).files...)
	}
	p.byHash, p.n, p.closed = map[Hash]*list.Element{}, 0, true
	p.lru.Init()
	p.mu.Unlock()
	closeAll(files)
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
