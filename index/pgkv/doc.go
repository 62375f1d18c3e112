// Package pgkv is a key-value layer on PostgreSQL with the semantics the
// index needs from Pebble, so that several mxcas nodes can share one index:
// point reads, ordered scans between byte bounds (keys are bytea, whose
// btree order is memcmp, as Pebble's), counters that add (Pebble's Merge of
// usage records), read-only snapshots, batches committed atomically and
// durably (one transaction; synchronous_commit decides durability, on by
// default), an Insert that fails on an existing key so that racing nodes
// resolve to one winner, session advisory locks for work that runs on one
// node at a time, and LISTEN/NOTIFY for cross-node cache invalidation.
//
// Plain keys live in table kv and counters in table counters: two separate
// key spaces, so a Scan never returns counters. It imports only pgx and the
// standard library and knows nothing of the index's records; it must never
// interpret keys or values.
package pgkv
