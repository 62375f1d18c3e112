// Package media is the repository: it turns bodies into chunks, chunks into
// objects and objects into media records, and back. It is the only writer of
// the index, and it decides what is stored, what is reachable and what may be
// collected; the chunk store and the index below it decide nothing. It must
// never acknowledge an upload before every byte and record of it is durable,
// and never collect a chunk that a record, or an upload in flight, needs.
package media
