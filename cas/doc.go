// Package cas is the chunk store: immutable files named by the BLAKE3-256
// hash of their content, under DATA/cas/ab/cd/<64 hex>. A chunk is written
// without a name (an O_TMPFILE in its final directory, or a temp file in
// DATA/tmp where the filesystem has no O_TMPFILE), made durable, given its
// name, and the name made durable before anyone is told it exists; Batch
// groups many chunks (and concurrent batches share) the syncs, so an upload
// costs two filesystem syncs however many chunks it has. The store never rewrites a file once renamed, never
// trusts a name without a way to verify it (ReadChunk, VerifyReader), and
// knows nothing of media, manifests or the index: deciding which chunks are
// still needed is the caller's job.
//
// Its roles are small interfaces (storage.go): a ChunkOpener opens a chunk as
// a seekable Chunk (also a Filer when the bytes are a file, for the
// zero-copy path), a Reader reads a whole chunk and verifies it, a Stater, a Deleter, a
// Walker, and a BatchWriter whose WriteBatch makes chunks visible (and, for
// Store, durable) only at Commit. Storage is all of them: what a repository
// holds. Store is the filesystem implementation above; MemStore is an
// in-memory one for tests; cas/castest is the conformance suite every
// implementation passes. OpenChunk returns stored bytes unchecked.
//
// What is checked when. Every chunk is checked against its name before any
// of its bytes leave the process: Verifier.Open (used by media's Reader for
// downloads, ranges, conditional requests, federation downloads and
// thumbnail sources) opens the Chunk, refuses a length other than the
// manifest's, then reads the whole chunk into the caller's buffer and hashes
// it; the caller sends from that buffer, so a cold chunk is read once. A
// chunk that is a file (Filer) and matched is remembered, by hash, with its
// file's identity (device, inode, size, mtime, ctime; fstat at open) for
// Verifier's TTL (5 s by default, 4096 entries): while the file under the
// name still has that identity it is trusted without hashing and handed out
// as the open Chunk, whose *os.File httpapi splices to the socket without
// copying it through user space, so a hot chunk is hashed once per TTL, not
// per request. A chunk
// without a file (MemStore's) is read and hashed at every open. Any write to the file, a replacement or a truncation
// changes its identity and sends it back through a full check; what the
// cache does not catch is a change made without changing mtime or ctime
// (the disk itself rotting under a page-cache copy that is still good,
// which the next check after TTL sees once the page is re-read). ReadChunk
// (fsck, backup, repair) always reads and hashes; VerifyReader checks a
// stream (uploads, fetched remote media). Nothing is cached across
// restarts.
//
// Descriptors. Closing a Store Chunk gives its file to a pool of idle chunk
// files (at most MaxPooledFiles, least recently used closed first), and
// OpenChunk takes one from there before opening by name: a hot chunk costs
// an fstat (its identity, and whether the name still links to it) and an
// lseek, not a path walk, an open and a close. A pooled file is owned by
// one Chunk at a time, so no two readers share an offset. A file whose name
// was deleted or renamed over (link count 0) is closed, not handed out;
// Delete and placing a chunk drop its pooled files at once.
package cas
