package matrix

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
)

// ErrBadXMatrix is wrapped by every error about a malformed X-Matrix
// Authorization header.
var ErrBadXMatrix = errors.New("matrix: malformed X-Matrix authorization")

// xMatrixScheme is the auth scheme of federation requests.
const xMatrixScheme = "X-Matrix"

// XMatrix is the content of an "Authorization: X-Matrix ..." header: who
// signed a federation request, for whom, with which key, and the signature.
type XMatrix struct {
	// Origin is the server name of the sender.
	Origin string
	// Destination is the server name of the receiver; "" when the sender is
	// an older server that does not send it.
	Destination string
	// KeyID is the sender's key, algorithm included: "ed25519:abc".
	KeyID string
	// Sig is the base64 signature of the request.
	Sig string
}

// ParseXMatrix parses the value of an Authorization header with the X-Matrix
// scheme, leniently as the spec asks (server-server API, "Request
// Authentication"): the scheme and the parameter names are case-insensitive;
// parameters come in any order with optional white space around commas and
// '='; values are quoted strings (backslash escapes are undone) or unquoted,
// where any visible ASCII but '"', ',' and '\' is allowed so that colons and
// base64 pass. origin, key and sig are required and non-empty; destination is
// optional. Unknown parameters are ignored; a known one given twice is an
// error. Every error wraps ErrBadXMatrix.
//
// The parser checks syntax only: the caller compares Destination with its own
// names and validates Origin (ValidateServerName) before fetching its keys.
func ParseXMatrix(header string) (XMatrix, error) {
	bad := func(why string) (XMatrix, error) {
		return XMatrix{}, fmt.Errorf("%w: %s", ErrBadXMatrix, why)
	}
	s := strings.TrimLeft(header, " \t")
	scheme, rest, _ := strings.Cut(s, " ")
	if tab := strings.IndexByte(scheme, '\t'); tab >= 0 {
		scheme, rest = s[:tab], s[tab+1:]
	}
	if !strings.EqualFold(scheme, xMatrixScheme) {
		return bad("scheme is not X-Matrix")
	}
	var x XMatrix
	seen := map[string]bool{}
	p := paramParser{s: rest}
	for {
		name, value, ok, err := p.next()
		if err != nil {
			return bad(err.Error())
		}
		if !ok {
			break
		}
		lower := strings.ToLower(name)
		var field *string
		switch lower {
		case "origin":
			field = &x.Origin
		case "destination":
			field = &x.Destination
		case "key":
			field = &x.KeyID
		case "sig":
			field = &x.Sig
		default:
			continue // unknown parameters are ignored
		}
		if seen[lower] {
			return bad("parameter " + lower + " given twice")
		}
		seen[lower] = true
		if value == "" {
			return bad("parameter " + lower + " is empty")
		}
		*field = value
	}
	for _, req := range []string{"origin", "key", "sig"} {
		if !seen[req] {
			return bad("missing parameter " + req)
		}
	}
	return x, nil
}

// String returns the header value in the form the spec recommends senders
// use: lower-case names, one space after the scheme, every value quoted, and
// destination left out when empty. ParseXMatrix reads it back.
func (x XMatrix) String() string {
	var b strings.Builder
	b.WriteString(xMatrixScheme + " ")
	writeParam(&b, "origin", x.Origin)
	if x.Destination != "" {
		b.WriteByte(',')
		writeParam(&b, "destination", x.Destination)
	}
	b.WriteByte(',')
	writeParam(&b, "key", x.KeyID)
	b.WriteByte(',')
	writeParam(&b, "sig", x.Sig)
	return b.String()
}

