package matrix

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestSignVerifyRequest(t *testing.T) {
	k := specKey(t)
	other, err := GenerateSigningKey("other")
	if err != nil {
		t.Fatal(err)
	}
	const (
		method = "GET"
		uri    = "/_matrix/federation/v1/media/download/abc?timeout_ms=20000"
		origin = "origin.example"
		dest   = "dest.example:8448"
	)
	for _, content := range [][]byte{nil, []byte(`{"b": [1, 2], "a": "é"}`)} {
		h, err := SignRequest(method, uri, origin, dest, content, k)
		if err != nil {
			t.Fatal(err)
		}
		x, err := ParseXMatrix(h)
		if err != nil {
			t.Fatalf("ParseXMatrix(%q): %v", h, err)
		}
		want := XMatrix{Origin: origin, Destination: dest, KeyID: k.ID, Sig: x.Sig}
		if x != want || len(x.Sig) != 86 {
			t.Fatalf("parsed %+v, want %+v with an 86-character signature", x, want)
		}
		if err := VerifyRequest(method, uri, content, x, k.Public()); err != nil {
			t.Fatalf("VerifyRequest: %v", err)
		}
		// The body is signed as canonical JSON, so its spelling may change.
		if content != nil {
			if err := VerifyRequest(method, uri, []byte(`{"a":"\u00e9","b":[1,2]}`), x, k.Public()); err != nil {
				t.Errorf("VerifyRequest with the body re-encoded: %v", err)
			}
		}

		tamper := []struct {
			name    string
			method  string
			uri     string
			content []byte
			x       XMatrix
		}{
			{"method", "PUT", uri, content, x},
			{"uri", method, uri + "&x=1", content, x},
			{"content added or changed", method, uri, []byte(`{"a":"e"}`), x},
			{"destination", method, uri, content, XMatrix{origin, "evil.example", x.KeyID, x.Sig}},
			{"origin", method, uri, content, XMatrix{"evil.example", dest, x.KeyID, x.Sig}},
			{"signature", method, uri, content, XMatrix{origin, dest, x.KeyID, strings.Repeat("A", 86)}},
		}
		if content != nil {
			tamper = append(tamper, struct {
				name    string
				method  string
				uri     string
				content []byte
				x       XMatrix
			}{"content removed", method, uri, nil, x})
		}
		for _, c := range tamper {
			if err := VerifyRequest(c.method, c.uri, c.content, c.x, k.Public()); !errors.Is(err, ErrBadSignature) {
				t.Errorf("tampered %s (content %v): %v, want ErrBadSignature", c.name, content != nil, err)
			}
		}
		if err := VerifyRequest(method, uri, content, x, other.Public()); !errors.Is(err, ErrBadSignature) {
			t.Errorf("wrong public key: %v, want ErrBadSignature", err)
		}
	}
}

func TestVerifyRequestErrors(t *testing.T) {
	k := specKey(t)
	h, err := SignRequest("GET", "/x", "o", "d", nil, k)
	if err != nil {
		t.Fatal(err)
	}
	x, err := ParseXMatrix(h)
	if err != nil {
		t.Fatal(err)
	}
	// An older server's header without destination: the receiver fills in
	// its own name, which the sender signed.
	old, err := ParseXMatrix(`X-Matrix origin=o,key="ed25519:1",sig="` + x.Sig + `"`)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyRequest("GET", "/x", nil, old, k.Public()); !errors.Is(err, ErrBadXMatrix) {
		t.Errorf("empty destination: %v, want ErrBadXMatrix", err)
	}
	old.Destination = "d"
	if err := VerifyRequest("GET", "/x", nil, old, k.Public()); err != nil {
		t.Errorf("destination filled in: %v", err)
	}
	if err := VerifyRequest("GET", "/x", []byte(`{"a":1.5}`), x, k.Public()); !errors.Is(err, ErrBadJSON) {
		t.Errorf("float content: %v, want ErrBadJSON", err)
	}
	if err := VerifyRequest("GET", "/x", nil, x, nil); !errors.Is(err, ErrBadSigningKey) {
		t.Errorf("nil public key: %v, want ErrBadSigningKey", err)
	}
}

