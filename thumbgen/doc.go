// Package thumbgen makes Matrix media thumbnails: it sniffs an image's format
// and size from its header, refuses sources that would cost too much
// (Limits) before decoding a pixel, decodes JPEG (with its EXIF
// orientation), PNG, GIF, WebP, BMP and TIFF, crops or scales as Synapse
// does, and encodes JPEG, PNG or, for animated GIFs and WebPs, GIF. It is a leaf: it
// knows nothing of storage or HTTP, imports no project package, keeps no
// state and starts no goroutines; callers bound concurrency themselves, with
// DecodeMemory (DecodeMemoryAll for GenerateAll, which makes several
// thumbnails of one source from one decode) as the weight. It must never panic on any input, never
// upscale, and never let the same source and request produce different
// bytes: federation peers compare thumbnails.
//
// Geometry: the size asked for is a minimum (matrix-media.md). "scale" keeps
// the source's aspect ratio and covers the requested box, touching it on one
// side (Synapse fits inside the box instead; our contract says otherwise);
// "crop" covers the box and cuts the overflow from the centre, shrinking the
// box (keeping its aspect ratio) where the source is smaller than it in one
// dimension. A source that cannot reach the request without upscaling (for
// scale, one side no larger than asked; for crop, both) is returned as it
// is. Animated PNGs are recognised (acTL) and never returned animated unless
// asked for.
//
// Animated GIFs are decoded one frame at a time onto one canvas (image/gif's
// DecodeAll would hold every frame). Only the first Limits.MaxFrames frames
// are used, and no more than keep frames × canvas pixels within
// 8 × Limits.MaxPixels; a longer animation is cut short, not refused. Each output frame
// is mapped to its source frame's palette without dithering.
//
// Animated WebP (webpanim.go) is handled the same way: x/image/webp decodes
// only still images, so the RIFF container is parsed here (VP8X canvas,
// ANIM loop count, ANMF frames) and each frame's ALPH and VP8/VP8L chunks
// are handed to it as a still WebP of their own, then blended or copied
// onto a transparent canvas and disposed to transparent as the frame says
// (ANIM's background colour is only a hint, and ignored). A truncated
// chunk or a frame outside the canvas is ErrCorrupt; the canvas counts
// against MaxPixels, and frames are bounded as for GIF. Without animation
// asked for, the thumbnail is of the first frame; with it, an animated GIF
// (frames mapped to palette.Plan9, durations rounded to hundredths).
//
// Resampling, measured on a 4000x3000 4:2:0 JPEG photo (BenchmarkResample,
// 2-core AMD EPYC, Go 1.26, x/image v0.48.0), PSNR against direct CatmullRom:
//
//	strategy                      12 MP → 800x600        12 MP → 96x96 crop
//	CatmullRom                    372 ms  reference      224 ms  reference
//	BiLinear                      213 ms  56.1 dB        116 ms  52.7 dB
//	ApproxBiLinear                 15 ms  28.6 dB        0.3 ms  29.4 dB  (aliases)
//	halve ×n (ApproxBiLinear 2:1)
//	  + CatmullRom                154 ms  54.5 dB         82 ms  50.5 dB
//	ApproxBiLinear to 2x
//	  + CatmullRom                103 ms  46.8 dB        1.8 ms  39.1 dB
//	box k×k + BiLinear             92 ms  51.3 dB         14 ms  47.1 dB
//	box k×k + CatmullRom (chosen) 121 ms  51.6 dB         15 ms  47.8 dB
//
// The choice: average k×k blocks straight from the decoded YCbCr, RGBA or
// Gray pixels down to two to three times the target (other pixel types halve
// with ApproxBiLinear, which at exactly 2:1 is the same box filter), then
// CatmullRom. Direct CatmullRom is 3 to 15 times slower for no visible gain;
// skipping the prefilter (ApproxBiLinear alone, or to 2x) aliases. BiLinear
// as the last step saved about 30 ms of the ~360 ms a 12 MP thumbnail took
// (a full-size JPEG decode was ~240 ms of it) for a slightly softer result,
// so CatmullRom stays. Whole thumbnails (BenchmarkGenerateJPEG12MP, one
// core), with that full-size decode and draw.CatmullRom: 2.7 to 3.0 a second
// to 800x600 and 4.6 to 4.8 a second to a 96x96 crop, allocating 68 MiB and
// 18 MiB each in all (with the GC off, so this bounds the peak; DecodeMemory
// estimated 97 and 58 MiB). In the 800x600 case x/image/draw's scratch
// buffer, a [4]float64 per destination column and source row, was 38 MB of
// it. Now, decoded at 1/4 and 1/8 (jpegscale) and resampled as below
// (GOGC=off go test -run '^$' -bench GenerateJPEG12MP -benchmem -cpu 1
// ./thumbgen): 9.4 to 11.5 a second to 800x600 and 15 to 19 a second to the
// 96x96 crop, allocating 3.3 MB and 0.5 MB (DecodeMemory estimates 30 and
// 2.8 MiB).
//
// The last step is now our own Catmull-Rom (catmullrom.go) for YCbCr, RGBA
// and Gray sources: the same kernel and edge handling as draw.CatmullRom, in
// fixed point, converting each YCbCr pixel to RGB once rather than once per
// tap and skipping the alpha of opaque RGBA, with a ring of a few filtered
// rows instead of draw's scratch buffer. It is within 53 dB of
// draw.CatmullRom on every subsampling and on RGBA with alpha
// (TestCatmullRomMatchesDraw). Measured on a loaded 2-core machine, so
// compare within a line: a 1280x720 4:2:0 image to 800x450
// (BenchmarkResample720p) takes 34 ms and 1.6 MB against draw's 95 ms and
// 20 MB; box k×k + CatmullRom above went from ~215 ms, 53 MB, 51.6 dB to
// ~112 ms, 14 MB, 52.9 dB (96x96: ~30 ms either way, 48.5 dB). In a whole
// 800x600 thumbnail resampling drops from about 68 to 32 ms of CPU and the
// allocations from 22.5 to 3.3 MB; the 1/4 decode is the rest.
//
// GenerateAll makes every size from its one decode (BenchmarkGenerateAll12MP,
// media's five default sizes of the same photo, decoded once at 1/4): 0.54 s
// against 1.2 to 1.3 s for five Generate calls, allocating about the same
// (49 MB). Making the smaller sizes from the larger outputs instead would save
// little (the decode and the 800x600 resampling dominate) and would lose the
// guarantee that each output is Generate's bytes at the same scale.
package thumbgen
