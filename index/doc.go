// Package index is the Pebble index of a store: which media exist, what
// each object is made of, who owns what and how much they use. It is the only
// package that imports Pebble; callers see typed records and batches, never
// keys. Every multi-key change goes through one Batch committed with sync, so
// a crash leaves either all of it or none of it. Media bytes live in the
// chunk store, but for inline chunks: the last chunk of an object, when
// it is small (media's layoutInline), kept under i/ beside the manifest, so
// that a small upload is one synced batch and no file. Pebble keeps those
// values in blob files compactions do not rewrite (value separation).
//
// Key schema (prefix, then fields; "/" separates fields that cannot contain
// "/", 0x00 separates those that can; hashes are 32 raw bytes):
//
//	m/<server>/<mediaID>                  MediaRecord, JSON (see MediaRecord);
//	                                      deleted local media keeps a
//	                                      tombstone here (deleted, no object)
//	o/<objectHash>                        Manifest, binary: version byte 1,
//	                                      uvarint total size, uvarint chunk
//	                                      count, then per chunk 32-byte hash
//	                                      and uvarint length; version 2 (a
//	                                      manifest whose last chunk is
//	                                      inline): uvarint length<<1|inline
//	i/<objectHash>                        the bytes of the object's inline
//	                                      last chunk; written and deleted
//	                                      with its manifest
//	u/<userID>\x00<server>/<mediaID>      ownership; empty value
//	p/<userID>\x00<server>/<mediaID>      a created ID without content yet;
//	                                      value: expiry, Unix ms, 8 bytes LE
//	t/<sourceHash>/<w>x<h>/<method>/<0|1> ThumbRecord, JSON: a thumbnail of a
//	                                      source object (animated 1 or 0)
//	s/u/<userID>                          Usage of a user, merged counters
//	s/s/<server>                          Usage of a server name, merged counters
//	d/<chunkHash>                         DamageRecord, JSON: a chunk a read
//	                                      found damaged (wrong content, short
//	                                      or missing); cleared by a repair
//	q/<objectHash>/<homeserver>           QuarantineRecord, JSON: content
//	                                      quarantined for that homeserver's
//	                                      media and every cached remote media
//	l/<server>/<url>\x00<hour>            PreviewRecord, JSON: a URL preview
//	                                      made for a homeserver in that hour
//	                                      (its start, Unix ms, 8 bytes
//	                                      big-endian); the image it names is
//	                                      that homeserver's local media;
//	                                      media's GC removes it once expired
//	x/<name>                              meta records: x/format (the
//	                                      PostgreSQL index's description
//	                                      of its store), x/copying (the
//	                                      source of an unfinished Copy
//	                                      into this index; see copy.go)
//	c/<seq>                               the change log (seq: 8 bytes
//	                                      big-endian, from 1): the
//	                                      replicated operations of one
//	                                      synced batch, each a kind byte
//	                                      (1 set, 2 delete, 3 merge),
//	                                      uvarint key length, key, uvarint
//	                                      value length, value; every key
//	                                      but d/ and c/ is replicated; a
//	                                      change also sets the manifest of
//	                                      every object its records name
//
// Usage counters are written with Pebble merges (the merger named
// "mxcas.usage.v1" adds two little-endian int64s: bytes, then count), so
// concurrent uploads never read-modify-write them under a lock. Every
// batch is synced except the one that records a media's last access
// (Batch.CommitNoSync): losing that to a crash is harmless, and it is not
// logged, so last access times do not replicate. changes.go says how the
// log is numbered and published.
// New prefixes must be added here first.
package index
