package media

// Exported for media's external tests only.

// StoreFormat is storeFormat, so tests can compare what DATA/FORMAT holds.
type StoreFormat = storeFormat

// FormatVersion is formatVersion.
const FormatVersion = formatVersion

// ReadFormat reads DATA/FORMAT (readFormat).
var ReadFormat = readFormat

// WaitThumbnailQueue returns once every queued background thumbnail job is
// done.
func (s *Store) WaitThumbnailQueue() { s.thumbs.pending.Wait() }

// MustMXC is mustMXC, for IDs a test knows are valid.
var MustMXC = mustMXC
