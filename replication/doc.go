// Package replication keeps a standby's store a copy of a primary's: the
// primary serves its change log and chunks over HTTP (NewPrimary), a
// standby follows them (Standby), and ChunkSource reads single chunks from a
// live peer for media's repair. It never writes records itself: the standby
// stores chunks with media.Store.PutChunks and applies changes with
// media.Store.ApplyChange, which verify and sync; it never serves anything
// to a request that fails authentication.
//
// # Wire protocol, version 1
//
// Everything is under /_mxcas/replication/v1/ on the primary's replication
// listener (plain HTTP or HTTPS: TLS is the listener's business). All
// endpoints are read-only and idempotent.
//
// Authentication. Every request carries
//
//	Authorization: MXCAS-HMAC ts=<unix seconds>,mac=<64 lower-case hex>
//
// where mac is HMAC-SHA256, keyed with the shared secret, of the string
//
//	"MXCAS-HMAC-v1\n" + method + "\n" + request-URI + "\n" + ts + "\n" + body-sha256
//
// request-URI is the path and query exactly as sent in the request line
// (e.g. "/_mxcas/replication/v1/changes?after=5&limit=256&wait_ms=25000"),
// ts the same decimal as in the header, body-sha256 the lower-case hex
// SHA-256 of the request body (of the empty string for GET). The primary
// recomputes the MAC (compared in constant time), refuses a timestamp more
// than 5 minutes from its clock, and answers anything it refuses with 401
// and a JSON error, before looking at the request any further. The secret
// never travels; a captured request can be replayed only within those 5
// minutes and only fetches again what its response already carried. Without
// TLS the media bytes themselves travel in clear.
//
// Errors are JSON: {"errcode": "MXCAS_...", "error": "human text"} with
// 400 MXCAS_BAD_REQUEST, 401 MXCAS_UNAUTHORIZED, 404 MXCAS_NOT_FOUND, 405
// MXCAS_METHOD, 409 MXCAS_DIVERGED, 410 MXCAS_TRIMMED, 413 MXCAS_TOO_LARGE or 500
// MXCAS_INTERNAL.
//
// GET /_mxcas/replication/v1/status → 200 {"head": H}: the number of the
// primary's last durable change.
//
// GET /_mxcas/replication/v1/changes?after=N&limit=M&wait_ms=T[&after_digest=D] → 200
//
//	{"head": H, "changes": [{"seq": N+1, "ops": "<base64>"}, ...]}
//
// the changes after N, in order and without gaps, at most M of them (1 to
// 1000, default 256) and fewer when they exceed 16 MiB of operations
// (always at least one when there is one). ops is the change's encoded
// operations (index/doc.go), standard base64. When there is no change after
// N the request waits up to T milliseconds (0 to 30000, default 0) for
// one to be committed and durable, then answers, possibly with none; H is
// always the head when the answer was made. A change is only ever served
// once durable on the primary, and its number never changes. When N is
// past H (the primary is behind the standby: a wrong or restored primary)
// the answer comes at once, with no change. When the log no longer holds
// the changes after N: 410 MXCAS_TRIMMED, and the standby must be seeded
// again from a backup. D is the standby's digest of its change N (hex
// SHA-256 of its operations, as served): when the primary holds change N
// and its digest differs, the histories diverged (a primary restored from
// an older backup and written to since, or another store's primary): 409
// MXCAS_DIVERGED, and the standby must be seeded again. A primary that no
// longer holds change N does not check.
//
// POST /_mxcas/replication/v1/chunks, body: 1 to 256 raw 32-byte chunk
// hashes (BLAKE3-256), concatenated → 200 application/octet-stream, one
// frame per hash, in request order, streamed as the chunks are read:
//
//	[32-byte hash][4-byte big-endian length L][L bytes]
//
// A chunk the primary does not hold intact (missing, or failing its hash)
// is a frame with L = 0xFFFFFFFF and no bytes. A body that is empty, too
// long or not a multiple of 32 bytes is 400 or 413. Once the status is sent
// an error ends the stream early: the reader sees a short stream. The
// reader must check every frame's hash is the one asked for in that
// position and that its bytes hash to it.
//
// # Guarantees
//
// A standby applies changes in the primary's order, each only after every
// chunk it names is stored, verified and synced on the standby, and each
// under the primary's number; its Head is therefore always a prefix of the
// primary's history, and a crash (even kill -9) at any point resumes from
// its Head, fetching only chunks it does not yet hold. Bytes are verified
// against their hashes on both ends: a damaged or altered chunk is never
// stored or applied. Wrong secret (401) and a trimmed log (410) stop the
// standby (ErrUnauthorized, ErrTrimmed); other failures are retried with
// capped exponential backoff.
package replication
