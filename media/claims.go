package media

import (
	"sync"

	"github.com/mxcas/mxcas/matrix"
)

// claims serialises changes to one media ID: an upload or a delete holds
// the ID's claim from its check that the record is (or is not) there until
// its batch is committed, so two of them never both act on the same state.
type claims struct {
	mu   sync.Mutex
	held map[matrix.MXC]chan struct{}
}

// try claims m unless someone holds it.
func (c *claims) try(m matrix.MXC) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, busy := c.held[m]; busy {
		return false
	}
	if c.held == nil {
		c.held = make(map[matrix.MXC]chan struct{})
	}
	c.held[m] = make(chan struct{})
	return true
}

// wait claims m, waiting for the holder to release it.
func (c *claims) wait(m matrix.MXC) {
	for {
		c.mu.Lock()
		ch, busy := c.held[m]
		c.mu.Unlock()
		if !busy && c.try(m) {
			return
		}
		if busy {
			<-ch
		}
	}
}

func (c *claims) release(m matrix.MXC) {
	c.mu.Lock()
	close(c.held[m])
	delete(c.held, m)
	c.mu.Unlock()
}
