// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Forked from image/jpeg (Go 1.26) for scaled decoding; see doc.go for what changed.

package jpegscale

import (
	"encoding/binary"
	"io"
)

// maxCodeLength is the maximum (inclusive) number of bits in a Huffman code.
const maxCodeLength = 16

// maxNCodes is the maximum (inclusive) number of codes in a Huffman tree.
const maxNCodes = 256

// lutSize is the log-2 size of the Huffman decoder's look-up table.
const lutSize = 8

// valLutSize is the log-2 size of the Huffman decoder's look-up table of
// codes together with their extra bits (huffman.valLut).
const valLutSize = 10

// huffman is a Huffman decoder, specified in section C.
type huffman struct {
	// length is the number of codes in the tree.
	nCodes int32
	// lut is the look-up table for the next lutSize bits in the bit-stream.
	// The high 8 bits of the uint16 are the encoded value. The low 8 bits
	// are 1 plus the code length, or 0 if the value is too large to fit in
	// lutSize bits.
	lut [1 << lutSize]uint16
	// vals are the decoded values, sorted by their encoding.
	vals [maxNCodes]uint8
	// minCodes[i] is the minimum code of length i, or -1 if there are no
	// codes of that length.
	minCodes [maxCodeLength]int32
	// maxCodes[i] is the maximum code of length i, or -1 if there are no
	// codes of that length.
	maxCodes [maxCodeLength]int32
	// valsIndices[i] is the index into vals of minCodes[i].
	valsIndices [maxCodeLength]int32
	// valLut is the look-up table for the next valLutSize bits when they
	// hold a code whose value has 1 to 15 extra bits and those bits
	// too, as libjpeg-turbo's: bits 16-31 hold the extended extra bits
	// (signed), 8-15 the value's high nibble (the run of zeroes before an
	// AC coefficient), 4-7 the code length and 0-3 the number of extra
	// bits. The end-of-block code has its own entries (eobRun). Any
	// other entry is 0.
	valLut [1 << valLutSize]int32
}

// errShortHuffmanData means that an unexpected EOF occurred while decoding
// Huffman data.
var errShortHuffmanData error = FormatError("short Huffman data")

// fillBits tops d.bits up to more than 56 bits: eight bytes at a time when
// the next eight buffered bytes hold no 0xff, otherwise one byte-stuffed byte
// at a time, stopping before a marker or the end of the input, whose bytes it
// gives back. It reports the error that stopped it if d.bits still holds
// fewer than need bits, as image/jpeg's ensureNBits would have failed.
func (d *decoder) fillBits(need int32) error {
	for d.bits.n <= 56 {
		if d.bytes.i+8 <= d.bytes.j {
			w := binary.BigEndian.Uint64(d.bytes.buf[d.bytes.i:])
			if x := ^w; (x-0x0101010101010101)&^x&0x8080808080808080 == 0 {
				k := (64 - d.bits.n) >> 3
				d.bits.a = d.bits.a<<(8*k) | w>>(64-8*k)
				d.bits.n += 8 * k
				d.bytes.i += int(k)
				return nil
			}
		}
		c, err := d.readByteStuffedByte()
		if err != nil {
			// readByteStuffedByte leaves nUnreadable at the number of
			// bytes it took before failing.
			d.bytes.i -= d.bytes.nUnreadable
			d.bytes.nUnreadable = 0
			if d.bits.n >= need {
				return nil
			}
			if err == io.ErrUnexpectedEOF {
				return errShortHuffmanData
			}
			return err
		}
		d.bits.a = d.bits.a<<8 | uint64(c)
		d.bits.n += 8
	}
	return nil
}

// unreadBits gives the whole bytes of d.bits that no one has used back to
// d.bytes, undoing their byte stuffing, so that the input continues where
// image/jpeg's would after the entropy-coded data. fill keeps the last 16
// bytes read, as many as d.bits can hold stuffed.
func (d *decoder) unreadBits() {
	for ; d.bits.n >= 8; d.bits.n -= 8 {
		d.bytes.i--
		if d.bytes.buf[d.bytes.i] == 0x00 && d.bytes.i > 0 && d.bytes.buf[d.bytes.i-1] == 0xff {
			d.bytes.i--
		}
	}
}

