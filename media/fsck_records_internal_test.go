package media

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/mxcas/mxcas/cas"
)

// TestFsckMissingManifests: records whose object lost its manifest are
// damaged media, named in the records' order, two records of one object
// both; found alike when the records' objects are looked for in the
// manifests one batch at a time (budget lowered) or all at once.
func TestFsckMissingManifests(t *testing.T) {
	s, _, _ := inlineStore(t)
	objs := make(map[string]cas.Hash)
	for i := range 12 {
		id := fmt.Sprintf("m%02d", i)
		rec, _ := inlineUpload(t, s, id, byte(40+i), 2000+i)
		objs[id] = rec.Object
	}
	inlineUpload(t, s, "m05-again", 40+5, 2005) // the same content as m05
	b := s.idx.NewBatch()
	defer b.Close()
	for _, id := range []string{"m02", "m05", "m09"} {
		if err := b.DeleteManifest(objs[id]); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	s.manifests = newManifestCache()

	check := func(budget int) FsckReport {
		t.Helper()
		defer func(b int) { passBudget = b }(passBudget)
		passBudget = budget
		rep, err := s.Fsck(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range rep.Problems {
			if p.Kind != ProblemMissingManifest || len(p.Media) != 1 {
				t.Errorf("budget %d: problem %v, want only missing manifests of one media each", budget, p)
				continue
			}
			got = append(got, p.Media[0])
		}
		want := []string{"mxc://s/m02", "mxc://s/m05", "mxc://s/m05-again", "mxc://s/m09"}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(rep.Damaged, want) || rep.Media != 13 || rep.Objects != 9 {
			t.Errorf("budget %d: missing manifests of %q, damaged %q, %d media, %d objects; want %q, 13 media, 9 objects",
				budget, got, rep.Damaged, rep.Media, rep.Objects, want)
		}
		return rep
	}
	if one, many := check(1<<19), check(4); !reflect.DeepEqual(one, many) {
		t.Errorf("reports differ:\n%+v\n%+v", one, many)
	}
}
