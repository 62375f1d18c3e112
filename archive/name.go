package archive

import "mime"

// extensions maps a content type to the extension MMR's content sniffer
// (gabriel-vasile/mimetype) gives it. MMR sniffs the bytes; we take the
// stored content type instead, so the name is known before the body is read
// and nothing needs buffering. Readers must not rely on the extension: the
// manifest's file_name is what maps a tar entry to its media.
var extensions = map[string]string{
	"image/png":                ".png",
	"image/jpeg":               ".jpg",
	"image/gif":                ".gif",
	"image/webp":               ".webp",
	"image/svg+xml":            ".svg",
	"image/bmp":                ".bmp",
	"image/tiff":               ".tiff",
	"image/avif":               ".avif",
	"image/heic":               ".heic",
	"video/mp4":                ".mp4",
	"video/webm":               ".webm",
	"video/quicktime":          ".mov",
	"audio/mpeg":               ".mp3",
	"audio/ogg":                ".ogg",
	"audio/mp4":                ".m4a",
	"audio/wav":                ".wav",
	"audio/flac":               ".flac",
	"text/plain":               ".txt",
	"text/html":                ".html",
	"application/pdf":          ".pdf",
	"application/json":         ".json",
	"application/zip":          ".zip",
	"application/gzip":         ".gz",
	"application/x-tar":        ".tar",
	"application/vnd.ms-excel": ".xls",
}

// ArchivedName returns the name MMR gives a media inside a part:
// <origin>__<mediaId><ext>, ext from the content type or empty if unknown.
func ArchivedName(origin, mediaID, contentType string) string {
	ext := ""
	if t, _, err := mime.ParseMediaType(contentType); err == nil {
		ext = extensions[t]
	}
	return origin + "__" + mediaID + ext
}
