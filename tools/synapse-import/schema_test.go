package main_test

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestImportOlderSchemas imports from databases of older Synapses, which
// lack columns the importer reads when they are there: before schema
// delta 58 local media has no safe_from_quarantine (and no authenticated
// or sha256); before 43 neither table has quarantined_by, nor local media
// url_cache and last_access_ts (47), nor remote media last_access_ts (33).
// Each imports, with what the database does not say left unset.
func TestImportOlderSchemas(t *testing.T) {
	const local, remote = "local_media_repository", "remote_media_cache"
	for _, tc := range []struct {
		name string
		drop map[string][]string
		// forget clears from a row what the schema cannot hold.
		forget func(*mediaRow)
	}{
		{"before delta 58", map[string][]string{local: {"safe_from_quarantine", "authenticated", "sha256"}},
			func(r *mediaRow) { r.protected = false }},
		{"before delta 43", map[string][]string{
			local:  {"safe_from_quarantine", "authenticated", "sha256", "quarantined_by", "url_cache", "last_access_ts"},
			remote: {"authenticated", "sha256", "quarantined_by", "last_access_ts"},
		}, func(r *mediaRow) { r.quarantined, r.protected, r.lastAccess = false, false, 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			backends(t, func(t *testing.T, open func(*testing.T) *synapseDB) {
				var rows []mediaRow
				for _, r := range standardRows(t, false) {
					if r.urlCache == "" || !slices.Contains(tc.drop[local], "url_cache") { // no URL previews before it
						rows = append(rows, r)
					}
				}
				db := open(t)
				f := writeStore(t, rows)
				db.insert(t, f)
				for table, cols := range tc.drop {
					db.dropColumns(t, table, cols...)
				}
				data := filepath.Join(t.TempDir(), "data")
				r := runTool(t, nil, importArgs(writeConfig(t, data), f, db)...)
				checkFirstImport(t, f, r)
				for i := range f.rows {
					tc.forget(&f.rows[i])
				}
				checkStore(t, data, f.rows)
			})
		})
	}
}
