package media

import (
	"cmp"
	"context"
	"slices"
	"strings"
)

// MediaOrder is a sort key of a user's media list, one per value of
// Synapse's order_by in "List media uploaded by a user".
type MediaOrder int

const (
	OrderCreated       MediaOrder = iota // created_ts
	OrderMediaID                         // media_id
	OrderUploadName                      // upload_name; none is NULL
	OrderLastAccess                      // last_access_ts; never read is NULL
	OrderLength                          // media_length
	OrderType                            // media_type
	OrderQuarantinedBy                   // quarantined_by; not quarantined is NULL
	OrderProtected                       // safe_from_quarantine: false, then true
)

// UserMedia returns the local media user uploaded (not deleted, not
// pending; quarantined included), sorted as Synapse's "ORDER BY <order>
// <ASC|DESC>, media_id ASC": by order, descending when desc, ties by media
// ID ascending in either direction. A missing value (NULL in Synapse's
// table) sorts after every value ascending and before every value
// descending, as PostgreSQL does; strings compare bytewise, as the C
// collation Synapse requires of PostgreSQL. It reads one snapshot of the
// index; the list is in memory, since sorting needs all of it.
func (s *Store) UserMedia(ctx context.Context, user string, order MediaOrder, desc bool) ([]Media, error) {
	snap := s.idx.Snapshot()
	defer snap.Close()
	var list []Media
	err := scanUserMedia(ctx, snap, user, func(rec Media) error {
		list = append(list, rec)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b Media) int {
		c := compareKeys(mediaKey(a, order), mediaKey(b, order))
		if desc {
			c = -c
		}
		if c != 0 {
			return c
		}
		return strings.Compare(a.MXC.MediaID(), b.MXC.MediaID())
	})
	return list, nil
}

// sortKey is one value of a sort column: NULL, a number or a string.
type sortKey struct {
	null bool
	n    int64
	s    string
}

// compareKeys orders keys ascending with NULL after every value.
func compareKeys(a, b sortKey) int {
	switch {
	case a.null || b.null:
		return cmp.Compare(b2i(a.null), b2i(b.null))
	case a.n != b.n:
		return cmp.Compare(a.n, b.n)
	}
	return strings.Compare(a.s, b.s)
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// mediaKey is rec's value in the column of order.
func mediaKey(rec Media, order MediaOrder) sortKey {
	switch order {
	case OrderMediaID:
		return sortKey{s: rec.MXC.MediaID()}
	case OrderUploadName:
		return sortKey{null: rec.UploadName == "", s: rec.UploadName}
	case OrderLastAccess:
		return sortKey{null: rec.LastAccess == 0, n: rec.LastAccess}
	case OrderLength:
		return sortKey{n: rec.Size}
	case OrderType:
		return sortKey{s: rec.ContentType}
	case OrderQuarantinedBy:
		return sortKey{null: !rec.Quarantined, s: rec.QuarantinedBy}
	case OrderProtected:
		return sortKey{n: b2i(rec.Protected)}
	}
	return sortKey{n: rec.Created}
}
