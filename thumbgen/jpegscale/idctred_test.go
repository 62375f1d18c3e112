package jpegscale

import (
	"math"
	"math/rand/v2"
	"testing"
)

// boxMeanIDCT is the float reference of the reduced inverse DCTs: the full
// 8x8 inverse DCT of c (dequantized, natural order) averaged over
// (8/n)×(8/n) squares, level shifted and clipped.
func boxMeanIDCT(c *[64]float64, n int) []uint8 {
	var full [64]float64
	for y := range 8 {
		for x := range 8 {
			var s float64
			for v := range 8 {
				for u := range 8 {
					s += dctWeight(u, x) * dctWeight(v, y) * c[v*8+u]
				}
			}
			full[y*8+x] = s
		}
	}
	g := 8 / n
	out := make([]uint8, n*n)
	for j := range n {
		for i := range n {
			var s float64
			for y := j * g; y < (j+1)*g; y++ {
				for x := i * g; x < (i+1)*g; x++ {
					s += full[y*8+x]
				}
			}
			out[j*n+i] = uint8(min(max(math.Round(s/float64(g*g))+128, 0), 255))
		}
	}
	return out
}

// dctWeight is the weight of frequency k in sample x of an 8-point inverse DCT.
func dctWeight(k, x int) float64 {
	ck := 0.5
	if k == 0 {
		ck = 0.5 / math.Sqrt2
	}
	return ck * math.Cos(float64((2*x+1)*k)*math.Pi/16)
}

// TestReducedIDCT compares idct4x4 and idct2x2 with the float box mean on
// random blocks, dense and sparse, and random quantization tables: no sample
// may be off by more than one.
func TestReducedIDCT(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	reductions := []struct {
		n    int
		idct func(b, q *block, dst []byte, stride int)
	}{{4, idct4x4}, {2, idct2x2}}
	offByOne := 0
	for trial := range 2000 {
		var b, q block
		var c [64]float64
		density := []float64{1, 0.3, 0.05}[trial%3]
		for k := range b {
			q[k] = 1 + rng.Int32N(40)
			if k == 0 {
				b[k] = rng.Int32N(1024/q[k]) - 512/q[k]
			} else if rng.Float64() < density {
				b[k] = int32(rng.NormFloat64() * 60 / float64(q[k]))
			}
			c[k] = float64(b[k] * q[k])
		}
		for _, r := range reductions {
			const stride = 5
			dst := make([]byte, stride*r.n)
			r.idct(&b, &q, dst, stride)
			want := boxMeanIDCT(&c, r.n)
			for j := range r.n {
				for i := range r.n {
					d := int(dst[j*stride+i]) - int(want[j*r.n+i])
					if d < -1 || d > 1 {
						t.Fatalf("trial %d, %dx%d, sample (%d,%d): %d, want %d±1", trial, r.n, r.n, i, j, dst[j*stride+i], want[j*r.n+i])
					}
					offByOne += d * d
				}
			}
		}
	}
	t.Logf("%d samples off by one of %d", offByOne, 2000*(16+4))
}
