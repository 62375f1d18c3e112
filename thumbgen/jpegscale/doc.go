// Package jpegscale decodes JPEG images scaled down by 2, 4 or 8 in the DCT
// domain ("shrink on load", libjpeg's scale_denom, Pillow's draft mode):
// each 8x8 block of coefficients becomes (8/denom)x(8/denom) pixels through
// a reduced inverse DCT of the low frequencies, so neither the full-size
// inverse DCT nor the full-size planes are ever made. Thumbnails of large
// photos need a fraction of the time and memory of a full decode.
//
// It is a fork of the standard library's image/jpeg decoder (Go 1.26),
// reduced to decoding: reader.go, scan.go, huffman.go and dct.go are copied
// from it under Go's BSD license, with these changes: the decoder carries a
// denom, and processDQT keeps each quantization table in natural order too;
// makeImg allocates planes of 8/denom pixels a block; reconstructBlock
// writes the DC term alone (denom 8), a reduced inverse DCT that
// dequantizes the coefficients it reads (denom 4 and 2, idctred.go) or
// image/jpeg's inverse DCT (denom 1);
// a progressive decode keeps coefficients between scans as int16, and at
// denom 8 only each block's DC term, skipping the AC scans unread
// (progressive.go);
// the entropy decoder keeps 64 bits, refilled eight bytes at a time where
// no 0xff is near, and gives whole unused bytes back before the next marker
// (huffman.go), so it reads and fails exactly where image/jpeg's does, and
// decodes an AC code together with its extra bits from one table look-up
// when both fit in 10 bits (decodeACRun);
// YCbCrK goes through image/draw instead of image/internal/imageutil; the
// encoder, the forward DCT and the image.RegisterFormat call are gone.
// At denom 1 Decode returns exactly what image/jpeg.Decode returns.
//
// It is a leaf that only thumbgen imports. It must never panic on any input,
// and never allocate more than the size in the header implies.
package jpegscale
