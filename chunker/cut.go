package chunker

import "math/bits"

// cutter finds chunk boundaries for one valid Params.
type cutter struct {
	min, avg, max int
	maskS, maskL  uint64 // tested before and after avg
}

// newCutter expects valid p. With b = log2(Avg), a cut before Avg needs the
// top b+2 bits of the hash to be zero (probability 2^-(b+2) per byte) and one
// after Avg the top b-2 bits (2^-(b-2)): FastCDC's normalization level 2. The
// top bits are used because the hash shifts left, so they mix the most bytes
// (the last 64).
func newCutter(p Params) cutter {
	b := bits.TrailingZeros(uint(p.Avg))
	return cutter{
		min:   p.Min,
		avg:   p.Avg,
		max:   p.Max,
		maskS: ^uint64(0) << (64 - (b + 2)),
		maskL: ^uint64(0) << (64 - (b - 2)),
	}
}

// cut returns the length of the chunk at the start of data, which must hold at
// least c.max bytes unless it is the rest of the stream. It reads no byte past
// c.max, so the result never depends on how much more is buffered.
//
// The first min bytes are skipped without hashing (they cannot end a chunk),
// so the hash starts from zero at offset min.
func (c *cutter) cut(data []byte) int {
	n := len(data)
	if n <= c.min {
		return n
	}
	n = min(n, c.max)
	normal := min(c.avg, n)
	k, h := scan(data[c.min:normal], 0, c.maskS)
	if k >= 0 {
		return c.min + k
	}
	if k, _ = scan(data[normal:n], h, c.maskL); k >= 0 {
		return normal + k
	}
	return n
}

// scan rolls the gear hash h = h<<1 + gear[b] over s. It returns the length of
// the shortest prefix of s after which h&mask == 0, or -1 if there is none,
// and the hash after that prefix (or after all of s).
//
// The hot loop takes 8 bytes a step. The loop-carried dependency is kept to
// one add per two bytes with FastCDC 2020's "rolling two bytes" identity
//
//	(h<<1 + g0)<<1 + g1 == h<<2 + (g0<<1 + g1)
//
// where g0<<1 + g1 does not depend on h; the hash at the odd position is
// computed off that chain, only to be tested. Loading the gear values before
// using them lets the compiler emit one LEA for each shift-and-add. Slicing a
// fixed-size array pointer removes the per-byte bounds checks. All of this
// gives the same hashes as the one-byte loop at the end (TestScanMatchesSimple).
func scan(s []byte, h, mask uint64) (int, uint64) {
	g := &gear
	i := 0
	for ; i+8 <= len(s); i += 8 {
		p := (*[8]byte)(s[i : i+8])
		g0, g1, g2, g3 := g[p[0]], g[p[1]], g[p[2]], g[p[3]]
		h1 := h<<1 + g0
		h2 := h<<2 + (g0<<1 + g1)
		h3 := h2<<1 + g2
		h = h2<<2 + (g2<<1 + g3)
		switch {
		case h1&mask == 0:
			return i + 1, h1
		case h2&mask == 0:
			return i + 2, h2
		case h3&mask == 0:
			return i + 3, h3
		case h&mask == 0:
			return i + 4, h
		}
		g0, g1, g2, g3 = g[p[4]], g[p[5]], g[p[6]], g[p[7]]
		h1 = h<<1 + g0
		h2 = h<<2 + (g0<<1 + g1)
		h3 = h2<<1 + g2
		h = h2<<2 + (g2<<1 + g3)
		switch {
		case h1&mask == 0:
			return i + 5, h1
		case h2&mask == 0:
			return i + 6, h2
		case h3&mask == 0:
			return i + 7, h3
		case h&mask == 0:
			return i + 8, h
		}
	}
	for ; i < len(s); i++ {
		h = h<<1 + g[s[i]]
		if h&mask == 0 {
			return i + 1, h
		}
	}
	return -1, h
}
