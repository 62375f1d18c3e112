// Package testkit holds test helpers that several packages' tests share and
// that need no project package: a small tmpfs filled to the last byte, a
// PNG decompression bomb, a settable clock, a listener that counts its
// connections, and media made with ffmpeg (hostile or not). It imports no package of mxcas, so the tests of any package,
// the leaves and index included, may use it.
//
// It is for tests only: _test files and test-helper packages (such as
// media/mediatest) import it, never a library or a binary
// (scripts/check-imports checks this). Helpers that can fail take a
// testing.TB and fail the test from the calling goroutine only.
package testkit
