package media

import (
	"sync"

	"github.com/mxcas/mxcas/cas"
)

// pins protects chunks and objects that uploads in flight rely on from GC.
// An upload pins a hash before it looks whether the hash is stored, and
// unpins it after its records are committed. GC holds mu while it decides
// and deletes each candidate, and treats as live every hash pinned now or
// unpinned since the GC began (its snapshot may predate that commit).
type pins struct {
	mu      sync.Mutex
	n       map[cas.Hash]int
	running bool                  // a GC is running
	late    map[cas.Hash]struct{} // unpinned while the GC runs
}

func (p *pins) pin(h cas.Hash) {
	p.mu.Lock()
	p.n[h]++
	p.mu.Unlock()
}

func (p *pins) unpin(hs []cas.Hash) {
	p.mu.Lock()
	for _, h := range hs {
		if p.n[h]--; p.n[h] <= 0 {
			delete(p.n, h)
		}
		if p.running {
			p.late[h] = struct{}{}
		}
	}
	p.mu.Unlock()
}

func (p *pins) startGC() {
	p.mu.Lock()
	p.running = true
	p.late = make(map[cas.Hash]struct{})
	p.mu.Unlock()
}

func (p *pins) endGC() {
	p.mu.Lock()
	p.running = false
	p.late = nil
	p.mu.Unlock()
}

// ifUnpinned runs del while holding the lock, unless h is protected.
func (p *pins) ifUnpinned(h cas.Hash, del func() error) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, late := p.late[h]; late || p.n[h] > 0 {
		return false, nil
	}
	return true, del()
}

// whileLocked runs fn with the lock held; pinned tells whether a hash is
// protected. fn must not pin or unpin.
func (p *pins) whileLocked(fn func(pinned func(cas.Hash) bool) error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fn(func(h cas.Hash) bool {
		_, late := p.late[h]
		return late || p.n[h] > 0
	})
}
