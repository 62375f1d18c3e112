package jpegscale

import "bytes"

// What a progressive decode keeps and skips at a scale. Between scans the
// decoder keeps each block's coefficients in progCoeffs, progBlockLen of
// them a block, in natural order, as int16 (libjpeg's JCOEF): the decode
// and refine code work on an int32 block, which loadProgBlock and
// saveProgBlock convert from and to. The quantized coefficients of a valid
// 8-bit JPEG fit in int16 (DC magnitudes under 2^11, AC under 2^10; a
// point transform only clears low bits); a corrupt file's larger values
// wrap, as Go's conversion and libjpeg do, so its output may change but
// nothing panics. At denom 8 only the DC term is ever read
// (reconstructBlock writes the block's mean), so a block keeps one
// coefficient and every AC scan (Ss > 0), first pass or refinement, is
// skipped unread: no scan carries DC and AC together, and DC scans read
// nothing the AC scans leave. At denom 4 and 2 the reduced inverse DCTs
// read coefficients up to the highest frequency (idctred.go), so every AC
// scan is needed there and nothing is skipped.

// progBlockLen is how many coefficients a block keeps between scans.
func (d *decoder) progBlockLen() int {
	if d.denom == 8 {
		return 1
	}
	return blockSize
}

// loadProgBlock returns block k of component c as the earlier scans left it.
func (d *decoder) loadProgBlock(c uint8, k int) block {
	if d.progBlockLen() == 1 {
		return block{0: int32(d.progCoeffs[c][k])}
	}
	var b block
	for i, v := range (*[blockSize]int16)(d.progCoeffs[c][k*blockSize:]) {
		b[i] = int32(v)
	}
	return b
}

// saveProgBlock keeps the coefficients of b that later scans and the
// reconstruction read as block k of component c, wrapping any outside
// int16.
func (d *decoder) saveProgBlock(c uint8, k int, b *block) {
	if d.progBlockLen() == 1 {
		d.progCoeffs[c][k] = int16(b[0])
		return
	}
	kept := (*[blockSize]int16)(d.progCoeffs[c][k*blockSize:])
	for i, v := range b {
		kept[i] = int16(v)
	}
}

// skipsScan reports whether a progressive scan starting at zig-zag index
// zigStart carries only coefficients that are never read at d's denom.
func (d *decoder) skipsScan(zigStart int32) bool {
	return d.progressive && d.denom == 8 && zigStart > 0
}

// skipScan advances over a scan's entropy-coded data to the marker after
// it, without decoding it: past stuffed bytes (0xff 0x00) and restart
// markers, to the first 0xff followed by any other byte, which it leaves
// unread for decode's marker loop. ta is the scan's AC table, which must
// be defined as if the scan were decoded.
func (d *decoder) skipScan(ta uint8) error {
	if d.huff[acTable][ta].nCodes == 0 {
		return FormatError("uninitialized Huffman table")
	}
	d.bits = bits{}
	d.bytes.nUnreadable = 0
	for {
		if k := bytes.IndexByte(d.bytes.buf[d.bytes.i:d.bytes.j], 0xff); k < 0 {
			d.bytes.i = d.bytes.j
			if err := d.fill(); err != nil {
				return err
			}
			continue
		} else {
			d.bytes.i += k + 1
		}
		x, err := d.readByte()
		for err == nil && x == 0xff { // fill bytes before a marker
			x, err = d.readByte()
		}
		if err != nil {
			return err
		}
		if x != 0 && (x < rst0Marker || rst7Marker < x) {
			// fill keeps the last 2 bytes read, so the 0xff before x is
			// still in buf.
			d.bytes.i -= 2
			return nil
		}
	}
}
