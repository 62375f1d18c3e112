package index

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mxcas/mxcas/cas"
)

// MediaRecord is one piece of media, local or remote. Times are Unix
// milliseconds, as Matrix counts them. Stored as JSON so fields can be added
// without a migration; unknown fields are ignored on read.
type MediaRecord struct {
	Server      string   `json:"-"`
	MediaID     string   `json:"-"`
	Object      cas.Hash `json:"object"` // zero while pending
	Size        int64    `json:"size"`
	ContentType string   `json:"type,omitempty"`
	UploadName  string   `json:"name,omitempty"`
	Uploader    string   `json:"user,omitempty"`
	Created     int64    `json:"created"`
	// Flags.
	Quarantined  bool  `json:"quarantined,omitempty"`
	RequiresAuth bool  `json:"auth,omitempty"`    // stored while the legacy paths are frozen
	Remote       bool  `json:"remote,omitempty"`  // cached copy of another server's media
	Pending      bool  `json:"pending,omitempty"` // created, content not yet uploaded
	Expires      int64 `json:"expires,omitempty"` // when a pending ID lapses
	// Admin state.
	QuarantinedBy string `json:"qby,omitempty"`       // the admin who quarantined it
	Protected     bool   `json:"protected,omitempty"` // safe from bulk quarantine
	Deleted       bool   `json:"deleted,omitempty"`   // a tombstone: the ID is never served or reused
	LastAccess    int64  `json:"access,omitempty"`    // last read, Unix ms, kept to within an hour
}

// ChunkRef is one chunk of an object, in order.
type ChunkRef struct {
	Hash cas.Hash
	Len  uint32
	// Inline: the chunk's bytes are in the index with the manifest (see
	// Manifest.Tail and Reader.InlineChunk), not in the chunk store. Only
	// an object's last chunk may be inline.
	Inline bool
}

// Manifest says what an object is made of.
type Manifest struct {
	Size   int64
	Chunks []ChunkRef
	// Tail is the content of the last chunk when it is Inline: written by
	// PutManifest under the object's i/ key, and not read back by
	// Manifest (Reader.InlineChunk reads it), so that a manifest read to
	// list chunks never carries media bytes.
	Tail []byte
}

// Stored returns the chunks of m that are in the chunk store: every chunk
// but an inline one.
func (m Manifest) Stored() []ChunkRef {
	if _, ok := m.InlineRef(); ok {
		return m.Chunks[:len(m.Chunks)-1]
	}
	return m.Chunks
}

// InlineRef returns the inline chunk of m, if it has one.
func (m Manifest) InlineRef() (ChunkRef, bool) {
	if n := len(m.Chunks); n > 0 && m.Chunks[n-1].Inline {
		return m.Chunks[n-1], true
	}
	return ChunkRef{}, false
}

// Manifest encodings: version 1 lists each chunk as its hash and uvarint
// length; version 2, written only for a manifest with an inline chunk,
// as its hash and uvarint length<<1 | inline.
const (
	manifestVersion       = 1
	manifestVersionInline = 2
)

// ErrCorruptRecord means a stored value could not be decoded.
var ErrCorruptRecord = errors.New("index: corrupt record")

func (m Manifest) encode() []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(m.Chunks)*(cas.HashSize+3))
	_, inline := m.InlineRef()
	if inline {
		b = append(b, manifestVersionInline)
	} else {
		b = append(b, manifestVersion)
	}
	b = binary.AppendUvarint(b, uint64(m.Size))
	b = binary.AppendUvarint(b, uint64(len(m.Chunks)))
	for _, c := range m.Chunks {
		b = append(b, c.Hash[:]...)
		l := uint64(c.Len)
		if inline {
			l <<= 1
			if c.Inline {
				l |= 1
			}
		}
		b = binary.AppendUvarint(b, l)
	}
	return b
}

func decodeManifest(b []byte) (Manifest, error) {
	var m Manifest
	bad := func(what string) (Manifest, error) {
		return Manifest{}, fmt.Errorf("%w: manifest: %s", ErrCorruptRecord, what)
	}
	if len(b) == 0 || b[0] != manifestVersion && b[0] != manifestVersionInline {
		return bad("unknown version")
	}
	flags := b[0] == manifestVersionInline
	b = b[1:]
	size, n := binary.Uvarint(b)
	if n <= 0 {
		return bad("size")
	}
	b = b[n:]
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return bad("count")
	}
	b = b[n:]
	m.Size = int64(size)
	m.Chunks = make([]ChunkRef, 0, count)
	var total uint64
	for range count {
		if len(b) < cas.HashSize {
			return bad("truncated")
		}
		var c ChunkRef
		copy(c.Hash[:], b)
		b = b[cas.HashSize:]
		l, n := binary.Uvarint(b)
		if flags {
			c.Inline = l&1 == 1
			l >>= 1
		}
		if n <= 0 || l > 1<<31 {
			return bad("chunk length")
		}
		b = b[n:]
		c.Len = uint32(l)
		total += l
		m.Chunks = append(m.Chunks, c)
	}
	if len(b) != 0 || total != size {
		return bad("sizes disagree")
	}
	for i, c := range m.Chunks {
		if c.Inline && i != len(m.Chunks)-1 {
			return bad("an inline chunk before the last")
		}
	}
	if _, ok := m.InlineRef(); flags && !ok {
		return bad("version 2 without an inline chunk")
	}
	return m, nil
}

// Usage counts bytes and media.
type Usage struct {
	Bytes int64
	Count int64
}

// ThumbRecord is a stored thumbnail of a source object. JSON.
type ThumbRecord struct {
	Object      cas.Hash `json:"object"`
	Size        int64    `json:"size"`
	ContentType string   `json:"type"`
	Width       int      `json:"w"`
	Height      int      `json:"h"`
}

// DamageRecord says a read found a chunk damaged: its content did not match
// its hash, it was shorter than its manifest says, or it was missing. JSON.
type DamageRecord struct {
	// Media is the media (mxc URI) or object whose read found it.
	Media string `json:"media,omitempty"`
	// Reason is the error, for people.
	Reason string `json:"reason"`
	// Detected is when, Unix ms.
	Detected int64 `json:"at"`
}
