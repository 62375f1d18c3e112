package testkit

import (
	"encoding/binary"
	"hash/crc32"
)

// PNGChunk appends to b a PNG chunk of type typ holding data, with its
// length and CRC, and returns the extended slice.
func PNGChunk(b []byte, typ string, data []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	start := len(b)
	b = append(b, typ...)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
}

// PNGBomb is a valid PNG whose header declares w×h 8-bit RGBA pixels but
// whose image data is a few bytes: decoding it naively would allocate
// w×h×4 bytes.
func PNGBomb(w, h uint32) []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 6, 0, 0, 0) // 8-bit RGBA, no interlace
	b = PNGChunk(b, "IHDR", ihdr)
	b = PNGChunk(b, "IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	return PNGChunk(b, "IEND", nil)
}
