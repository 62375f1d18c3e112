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
// a seekable Chunk (also a Filer when the bytes are a file, for the sendfile
// path), a Reader reads a whole chunk and verifies it, a Stater, a Deleter, a
// Walker, and a BatchWriter whose WriteBatch makes chunks visible (and, for
// Store, durable) only at Commit. Storage is all of them: what a repository
// holds. Store is the filesystem implementation above; MemStore is an
// in-memory one for tests; cas/castest is the conformance suite every
// implementation passes. OpenChunk and Open return stored bytes unchecked.
package cas
