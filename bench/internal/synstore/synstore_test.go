package synstore

import (
	"context"
	"slices"
	"testing"

	"github.com/mxcas/mxcas/bench/internal/module"
)

func TestPlanShape(t *testing.T) {
	const n, total = 4000, 256 << 20
	files := plan(n, total)
	var sum int64
	var small, dups int
	for i, f := range files {
		sum += f.size
		if f.size < smallMax {
			small++
		}
		if f.src != i {
			dups++
		}
	}
	if sum < total*99/100 || sum > total*101/100 {
		t.Errorf("files total %d bytes, want about %d", sum, total)
	}
	if share := float64(small) / n; share < 0.75 || share > 0.85 {
		t.Errorf("%.2f of the files are under 16 KiB, want about 0.80", share)
	}
	if share := float64(dups) / n; share < 0.03 || share > 0.07 {
		t.Errorf("%.2f of the files are duplicates, want about 0.05", share)
	}
	if again := plan(n, total); !slices.Equal(again, files) {
		t.Error("plan is not deterministic")
	}
}

func TestEnsureOneUser(t *testing.T) {
	root, err := module.Root()
	if err != nil {
		t.Fatal(err)
	}
	s := In(t.TempDir())
	const user = "@bench:" + ServerName
	if _, generated, err := s.Ensure(context.Background(), root, 60, 2<<20, user); err != nil || !generated {
		t.Fatalf("Ensure: generated %v, %v", generated, err)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 60 || st.Bytes < 2<<20*99/100 || !slices.Equal(st.Users, []string{user}) {
		t.Errorf("Stats = %+v, want 60 files, about 2 MiB, all by %s", st, user)
	}
	if _, generated, err := s.Ensure(context.Background(), root, 10, 1<<20, ""); err != nil || generated {
		t.Errorf("Ensure of an existing store: generated %v, %v; want it reused", generated, err)
	}
}
