// Package chunker splits a byte stream into content-defined chunks with a
// FastCDC-style gear rolling hash and normalized chunking, so that identical
// content produces identical chunks wherever it appears and deduplicates in
// the store. Boundaries are a function of the bytes and the Params alone: the
// package must never let them depend on how the reader splits its reads, on
// buffer sizes, on the platform or on anything random, and its gear table and
// masks must never change for existing Params, because every stored chunk and
// the store's FORMAT file depend on them. A Chunker holds at most a few
// Max-sized chunks in memory, in a buffer taken from a sync.Pool.
//
// DefaultParams (Min 16 KiB, Avg 64 KiB, Max 256 KiB) are chosen from the
// dedup benchmark (go run ./bench/dedup), which trades the dedup ratio on
// real media against the number of chunk files and their per-file cost.
// Figures: see README.md (Dedup).
package chunker
