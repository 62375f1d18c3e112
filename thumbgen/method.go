package thumbgen

import "fmt"

// Method is how a thumbnail fits the size asked for (see the package doc
// for the geometry of each).
type Method string

// The thumbnail methods of the Matrix spec.
const (
	// Crop covers the size and cuts what does not fit from the centre.
	Crop Method = "crop"
	// Scale fits the image within the size, keeping its aspect ratio.
	Scale Method = "scale"
)

// ParseMethod accepts "crop" and "scale". Its error wraps ErrBadRequest.
func ParseMethod(s string) (Method, error) {
	m := Method(s)
	if !m.valid() {
		return "", fmt.Errorf("%w: method %q is neither crop nor scale", ErrBadRequest, s)
	}
	return m, nil
}

func (m Method) valid() bool { return m == Crop || m == Scale }

// String returns the method's name, as in a request or a config file.
func (m Method) String() string { return string(m) }
