package index

import (
	"encoding/json"
	"fmt"

	"github.com/mxcas/mxcas/cas"
)

// ScanThumbnailsOf calls fn for every thumbnail of source object src, in
// key order. A record that cannot be decoded stops the scan with an error
// wrapping ErrCorruptRecord.
func (r reader) ScanThumbnailsOf(src cas.Hash, fn func(spec string, tr ThumbRecord) error) error {
	p := thumbKey(src, "") // t/<src>/
	return r.scan(p, func(k, v []byte) error {
		var tr ThumbRecord
		if err := json.Unmarshal(v, &tr); err != nil {
			return fmt.Errorf("%w: thumbnail: %v", ErrCorruptRecord, err)
		}
		return fn(string(k[len(p):]), tr)
	})
}
