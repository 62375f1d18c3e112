package chunker_test

import (
	"encoding/binary"
	"testing"

	"github.com/mxcas/mxcas/chunker"
)

// pseudoRandom returns n deterministic pseudo-random bytes (splitmix64), the
// same on every platform and Go version.
func pseudoRandom(n int, seed uint64) []byte {
	b := make([]byte, (n+7)&^7)
	x := seed
	for i := 0; i < len(b); i += 8 {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		binary.LittleEndian.PutUint64(b[i:], z^z>>31)
	}
	return b[:n]
}

// splitLengths returns the chunk lengths Split finds in data.
func splitLengths(t testing.TB, data []byte, p chunker.Params) []int {
	t.Helper()
	var lens []int
	err := chunker.Split(data, p, func(chunk []byte) error {
		lens = append(lens, len(chunk))
		return nil
	})
	if err != nil {
		t.Fatalf("Split: %v", err)
	}
	return lens
}
