package index

// kvReader is the read side of the key-value store the index lives in:
// the narrow view reader needs, so that the lookups and scans do not name
// the store (Pebble today; see pebblekv.go). Implementations are safe for
// concurrent use.
type kvReader interface {
	// get calls fn with the value of key, or returns ErrNotFound (bare)
	// when key is absent; fn's error comes back unchanged. v is valid only
	// during fn; fn runs at most once.
	get(key []byte, fn func(v []byte) error) error
	// scan calls fn for every key in [lower, upper), in key order, and
	// stops at the first error fn returns, returning it unchanged. k and v
	// are valid only during that call of fn.
	scan(lower, upper []byte, fn func(k, v []byte) error) error
	// scanLazy is scan whose values are read only when fn calls value
	// (valid, like k, only during that call of fn): a scan of keys and
	// of the few values wanted.
	scanLazy(lower, upper []byte, fn func(k []byte, value func() ([]byte, error)) error) error
	// counter returns the sums added to key by batches (zero when none).
	// Counters may live in a key space of their own: scan need not see
	// them, nor get.
	counter(key []byte) (Usage, error)
	// scanCounters is scan over counters.
	scanCounters(lower, upper []byte, fn func(k []byte, u Usage) error) error
}
