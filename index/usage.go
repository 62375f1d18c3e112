package index

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"
)

func encodeUsage(u Usage) []byte {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[0:], uint64(u.Bytes))
	binary.LittleEndian.PutUint64(b[8:], uint64(u.Count))
	return b[:]
}

func decodeUsage(v []byte) (Usage, error) {
	if len(v) != 16 {
		return Usage{}, fmt.Errorf("%w: usage of %d bytes", ErrCorruptRecord, len(v))
	}
	return Usage{
		Bytes: int64(binary.LittleEndian.Uint64(v[0:])),
		Count: int64(binary.LittleEndian.Uint64(v[8:])),
	}, nil
}

// usageMerger adds Usage counters. Its name is stored by Pebble and must
// never change.
var usageMerger = &pebble.Merger{
	Name: "mxcas.usage.v1",
	Merge: func(_, value []byte) (pebble.ValueMerger, error) {
		m := &usageValueMerger{}
		return m, m.MergeNewer(value)
	},
}

type usageValueMerger struct{ sum Usage }

func (m *usageValueMerger) MergeNewer(v []byte) error {
	u, err := decodeUsage(v)
	m.sum.Bytes += u.Bytes
	m.sum.Count += u.Count
	return err
}

func (m *usageValueMerger) MergeOlder(v []byte) error { return m.MergeNewer(v) }

func (m *usageValueMerger) Finish(bool) ([]byte, io.Closer, error) {
	return encodeUsage(m.sum), nil, nil
}