// receiveExtend is the composition of RECEIVE and EXTEND, specified in section
// F.2.2.1.
func (d *decoder) receiveExtend(t uint8) (int32, error) {
	if d.bits.n < int32(t) {
		if err := d.fillBits(int32(t)); err != nil {
			return 0, err
		}
	}
	d.bits.n -= int32(t)
	s := int32(1) << t
	x := int32(d.bits.a>>uint8(d.bits.n)) & (s - 1)
	if x < s>>1 {
		x += ((-1) << t) + 1
	}
	return x, nil
}

// processDHT processes a Define Huffman Table marker, and initializes a huffman
// struct from its contents. Specified in section B.2.4.2.
func (d *decoder) processDHT(n int) error {
	for n > 0 {
		if n < 17 {
			return FormatError("DHT has wrong length")
		}
		if err := d.readFull(d.tmp[:17]); err != nil {
			return err
		}
		tc := d.tmp[0] >> 4
		if tc > maxTc {
			return FormatError("bad Tc value")
		}
		th := d.tmp[0] & 0x0f
		// The baseline th <= 1 restriction is specified in table B.5.
		if th > maxTh || (d.baseline && th > 1) {
			return FormatError("bad Th value")
		}
		h := &d.huff[tc][th]

		// Read nCodes and h.vals (and derive h.nCodes).
		// nCodes[i] is the number of codes with code length i.
		// h.nCodes is the total number of codes.
		h.nCodes = 0
		var nCodes [maxCodeLength]int32
		for i := range nCodes {
			nCodes[i] = int32(d.tmp[i+1])
			h.nCodes += nCodes[i]
		}
		if h.nCodes == 0 {
			return FormatError("Huffman table has zero length")
		}
		if h.nCodes > maxNCodes {
			return FormatError("Huffman table has excessive length")
		}
		n -= int(h.nCodes) + 17
		if n < 0 {
			return FormatError("DHT has wrong length")
		}
		if err := d.readFull(h.vals[:h.nCodes]); err != nil {
			return err
		}

		// Derive the look-up table.
		clear(h.lut[:])
		var x, code uint32
		for i := uint32(0); i < lutSize; i++ {
			code <<= 1
			for j := int32(0); j < nCodes[i]; j++ {
				// The codeLength is 1+i, so shift code by 8-(1+i) to
				// calculate the high bits for every 8-bit sequence
				// whose codeLength's high bits matches code.
				// The high 8 bits of lutValue are the encoded value.
				// The low 8 bits are 1 plus the codeLength.
				base := uint8(code << (7 - i))
				lutValue := uint16(h.vals[x])<<8 | uint16(2+i)
				for k := uint8(0); k < 1<<(7-i); k++ {
					h.lut[base|k] = lutValue
				}
				code++
				x++
			}
		}

		h.deriveValLut(&nCodes)

		// Derive minCodes, maxCodes, and valsIndices.
		var c, index int32
		for i, n := range nCodes {
			if n == 0 {
				h.minCodes[i] = -1
				h.maxCodes[i] = -1
				h.valsIndices[i] = -1
			} else {
				h.minCodes[i] = c
				h.maxCodes[i] = c + n - 1
				h.valsIndices[i] = index
				c += n
				index += n
			}
			c <<= 1
		}
	}
	return nil
}

// deriveValLut fills h.valLut from h.vals and nCodes, the number of codes
// of each length.
func (h *huffman) deriveValLut(nCodes *[maxCodeLength]int32) {
	clear(h.valLut[:])
	if oversubscribed(nCodes) {
		return // decodeACRun leaves every code to decodeHuffman.
	}
	var x, code int32
	for l := int32(1); l <= valLutSize; l++ {
		for j := int32(0); j < nCodes[l-1]; j, code, x = j+1, code+1, x+1 {
			s := int32(h.vals[x] & 0x0f)
			if h.vals[x] == 0x00 {
				h.setValLut(code<<(valLutSize-l), valLutSize-l, eobRun<<8|l<<4)
			}
			if s == 0 || l+s > valLutSize {
				continue
			}
			for extra := int32(0); extra < 1<<s; extra++ {
				v := extra
				if v < 1<<(s-1) {
					v += -1<<s + 1
				}
				free := valLutSize - l - s
				h.setValLut((code<<s|extra)<<free, free, v<<16|int32(h.vals[x]>>4)<<8|l<<4|s)
			}
		}
		code <<= 1
	}
}

