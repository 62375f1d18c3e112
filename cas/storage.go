package cas

import (
	"io"
	"io/fs"
	"os"
)

// The chunk store's roles, one small interface each (perkeep's Fetcher,
// Receiver and Enumerator; restic's narrow views), so that a function asks
// for the narrowest view it needs: a download takes a ChunkOpener, GC a
// Walker and a Deleter, an upload a BatchWriter. Storage is all of them; the
// filesystem Store and the in-memory MemStore implement it, and
// cas/castest is the conformance suite both pass.
//
// Contracts common to every role:
//   - A missing chunk is an error wrapping ErrNotFound; content that does not
//     hash to its name, where a role checks, is an error wrapping ErrCorrupt.
//     Test both with errors.Is.
//   - Implementations are safe for concurrent use by many goroutines, except
//     that one WriteBatch and one Chunk are each used by one goroutine.
//   - A chunk is immutable once stored: whatever its name was first committed
//     with is what every later read returns, unless the medium damaged it.
type (
	// Chunk is a stored chunk opened for reading, as the bytes stored, NOT
	// checked against the chunk's name: callers that hand the bytes on
	// verify them (VerifyReader, or Reader.ReadChunk). ReadAt may be called
	// concurrently with itself, like *os.File's. Size is the stored length.
	// The caller must Close it. Reading a chunk that was deleted after it was
	// opened may fail (a file keeps its content, an object may not).
	//
	// A Chunk may offer more by interface assertion: Filer, when its bytes
	// are a file that can be sent with sendfile.
	Chunk interface {
		io.ReadSeekCloser
		io.ReaderAt
		Size() int64
	}

	// Filer is the capability of a Chunk backed by an open file (the
	// filesystem Store's are). The file belongs to the Chunk: the caller
	// must not close it, and its offset is the Chunk's offset, so reading
	// through one moves the other. The sendfile path asks for it:
	//
	//	if f, ok := c.(cas.Filer); ok { io.Copy(conn, f.File()) }
	Filer interface {
		File() *os.File
	}

	// ChunkOpener opens a stored chunk for reading, positioned at its
	// start: an error wrapping ErrNotFound when it is not stored.
	ChunkOpener interface {
		OpenChunk(h Hash) (Chunk, error)
	}

	// Reader reads a whole chunk and checks it against h: an error wrapping
	// ErrNotFound when it is not stored, ErrCorrupt when its stored bytes
	// (including a short or long chunk) do not hash to h. buf is used when
	// it is big enough and grown otherwise; the returned slice may alias buf
	// and belongs to the caller (never to the store: changing it changes no
	// stored chunk).
	Reader interface {
		ReadChunk(h Hash, buf []byte) ([]byte, error)
	}

	// Stater reports a stored chunk's information, or an error wrapping
	// ErrNotFound. Name() is the hash in hex, Size() the stored length,
	// ModTime() when the chunk was stored (or last Touched, where an
	// implementation can); GC's grace period counts from it. Sys() is
	// implementation-specific (*syscall.Stat_t for the filesystem Store, nil
	// for MemStore).
	Stater interface {
		Stat(h Hash) (fs.FileInfo, error)
	}

	// Deleter removes a stored chunk. Deleting a chunk that is not stored
	// is not an error (returns nil): GC may race a second GC or a restore,
	// and the outcome, no chunk, is the one asked for. The caller must know
	// no one needs the chunk (see media's GC and its pins).
	Deleter interface {
		Delete(h Hash) error
	}

	// Walker enumerates stored chunks: fn is called once for every chunk
	// committed before Walk began and not deleted while it runs, in no
	// particular order, with the information Stater gives. Chunks committed
	// or deleted while Walk runs may or may not be reported. fn may call the
	// store's other methods. fn's error stops the walk and is returned.
	Walker interface {
		Walk(fn func(h Hash, info fs.FileInfo) error) error
	}

	// WriteBatch stages chunks and makes them visible together. Put stages
	// chunk h with content data, which the caller has hashed to h (Put does
	// not check); data is copied, and the caller may reuse it when Put
	// returns. Put reports whether the chunk was new: false when it is
	// already stored or already put in this batch. A staged chunk is
	// invisible to every read role until Commit returns nil; once it has,
	// every chunk put is readable by every goroutine and as durable as the
	// implementation is (the filesystem Store's survive a crash; MemStore's
	// live as long as the process). Abort drops what is staged; it does
	// nothing after Commit. A write error may be returned by the Put that
	// failed, by a later Put, or by Commit; after an error the batch must be
	// aborted (Commit does it itself). A WriteBatch is used by one goroutine
	// and ends with Commit or Abort; concurrent batches, even of the same
	// chunks, are safe, and implementations may share work (syncs) between
	// them.
	WriteBatch interface {
		Put(h Hash, data []byte) (added bool, err error)
		Commit() error
		Abort()
	}

	// BatchWriter starts write batches.
	BatchWriter interface {
		BeginBatch() WriteBatch
	}

	// Storage is a chunk store with every role: what media holds. Close
	// releases it; batches and open chunks must be finished first, and no
	// method may be called after.
	Storage interface {
		ChunkOpener
		Reader
		Stater
		Deleter
		Walker
		BatchWriter
		io.Closer
	}
)

var (
	_ Storage     = (*Store)(nil)
	_ WriteBatch  = (*Batch)(nil)
	_ Storage     = (*MemStore)(nil)
	_ WriteBatch  = (*memBatch)(nil)
	_ Chunk       = (*fileChunk)(nil)
	_ Filer       = (*fileChunk)(nil)
	_ io.WriterTo = (*fileChunk)(nil)
)
