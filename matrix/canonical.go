package matrix

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrBadJSON is wrapped by every error of CanonicalJSON: the input is not
// JSON, or it holds something canonical JSON cannot represent (a fraction, an
// integer outside ±(2^53-1), a duplicate object key).
var ErrBadJSON = errors.New("matrix: JSON has no canonical form")

// maxCanonicalInt bounds the numbers canonical JSON allows:
// [-(2^53)+1, (2^53)-1].
const maxCanonicalInt = 1<<53 - 1

// maxJSONDepth bounds the nesting of arrays and objects CanonicalJSON accepts,
// so untrusted input cannot exhaust the stack.
const maxJSONDepth = 512

// CanonicalJSON re-encodes the JSON value v in the Matrix canonical form
// (spec appendix "Canonical JSON"): object keys sorted by Unicode code point,
// no insignificant white space, strings as raw UTF-8 with only the escapes
// JSON requires, numbers as plain integers.
//
// A number is accepted when its value is an integer in [-(2^53)+1, (2^53)-1],
// whatever its spelling: -0 becomes 0 and 1e10 becomes 10000000000, as in the
// spec's examples; 1.5 or 2^53 is an error. The input must be valid UTF-8, be
// a single JSON value, and have no duplicate keys in any object (they would
// let two parsers see different documents under one signature). Every error
// wraps ErrBadJSON. The returned slice is newly allocated.
func CanonicalJSON(v []byte) ([]byte, error) {
	dec, err := newCanonicalDecoder(v)
	if err != nil {
		return nil, err
	}
	out, err := dec.value(nil, 0)
	if err != nil {
		return nil, err
	}
	if err := dec.end(); err != nil {
		return nil, err
	}
	return out, nil
}

// member is one key of a JSON object with its value already in canonical form.
type member struct {
	key   string
	value []byte
}

// canonicalMembers parses v, which must be a JSON object, into its members in
// canonical order with canonical values. SignJSON and VerifyJSON work on this
// form so that they can drop and replace top-level keys.
func canonicalMembers(v []byte) ([]member, error) {
	dec, err := newCanonicalDecoder(v)
	if err != nil {
		return nil, err
	}
	tok, err := dec.token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: not a JSON object", ErrBadJSON)
	}
	ms, err := dec.members(1)
	if err != nil {
		return nil, err
	}
	if err := dec.end(); err != nil {
		return nil, err
	}
	return ms, nil
}

// appendObject appends the canonical encoding of an object whose members are
// already sorted and canonical.
func appendObject(dst []byte, ms []member) []byte {
	dst = append(dst, '{')
	for i, m := range ms {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, m.key)
		dst = append(dst, ':')
		dst = append(dst, m.value...)
	}
	return append(dst, '}')
}

// setMember returns ms with key set to value, keeping the canonical order.
func setMember(ms []member, key string, value []byte) []member {
	i, found := slices.BinarySearchFunc(ms, key, func(m member, k string) int { return strings.Compare(m.key, k) })
	if found {
		ms[i].value = value
		return ms
	}
	return slices.Insert(ms, i, member{key, value})
}

// withoutMembers returns the members of ms whose keys are not in drop.
func withoutMembers(ms []member, drop ...string) []member {
	out := make([]member, 0, len(ms))
	for _, m := range ms {
		if !slices.Contains(drop, m.key) {
			out = append(out, m)
		}
	}
	return out
}

// canonicalDecoder walks the tokens of one JSON document.
type canonicalDecoder struct {
	dec *json.Decoder
}

func newCanonicalDecoder(v []byte) (*canonicalDecoder, error) {
	// encoding/json would silently turn invalid UTF-8 into U+FFFD; a signature
	// must not cover bytes other than the ones received.
	if !utf8.Valid(v) {
		return nil, fmt.Errorf("%w: invalid UTF-8", ErrBadJSON)
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	return &canonicalDecoder{dec: dec}, nil
}

func (d *canonicalDecoder) token() (json.Token, error) {
	tok, err := d.dec.Token()
	if err == io.EOF {
		return nil, fmt.Errorf("%w: unexpected end of input", ErrBadJSON)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadJSON, err)
	}
	return tok, nil
}

// end checks that nothing but white space follows the value.
func (d *canonicalDecoder) end() error {
	if _, err := d.dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON value", ErrBadJSON)
	}
	return nil
}