// oversubscribed reports whether nCodes, the number of codes of each
// length, holds more codes than there are bit strings for (a corrupt
// table, whose codes image/jpeg's look-up table and bit-by-bit decoding
// read differently).
func oversubscribed(nCodes *[maxCodeLength]int32) bool {
	left := int32(1)
	for _, n := range nCodes {
		if left = left*2 - n; left < 0 {
			return true
		}
	}
	return false
}

// eobRun is the run valLut gives an AC table's end-of-block code (value
// 0x00): more than any block has left, so that decodeACRun ends the block
// after consuming the code alone, as processSOS does for it when no
// end-of-band run is pending.
const eobRun = 0x80

// setValLut sets the 1<<free entries of h.valLut from base to e.
func (h *huffman) setValLut(base, free, e int32) {
	for k := int32(0); k < 1<<free; k++ {
		h.valLut[base|k] = e
	}
}

// decodeACRun decodes the AC coefficients of b from zig-zag index zig on,
// shifted left by al, for as long as each code and its extra bits are in
// h.valLut and in d.bits. It returns the index of the next coefficient, to
// decode the slow way, or one past zigEnd or more when the block ended,
// with a run past zigEnd consuming its code alone as processSOS does.
func (d *decoder) decodeACRun(b *block, h *huffman, zig, zigEnd int32, al uint32) int32 {
	// The bits stay in locals in the loop: d.bits.a only changes in fillBits.
	a, n := d.bits.a, d.bits.n
	for zig <= zigEnd {
		if n < valLutSize {
			d.bits.n = n
			_ = d.fillBits(0)
			a, n = d.bits.a, d.bits.n
			if n < valLutSize {
				break
			}
		}
		e := h.valLut[a>>((n-valLutSize)&63)&(1<<valLutSize-1)]
		if e == 0 {
			break
		}
		zig += e >> 8 & 0xff
		n -= e >> 4 & 0x0f
		if zig > zigEnd {
			break
		}
		n -= e & 0x0f
		b[unzig[zig&(blockSize-1)]] = e >> 16 << al
		zig++
	}
	d.bits.n = n
	return zig
}

// decodeHuffman returns the next Huffman-coded value from the bit-stream,
// decoded according to h.
func (d *decoder) decodeHuffman(h *huffman) (uint8, error) {
	if h.nCodes == 0 {
		return 0, FormatError("uninitialized Huffman table")
	}
	var errEnd error
	if d.bits.n < maxCodeLength {
		// As image/jpeg, look up h.lut whenever lutSize bits are left:
		// an oversubscribed table's h.lut disagrees with its codes.
		if errEnd = d.fillBits(maxCodeLength); errEnd != nil && d.bits.n < lutSize {
			return d.decodeHuffmanBits(h, errEnd)
		}
	}
	if v := h.lut[(d.bits.a>>uint32(d.bits.n-lutSize))&0xff]; v != 0 {
		d.bits.n -= int32(v&0xff) - 1
		return uint8(v >> 8), nil
	}
	return d.decodeHuffmanBits(h, errEnd)
}

// decodeHuffmanBits decodes the next value one bit at a time, for codes
// longer than lutSize and at the end of the data, where errEnd is why
// d.bits cannot be filled further and is returned if the code runs past
// the bits left.
func (d *decoder) decodeHuffmanBits(h *huffman, errEnd error) (uint8, error) {
	for i, code := 0, int32(0); i < maxCodeLength; i++ {
		if d.bits.n == 0 {
			return 0, errEnd
		}
		d.bits.n--
		code |= int32(d.bits.a>>uint32(d.bits.n)) & 1
		if code <= h.maxCodes[i] {
			return h.vals[h.valsIndices[i]+code-h.minCodes[i]], nil
		}
		code <<= 1
	}
	return 0, FormatError("bad Huffman code")
}

func (d *decoder) decodeBit() (bool, error) {
	if d.bits.n == 0 {
		if err := d.fillBits(1); err != nil {
			return false, err
		}
	}
	d.bits.n--
	return d.bits.a>>uint32(d.bits.n)&1 != 0, nil
}

func (d *decoder) decodeBits(n int32) (uint32, error) {
	if d.bits.n < n {
		if err := d.fillBits(n); err != nil {
			return 0, err
		}
	}
	d.bits.n -= n
	return uint32(d.bits.a>>uint32(d.bits.n)) & (1<<uint32(n) - 1), nil
}
