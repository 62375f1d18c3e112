package jpegscale

// Reduced inverse DCTs, shaped like libjpeg's jidctred.c but computing the
// box average. Averaging the 8 samples that an 8-point inverse DCT gives
// into n groups of 8/n is linear, so each group's mean is a weighted sum of
// the 8 coefficients, the weight of coefficient k in group j being
//
//	0.5·c(k)·mean over x in group j of cos((2x+1)kπ/16),  c(0) = 1/√2.
//
// Applied to the columns and then the rows of a block this gives the mean of
// each (8/n)×(8/n) square of the full inverse DCT, without computing it.
//
// For n = 4 (pairs) the mean of a pair is cos(kπ/16)·cos((2j+1)kπ/8): a
// 4-point inverse DCT of the coefficients k and 8-k folded together
// (coefficient 4 drops out), so each 1-D pass is 11 multiplications
// instead of 28. For n = 2 the even coefficients but the DC drop out and
// the two halves are the DC plus and minus one odd sum. The weights are
// divided by the DC's, 0.5/√2, so the DC needs no multiplication; the 2-D
// result is then 8 times too large, which the last shift takes back.
//
// The arithmetic is integer, as in libjpeg: weights scaled by 1<<fixBits,
// passBits of extra precision kept between the two passes, so every
// platform gives the same pixels. TestReducedWeights checks the constants
// against the formula above.
const (
	fixBits  = 13
	passBits = 2

	// The 4-point pass: wK = √2·cos(kπ/16), c1 = cos(π/8), c2 = cos(π/4),
	// c3 = cos(3π/8), all times 1<<fixBits.
	c1w1, c3w1 = 10498, 4348
	c1w7, c3w7 = 2088, 865
	c1w3, c3w3 = 8900, 3686
	c1w5, c3w5 = 5946, 2463
	c2w2, c2w6 = 7568, 3135

	// The 2-point pass: vK = √2·mean of cos((2x+1)kπ/16) over x = 0..3,
	// times 1<<fixBits.
	v1, v3, v5, v7 = 7423, -2607, 1742, -1477

	// pass1Shift and pass2Shift take the fixed-point sums of the first pass
	// to passBits of fraction, and those of the second to integers (the 3
	// undoes the factor 8 of the DC-relative weights).
	pass1Shift = fixBits - passBits
	pass2Shift = fixBits + passBits + 3
	round1     = 1 << (pass1Shift - 1)
	round2     = 1 << (pass2Shift - 1)
)

// idct4x4 writes the 4x4 means of the inverse DCT of b (quantized
// coefficients in natural order, dequantized here by q, the quantization
// table in natural order), level shifted and clipped, to dst.
func idct4x4(b, q *block, dst []byte, stride int) {
	// ws[j*8+u]: column u of the coefficients reduced to sample j, with
	// passBits of fraction. Column 4 has no weight.
	var ws [4 * 8]int32
	for _, u := range [...]int{0, 1, 2, 3, 5, 6, 7} {
		c, qc, w := (*[57]int32)(b[u:]), (*[57]int32)(q[u:]), (*[25]int32)(ws[u:])
		dc := c[0] * qc[0]
		// A column (below, a row) without AC coefficients is its DC
		// throughout: the full pass gives the same, at more cost.
		if c[8]|c[16]|c[24]|c[40]|c[48]|c[56] == 0 {
			dc <<= passBits
			w[0], w[8], w[16], w[24] = dc, dc, dc, dc
			continue
		}
		y0, y1, y2, y3 := reduce4(dc, c[8]*qc[8], c[16]*qc[16], c[24]*qc[24], c[40]*qc[40], c[48]*qc[48], c[56]*qc[56])
		w[0] = (y0 + round1) >> pass1Shift
		w[8] = (y1 + round1) >> pass1Shift
		w[16] = (y2 + round1) >> pass1Shift
		w[24] = (y3 + round1) >> pass1Shift
	}
	for j := range 4 {
		r := (*[8]int32)(ws[j*8:])
		d := (*[4]byte)(dst[j*stride:])
		if r[1]|r[2]|r[3]|r[5]|r[6]|r[7] == 0 {
			v := levelShift((r[0] + round2>>fixBits) >> (pass2Shift - fixBits))
			d[0], d[1], d[2], d[3] = v, v, v, v
			continue
		}
		y0, y1, y2, y3 := reduce4(r[0], r[1], r[2], r[3], r[5], r[6], r[7])
		d[0] = levelShift((y0 + round2) >> pass2Shift)
		d[1] = levelShift((y1 + round2) >> pass2Shift)
		d[2] = levelShift((y2 + round2) >> pass2Shift)
		d[3] = levelShift((y3 + round2) >> pass2Shift)
	}
}

// reduce4 is the 4-point pass: the pair means of the 8-point inverse DCT of
// x0..x7 (x4 has no weight), times 1<<fixBits and divided by the DC weight.
func reduce4(x0, x1, x2, x3, x5, x6, x7 int32) (y0, y1, y2, y3 int32) {
	x0 <<= fixBits
	even := c2w2*x2 - c2w6*x6
	odd0 := c1w1*x1 - c1w7*x7 + c3w3*x3 - c3w5*x5
	odd1 := c3w1*x1 - c3w7*x7 - c1w3*x3 + c1w5*x5
	return x0 + even + odd0, x0 - even + odd1, x0 - even - odd1, x0 + even - odd0
}

// idct2x2 is idct4x4 for 2x2 means: only the DC and the odd coefficients
// have a weight.
func idct2x2(b, q *block, dst []byte, stride int) {
	// ws[j*8+u] as in idct4x4, for the columns with a weight.
	var ws [2 * 8]int32
	for _, u := range [...]int{0, 1, 3, 5, 7} {
		c, qc, w := (*[57]int32)(b[u:]), (*[57]int32)(q[u:]), (*[9]int32)(ws[u:])
		dc := c[0] * qc[0] << fixBits
		odd := reduce2(c[8]*qc[8], c[24]*qc[24], c[40]*qc[40], c[56]*qc[56])
		w[0] = (dc + odd + round1) >> pass1Shift
		w[8] = (dc - odd + round1) >> pass1Shift
	}
	for j := range 2 {
		r := (*[8]int32)(ws[j*8:])
		d := (*[2]byte)(dst[j*stride:])
		dc := r[0] << fixBits
		odd := reduce2(r[1], r[3], r[5], r[7])
		d[0] = levelShift((dc + odd + round2) >> pass2Shift)
		d[1] = levelShift((dc - odd + round2) >> pass2Shift)
	}
}

// reduce2 is the odd half of the 2-point pass: the first half's mean less
// the DC, times 1<<fixBits and divided by the DC weight (the second half's
// is its negation).
func reduce2(x1, x3, x5, x7 int32) int32 {
	return v1*x1 + v3*x3 + v5*x5 + v7*x7
}
