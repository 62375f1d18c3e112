// Package paramflag reads and writes chunker parameters the way the bench
// commands take them on the command line: "min:avg:max", each a byte count
// that may end in K or M (binary multiples), sets separated by commas.
package paramflag

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/mxcas/mxcas/chunker"
)

// Parse parses a comma-separated list of "min:avg:max" sets, each checked
// with chunker.Params.Validate.
func Parse(s string) ([]chunker.Params, error) {
	var out []chunker.Params
	for item := range strings.SplitSeq(s, ",") {
		fields := strings.Split(strings.TrimSpace(item), ":")
		if len(fields) != 3 {
			return nil, fmt.Errorf("params %q: want min:avg:max", item)
		}
		var v [3]int
		for i, f := range fields {
			n, err := parseSize(f)
			if err != nil {
				return nil, fmt.Errorf("params %q: %w", item, err)
			}
			v[i] = n
		}
		p := chunker.Params{Min: v[0], Avg: v[1], Max: v[2]}
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("params %q: %w", item, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Format returns the list in the form Parse reads, such as "16K:64K:256K".
func Format(ps []chunker.Params) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = size(p.Min) + ":" + size(p.Avg) + ":" + size(p.Max)
	}
	return strings.Join(s, ",")
}

// Label returns p for a table, such as "16K/64K/256K".
func Label(p chunker.Params) string {
	return size(p.Min) + "/" + size(p.Avg) + "/" + size(p.Max)
}

func size(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "M"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "K"
	}
	return strconv.Itoa(n)
}

func parseSize(s string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(s, "K"), strings.HasSuffix(s, "k"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult, s = 1<<20, s[:len(s)-1]
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > 1<<30/mult {
		return 0, errors.New("bad size " + strconv.Quote(s))
	}
	return n * mult, nil
}