// value appends the canonical encoding of the next value to dst.
func (d *canonicalDecoder) value(dst []byte, depth int) ([]byte, error) {
	tok, err := d.token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= maxJSONDepth {
			return nil, fmt.Errorf("%w: nested deeper than %d", ErrBadJSON, maxJSONDepth)
		}
		switch t {
		case '{':
			ms, err := d.members(depth + 1)
			if err != nil {
				return nil, err
			}
			return appendObject(dst, ms), nil
		case '[':
			dst = append(dst, '[')
			for i := 0; d.dec.More(); i++ {
				if i > 0 {
					dst = append(dst, ',')
				}
				if dst, err = d.value(dst, depth+1); err != nil {
					return nil, err
				}
			}
			if _, err := d.token(); err != nil { // the closing ']'
				return nil, err
			}
			return append(dst, ']'), nil
		}
		return nil, fmt.Errorf("%w: unexpected %v", ErrBadJSON, t)
	case string:
		return appendString(dst, t), nil
	case json.Number:
		return appendNumber(dst, string(t))
	case bool:
		return strconv.AppendBool(dst, t), nil
	case nil:
		return append(dst, "null"...), nil
	}
	return nil, fmt.Errorf("%w: unexpected token %v", ErrBadJSON, tok)
}

// members reads the members of an object whose '{' has been consumed, up to
// and including the '}', and returns them sorted by key.
func (d *canonicalDecoder) members(depth int) ([]member, error) {
	var ms []member
	for d.dec.More() {
		tok, err := d.token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("%w: object key is not a string", ErrBadJSON)
		}
		val, err := d.value(nil, depth)
		if err != nil {
			return nil, err
		}
		ms = append(ms, member{key, val})
	}
	if _, err := d.token(); err != nil { // the closing '}'
		return nil, err
	}
	// Keys are valid UTF-8 here, and byte order of UTF-8 is code point order.
	slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.key, b.key) })
	for i := 1; i < len(ms); i++ {
		if ms[i].key == ms[i-1].key {
			return nil, fmt.Errorf("%w: duplicate key %q", ErrBadJSON, ms[i].key)
		}
	}
	return ms, nil
}

// appendString appends s as a canonical JSON string: raw UTF-8, with the
// short escapes for '"', '\\', \b, \f, \n, \r, \t and \u00xx (lower-case hex)
// for the other control characters.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendNumber appends the JSON number s (already checked for syntax by the
// decoder) as a canonical integer, or fails when its value is not an integer
// in the canonical range. It works on the decimal digits, so a huge exponent
// costs nothing.
func appendNumber(dst []byte, s string) ([]byte, error) {
	bad := func(why string) error { return fmt.Errorf("%w: number %s %s", ErrBadJSON, s, why) }
	neg := strings.HasPrefix(s, "-")
	mant, expStr, hasExp := strings.Cut(strings.TrimPrefix(s, "-"), "e")
	if !hasExp {
		mant, expStr, hasExp = strings.Cut(mant, "E")
	}
	exp := int64(0)
	if hasExp {
		e, err := strconv.ParseInt(strings.TrimPrefix(expStr, "+"), 10, 64)
		if err != nil {
			// Out of int64 range: either huge or vanishingly small. Both are
			// wrong unless the mantissa is zero, handled below.
			if strings.HasPrefix(expStr, "-") {
				e = -1 << 62
			} else {
				e = 1 << 62
			}
		}
		exp = e
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		return append(dst, '0'), nil // 0, -0, 0.0, 0e5 ...
	}
	exp -= int64(len(frac))
	trimmed := strings.TrimRight(digits, "0")
	exp += int64(len(digits) - len(trimmed))
	digits = trimmed
	if exp < 0 {
		return nil, bad("is not an integer")
	}
	// 2^53-1 has 16 digits.
	if int64(len(digits))+exp > 16 {
		return nil, bad("is out of range")
	}
	n, err := strconv.ParseInt(digits+strings.Repeat("0", int(exp)), 10, 64)
	if err != nil || n > maxCanonicalInt {
		return nil, bad("is out of range")
	}
	if neg {
		n = -n
	}
	return strconv.AppendInt(dst, n, 10), nil
}
