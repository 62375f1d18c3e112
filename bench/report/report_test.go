package report

import (
	"bytes"
	"testing"
)

// The README's figures are read from this format: it must not change.
func TestTable(t *testing.T) {
	disk := &Row{Name: "(1) disk", Unit: "MB/s"}
	ratio := &Row{Name: "    (2)/(1)", Goal: ">= 0.7: met"}
	for _, v := range []float64{1299, 99.96, 1459, 9.994} {
		disk.Add(v)
	}
	for _, v := range []float64{0.1, 0.68, 0.11, 0.1} {
		ratio.Add(v)
	}
	var b bytes.Buffer
	Table(&b, "Ingest", 4, disk, ratio)
	want := "Ingest\n" +
		"measurement  run 1  run 2  run 3  run 4  median  unit  goal\n" +
		"(1) disk     1299   100.0  1459   9.99   699     MB/s  \n" +
		"    (2)/(1)  0.10   0.68   0.11   0.10   0.11          >= 0.7: met\n" +
		"\n"
	if got := b.String(); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		vals []float64
		want float64
	}{{[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		r := &Row{Vals: c.vals}
		if got := r.Median(); got != c.want {
			t.Errorf("Median of %v = %v, want %v", c.vals, got, c.want)
		}
	}
	if r := (&Row{Vals: []float64{2, 1}}); r.Median() != 1.5 || r.Vals[0] != 2 {
		t.Errorf("Median reordered Vals: %v", r.Vals)
	}
}
