package thumbgen

import (
	"errors"
	"testing"
)

func TestParseMethod(t *testing.T) {
	for _, want := range []Method{Crop, Scale} {
		if got, err := ParseMethod(want.String()); err != nil || got != want {
			t.Errorf("ParseMethod(%q) = %q, %v", want, got, err)
		}
	}
	for _, in := range []string{"", "zoom", "Crop", " scale"} {
		if got, err := ParseMethod(in); !errors.Is(err, ErrBadRequest) || got != "" {
			t.Errorf("ParseMethod(%q) = %q, %v; want ErrBadRequest", in, got, err)
		}
	}
}
