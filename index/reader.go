package index

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"

	"github.com/mxcas/mxcas/cas"
)

// reader holds the lookups and scans shared by DB and Snapshot.
type reader struct{ kv kvReader }

// get calls fn with the value of key, or returns ErrNotFound.
func (r reader) get(key []byte, fn func(v []byte) error) error { return r.kv.get(key, fn) }

// Media returns the record of server/id, or ErrNotFound.
func (r reader) Media(server, id string) (MediaRecord, error) {
	rec, _, err := r.media(server, id, false)
	return rec, err
}

// MediaStored is Media that also returns the record's bytes as stored:
// what Batch.ExpectMedia expects to find.
func (r reader) MediaStored(server, id string) (MediaRecord, []byte, error) {
	return r.media(server, id, true)
}

func (r reader) media(server, id string, keep bool) (MediaRecord, []byte, error) {
	var rec MediaRecord
	var stored []byte
	err := r.get(mediaKey(server, id), func(v []byte) error {
		if keep {
			stored = bytes.Clone(v)
		}
		return decodeMedia(v, &rec)
	})
	if errors.Is(err, ErrNotFound) {
		return rec, nil, fmt.Errorf("%w: media %s/%s", ErrNotFound, server, id)
	}
	rec.Server, rec.MediaID = server, id
	return rec, stored, err
}

func decodeMedia(v []byte, rec *MediaRecord) error {
	if err := json.Unmarshal(v, rec); err != nil {
		return fmt.Errorf("%w: media: %v", ErrCorruptRecord, err)
	}
	return nil
}

