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
}

// mxc is the row's media ID, validated: an error wraps matrix.ErrInvalid.
func (r row) mxc(local string) (matrix.MXC, error) {
	if r.remote {
		return matrix.NewMXC(r.origin, r.mediaID)
	}
	return matrix.NewMXC(local, r.mediaID)
}

// readRows loads every media row from PostgreSQL or SQLite.
func readRows(ctx context.Context, o options, stderr io.Writer) ([]row, error) {
	const local = `SELECT media_id, COALESCE(media_type, ''), media_length, COALESCE(created_ts, 0), COALESCE(upload_name, ''),
		COALESCE(user_id, ''), quarantined_by IS NOT NULL, url_cache IS NOT NULL FROM local_media_repository ORDER BY media_id`
	const remote = `SELECT media_origin, media_id, COALESCE(media_type, ''), media_length, COALESCE(created_ts, 0),
		COALESCE(upload_name, ''), COALESCE(filesystem_id, ''), quarantined_by IS NOT NULL FROM remote_media_cache ORDER BY media_origin, media_id`
	var rows []row
	// Names and types are stored as valid UTF-8 (as mxcas keeps them), so
	// -verify compares like with like.
	clean := func(r *row) {
		r.uploadName = strings.ToValidUTF8(r.uploadName, "\uFFFD")
		r.contentType = strings.ToValidUTF8(r.contentType, "\uFFFD")
	}
	scanLocal := func(sc func(...any) error) error {
		var r row
		err := sc(&r.mediaID, &r.contentType, &r.length, &r.created, &r.uploadName, &r.userID, &r.quarantined, &r.urlCache)
		clean(&r)
		rows = append(rows, r)
		return err
	}
	scanRemote := func(sc func(...any) error) error {
		r := row{remote: true}
		err := sc(&r.origin, &r.mediaID, &r.contentType, &r.length, &r.created, &r.uploadName, &r.fsID, &r.quarantined)
		clean(&r)
		rows = append(rows, r)
		return err
	}
	if o.sqlite != "" {
		if _, err := os.Stat(o.sqlite); err != nil {
			return nil, err
		}
		db, err := sql.Open("sqlite", "file:"+o.sqlite+"?mode=ro")
		if err != nil {
			return nil, err
		}
		defer db.Close()
		for _, q := range []struct {
			sql  string
			scan func(func(...any) error) error
		}{{local, scanLocal}, {remote, scanRemote}} {
			rs, err := db.QueryContext(ctx, q.sql)
			if err != nil {
				return nil, fmt.Errorf("read Synapse's SQLite database: %w", err)
			}
			for rs.Next() {
				if err := q.scan(rs.Scan); err != nil {
					rs.Close()
					return nil, err
				}
			}
			if err := rs.Close(); err != nil {
				return nil, err
			}
		}
		return rows, nil
	}
	pw := o.dbPassword
	if pw == "" && term.IsTerminal(int(os.Stdin.Fd())) {
		fmt.Fprintf(stderr, "Password for PostgreSQL user %s: ", o.dbUsername)
		b, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, err
		}
		pw = string(b)
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(o.dbUsername, pw), Host: o.dbHost + ":" + strconv.Itoa(o.dbPort), Path: "/" + o.dbName}
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("connect to Synapse's PostgreSQL database: %w", err)
	}
	defer conn.Close(ctx)
	for _, q := range []struct {
		sql  string
		scan func(func(...any) error) error
	}{{local, scanLocal}, {remote, scanRemote}} {
		rs, err := conn.Query(ctx, q.sql)
		if err != nil {
			return nil, fmt.Errorf("read Synapse's database: %w", err)
		}
		for rs.Next() {
			if err := q.scan(rs.Scan); err != nil {
				rs.Close()
				return nil, err
			}
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, err
		}
	}
	return rows, nil
}
