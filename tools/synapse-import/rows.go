package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/term"
	_ "modernc.org/sqlite"

	"github.com/mxcas/mxcas/matrix"
)

// row is one media row of Synapse's database.
type row struct {
	mediaID, origin, contentType, uploadName, userID, fsID string
	length                                                 sql.NullInt64
	created                                                int64
	quarantined, remote, urlCache                          bool
	quarantinedBy                                          string // "" when not quarantined
	protected                                              bool   // safe_from_quarantine (local media only)
	lastAccess                                             int64  // last_access_ts, Unix ms; 0: never
}

// mxc is the row's media ID, validated: an error wraps matrix.ErrInvalid.
func (r row) mxc(local string) (matrix.MXC, error) {
	if r.remote {
		return matrix.NewMXC(r.origin, r.mediaID)
	}
	return matrix.NewMXC(local, r.mediaID)
}

// lastAccessTime is the row's last_access_ts, the zero time for never.
func (r row) lastAccessTime() time.Time {
	if r.lastAccess <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(r.lastAccess)
}

// readRows loads every media row from PostgreSQL or SQLite.
func readRows(ctx context.Context, o options, stderr io.Writer) ([]row, error) {
	if o.sqlite != "" {
		return readSQLite(ctx, o.sqlite)
	}
	return readPostgres(ctx, o, stderr)
}

// mediaTables are the media tables the importer reads (see mediaTable);
// each optional column is commented with the Synapse schema delta that
// added it.
var mediaTables = []mediaTable{
	{"local_media_repository", `SELECT media_id, COALESCE(media_type, ''), media_length, COALESCE(created_ts, 0),
		COALESCE(upload_name, ''), COALESCE(user_id, ''), quarantined_by IS NOT NULL, COALESCE(quarantined_by, ''),
		url_cache IS NOT NULL, COALESCE(last_access_ts, 0), COALESCE(safe_from_quarantine, false)
		FROM %s ORDER BY media_id`, scanLocal, []column{
		{"quarantined_by", "TEXT"},          // schema delta 43
		{"url_cache", "TEXT"},               // 43
		{"last_access_ts", "BIGINT"},        // 47
		{"safe_from_quarantine", "BOOLEAN"}, // 58
	}},
	{"remote_media_cache", `SELECT media_origin, media_id, COALESCE(media_type, ''), media_length, COALESCE(created_ts, 0),
		COALESCE(upload_name, ''), COALESCE(filesystem_id, ''), quarantined_by IS NOT NULL, COALESCE(quarantined_by, ''),
		COALESCE(last_access_ts, 0) FROM %s ORDER BY media_origin, media_id`, scanRemote, []column{
		{"last_access_ts", "BIGINT"}, // 33
		{"quarantined_by", "TEXT"},   // 43
	}},
}

// scanLocal reads a row of local_media_repository with sc.
func scanLocal(sc func(...any) error) (row, error) {
	var r row
	err := sc(&r.mediaID, &r.contentType, &r.length, &r.created, &r.uploadName, &r.userID, &r.quarantined, &r.quarantinedBy,
		&r.urlCache, &r.lastAccess, &r.protected)
	r.cleanText()
	return r, err
}

// scanRemote reads a row of remote_media_cache with sc.
func scanRemote(sc func(...any) error) (row, error) {
	r := row{remote: true}
	err := sc(&r.origin, &r.mediaID, &r.contentType, &r.length, &r.created, &r.uploadName, &r.fsID, &r.quarantined,
		&r.quarantinedBy, &r.lastAccess)
	r.cleanText()
	return r, err
}

// cleanText makes the name and type valid UTF-8 (as mxcas keeps them), so
// -verify compares like with like.
func (r *row) cleanText() {
	r.uploadName = strings.ToValidUTF8(r.uploadName, "\uFFFD")
	r.contentType = strings.ToValidUTF8(r.contentType, "\uFFFD")
}

// resultRows is what both drivers' query results offer (*sql.Rows,
// pgx.Rows).
type resultRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// appendRows appends to rows every result row of rs, turned into a row by
// scan. A read that fails part way is an error, never a shorter list.
func appendRows(rows []row, rs resultRows, scan func(func(...any) error) (row, error)) ([]row, error) {
	for rs.Next() {
		r, err := scan(rs.Scan)
		if err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	return rows, nil
}

// readSQLite reads every media row from Synapse's SQLite database file,
// opened read-only.
func readSQLite(ctx context.Context, file string) ([]row, error) {
	if _, err := os.Stat(file); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", "file:"+file+"?mode=ro")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := readTables(ctx, func(ctx context.Context, q string) (cursor, error) {
		rs, err := db.QueryContext(ctx, q)
		if err != nil {
			return nil, err
		}
		return rs, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read Synapse's SQLite database: %w", err)
	}
	return rows, nil
}

// readPostgres reads every media row from Synapse's PostgreSQL database.
func readPostgres(ctx context.Context, o options, stderr io.Writer) ([]row, error) {
	pw, err := postgresPassword(o, stderr)
	if err != nil {
		return nil, err
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(o.dbUsername, pw), Host: o.dbHost + ":" + strconv.Itoa(o.dbPort), Path: "/" + o.dbName}
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("connect to Synapse's PostgreSQL database: %w", err)
	}
	defer conn.Close(ctx)
	rows, err := readTables(ctx, func(ctx context.Context, q string) (cursor, error) {
		rs, err := conn.Query(ctx, q)
		if err != nil {
			return nil, err
		}
		return pgxCursor{rs}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read Synapse's database: %w", err)
	}
	return rows, nil
}

// postgresPassword is -dbPassword or, when that is empty and stdin is a
// terminal, what the user types at the prompt written to stderr.
func postgresPassword(o options, stderr io.Writer) (string, error) {
	pw := o.dbPassword
	if pw == "" && term.IsTerminal(int(os.Stdin.Fd())) {
		fmt.Fprintf(stderr, "Password for PostgreSQL user %s: ", o.dbUsername)
		b, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		pw = string(b)
	}
	return pw, nil
}
