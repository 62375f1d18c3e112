package chunker

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"
)

func TestGearTable(t *testing.T) {
	// The table must never change; see gear.go.
	var b []byte
	for _, v := range gear {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	sum := sha256.Sum256(b)
	got := hex.EncodeToString(sum[:])
	want := "e553dc9c16b4786d45cdb90bb041ce03c881004568956c18b52945e0a88deff9"
	if got != want {
		t.Fatalf("SHA-256 of the gear table = %s, want %s", got, want)
	}
}

// scanSimple is scan written the obvious way.
func scanSimple(s []byte, h, mask uint64) (int, uint64) {
	for i, b := range s {
		h = h<<1 + gear[b]
		if h&mask == 0 {
			return i + 1, h
		}
	}
	return -1, h
}

func TestScanMatchesSimple(t *testing.T) {
	data := make([]byte, 1<<20)
	x := uint64(11)
	for i := range data {
		x = x*6364136223846793005 + 1442695040888963407
		data[i] = byte(x >> 56)
	}
	// Easy masks so that matches fall at every offset within the 8-byte
	// steps, and every length so that the one-byte tail is covered.
	for bits := 1; bits <= 12; bits++ {
		mask := ^uint64(0) << (64 - bits)
		for start := 0; start < 64; start++ {
			for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 100, 4000} {
				s := data[start*1000 : start*1000+n]
				for _, h0 := range []uint64{0, 0xdeadbeefcafebabe} {
					gotK, gotH := scan(s, h0, mask)
					wantK, wantH := scanSimple(s, h0, mask)
					if gotK != wantK || gotH != wantH {
						t.Fatalf("scan(len %d, h %#x, %d bits) = (%d, %#x), want (%d, %#x)", n, h0, bits, gotK, gotH, wantK, wantH)
					}
				}
			}
		}
	}
}