func writeParam(b *strings.Builder, name, value string) {
	b.WriteString(name)
	b.WriteString(`="`)
	for i := 0; i < len(value); i++ {
		if c := value[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(value[i])
	}
	b.WriteByte('"')
}

// SignRequest signs a federation request from origin to destination with k
// and returns the value for its Authorization header. uri is the request
// target as sent: the path from "/_matrix/" with its query string. content is
// the JSON body, or nil (or empty) when there is none; it must be
// canonicalisable (see CanonicalJSON). The signed object is the canonical
// JSON of {"method", "uri", "origin", "destination"[, "content"]}.
//
// Origin and destination must be non-empty and hold no control characters.
func SignRequest(method, uri, origin, destination string, content []byte, k SigningKey) (string, error) {
	if err := k.check(); err != nil {
		return "", err
	}
	for _, v := range []struct{ name, value string }{{"method", method}, {"uri", uri}, {"origin", origin}, {"destination", destination}} {
		if v.value == "" || !validQuotedValue(v.value) {
			return "", fmt.Errorf("%w: %s %q is empty or holds control characters", ErrBadXMatrix, v.name, v.value)
		}
	}
	msg, err := requestJSON(method, uri, origin, destination, content)
	if err != nil {
		return "", err
	}
	return XMatrix{Origin: origin, Destination: destination, KeyID: k.ID, Sig: k.sign(msg)}.String(), nil
}

// VerifyRequest checks that x signs the request method uri with body content
// (nil or empty when none) from x.Origin to x.Destination, with pub the
// origin's key x.KeyID.
//
// Older servers leave destination out of the header but still sign it: the
// caller sets x.Destination to its own server name in that case (and refuses
// a request whose Destination is not one of its names) before calling;
// an empty Destination is an error wrapping ErrBadXMatrix. A signature that
// does not match gives an error wrapping ErrBadSignature.
func VerifyRequest(method, uri string, content []byte, x XMatrix, pub ed25519.PublicKey) error {
	if x.Destination == "" {
		return fmt.Errorf("%w: no destination; set it to the receiving server's name", ErrBadXMatrix)
	}
	msg, err := requestJSON(method, uri, x.Origin, x.Destination, content)
	if err != nil {
		return err
	}
	return verify(msg, x.KeyID, x.Sig, pub)
}

// requestJSON returns the canonical JSON a request signature covers.
func requestJSON(method, uri, origin, destination string, content []byte) ([]byte, error) {
	ms := []member{
		{"destination", appendString(nil, destination)},
		{"method", appendString(nil, method)},
		{"origin", appendString(nil, origin)},
		{"uri", appendString(nil, uri)},
	}
	if len(content) > 0 {
		c, err := CanonicalJSON(content)
		if err != nil {
			return nil, fmt.Errorf("request content: %w", err)
		}
		ms = setMember(ms, "content", c)
	}
	return appendObject(nil, ms), nil
}

// paramParser reads the comma-separated auth-params of an Authorization
// header (RFC 7235 section 2.1), accepting empty list elements.
type paramParser struct {
	s string
	i int
}

func (p *paramParser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// next returns the next parameter, or ok false at the end of the header.
func (p *paramParser) next() (name, value string, ok bool, err error) {
	for {
		p.skipSpace()
		if p.i == len(p.s) {
			return "", "", false, nil
		}
		if p.s[p.i] != ',' {
			break
		}
		p.i++
	}
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	name = p.s[start:p.i]
	if name == "" {
		return "", "", false, fmt.Errorf("expected a parameter name at offset %d", start)
	}
	p.skipSpace()
	if p.i == len(p.s) || p.s[p.i] != '=' {
		return "", "", false, fmt.Errorf("parameter %q has no '='", name)
	}
	p.i++
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == '"' {
		if value, err = p.quoted(); err != nil {
			return "", "", false, fmt.Errorf("parameter %q: %v", name, err)
		}
	} else {
		start := p.i
		for p.i < len(p.s) && isUnquotedChar(p.s[p.i]) {
			p.i++
		}
		value = p.s[start:p.i]
		if value == "" {
			return "", "", false, fmt.Errorf("parameter %q has no value", name)
		}
	}
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] != ',' {
		return "", "", false, fmt.Errorf("unexpected %q after parameter %q", p.s[p.i], name)
	}
	return name, value, true, nil
}

// quoted reads a quoted-string starting at the opening quote and returns it
// unescaped.
func (p *paramParser) quoted() (string, error) {
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '"':
			return b.String(), nil
		case c == '\\':
			if p.i == len(p.s) {
				return "", errors.New("unterminated escape")
			}
			c = p.s[p.i]
			p.i++
			if !isQuotedChar(c) {
				return "", fmt.Errorf("escaped control character %q", c)
			}
		case !isQuotedChar(c):
			return "", fmt.Errorf("control character %q in quoted value", c)
		}
		b.WriteByte(c)
	}
	return "", errors.New("unterminated quoted value")
}

// isTokenChar reports whether c is a tchar of RFC 7230.
func isTokenChar(c byte) bool {
	return isAlnum(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isUnquotedChar reports whether c may appear in an unquoted value: more than
// a token, as older servers send colons unquoted and base64 has '/', '+', '='.
func isUnquotedChar(c byte) bool {
	return c > ' ' && c < 0x7f && c != '"' && c != ',' && c != '\\'
}

// isQuotedChar reports whether c may appear (escaped or not) in a
// quoted-string: HTAB, SP, visible ASCII and obs-text.
func isQuotedChar(c byte) bool {
	return c == '\t' || c >= ' ' && c != 0x7f
}

// validQuotedValue reports whether String can quote s so that ParseXMatrix
// reads it back unchanged.
func validQuotedValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isQuotedChar(s[i]) {
			return false
		}
	}
	return true
}
