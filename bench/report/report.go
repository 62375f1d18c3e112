// Package report prints the tables of the bench commands: one row per
// measurement, with its value in every run, the median of them, the unit and
// the goal, as
//
//	Ingest
//	measurement              run 1  run 2  median  unit  goal
//	(2) upload, new content  198    204    201     MB/s  >= 0.7 x (1)
//
// The README's figures come from these tables, so their format stays as it is.
package report

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
)

// Row is one measurement: a value per run and the median of them.
type Row struct {
	Name, Unit, Goal string
	Vals             []float64
}

// Add records the value of one more run.
func (r *Row) Add(v float64) { r.Vals = append(r.Vals, v) }

// Median returns the median of the values; with an even count, the mean of
// the middle two.
func (r *Row) Median() float64 {
	v := slices.Clone(r.Vals)
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}

// Format returns v for a table: with two decimals below 10, one below 100
// and none from there on.
func Format(v float64) string {
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// Table writes title, then the rows under a header with columns run 1 to
// run runs, median, unit and goal, aligned with two spaces between columns,
// then an empty line.
func Table(w io.Writer, title string, runs int, rows ...*Row) {
	fmt.Fprintln(w, title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "measurement\t"
	for i := range runs {
		head += fmt.Sprintf("run %d\t", i+1)
	}
	fmt.Fprintln(tw, head+"median\tunit\tgoal")
	for _, r := range rows {
		line := r.Name + "\t"
		for _, v := range r.Vals {
			line += Format(v) + "\t"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\n", line, Format(r.Median()), r.Unit, r.Goal)
	}
	tw.Flush()
	fmt.Fprintln(w)
}