func TestSignRequestErrors(t *testing.T) {
	k := specKey(t)
	cases := []struct {
		method, uri, origin, dest string
		content                   []byte
		key                       SigningKey
		want                      error
	}{
		{"GET", "/x", "o", "", nil, k, ErrBadXMatrix},
		{"GET", "/x", "", "d", nil, k, ErrBadXMatrix},
		{"", "/x", "o", "d", nil, k, ErrBadXMatrix},
		{"GET", "", "o", "d", nil, k, ErrBadXMatrix},
		{"GET", "/x", "o\r\nX-Evil: 1", "d", nil, k, ErrBadXMatrix},
		{"GET", "/x", "o", "d", []byte(`{"a":1.5}`), k, ErrBadJSON},
		{"GET", "/x", "o", "d", []byte(`{`), k, ErrBadJSON},
		{"GET", "/x", "o", "d", nil, SigningKey{}, ErrBadSigningKey},
	}
	for _, c := range cases {
		if h, err := SignRequest(c.method, c.uri, c.origin, c.dest, c.content, c.key); !errors.Is(err, c.want) {
			t.Errorf("SignRequest(%q, %q, %q, %q, %s) = %q, %v; want %v", c.method, c.uri, c.origin, c.dest, c.content, h, err, c.want)
		}
	}
	// A quote in a name survives the header round trip.
	h, err := SignRequest("GET", "/x", `o"\`, "d", nil, k)
	if err != nil {
		t.Fatal(err)
	}
	x, err := ParseXMatrix(h)
	if err != nil || x.Origin != `o"\` {
		t.Fatalf("ParseXMatrix(%q) = %+v, %v", h, x, err)
	}
	if err := VerifyRequest("GET", "/x", nil, x, k.Public()); err != nil {
		t.Fatal(err)
	}
}

