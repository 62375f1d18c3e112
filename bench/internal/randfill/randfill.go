// Package randfill makes the random content of the bench commands: streams
// kept apart by purpose and run, and fresh across invocations, so that no
// measurement writes bytes another one wrote.
package randfill

import (
	"encoding/binary"
	"math/rand/v2"
	"time"
)

// Fill overwrites b with the ChaCha8 stream of (purpose, run), seeded with
// the time too.
func Fill(b []byte, purpose, run int) {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[0:], uint64(purpose))
	binary.LittleEndian.PutUint64(seed[8:], uint64(run))
	binary.LittleEndian.PutUint64(seed[16:], uint64(time.Now().UnixNano())) // fresh across invocations too
	rand.NewChaCha8(seed).Read(b)
}
