package index

import (
	"encoding/json"
	"fmt"

	"github.com/mxcas/mxcas/cas"
)

// QuarantineRecord says an admin quarantined a content (an object) for one
// homeserver. JSON.
type QuarantineRecord struct {
	By string `json:"by"` // the admin
	At int64  `json:"at"` // when, Unix ms
}

// PutQuarantine records that content h is quarantined for homeserver.
func (b *Batch) PutQuarantine(h cas.Hash, homeserver string, q QuarantineRecord) error {
	return b.setJSON(quarantineKey(h, homeserver), q)
}

// DeleteQuarantine lifts the quarantine of content h for homeserver.
func (b *Batch) DeleteQuarantine(h cas.Hash, homeserver string) error {
	return b.delete(quarantineKey(h, homeserver))
}

// ScanQuarantine calls fn for every quarantined content and homeserver; a
// record that cannot be decoded comes with a non-nil decodeErr.
func (r reader) ScanQuarantine(fn func(h cas.Hash, homeserver string, q QuarantineRecord, decodeErr error) error) error {
	return r.scan(prefixQuarant, func(k, v []byte) error {
		rest := k[len(prefixQuarant):]
		var h cas.Hash
		if len(rest) < cas.HashSize+2 || rest[cas.HashSize] != '/' {
			return fn(h, "", QuarantineRecord{}, fmt.Errorf("%w: quarantine key %q", ErrCorruptRecord, k))
		}
		copy(h[:], rest)
		var q QuarantineRecord
		err := json.Unmarshal(v, &q)
		if err != nil {
			err = fmt.Errorf("%w: quarantine record: %v", ErrCorruptRecord, err)
		}
		return fn(h, string(rest[cas.HashSize+1:]), q, err)
	})
}

// ScanQuarantineOf calls fn for every homeserver content h is quarantined
// for; records that cannot be decoded are skipped.
func (r reader) ScanQuarantineOf(h cas.Hash, fn func(homeserver string, q QuarantineRecord) error) error {
	p := append(append(append([]byte(nil), prefixQuarant...), h[:]...), '/')
	return r.scan(p, func(k, v []byte) error {
		var q QuarantineRecord
		if json.Unmarshal(v, &q) != nil {
			return nil
		}
		return fn(string(k[len(p):]), q)
	})
}
