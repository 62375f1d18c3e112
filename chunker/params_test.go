package chunker_test

import (
	"strings"
	"testing"

	"github.com/mxcas/mxcas/chunker"
)

func TestParamsValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       chunker.Params
		wantErr string // substring; "" means valid
	}{
		{"default", chunker.DefaultParams, ""},
		{"smallest", chunker.Params{Min: 64, Avg: 128, Max: 129}, ""},
		{"largest", chunker.Params{Min: 1 << 20, Avg: 16 << 20, Max: 64 << 20}, ""},
		{"zero", chunker.Params{}, "min 0 is below 64"},
		{"min too small", chunker.Params{Min: 63, Avg: 128, Max: 256}, "min 63 is below 64"},
		{"negative", chunker.Params{Min: -1, Avg: 128, Max: 256}, "below 64"},
		{"avg equals min", chunker.Params{Min: 128, Avg: 128, Max: 256}, "avg 128 is not above min 128"},
		{"avg below min", chunker.Params{Min: 256, Avg: 128, Max: 512}, "not above min"},
		{"max equals avg", chunker.Params{Min: 64, Avg: 128, Max: 128}, "max 128 is not above avg 128"},
		{"avg not power of two", chunker.Params{Min: 64, Avg: 100, Max: 256}, "avg 100 is not a power of two"},
		{"max too large", chunker.Params{Min: 64, Avg: 1 << 20, Max: 64<<20 + 1}, "is above 67108864"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate(%v) = %v, want nil", tt.p, err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Validate(%v) = nil, want error containing %q", tt.p, tt.wantErr)
			case err != nil:
				if got := err.Error(); !strings.HasPrefix(got, "chunker: ") || !strings.Contains(got, tt.wantErr) {
					t.Fatalf("Validate(%v) = %q, want \"chunker: ...%s...\"", tt.p, got, tt.wantErr)
				}
			}
			// New and Split must refuse exactly what Validate refuses.
			if _, err := chunker.New(strings.NewReader("x"), tt.p); (err != nil) != (tt.wantErr != "") {
				t.Errorf("New(%v) error = %v, want error: %t", tt.p, err, tt.wantErr != "")
			}
			if err := chunker.Split([]byte("x"), tt.p, func([]byte) error { return nil }); (err != nil) != (tt.wantErr != "") {
				t.Errorf("Split(%v) error = %v, want error: %t", tt.p, err, tt.wantErr != "")
			}
		})
	}
}

func TestParamsString(t *testing.T) {
	// The FORMAT file of every store holds this string: it must never change.
	got := chunker.DefaultParams.String()
	want := "min=16384 avg=65536 max=262144"
	if got != want {
		t.Fatalf("DefaultParams.String() = %q, want %q", got, want)
	}
}

func TestParseParams(t *testing.T) {
	for _, p := range []chunker.Params{
		chunker.DefaultParams,
		{Min: 64, Avg: 128, Max: 129},
		{Min: 1000, Avg: 4096, Max: 1 << 20},
	} {
		got, err := chunker.ParseParams(p.String())
		if err != nil {
			t.Fatalf("ParseParams(%q): %v", p.String(), err)
		}
		if got != p {
			t.Errorf("ParseParams(%q) = %+v, want %+v", p.String(), got, p)
		}
	}
	for _, s := range []string{
		"",
		"min=16384 avg=65536",
		"min=16384 avg=65536 max=262144 ",
		" min=16384 avg=65536 max=262144",
		"min=16384  avg=65536 max=262144",
		"avg=65536 min=16384 max=262144",
		"min=16384 avg=65536 max=262144 x=1",
		"min=+16384 avg=65536 max=262144",
		"min=016384 avg=65536 max=262144",
		"min=16384 avg=0x10000 max=262144",
		"min=16384 avg=65536 max=",
		"min=16384 avg=65535 max=262144", // parses, but invalid
		"MIN=16384 AVG=65536 MAX=262144",
	} {
		if p, err := chunker.ParseParams(s); err == nil {
			t.Errorf("ParseParams(%q) = %+v, want error", s, p)
		} else if !strings.HasPrefix(err.Error(), "chunker: ") {
			t.Errorf("ParseParams(%q) error %q does not start with \"chunker: \"", s, err)
		}
	}
}
