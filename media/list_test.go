package media_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxcas/mxcas/media"
)

// listFixture stores alice's media with every sort column set, and media
// that must not be listed: bob's, alice's deleted and pending ones.
func listFixture(t *testing.T) *media.Store {
	t.Helper()
	s, _ := newStore(t, nil)
	const alice = "@alice:server"
	for _, m := range []struct {
		id, ctype, name string
		created         int64
		size            int
		access          int64
		qby             string
		protected       bool
	}{
		{"m1", "image/png", "b.png", 3000, 30, 0, "", false},
		{"m2", "text/plain", "", 1000, 10, 500, "@admin:server", true},
		{"m3", "image/jpeg", "a.jpg", 2000, 30, 700, "", false},
		{"m4", "image/png", "B.png", 2000, 20, 0, "@mod:server", false},
		{"m0", "audio/ogg", "c", 5000, 10, 600, "", true},
	} {
		importMedia(t, s, media.ImportInfo{MXC: mxc(m.id), ContentType: m.ctype, UploadName: m.name,
			Uploader: alice, Created: time.UnixMilli(m.created)}, randBytes(uint64(200+m.created+m.access), m.size))
		err := s.UpdateRecord(mxc(m.id), func(rec *media.Media) {
			rec.LastAccess, rec.Protected = m.access, m.protected
			rec.Quarantined, rec.QuarantinedBy = m.qby != "", m.qby
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	importMedia(t, s, media.ImportInfo{MXC: mxc("bobs"), Uploader: "@bob:server"}, []byte("bob"))
	upload(t, s, "deleted", alice, []byte("gone"))
	if err := s.Delete(mxc("deleted")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(media.CreateInfo{MXC: mxc("pending"), Uploader: alice}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUserMediaOrder(t *testing.T) {
	s := listFixture(t)
	tests := []struct {
		order     media.MediaOrder
		asc, desc []string
	}{
		// Ties go by media ID ascending in both directions.
		{media.OrderCreated, ids("m2 m3 m4 m1 m0"), ids("m0 m1 m3 m4 m2")},
		{media.OrderMediaID, ids("m0 m1 m2 m3 m4"), ids("m4 m3 m2 m1 m0")},
		// Bytewise ("B" < "a"); no name is NULL: last ascending, first descending.
		{media.OrderUploadName, ids("m4 m3 m1 m0 m2"), ids("m2 m0 m1 m3 m4")},
		{media.OrderLastAccess, ids("m2 m0 m3 m1 m4"), ids("m1 m4 m3 m0 m2")},
		{media.OrderLength, ids("m0 m2 m4 m1 m3"), ids("m1 m3 m4 m0 m2")},
		{media.OrderType, ids("m0 m3 m1 m4 m2"), ids("m2 m1 m4 m3 m0")},
		{media.OrderQuarantinedBy, ids("m2 m4 m0 m1 m3"), ids("m0 m1 m3 m4 m2")},
		{media.OrderProtected, ids("m1 m3 m4 m0 m2"), ids("m0 m2 m1 m3 m4")},
	}
	for _, tt := range tests {
		for _, desc := range []bool{false, true} {
			want := tt.asc
			if desc {
				want = tt.desc
			}
			list, err := s.UserMedia(context.Background(), "@alice:server", tt.order, desc)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range list {
				got = append(got, m.MXC.MediaID())
			}
			if !slices.Equal(got, want) {
				t.Errorf("order %d desc %v: %v, want %v", tt.order, desc, got, want)
			}
		}
	}
	list, err := s.UserMedia(context.Background(), "@alice:server", media.OrderMediaID, false)
	if err != nil || list[2].QuarantinedBy != "@admin:server" || !list[2].Protected || list[2].LastAccess != 500 ||
		list[2].Created != 1000 || list[2].Size != 10 || list[2].ContentType != "text/plain" {
		t.Errorf("m2 as listed: %+v, %v", list[2], err)
	}
	if list, err := s.UserMedia(context.Background(), "@nobody:server", media.OrderCreated, false); err != nil || len(list) != 0 {
		t.Errorf("a user with no media: %v, %v", list, err)
	}
}

func ids(s string) []string { return strings.Fields(s) }

// statsFixture stores media of four users of server, and media that must
// not be counted: another server's, remote, deleted and pending.
func statsFixture(t *testing.T) *media.Store {
	t.Helper()
	s, _ := newStore(t, nil)
	n := 0
	put := func(server, user string, created int64, size int) {
		n++
		importMedia(t, s, media.ImportInfo{MXC: mustMXC(server, fmt.Sprintf("s%d", n)), Uploader: user,
			Created: time.UnixMilli(created), Remote: user == ""}, randBytes(uint64(100+n), size))
	}
	put(server, "@alice:server", 1000, 10)
	put(server, "@alice:server", 2000, 20)
	put(server, "@alice:server", 3000, 30)
	put(server, "@bob:server", 2000, 100)
	put(server, "@carol:server", 3000, 5)
	put(server, "@carol:server", 4000, 5)
	put(server, "@x_y:server", 500, 1)
	put("other", "@dave:other", 2000, 1000)
	put("far.test", "", 2000, 1000)
	upload(t, s, "deleted", "@bob:server", randBytes(99, 1000))
	if err := s.Delete(mxc("deleted")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(media.CreateInfo{MXC: mxc("pending"), Uploader: "@eve:server"}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUsersMediaStats(t *testing.T) {
	s := statsFixture(t)
	alice, bob := media.UserStats{UserID: "@alice:server", Media: 3, Bytes: 60}, media.UserStats{UserID: "@bob:server", Media: 1, Bytes: 100}
	carol, xy := media.UserStats{UserID: "@carol:server", Media: 2, Bytes: 10}, media.UserStats{UserID: "@x_y:server", Media: 1, Bytes: 1}
	tests := []struct {
		name  string
		f     media.UserStatsFilter
		order media.UserStatsOrder
		desc  bool
		want  []media.UserStats
	}{
		{"user_id", media.UserStatsFilter{}, media.StatsByUserID, false, []media.UserStats{alice, bob, carol, xy}},
		{"user_id desc", media.UserStatsFilter{}, media.StatsByUserID, true, []media.UserStats{xy, carol, bob, alice}},
		{"count, ties by user ID", media.UserStatsFilter{}, media.StatsByCount, false, []media.UserStats{bob, xy, carol, alice}},
		{"count desc, ties by user ID ascending", media.UserStatsFilter{}, media.StatsByCount, true, []media.UserStats{alice, carol, bob, xy}},
		{"bytes", media.UserStatsFilter{}, media.StatsByBytes, false, []media.UserStats{xy, carol, alice, bob}},
		{"bytes desc", media.UserStatsFilter{}, media.StatsByBytes, true, []media.UserStats{bob, alice, carol, xy}},
		{"since, inclusive", media.UserStatsFilter{Since: 2000}, media.StatsByUserID, false, []media.UserStats{
			{UserID: "@alice:server", Media: 2, Bytes: 50}, bob, carol}},
		{"until, inclusive", media.UserStatsFilter{Until: 2000}, media.StatsByUserID, false, []media.UserStats{
			{UserID: "@alice:server", Media: 2, Bytes: 30}, bob, xy}},
		{"since and until", media.UserStatsFilter{Since: 2000, Until: 3000}, media.StatsByUserID, false, []media.UserStats{
			{UserID: "@alice:server", Media: 2, Bytes: 50}, bob, {UserID: "@carol:server", Media: 1, Bytes: 5}}},
		{"search in the localpart", media.UserStatsFilter{Search: "li"}, media.StatsByUserID, false, []media.UserStats{alice}},
		{"search needs a colon after", media.UserStatsFilter{Search: "server"}, media.StatsByUserID, false, nil},
		{"search is case-sensitive", media.UserStatsFilter{Search: "ALICE"}, media.StatsByUserID, false, nil},
		{"search: _ is any character", media.UserStatsFilter{Search: "_"}, media.StatsByUserID, false, []media.UserStats{alice, bob, carol, xy}},
		{"search: \\_ is _", media.UserStatsFilter{Search: `\_`}, media.StatsByUserID, false, []media.UserStats{xy}},
		{"search: % is any run", media.UserStatsFilter{Search: "a%e"}, media.StatsByUserID, false, []media.UserStats{alice}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.UsersMediaStats(context.Background(), "Server", tt.f, tt.order, tt.desc)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