func TestParseXMatrix(t *testing.T) {
	full := XMatrix{Origin: "origin.hs.example.com", Destination: "destination.hs.example.com", KeyID: "ed25519:key1", Sig: "ABCDEF+/=="}
	noDest := full
	noDest.Destination = ""
	cases := []struct {
		in   string
		want XMatrix
	}{
		{`X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",key="ed25519:key1",sig="ABCDEF+/=="`, full},
		// Scheme in any case, more than one space or a tab after it,
		// surrounding white space.
		{`x-matrix origin="origin.hs.example.com",destination="destination.hs.example.com",key="ed25519:key1",sig="ABCDEF+/=="`, full},
		{"  X-MATRIX \t origin=\"origin.hs.example.com\",destination=\"destination.hs.example.com\",key=\"ed25519:key1\",sig=\"ABCDEF+/==\"  ", full},
		{"X-Matrix\torigin=origin.hs.example.com,destination=destination.hs.example.com,key=ed25519:key1,sig=ABCDEF+/==", full},
		// Spaces around commas and '='.
		{`X-Matrix origin = "origin.hs.example.com" , destination= destination.hs.example.com ,key ="ed25519:key1",	sig=ABCDEF+/==`, full},
		// Unquoted values, colons included, any order, upper-case names.
		{`X-Matrix SIG=ABCDEF+/==,Key=ed25519:key1,DESTINATION=destination.hs.example.com,Origin=origin.hs.example.com`, full},
		// Empty list elements and a trailing comma.
		{`X-Matrix ,origin="origin.hs.example.com",,destination="destination.hs.example.com", ,key="ed25519:key1",sig="ABCDEF+/==",`, full},
		// Unknown parameters are ignored, even twice or quoted-empty.
		{`X-Matrix foo=bar,origin="origin.hs.example.com",destination="destination.hs.example.com",key="ed25519:key1",sig="ABCDEF+/==",foo="",x-y="a,b"`, full},
		// No destination: an older server.
		{`X-Matrix origin=origin.hs.example.com,key="ed25519:key1",sig="ABCDEF+/=="`, noDest},
		// Escapes in quoted values are undone.
		{`X-Matrix origin="or\"ig\\in\:",destination="d\ e",key="ed25519:k",sig="s"`, XMatrix{`or"ig\in:`, "d e", "ed25519:k", "s"}},
		// IPv6 server names with a port, quoted and unquoted.
		{`X-Matrix origin="[2001:db8::1]:8448",destination=[::1]:8448,key=ed25519:a_b,sig=s`, XMatrix{"[2001:db8::1]:8448", "[::1]:8448", "ed25519:a_b", "s"}},
	}
	for _, c := range cases {
		got, err := ParseXMatrix(c.in)
		if err != nil {
			t.Errorf("ParseXMatrix(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("ParseXMatrix(%q)\n got %+v\nwant %+v", c.in, got, c.want)
		}
	}
}

func TestParseXMatrixMalformed(t *testing.T) {
	bad := []string{
		``,
		`X-Matrix`,
		`X-Matrix `,
		`Bearer abc`,
		`X-Matrixorigin=o,key=ed25519:k,sig=s`,
		`XMatrix origin=o,key=ed25519:k,sig=s`,
		`X-Matrix key=ed25519:k,sig=s`,                 // no origin
		`X-Matrix origin=o,sig=s`,                      // no key
		`X-Matrix origin=o,key=ed25519:k`,              // no sig
		`X-Matrix origin=,key=ed25519:k,sig=s`,         // empty unquoted value
		`X-Matrix origin="",key=ed25519:k,sig=s`,       // empty origin
		`X-Matrix origin=o,destination="",key=k,sig=s`, // empty destination
		`X-Matrix origin=o,origin=p,key=ed25519:k,sig=s`,
		`X-Matrix origin=o,ORIGIN=o,key=ed25519:k,sig=s`,
		`X-Matrix origin=o,key=ed25519:k,sig=s,sig=t`,
		`X-Matrix origin o,key=ed25519:k,sig=s`,
		`X-Matrix origin=o key=ed25519:k,sig=s`,
		`X-Matrix origin="o" "p",key=ed25519:k,sig=s`,
		`X-Matrix origin="o,key=ed25519:k,sig=s`,   // unterminated quote
		`X-Matrix origin="o\`,                      // unterminated escape
		`X-Matrix origin=o"p",key=ed25519:k,sig=s`, // quote inside a token
		`X-Matrix origin=o\p,key=ed25519:k,sig=s`,
		`X-Matrix =o,key=ed25519:k,sig=s`,
		`X-Matrix or(igin=o,key=ed25519:k,sig=s`,
		"X-Matrix origin=\"o\x00\",key=ed25519:k,sig=s",
		"X-Matrix origin=\"o\r\nX: y\",key=ed25519:k,sig=s",
		"X-Matrix origin=\"o\\\x7f\",key=ed25519:k,sig=s",
		"X-Matrix origin=o\xff,key=ed25519:k,sig=s",
	}
	for _, in := range bad {
		if x, err := ParseXMatrix(in); !errors.Is(err, ErrBadXMatrix) {
			t.Errorf("ParseXMatrix(%q) = %+v, %v; want ErrBadXMatrix", in, x, err)
		}
	}
}

func TestXMatrixString(t *testing.T) {
	cases := []struct {
		x    XMatrix
		want string
	}{
		{XMatrix{"o.example", "d.example", "ed25519:1", "c2ln"}, `X-Matrix origin="o.example",destination="d.example",key="ed25519:1",sig="c2ln"`},
		{XMatrix{"o.example", "", "ed25519:1", "c2ln"}, `X-Matrix origin="o.example",key="ed25519:1",sig="c2ln"`},
		{XMatrix{`a"b\c`, "d", "k", "s"}, `X-Matrix origin="a\"b\\c",destination="d",key="k",sig="s"`},
	}
	for _, c := range cases {
		if got := c.x.String(); got != c.want {
			t.Errorf("%+v.String()\n got %s\nwant %s", c.x, got, c.want)
		}
	}
}

func FuzzParseXMatrix(f *testing.F) {
	// More seeds are in testdata/fuzz/FuzzParseXMatrix.
	f.Add(`X-Matrix origin="o.example",destination="d.example",key="ed25519:1",sig="c2ln"`)
	f.Fuzz(func(t *testing.T, s string) {
		x, err := ParseXMatrix(s)
		if err != nil {
			if !errors.Is(err, ErrBadXMatrix) {
				t.Fatalf("error %v does not wrap ErrBadXMatrix", err)
			}
			return
		}
		if x.Origin == "" || x.KeyID == "" || x.Sig == "" {
			t.Fatalf("accepted %q with an empty required field: %+v", s, x)
		}
		again, err := ParseXMatrix(x.String())
		if err != nil {
			t.Fatalf("ParseXMatrix(%q) (from %q): %v", x.String(), s, err)
		}
		if again != x {
			t.Fatalf("round trip of %q: %+v -> %q -> %+v", s, x, x.String(), again)
		}
	})
}

func ExampleSignRequest() {
	// The test key of the Matrix spec's appendices, as a Synapse key file.
	k, err := ParseSigningKeyFile([]byte("ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1\n"))
	if err != nil {
		panic(err)
	}
	header, err := SignRequest("GET", "/_matrix/federation/v1/media/download/abc", "origin.example", "dest.example", nil, k)
	if err != nil {
		panic(err)
	}
	fmt.Println(header)

	// The receiving side.
	x, err := ParseXMatrix(header)
	if err != nil {
		panic(err)
	}
	fmt.Println(x.Origin, x.Destination, x.KeyID)
	fmt.Println(VerifyRequest("GET", "/_matrix/federation/v1/media/download/abc", nil, x, k.Public()))
	// Output:
	// X-Matrix origin="origin.example",destination="dest.example",key="ed25519:1",sig="qsLiHAUI8WMZb6B6d0XV1uoilC8xE8YVhp2z6EJ/6X3IPXt42OMz7X0BkZheCKkWLvUhO972XhZitXjhe608Dw"
	// origin.example dest.example ed25519:1
	// <nil>
}
