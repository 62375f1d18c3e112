package index

import (
	"bytes"
	"fmt"

	"github.com/mxcas/mxcas/cas"
)

var (
	prefixMedia   = []byte("m/")
	prefixObject  = []byte("o/")
	prefixInline  = []byte("i/")
	prefixOwner   = []byte("u/")
	prefixPending = []byte("p/")
	prefixThumb   = []byte("t/")
	prefixUserUse = []byte("s/u/")
	prefixSiteUse = []byte("s/s/")
	prefixDamaged = []byte("d/")
	prefixQuarant = []byte("q/")
	prefixPreview = []byte("l/")
)

// quarantineKey is q/<object hash>/<homeserver>: content quarantined for
// one homeserver's media (and the shared remote cache).
func quarantineKey(h cas.Hash, homeserver string) []byte {
	k := append(append([]byte(nil), prefixQuarant...), h[:]...)
	return append(append(k, '/'), homeserver...)
}

func damagedKey(h cas.Hash) []byte {
	return append(append([]byte(nil), prefixDamaged...), h[:]...)
}

func mediaKey(server, id string) []byte {
	return append(append(append(append([]byte(nil), prefixMedia...), server...), '/'), id...)
}

func parseMediaKey(k []byte) (server, id string, err error) {
	rest := k[len(prefixMedia):]
	i := bytes.IndexByte(rest, '/')
	if i < 0 {
		return "", "", fmt.Errorf("%w: media key %q", ErrCorruptRecord, k)
	}
	return string(rest[:i]), string(rest[i+1:]), nil
}

func objectKey(h cas.Hash) []byte {
	return append(append([]byte(nil), prefixObject...), h[:]...)
}

func ownerKey(user, server, id string) []byte {
	k := append(append([]byte(nil), prefixOwner...), user...)
	k = append(k, 0)
	return append(append(append(k, server...), '/'), id...)
}

func ownerPrefix(user string) []byte {
	return append(append(append([]byte(nil), prefixOwner...), user...), 0)
}

func userUsageKey(user string) []byte { return append(append([]byte(nil), prefixUserUse...), user...) }
func serverUsageKey(s string) []byte  { return append(append([]byte(nil), prefixSiteUse...), s...) }

// inlineKey is the key of object h's inline chunk.
func inlineKey(h cas.Hash) []byte {
	return append(append([]byte(nil), prefixInline...), h[:]...)
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // no upper bound
}

func pendingKey(user, server, id string) []byte {
	k := append(append([]byte(nil), prefixPending...), user...)
	k = append(k, 0)
	return append(append(append(k, server...), '/'), id...)
}

func pendingPrefix(user string) []byte {
	return append(append(append([]byte(nil), prefixPending...), user...), 0)
}

// thumbKey is t/<source object hash>/<spec>, spec "<w>x<h>/<method>/<0|1>".
func thumbKey(src cas.Hash, spec string) []byte {
	k := append(append([]byte(nil), prefixThumb...), src[:]...)
	return append(append(k, '/'), spec...)
}
