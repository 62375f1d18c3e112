package archive

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Manifest versions MMR has written.
const (
	VersionV1 = 1
	VersionV2 = 2
)

// Names of the fixed members of the manifest part.
const (
	ManifestPart = "export-manifest.tgz"
	manifestName = "manifest.json"
	indexName    = "index.html"
)

// MaxManifestBytes bounds the manifest.json a reader accepts, so a hostile
// archive cannot make it decode an unbounded document.
const MaxManifestBytes = 256 << 20

var (
	// ErrInvalidEntry is returned by Writer.AddMedia for an entry whose
	// origin, media ID or size cannot be written safely.
	ErrInvalidEntry = errors.New("archive: invalid entry")
	// ErrDuplicate is returned by Writer.AddMedia for an mxc URI already added.
	ErrDuplicate = errors.New("archive: duplicate media")
	// ErrSizeMismatch means a body did not have the size it was declared
	// with (writer) or the manifest states (reader).
	ErrSizeMismatch = errors.New("archive: size mismatch")
	// ErrCorrupt means a body's sha256 differs from the manifest's.
	ErrCorrupt = errors.New("archive: sha256 mismatch")
	// ErrNoManifest means no part holds a manifest.json.
	ErrNoManifest = errors.New("archive: no manifest")
	// ErrInvalidManifest means manifest.json is not a v1 or v2 manifest.
	ErrInvalidManifest = errors.New("archive: invalid manifest")
	// ErrInvalidRecord means a manifest record is inconsistent or unsafe
	// (key not its mxc URI, file name with a path, bad hash or size).
	ErrInvalidRecord = errors.New("archive: invalid manifest record")
	// ErrMissing means the manifest lists a media whose file no part holds.
	ErrMissing = errors.New("archive: media file missing")
	// ErrClosed is returned by a Writer used after Close or a failed write.
	ErrClosed = errors.New("archive: writer closed")
)

// Manifest is manifest.json. Media is keyed by mxc URI. A v1 manifest is
// returned with Version VersionV2 and EntityID taken from its user_id.
type Manifest struct {
	Version   int                `json:"version"`
	EntityID  string             `json:"entity_id"`
	CreatedTS int64              `json:"created_ts"`
	Media     map[string]*Record `json:"media"`
	// UserID is the v1 name of EntityID; the writer never sets it.
	UserID string `json:"user_id,omitempty"`
}

// Record is one media in the manifest, field for field MMR's. FileName is
// the name inside the archive; Name is the name the uploader gave.
type Record struct {
	Name        string `json:"name"`
	FileName    string `json:"file_name"`
	SizeBytes   int64  `json:"size_bytes"`
	ContentType string `json:"content_type"`
	S3URL       string `json:"s3_url"`
	SHA256      string `json:"sha256"`
	Origin      string `json:"origin"`
	MediaID     string `json:"media_id"`
	CreatedTS   int64  `json:"created_ts"`
	Uploader    string `json:"uploader"`
}

// MXC returns the record's mxc URI, the manifest key it must have.
func (r *Record) MXC() string { return mxcURI(r.Origin, r.MediaID) }

func mxcURI(origin, mediaID string) string { return "mxc://" + origin + "/" + mediaID }

// check reports whether a record read from an archive is consistent with
// its key and safe to use.
func (r *Record) check(key string) error {
	switch {
	case key != r.MXC():
		return fmt.Errorf("%w: key %q is not mxc://origin/media_id", ErrInvalidRecord, key)
	case validOrigin(r.Origin) != nil || validMediaID(r.MediaID) != nil:
		return fmt.Errorf("%w: bad origin or media_id", ErrInvalidRecord)
	case !plainName(r.FileName):
		return fmt.Errorf("%w: unsafe file_name %q", ErrInvalidRecord, r.FileName)
	case r.SizeBytes < 0:
		return fmt.Errorf("%w: negative size_bytes", ErrInvalidRecord)
	case !isSHA256Hex(r.SHA256):
		return fmt.Errorf("%w: sha256 %q is not 64 hex digits", ErrInvalidRecord, r.SHA256)
	}
	return nil
}

// decodeManifest reads manifest.json, upgrading v1 to v2 as MMR does.
func decodeManifest(r io.Reader) (*Manifest, error) {
	var m Manifest
	lr := &io.LimitedReader{R: r, N: MaxManifestBytes + 1}
	if err := json.NewDecoder(lr).Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidManifest, err)
	}
	if lr.N <= 0 {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidManifest, MaxManifestBytes)
	}
	if m.Version == VersionV1 {
		m.EntityID, m.UserID, m.Version = m.UserID, "", VersionV2
	}
	switch {
	case m.Version != VersionV2:
		return nil, fmt.Errorf("%w: unsupported version %d", ErrInvalidManifest, m.Version)
	case m.EntityID == "":
		return nil, fmt.Errorf("%w: no entity", ErrInvalidManifest)
	case m.Media == nil:
		return nil, fmt.Errorf("%w: no media", ErrInvalidManifest)
	}
	for k, rec := range m.Media {
		if rec == nil {
			delete(m.Media, k)
		}
	}
	return &m, nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// plainName reports whether name is a single, plain path element.
func plainName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\\\x00")
}

func validOrigin(origin string) error {
	if !plainName(origin) || strings.ContainsAny(origin, "?#") {
		return fmt.Errorf("%w: origin %q", ErrInvalidEntry, origin)
	}
	return nil
}

// validMediaID accepts the Matrix media ID alphabet [A-Za-z0-9_-].
func validMediaID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty media ID", ErrInvalidEntry)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w: media ID %q", ErrInvalidEntry, id)
		}
	}
	return nil
}
