package index

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// PreviewRecord is a URL preview as it was made at Fetched: the page's og:
// keys and, when it had one that could be stored, its image as local media.
// JSON.
type PreviewRecord struct {
	Fetched int64             `json:"fetched"` // Unix ms
	OG      map[string]string `json:"og,omitempty"`
	// The image (empty Image: none): its mxc URI, type, pixel size (0:
	// unknown) and bytes.
	Image       string `json:"image,omitempty"`
	ImageType   string `json:"itype,omitempty"`
	ImageWidth  int    `json:"iw,omitempty"`
	ImageHeight int    `json:"ih,omitempty"`
	ImageSize   int64  `json:"isize,omitempty"`
}

// previewKey is l/<server>/<url>\x00<hour>: the homeserver whose media
// holds the image, the URL, and the start of the preview's hour, Unix ms,
// 8 bytes big-endian. A server name holds no "/" and url no 0x00 (media
// refuses such URLs).
func previewKey(server, url string, hour int64) []byte {
	k := append(append([]byte(nil), prefixPreview...), server...)
	k = append(append(append(k, '/'), url...), 0)
	return binary.BigEndian.AppendUint64(k, uint64(hour))
}

// PutPreview records server's preview of url for the hour starting at hour.
func (b *Batch) PutPreview(server, url string, hour int64, p PreviewRecord) error {
	return b.setJSON(previewKey(server, url, hour), p)
}

// Preview returns server's preview of url for the hour starting at hour,
// or ErrNotFound.
func (r reader) Preview(server, url string, hour int64) (PreviewRecord, error) {
	var p PreviewRecord
	err := r.get(previewKey(server, url, hour), func(v []byte) error {
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("%w: preview: %v", ErrCorruptRecord, err)
		}
		return nil
	})
	return p, err
}

// DeletePreview forgets server's preview of url for the hour starting at
// hour.
func (b *Batch) DeletePreview(server, url string, hour int64) error {
	return b.delete(previewKey(server, url, hour))
}

// ScanPreviews calls fn with the server, URL and hour of every preview
// record, in key order, without decoding the records. A key that does not
// parse stops the scan with an error wrapping ErrCorruptRecord; so does an
// error from fn.
func (r reader) ScanPreviews(fn func(server, url string, hour int64) error) error {
	return r.scan(prefixPreview, func(k, _ []byte) error {
		server, url, hour, err := parsePreviewKey(k)
		if err != nil {
			return err
		}
		return fn(server, url, hour)
	})
}

// parsePreviewKey is the inverse of previewKey.
func parsePreviewKey(k []byte) (server, url string, hour int64, err error) {
	rest := k[len(prefixPreview):]
	i := bytes.IndexByte(rest, '/')
	if i < 0 || len(rest)-i < 1+1+8 || rest[len(rest)-9] != 0 {
		return "", "", 0, fmt.Errorf("%w: preview key %q", ErrCorruptRecord, k)
	}
	h := rest[len(rest)-8:]
	return string(rest[:i]), string(rest[i+1 : len(rest)-9]), int64(binary.BigEndian.Uint64(h)), nil
}
