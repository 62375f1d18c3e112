package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Synapse added columns to its media tables over the years (its schema
// deltas); a database that has not seen one is still imported, the
// missing column read as NULL. The importer asks the database which
// columns a table has (the names of an empty SELECT *, the same on both
// drivers and under any search_path), then reads the table as it is or,
// when it lacks some, through a subquery that adds each as a typed NULL.

// column is an optional column of a media table and its SQL type.
type column struct{ name, sqlType string }

// mediaTable is one of Synapse's media tables: its name, its query (FROM
// %s, filled in by from), the scan that turns one of the query's result
// rows into a row, and the columns older schemas lack.
type mediaTable struct {
	name     string
	query    string
	scan     func(func(...any) error) (row, error)
	optional []column
}

// from is what t's query reads, given the columns the table has: the
// table itself, or a subquery adding each missing optional column as NULL.
func (t mediaTable) from(has map[string]bool) string {
	var missing []string
	for _, c := range t.optional {
		if !has[c.name] {
			missing = append(missing, fmt.Sprintf("CAST(NULL AS %s) AS %s", c.sqlType, c.name))
		}
	}
	if len(missing) == 0 {
		return t.name
	}
	return fmt.Sprintf("(SELECT *, %s FROM %s) AS t", strings.Join(missing, ", "), t.name)
}

// cursor is what both drivers' query results offer (*sql.Rows, and
// pgx.Rows through pgxCursor).
type cursor interface {
	resultRows
	Columns() ([]string, error)
	Close() error
}

// queryFunc runs a query on Synapse's database.
type queryFunc func(ctx context.Context, q string) (cursor, error)

// pgxCursor is pgx.Rows as a cursor.
type pgxCursor struct{ pgx.Rows }

// Columns returns the result's column names.
func (c pgxCursor) Columns() ([]string, error) {
	var names []string
	for _, f := range c.FieldDescriptions() {
		names = append(names, f.Name)
	}
	return names, nil
}

// Close closes the result and returns its error, if any.
func (c pgxCursor) Close() error {
	c.Rows.Close()
	return c.Err()
}

// readTables reads every row of the media tables through query.
func readTables(ctx context.Context, query queryFunc) ([]row, error) {
	var rows []row
	for _, t := range mediaTables {
		has, err := columnsOf(ctx, query, t.name)
		if err != nil {
			return nil, err
		}
		rs, err := query(ctx, fmt.Sprintf(t.query, t.from(has)))
		if err != nil {
			return nil, err
		}
		rows, err = appendRows(rows, rs, t.scan)
		if cerr := rs.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// columnsOf returns the set of the columns table has.
func columnsOf(ctx context.Context, query queryFunc, table string) (map[string]bool, error) {
	rs, err := query(ctx, "SELECT * FROM "+table+" LIMIT 0")
	if err != nil {
		return nil, err
	}
	names, err := rs.Columns()
	if cerr := rs.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", table, err)
	}
	has := make(map[string]bool, len(names))
	for _, n := range names {
		has[strings.ToLower(n)] = true
	}
	return has, nil
}
