package jpegscale

import "math"

// Reduced inverse DCTs, after libjpeg's jidctred.c. Averaging the 8 samples
// that an 8-point inverse DCT gives into n groups of 8/n is linear, so each
// group's mean is a weighted sum of the 8 coefficients: the weights are the
// cosines of the inverse DCT averaged over the group. Some weights vanish
// (for n = 4 those of coefficient 4, for n = 2 those of the even ones but
// the DC), so fewer coefficients are read. Applied to the columns and then
// the rows of a block this gives the mean of each (8/n)×(8/n) square of the
// full inverse DCT, without computing it.
//
// The arithmetic is integer, as in libjpeg: weights scaled by 1<<fixBits,
// passBits of extra precision kept between the two passes, so every
// platform gives the same pixels.
const (
	fixBits  = 13
	passBits = 2
)

// reduction is the reduced inverse DCT to n samples a side.
type reduction struct {
	n    int
	used []int       // the coefficient indexes with a non-zero weight
	m    [4][8]int32 // m[j][k]: the weight of coefficient k in sample j
}

// reducedIDCT holds the reductions by denom: 2 gives 4x4 samples a block, 4
// gives 2x2. (Denom 8 is the DC term alone; denom 1 is the full idct.)
var reducedIDCT = [5]reduction{2: newReduction(4), 4: newReduction(2)}

// newReduction computes the weights of the reduction to n samples.
func newReduction(n int) reduction {
	r := reduction{n: n}
	g := 8 / n
	for k := range 8 {
		ck := 1.0
		if k == 0 {
			ck = 1 / math.Sqrt2
		}
		nonZero := false
		for j := range n {
			var sum float64
			for x := j * g; x < (j+1)*g; x++ {
				sum += 0.5 * ck * math.Cos(float64((2*x+1)*k)*math.Pi/16)
			}
			r.m[j][k] = int32(math.Round(sum / float64(g) * (1 << fixBits)))
			nonZero = nonZero || r.m[j][k] != 0
		}
		if nonZero {
			r.used = append(r.used, k)
		}
	}
	return r
}

// idctReduced writes the r.n×r.n means of the inverse DCT of b (dequantized
// coefficients in natural order), level shifted and clipped, to dst.
func idctReduced(b *block, dst []byte, stride int, r *reduction) {
	// ws[j*8+u]: column u of the coefficients reduced to sample j.
	var ws [4 * 8]int32
	const round1, round2 = 1 << (fixBits - passBits - 1), 1 << (fixBits + passBits - 1)
	for _, u := range r.used {
		col := acColumn(b, u)
		for j := range r.n {
			s := r.m[j][0] * b[u]
			if col != 0 {
				for _, v := range r.used[1:] {
					s += r.m[j][v] * b[v*8+u]
				}
			}
			ws[j*8+u] = (s + round1) >> (fixBits - passBits)
		}
	}
	for j := range r.n {
		row := dst[j*stride : j*stride+r.n]
		for i := range row {
			var s int32
			for _, u := range r.used {
				s += r.m[i][u] * ws[j*8+u]
			}
			row[i] = levelShift((s + round2) >> (fixBits + passBits))
		}
	}
}

// acColumn is non-zero when column u of b has a non-zero coefficient below
// the first row (most columns of most blocks have none).
func acColumn(b *block, u int) int32 {
	return b[8+u] | b[16+u] | b[24+u] | b[32+u] | b[40+u] | b[48+u] | b[56+u]
}
