// Package archive reads and writes the media export archive of
// matrix-media-repo (MMR), format v2: parts named export-part-N.tgz (tar in
// gzip, each about Options.PartSize), each media file stored as
// <origin>__<mediaId><ext>, and a final export-manifest.tgz holding
// manifest.json and a human-readable index.html. The reader also accepts v1
// manifests (user_id instead of entity_id) and finds the manifest in
// whichever part holds it.
//
// It is a leaf: it imports no project package and knows nothing of the
// store. Both directions stream: only the manifest's media list is held in
// memory, never a whole part or file. It never turns a name taken from an
// archive into a file-system path: parts are opened through an fs.FS by the
// names the directory lists, and media bodies are handed to a callback as
// readers.
package archive
