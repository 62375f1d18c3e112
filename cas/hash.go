package cas

import (
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/zeebo/blake3"
)

// HashSize is the length of a Hash in bytes.
const HashSize = 32

// Hash is the BLAKE3-256 digest of a chunk or of a whole object. It is
// comparable, so it works as a map key.
type Hash [HashSize]byte

// Sum returns the BLAKE3-256 hash of b.
func Sum(b []byte) Hash { return Hash(blake3.Sum256(b)) }

// ParseHash parses the 64-character lower- or upper-case hex form.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*HashSize {
		return h, fmt.Errorf("cas: parse hash %q: want %d hex characters", s, 2*HashSize)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("cas: parse hash %q: %w", s, err)
	}
	return h, nil
}

// String returns the lower-case hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short returns the first 12 hex characters, for logs.
func (h Hash) Short() string { return hex.EncodeToString(h[:6]) }

// IsZero reports whether h is the zero value (no hash).
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText implements encoding.TextMarshaler.
func (h Hash) MarshalText() ([]byte, error) {
	b := make([]byte, 2*HashSize)
	hex.Encode(b, h[:])
	return b, nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *Hash) UnmarshalText(b []byte) error {
	p, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = p
	return nil
}

// Hasher computes a Hash incrementally. The zero value is not usable; call
// NewHasher.
type Hasher struct{ h *blake3.Hasher }

var _ hash.Hash = (*blake3.Hasher)(nil)

// NewHasher returns a Hasher ready for writing.
func NewHasher() *Hasher { return &Hasher{h: blake3.New()} }

// Write adds p to the hash; it never fails.
func (h *Hasher) Write(p []byte) (int, error) { return h.h.Write(p) }

// Sum returns the hash of everything written so far.
func (h *Hasher) Sum() Hash {
	var out Hash
	h.h.Sum(out[:0])
	return out
}

// Reset forgets everything written.
func (h *Hasher) Reset() { h.h.Reset() }

// ErrCorrupt means content did not hash to the name it is stored under.
var ErrCorrupt = errors.New("cas: content does not match its hash")

// VerifyReader returns a reader of r that hashes what it reads and, at the
// end of r, returns an error wrapping ErrCorrupt instead of io.EOF when the
// content did not hash to want. It is the one place where stored or received
// bytes are checked against their name.
func VerifyReader(r io.Reader, want Hash) io.Reader {
	return &verifyReader{r: r, want: want, h: blake3.New()}
}

type verifyReader struct {
	r    io.Reader
	want Hash
	h    *blake3.Hasher
}

func (v *verifyReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF {
		var got Hash
		v.h.Sum(got[:0])
		if got != v.want {
			return n, fmt.Errorf("%w: want %s, got %s", ErrCorrupt, v.want.Short(), got.Short())
		}
	}
	return n, err
}
