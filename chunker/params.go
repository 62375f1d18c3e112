package chunker

import (
	"fmt"
	"strconv"
	"strings"
)

// Params are the chunk size bounds in bytes.
//
// Every chunk but the last of a stream is within [Min, Max]; the last is
// within [1, Max]. Avg is the target mean: the gear hash uses a harder cut
// mask before Avg and an easier one after it, so sizes cluster around Avg
// (on random data the mean is about 1.1-1.2 times Avg).
type Params struct{ Min, Avg, Max int }

// DefaultParams are the parameters of a new store; the choice is explained in
// doc.go.
var DefaultParams = Params{Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10}

const (
	minMin = 64       // below this the gear hash window is not filled
	maxMax = 64 << 20 // bounds the buffer a Chunker holds
)

// Validate reports whether p can be used: Min >= 64, Min < Avg < Max, Avg a
// power of two and Max <= 64 MiB.
func (p Params) Validate() error {
	switch {
	case p.Min < minMin:
		return fmt.Errorf("chunker: min %d is below %d", p.Min, minMin)
	case p.Avg <= p.Min:
		return fmt.Errorf("chunker: avg %d is not above min %d", p.Avg, p.Min)
	case p.Max <= p.Avg:
		return fmt.Errorf("chunker: max %d is not above avg %d", p.Max, p.Avg)
	case p.Avg&(p.Avg-1) != 0:
		return fmt.Errorf("chunker: avg %d is not a power of two", p.Avg)
	case p.Max > maxMax:
		return fmt.Errorf("chunker: max %d is above %d", p.Max, maxMax)
	}
	return nil
}

// String returns the form stored in the store's FORMAT file, such as
// "min=16384 avg=65536 max=262144". It must never change.
func (p Params) String() string {
	return fmt.Sprintf("min=%d avg=%d max=%d", p.Min, p.Avg, p.Max)
}

// ParseParams parses the String form. It accepts only that exact form and only
// valid Params.
func ParseParams(s string) (Params, error) {
	fields := strings.Split(s, " ")
	keys := [3]string{"min", "avg", "max"}
	if len(fields) != len(keys) {
		return Params{}, fmt.Errorf("chunker: parse params %q: want %d fields", s, len(keys))
	}
	var vals [3]int
	for i, f := range fields {
		v, ok := strings.CutPrefix(f, keys[i]+"=")
		if !ok {
			return Params{}, fmt.Errorf("chunker: parse params %q: field %d is not %s=N", s, i+1, keys[i])
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return Params{}, fmt.Errorf("chunker: parse params %q: %s: %w", s, keys[i], err)
		}
		vals[i] = n
	}
	p := Params{Min: vals[0], Avg: vals[1], Max: vals[2]}
	if p.String() != s {
		return Params{}, fmt.Errorf("chunker: parse params %q: not in canonical form %q", s, p.String())
	}
	if err := p.Validate(); err != nil {
		return Params{}, err
	}
	return p, nil
}
