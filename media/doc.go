// Package media is the repository: it turns bodies into chunks, chunks into
// objects and objects into media records, and back. It is the only writer of
// the index, and it decides what is stored, what is reachable and what may be
// collected; the chunk store and the index below it decide nothing. It must
// never acknowledge an upload before every byte and record of it is durable,
// and never collect a chunk that a record, or an upload in flight, needs.
//
// Besides FORMAT, cas/, index/ and tmp/, the store keeps DATA/exports/: the
// users' self-service exports (selfexport.go), one directory per export
// holding its archive parts and who may download them until when. They are
// derived data: never backed up, ignored by fsck and by GC's chunk sweep,
// removed by GC (and at open) once expired.
package media
