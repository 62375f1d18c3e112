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
}

// Manifest says what an object is made of.
type Manifest struct {
	Size   int64
	Chunks []ChunkRef
}

const manifestVersion = 1

// ErrCorruptRecord means a stored value could not be decoded.
var ErrCorruptRecord = errors.New("index: corrupt record")

func (m Manifest) encode() []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(m.Chunks)*(cas.HashSize+3))
	b = append(b, manifestVersion)
	b = binary.AppendUvarint(b, uint64(m.Size))
	b = binary.AppendUvarint(b, uint64(len(m.Chunks)))
	for _, c := range m.Chunks {
		b = append(b, c.Hash[:]...)
		b = binary.AppendUvarint(b, uint64(c.Len))
	}
	return b
}

func decodeManifest(b []byte) (Manifest, error) {
	var m Manifest
	bad := func(what string) (Manifest, error) {
		return Manifest{}, fmt.Errorf("%w: manifest: %s", ErrCorruptRecord, what)
	}
	if len(b) == 0 || b[0] != manifestVersion {
		return bad("unknown version")
	}
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