// Manifest returns the manifest of object h, or ErrNotFound.
func (r reader) Manifest(h cas.Hash) (Manifest, error) {
	var m Manifest
	err := r.get(objectKey(h), func(v []byte) (err error) {
		m, err = decodeManifest(v)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return m, fmt.Errorf("%w: object %s", ErrNotFound, h.Short())
	}
	return m, err
}

// InlineChunk returns the bytes of object h's inline chunk (as stored:
// the caller checks them against the chunk's hash), or ErrNotFound.
func (r reader) InlineChunk(h cas.Hash) ([]byte, error) {
	var data []byte
	err := r.get(inlineKey(h), func(v []byte) error {
		data = bytes.Clone(v)
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: inline chunk of object %s", ErrNotFound, h.Short())
	}
	return data, err
}

// ObjectEntry is one object as ScanObjectsIn finds it: its manifest, its
// inline chunk, or both.
type ObjectEntry struct {
	Hash        cas.Hash
	HasManifest bool
	Manifest    Manifest
	DecodeErr   error // the manifest is there but cannot be decoded
	HasInline   bool  // the index holds an inline chunk under Hash
	inline      func() ([]byte, error)
}

// Inline reads the bytes of the object's inline chunk, as stored (the
// caller checks them against the chunk's hash), or returns ErrNotFound.
// They are valid only during the call of ScanObjectsIn's fn.
func (e ObjectEntry) Inline() ([]byte, error) {
	if !e.HasInline {
		return nil, fmt.Errorf("%w: inline chunk of object %s", ErrNotFound, e.Hash.Short())
	}
	return e.inline()
}

// ScanObjectsIn calls fn, in hash order, for every object from lo
// (included) to hi (excluded), or to the last when toEnd, that has a
// manifest, an inline chunk or both: one walk of the manifests and the
// inline chunks side by side, for fsck. An inline chunk's bytes are read
// only when fn asks for them (ObjectEntry.Inline).
func (r reader) ScanObjectsIn(lo, hi cas.Hash, toEnd bool, fn func(ObjectEntry) error) error {
	upper := prefixEnd(prefixInline)
	if !toEnd {
		upper = inlineKey(hi)
	}
	type inlineEntry struct {
		h     cas.Hash
		value func() ([]byte, error)
	}
	var inlineErr error
	next, stop := iter.Pull(func(yield func(inlineEntry) bool) {
		inlineErr = r.kv.scanLazy(inlineKey(lo), upper, func(k []byte, value func() ([]byte, error)) error {
			if len(k) != len(prefixInline)+cas.HashSize {
				return fmt.Errorf("%w: inline key of %d bytes", ErrCorruptRecord, len(k))
			}
			if !yield(inlineEntry{cas.Hash(k[len(prefixInline):]), value}) {
				return errStopScan
			}
			return nil
		})
	})
	defer stop()
	in, ok := next()
	// inlineBefore passes on the inline chunks of objects before h (every
	// one left when last): chunks with no manifest.
	inlineBefore := func(h cas.Hash, last bool) error {
		for ; ok && (last || bytes.Compare(in.h[:], h[:]) < 0); in, ok = next() {
			if err := fn(ObjectEntry{Hash: in.h, HasInline: true, inline: in.value}); err != nil {
				return err
			}
		}
		return nil
	}
	err := r.ScanManifestsIn(lo, hi, toEnd, func(h cas.Hash, m Manifest, decodeErr error) error {
		if err := inlineBefore(h, false); err != nil {
			return err
		}
		e := ObjectEntry{Hash: h, HasManifest: true, Manifest: m, DecodeErr: decodeErr}
		if ok && in.h == h {
			e.HasInline, e.inline = true, in.value
		}
		err := fn(e)
		if e.HasInline {
			in, ok = next()
		}
		return err
	})
	if err == nil {
		err = inlineBefore(cas.Hash{}, true)
	}
	stop()
	if err == nil && !errors.Is(inlineErr, errStopScan) {
		err = inlineErr
	}
	return err
}

// HasManifest reports whether object h has a manifest.
func (r reader) HasManifest(h cas.Hash) (bool, error) {
	err := r.get(objectKey(h), func([]byte) error { return nil })
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// UserUsage returns the counters of a user (zero when none).
func (r reader) UserUsage(user string) (Usage, error) { return r.kv.counter(userUsageKey(user)) }

// ServerUsage returns the counters of a server name (zero when none).
func (r reader) ServerUsage(server string) (Usage, error) {
	return r.kv.counter(serverUsageKey(server))
}

// TotalServerUsage returns the sum of every server name's counters: all
// the media with content, local and remote. It reads one key per server
// name (a store-wide figure, taken once at open).
func (r reader) TotalServerUsage() (Usage, error) {
	var total Usage
	err := r.kv.scanCounters(prefixSiteUse, prefixEnd(prefixSiteUse), func(_ []byte, u Usage) error {
		total.Bytes += u.Bytes
		total.Count += u.Count
		return nil
	})
	return total, err
}

// scan calls fn for every key with prefix, in key order.
func (r reader) scan(prefix []byte, fn func(k, v []byte) error) error {
	return r.kv.scan(prefix, prefixEnd(prefix), fn)
}

// ScanMedia calls fn for every media record (all servers), in key order. An
// error from fn, or a record that cannot be decoded, stops the scan and is
// returned.
func (r reader) ScanMedia(fn func(MediaRecord) error) error {
	return r.ScanMediaChecked(func(rec MediaRecord, decodeErr error) error {
		if decodeErr != nil {
			return decodeErr
		}
		return fn(rec)
	})
}

// ScanMediaObjects calls fn with the object of every media record (zero
// while pending) and whether the record is a tombstone, in key order: what
// GC needs of ScanMedia, read without decoding the rest of each record
// (decodeMediaObject). A record that cannot be decoded stops the scan and
// is returned.
func (r reader) ScanMediaObjects(fn func(obj cas.Hash, deleted bool) error) error {
	return r.scan(prefixMedia, func(k, v []byte) error {
		obj, deleted, err := decodeMediaObject(v)
		if err != nil {
			if server, id, kerr := parseMediaKey(k); kerr == nil {
				err = fmt.Errorf("%s/%s: %w", server, id, err)
			}
			return err
		}
		return fn(obj, deleted)
	})
}

// Every media record PutMedia writes (json.Marshal of a MediaRecord)
// begins with its object, MediaRecord's first field, and holds
// mediaDeleted when it is a tombstone. The text of a string value cannot
// hold mediaDeleted: its quotes would be escaped.
var (
	mediaObjectPrefix = []byte(`{"object":"`)
	mediaDeleted      = []byte(`,"deleted":`)
)

// decodeMediaObject returns a record's object and whether it is a
// tombstone: from its first field and a search for mediaDeleted when it
// begins as PutMedia writes it (30 times faster than decoding it whole:
// BenchmarkDecodeMediaObject), else by decoding it whole.
func decodeMediaObject(v []byte) (cas.Hash, bool, error) {
	if rest, ok := bytes.CutPrefix(v, mediaObjectPrefix); ok && len(rest) > 2*cas.HashSize && rest[2*cas.HashSize] == '"' && v[len(v)-1] == '}' {
		var h cas.Hash
		_, err := hex.Decode(h[:], rest[:2*cas.HashSize])
		i := bytes.Index(rest, mediaDeleted)
		switch {
		case err != nil:
		case i < 0:
			return h, false, nil
		case bytes.HasPrefix(rest[i+len(mediaDeleted):], []byte("true,")) || bytes.HasPrefix(rest[i+len(mediaDeleted):], []byte("true}")):
			return h, true, nil
		}
	}
	var rec MediaRecord
	err := decodeMedia(v, &rec)
	return rec.Object, rec.Deleted, err
}

// ScanMediaChecked is ScanMedia for fsck: a record that cannot be decoded is
// passed with a non-nil decodeErr (and its Server and MediaID filled in
// when the key is readable) instead of stopping the scan.
func (r reader) ScanMediaChecked(fn func(rec MediaRecord, decodeErr error) error) error {
	return r.scan(prefixMedia, func(k, v []byte) error {
		var rec MediaRecord
		server, id, err := parseMediaKey(k)
		if err != nil {
			return fn(rec, err)
		}
		err = decodeMedia(v, &rec)
		rec.Server, rec.MediaID = server, id
		if err != nil {
			return fn(rec, fmt.Errorf("%s/%s: %w", server, id, err))
		}
		return fn(rec, nil)
	})
}

// ScanManifests calls fn for every object manifest. A manifest that cannot
// be decoded is passed with a non-nil decodeErr so fsck can report it.
func (r reader) ScanManifests(fn func(h cas.Hash, m Manifest, decodeErr error) error) error {
	return r.ScanManifestsIn(cas.Hash{}, cas.Hash{}, true, fn)
}

// ScanManifestsIn is ScanManifests over the objects from lo (included) to
// hi (excluded), in hash order; to the last object when toEnd (hi unused).
func (r reader) ScanManifestsIn(lo, hi cas.Hash, toEnd bool, fn func(h cas.Hash, m Manifest, decodeErr error) error) error {
	upper := prefixEnd(prefixObject)
	if !toEnd {
		upper = objectKey(hi)
	}
	return r.kv.scan(objectKey(lo), upper, func(k, v []byte) error {
		var h cas.Hash
		if len(k) != len(prefixObject)+cas.HashSize {
			return fmt.Errorf("%w: object key %q", ErrCorruptRecord, k)
		}
		copy(h[:], k[len(prefixObject):])
		m, err := decodeManifest(v)
		return fn(h, m, err)
	})
}

// ScanOwned calls fn with the server and media ID of every media owned by user.
func (r reader) ScanOwned(user string, fn func(server, id string) error) error {
	p := ownerPrefix(user)
	return r.scan(p, func(k, _ []byte) error {
		server, id, err := parseMediaKey(append(append([]byte(nil), prefixMedia...), k[len(p):]...))
		if err != nil {
			return err
		}
		return fn(server, id)
	})
}

// CountPending counts user's created IDs without content that have not
// lapsed at now (Unix ms).
func (r reader) CountPending(user string, now int64) (int, error) {
	n := 0
	err := r.scan(pendingPrefix(user), func(_, v []byte) error {
		if len(v) == 8 && int64(binary.LittleEndian.Uint64(v)) > now {
			n++
		}
		return nil
	})
	return n, err
}

// Thumbnail returns the thumbnail of source object src for spec, or
// ErrNotFound.
func (r reader) Thumbnail(src cas.Hash, spec string) (ThumbRecord, error) {
	var tr ThumbRecord
	err := r.get(thumbKey(src, spec), func(v []byte) error {
		if err := json.Unmarshal(v, &tr); err != nil {
			return fmt.Errorf("%w: thumbnail: %v", ErrCorruptRecord, err)
		}
		return nil
	})
	return tr, err
}

// ScanThumbnails calls fn for every thumbnail record; one that cannot be
// decoded comes with a non-nil decodeErr.
func (r reader) ScanThumbnails(fn func(src cas.Hash, spec string, tr ThumbRecord, decodeErr error) error) error {
	return r.scan(prefixThumb, func(k, v []byte) error {
		rest := k[len(prefixThumb):]
		if len(rest) < cas.HashSize+1 {
			return fn(cas.Hash{}, "", ThumbRecord{}, fmt.Errorf("%w: thumbnail key %q", ErrCorruptRecord, k))
		}
		var src cas.Hash
		copy(src[:], rest)
		var tr ThumbRecord
		err := json.Unmarshal(v, &tr)
		if err != nil {
			err = fmt.Errorf("%w: thumbnail: %v", ErrCorruptRecord, err)
		}
		return fn(src, string(rest[cas.HashSize+1:]), tr, err)
	})
}

// ScanDamaged calls fn for every chunk recorded as damaged; a record that
// cannot be decoded comes with a non-nil decodeErr.
func (r reader) ScanDamaged(fn func(h cas.Hash, d DamageRecord, decodeErr error) error) error {
	return r.scan(prefixDamaged, func(k, v []byte) error {
		var h cas.Hash
		if len(k) != len(prefixDamaged)+cas.HashSize {
			return fn(h, DamageRecord{}, fmt.Errorf("%w: damage key %q", ErrCorruptRecord, k))
		}
		copy(h[:], k[len(prefixDamaged):])
		var d DamageRecord
		err := json.Unmarshal(v, &d)
		if err != nil {
			err = fmt.Errorf("%w: damage record: %v", ErrCorruptRecord, err)
		}
		return fn(h, d, err)
	})
}
