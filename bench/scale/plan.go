package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// sizeClass is a share of the media with sizes log-uniform in [lo, hi).
type sizeClass struct {
	share  float64
	lo, hi int
}

// mix is a named size distribution and the share of media that repeat the
// content of an earlier one.
type mix struct {
	classes []sizeClass
	dup     float64
	about   string
}

// mixes are the size mixes -mix names. issue21 is the one issue 21
// measured at 1 M media: 88.6% of 1-16 KiB and the rest of 16-512 KiB, 22 KB
// a media on average; 5% of the media are exact copies of an earlier one,
// as in bench/internal/synstore.
var mixes = map[string]mix{
	"issue21": {classes: []sizeClass{{0.886, 1 << 10, 16 << 10}, {0.114, 16 << 10, 512 << 10}}, dup: 0.05,
		about: "88.6% 1-16 KiB, 11.4% 16-512 KiB (log-uniform), 5% duplicates"},
	"small": {classes: []sizeClass{{1, 1 << 10, 16 << 10}}, dup: 0.05,
		about: "100% 1-16 KiB (log-uniform), 5% duplicates"},
	"synapse": {classes: []sizeClass{{0.80, 512, 16 << 10}, {0.18, 16 << 10, 512 << 10}, {0.02, 1 << 20, 8 << 20}}, dup: 0.05,
		about: "80% 0.5-16 KiB, 18% 16-512 KiB, 2% 1-8 MiB (log-uniform), 5% duplicates"},
}

// mixNames lists the mixes for -mix's usage.
func mixNames() string {
	var names []string
	for n := range mixes {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// item is one media of the plan: its size and the media whose content it
// carries (itself, or the earlier original it duplicates).
type item struct {
	src  int32
	size int32
}

// plan lays out n media of mix m from seed: the same arguments give the
// same plan, and item i depends only on seed and the items before it.
func plan(n int, m mix, seed uint64) []item {
	rng := rand.New(rand.NewPCG(seed, 0x5ca1e))
	items := make([]item, n)
	for i := range items {
		if i > 0 && rng.Float64() < m.dup {
			items[i] = items[rng.IntN(i)] // an original, or a copy that points at one
			continue
		}
		items[i] = item{src: int32(i), size: int32(m.size(rng))}
	}
	return items
}

// size draws one size from m.
func (m mix) size(rng *rand.Rand) int {
	r := rng.Float64()
	c := m.classes[len(m.classes)-1]
	for _, k := range m.classes {
		if r < k.share {
			c = k
			break
		}
		r -= k.share
	}
	lo, hi := math.Log(float64(c.lo)), math.Log(float64(c.hi))
	return int(math.Exp(lo + rng.Float64()*(hi-lo)))
}

// content fills b (of the item's size) with the content of original src:
// the ChaCha8 stream of (seed, src).
func content(b []byte, seed uint64, src int32) {
	var s [32]byte
	copy(s[:], "bench/scale")
	binary.LittleEndian.PutUint64(s[16:], seed)
	binary.LittleEndian.PutUint32(s[24:], uint32(src))
	rand.NewChaCha8(s).Read(b)
}

// totals are the logical bytes of items: all of them, and of their
// distinct contents.
func totals(items []item) (logical, unique int64) {
	for i, it := range items {
		logical += int64(it.size)
		if int(it.src) == i {
			unique += int64(it.size)
		}
	}
	return logical, unique
}

// describe is one line on the plan.
func describe(items []item) string {
	logical, unique := totals(items)
	small, dups := 0, 0
	for i, it := range items {
		if it.size < 16<<10 {
			small++
		}
		if int(it.src) != i {
			dups++
		}
	}
	n := float64(len(items))
	return fmt.Sprintf("%d media, %s logical (%s distinct); %.1f%% under 16 KiB, %.1f%% duplicates",
		len(items), gb(logical), gb(unique), 100*float64(small)/n, 100*float64(dups)/n)
}

// gb formats n bytes as "1.23 GB" (10^9).
func gb(n int64) string { return fmt.Sprintf("%.2f GB", float64(n)/1e9) }
