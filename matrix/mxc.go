package matrix

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every validation error of this file.
var ErrInvalid = errors.New("matrix: invalid identifier")

// MXC names one piece of media: mxc://<server>/<mediaID>. An MXC is valid
// by construction: outside this package one is made only by NewMXC or
// ParseMXC, which validate, so code holding an MXC need not check it again.
// The zero MXC (IsZero) names nothing. MXC is comparable and may be a map key.
type MXC struct {
	server  string
	mediaID string
}

// ParseMXC parses and validates an mxc:// URI.
func ParseMXC(s string) (MXC, error) {
	rest, ok := strings.CutPrefix(s, "mxc://")
	if !ok {
		return MXC{}, fmt.Errorf("%w: %q is not an mxc:// URI", ErrInvalid, s)
	}
	server, id, ok := strings.Cut(rest, "/")
	if !ok {
		return MXC{}, fmt.Errorf("%w: %q has no media ID", ErrInvalid, s)
	}
	return NewMXC(server, id)
}

// NewMXC validates server (ValidateServerName) and id (ValidateMediaID) and
// returns them as an MXC; an error wraps ErrInvalid.
func NewMXC(server, id string) (MXC, error) {
	if err := ValidateServerName(server); err != nil {
		return MXC{}, err
	}
	if err := ValidateMediaID(id); err != nil {
		return MXC{}, err
	}
	return MXC{server: server, mediaID: id}, nil
}

// Server is the server name part.
func (m MXC) Server() string { return m.server }

// MediaID is the media ID part.
func (m MXC) MediaID() string { return m.mediaID }

// IsZero reports whether m is the zero MXC.
func (m MXC) IsZero() bool { return m == MXC{} }

// String returns the mxc:// form.
func (m MXC) String() string { return "mxc://" + m.server + "/" + m.mediaID }

// MaxMediaIDLength bounds media IDs we accept (Synapse's are 24 characters;
// matrix-media-repo's 32).
const MaxMediaIDLength = 255

// ValidateMediaID accepts 1 to 255 characters of [A-Za-z0-9_-].
func ValidateMediaID(id string) error {
	if id == "" || len(id) > MaxMediaIDLength {
		return fmt.Errorf("%w: media ID must be 1 to %d characters", ErrInvalid, MaxMediaIDLength)
	}
	for i := 0; i < len(id); i++ {
		if !isIDChar(id[i]) {
			return fmt.Errorf("%w: media ID %q has a character outside [A-Za-z0-9_-]", ErrInvalid, id)
		}
	}
	return nil
}

func isIDChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// ValidateServerName checks the grammar of a server name: host[:port], where
// host is a DNS name, an IPv4 literal or a bracketed IPv6 literal, and port
// is 1 to 65535.
func ValidateServerName(s string) error {
	if s == "" || len(s) > 255 {
		return fmt.Errorf("%w: server name must be 1 to 255 characters", ErrInvalid)
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return fmt.Errorf("%w: server name %q: unclosed [", ErrInvalid, s)
		}
		host, port = s[:end+1], s[end+1:]
		if a, err := netip.ParseAddr(host[1 : len(host)-1]); err != nil || !a.Is6() || a.Zone() != "" {
			return fmt.Errorf("%w: server name %q: bad IPv6 literal", ErrInvalid, s)
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i:]
	}
	if port != "" {
		p, ok := strings.CutPrefix(port, ":")
		n, err := strconv.Atoi(p)
		if !ok || err != nil || n < 1 || n > 65535 || p[0] == '0' || p[0] == '+' {
			return fmt.Errorf("%w: server name %q: bad port", ErrInvalid, s)
		}
	}
	if strings.HasPrefix(host, "[") {
		return nil
	}
	if !validDNSName(host) {
		return fmt.Errorf("%w: server name %q: bad host name", ErrInvalid, s)
	}
	return nil
}

// validDNSName accepts dot-separated labels of [A-Za-z0-9-], each 1 to 63
// characters, 1 to 255 characters in all: DNS names and IPv4 literals, as
// Synapse's host check does. Empty labels are refused, so "..", ".", a
// leading or trailing dot and "a..b" never pass (they could name a parent
// directory where a server name becomes a path).
func validDNSName(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	label := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-':
			label++
			if label > 63 {
				return false
			}
		default:
			return false
		}
	}
	return label > 0
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewMediaID returns a random 24-letter media ID (about 136 bits).
func NewMediaID() string {
	var b [24]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b[:])
}
