package media

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/mxcas/mxcas/index"
)

// UserStats is one user's local media: a row of Synapse's "Users' media
// usage statistics".
type UserStats struct {
	UserID string
	Media  int64 // media_count
	Bytes  int64 // media_length: the sum of their sizes
}

// UserStatsFilter narrows the statistics, as Synapse's parameters do.
type UserStatsFilter struct {
	// Since, when not zero, keeps media created at or after it; Until, when
	// not zero, media created at or before it (Unix ms; from_ts, until_ts).
	Since, Until int64
	// Search, when not empty, keeps users whose ID matches Synapse's
	// "user_id LIKE '@%<Search>%:%'" (search_term): it occurs after the "@"
	// and before a ":". As in PostgreSQL's LIKE, case matters and "%" and
	// "_" in it are wildcards ("\" escapes them).
	Search string
}

// UserStatsOrder is a sort key of the statistics (Synapse's order_by,
// but displayname: mxcas knows no display names).
type UserStatsOrder int

const (
	StatsByUserID UserStatsOrder = iota // user_id
	StatsByCount                        // media_count
	StatsByBytes                        // media_length
)

// UsersMediaStats returns, for every user who uploaded local media of
// server (the server name compared without regard to case) that f keeps,
// the count and size of that media: counted as Usage counts (not deleted,
// not pending; quarantined included). Sorted by order, descending when
// desc, ties by user ID ascending (Synapse leaves ties to the database).
// It reads one snapshot and holds one row per user.
func (s *Store) UsersMediaStats(ctx context.Context, server string, f UserStatsFilter, order UserStatsOrder, desc bool) ([]UserStats, error) {
	snap := s.idx.Snapshot()
	defer snap.Close()
	rows := make(map[string]*UserStats)
	var pattern []likeToken
	if f.Search != "" {
		pattern = likePattern("@%" + f.Search + "%:%")
	}
	err := snap.ScanMedia(func(r index.MediaRecord) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := scannedMedia(r)
		if err != nil || !counted(rec) || rec.Remote || rec.Uploader == "" ||
			!strings.EqualFold(rec.MXC.Server(), server) ||
			(f.Since != 0 && rec.Created < f.Since) || (f.Until != 0 && rec.Created > f.Until) {
			return err
		}
		row := rows[rec.Uploader]
		if row == nil {
			if pattern != nil && !like(pattern, rec.Uploader) {
				return nil
			}
			row = &UserStats{UserID: rec.Uploader}
			rows[rec.Uploader] = row
		}
		row.Media++
		row.Bytes += rec.Size
		return nil
	})
	if err != nil {
		return nil, err
	}
	list := make([]UserStats, 0, len(rows))
	for _, row := range rows {
		list = append(list, *row)
	}
	slices.SortFunc(list, func(a, b UserStats) int {
		var c int
		switch order {
		case StatsByCount:
			c = cmp.Compare(a.Media, b.Media)
		case StatsByBytes:
			c = cmp.Compare(a.Bytes, b.Bytes)
		default:
			c = strings.Compare(a.UserID, b.UserID)
		}
		if desc {
			c = -c
		}
		if c != 0 {
			return c
		}
		return strings.Compare(a.UserID, b.UserID)
	})
	return list, nil
}

// likeToken is one element of a LIKE pattern: "%", "_" or a literal.
type likeToken struct {
	any, one bool
	r        rune
}

// likePattern parses a SQL LIKE pattern: "%" matches any run of
// characters, "_" any one, "\" makes the next character literal.
func likePattern(p string) []likeToken {
	var toks []likeToken
	rs := []rune(p)
	for i := 0; i < len(rs); i++ {
		switch {
		case rs[i] == '%':
			toks = append(toks, likeToken{any: true})
		case rs[i] == '_':
			toks = append(toks, likeToken{one: true})
		case rs[i] == '\\' && i+1 < len(rs):
			i++
			toks = append(toks, likeToken{r: rs[i]})
		default:
			toks = append(toks, likeToken{r: rs[i]})
		}
	}
	return toks
}

// like reports whether s matches p, in time proportional to their
// lengths' product (the greedy match that backtracks to the last "%").
func like(p []likeToken, s string) bool {
	rs := []rune(s)
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(rs) {
		switch {
		case pi < len(p) && p[pi].any:
			star, mark = pi, si
			pi++
		case pi < len(p) && (p[pi].one || p[pi].r == rs[si]):
			pi++
			si++
		case star >= 0:
			pi, mark = star+1, mark+1
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi].any {
		pi++
	}
	return pi == len(p)
}
