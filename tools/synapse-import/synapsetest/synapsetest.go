// Package synapsetest makes what a fake Synapse media store needs, for the
// importer's tests and for bench/synimport, which build one each. It
// imports no project package and is never imported by the importer itself.
package synapsetest

import "math/rand/v2"

// MediaID returns a Synapse-style media ID drawn from rng: 24 ASCII
// letters. The same rng state gives the same ID, so fixtures repeat.
func MediaID(rng *rand.Rand) string {
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 24)
	for i := range b {
		b[i] = letters[rng.IntN(len(letters))]
	}
	return string(b)
}
