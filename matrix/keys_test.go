package matrix

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"
)

// The spec's "Cryptographic Test Vectors" (appendices): SIGNING_KEY_SEED,
// SERVER_NAME "domain", KEY_ID "ed25519:1".
const (
	specSeed       = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
	specServerName = "domain"
	specKeyID      = "ed25519:1"
)

// specKey returns the key of the spec's test vectors.
func specKey(t testing.TB) SigningKey {
	t.Helper()
	k, err := ParseSigningKeyFile([]byte("ed25519 1 " + specSeed + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignJSONSpecVectors(t *testing.T) {
	k := specKey(t)
	if k.ID != specKeyID {
		t.Fatalf("ID = %q, want %q", k.ID, specKeyID)
	}
	cases := []struct{ in, want string }{
		{`{}`, `{"signatures":{"domain":{"ed25519:1":"K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"}}}`},
		{`{
    "one": 1,
    "two": "Two"
}`, `{"one":1,"signatures":{"domain":{"ed25519:1":"KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"}},"two":"Two"}`},
	}
	for _, c := range cases {
		got, err := SignJSON([]byte(c.in), specServerName, k)
		if err != nil {
			t.Fatalf("SignJSON(%s): %v", c.in, err)
		}
		if string(got) != c.want {
			t.Errorf("SignJSON(%s)\n got %s\nwant %s", c.in, got, c.want)
		}
		if err := VerifyJSON([]byte(c.want), specServerName, specKeyID, k.Public()); err != nil {
			t.Errorf("VerifyJSON(%s): %v", c.want, err)
		}
	}
}

func TestSignJSONKeepsSignaturesAndUnsigned(t *testing.T) {
	k := specKey(t)
	other, err := GenerateSigningKey("b")
	if err != nil {
		t.Fatal(err)
	}
	in := `{"unsigned":{"age":5},"content":{"x":1},"signatures":{"other.org":{"ed25519:z":"abc"},"domain":{"ed25519:0":"old"}}}`
	signed, err := SignJSON([]byte(in), specServerName, k)
	if err != nil {
		t.Fatal(err)
	}
	// Sign twice: the second signature goes next to the first.
	signed, err = SignJSON(signed, specServerName, other)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"unsigned":{"age":5}`, `"other.org":{"ed25519:z":"abc"}`, `"ed25519:0":"old"`, `"ed25519:1":"`, `"ed25519:b":"`} {
		if !bytes.Contains(signed, []byte(want)) {
			t.Errorf("signed object %s lacks %s", signed, want)
		}
	}
	for _, key := range []SigningKey{k, other} {
		if err := VerifyJSON(signed, specServerName, key.ID, key.Public()); err != nil {
			t.Errorf("verify %s: %v", key.ID, err)
		}
	}
	// unsigned is not covered by the signature; content is.
	moved := bytes.Replace(signed, []byte(`"age":5`), []byte(`"age":6`), 1)
	if err := VerifyJSON(moved, specServerName, k.ID, k.Public()); err != nil {
		t.Errorf("changed unsigned: %v", err)
	}
	changed := bytes.Replace(signed, []byte(`"x":1`), []byte(`"x":2`), 1)
	if err := VerifyJSON(changed, specServerName, k.ID, k.Public()); !errors.Is(err, ErrBadSignature) {
		t.Errorf("changed content: %v, want ErrBadSignature", err)
	}
}

func TestVerifyJSONErrors(t *testing.T) {
	k := specKey(t)
	signed, err := SignJSON([]byte(`{"a":"b"}`), specServerName, k)
	if err != nil {
		t.Fatal(err)
	}
	var parsed struct {
		Signatures map[string]map[string]string
	}
	if err := json.Unmarshal(signed, &parsed); err != nil {
		t.Fatal(err)
	}
	sig := parsed.Signatures[specServerName][specKeyID]
	padded := bytes.Replace(signed, []byte(sig), []byte(sig+"=="), 1)
	if bytes.Equal(padded, signed) || len(sig) != 86 {
		t.Fatalf("signature %q not found in %s", sig, signed)
	}
	other, err := GenerateSigningKey("x")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name          string
		obj           string
		server, keyID string
		pub           ed25519.PublicKey
		want          error // nil: valid
	}{
		{"good", string(signed), specServerName, specKeyID, k.Public(), nil},
		{"padded base64", string(padded), specServerName, specKeyID, k.Public(), nil},
		{"wrong key", string(signed), specServerName, specKeyID, other.Public(), ErrBadSignature},
		{"other server", string(signed), "elsewhere", specKeyID, k.Public(), ErrBadSignature},
		{"other key ID", string(signed), specServerName, "ed25519:2", k.Public(), ErrBadSignature},
		{"unknown algorithm", `{"signatures":{"domain":{"curve:1":"K8280"}}}`, specServerName, "curve:1", k.Public(), ErrBadSignature},
		{"no signatures", `{"a":"b"}`, specServerName, specKeyID, k.Public(), ErrBadSignature},
		{"signatures not an object", `{"signatures":[]}`, specServerName, specKeyID, k.Public(), ErrBadSignature},
		{"server entry not an object", `{"signatures":{"domain":"x"}}`, specServerName, specKeyID, k.Public(), ErrBadSignature},
		{"signature not a string", `{"signatures":{"domain":{"ed25519:1":1}}}`, specServerName, specKeyID, k.Public(), ErrBadSignature},
		{"signature not base64", `{"signatures":{"domain":{"ed25519:1":"!!"}}}`, specServerName, specKeyID, k.Public(), ErrBadSignature},
		{"signature too short", `{"signatures":{"domain":{"ed25519:1":"AAAA"}}}`, specServerName, specKeyID, k.Public(), ErrBadSignature},
		{"short public key", string(signed), specServerName, specKeyID, k.Public()[:31], ErrBadSigningKey},
		{"nil public key", string(signed), specServerName, specKeyID, nil, ErrBadSigningKey},
		{"not an object", `[]`, specServerName, specKeyID, k.Public(), ErrBadJSON},
		{"float", `{"a":1.5}`, specServerName, specKeyID, k.Public(), ErrBadJSON},
	}
	for _, c := range cases {
		err := VerifyJSON([]byte(c.obj), c.server, c.keyID, c.pub)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: VerifyJSON = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestSignJSONErrors(t *testing.T) {
	k := specKey(t)
	for _, in := range []string{`[]`, `"x"`, `{"a":1.5}`, `{"signatures":[]}`, `{"signatures":{"domain":1}}`, `{`} {
		if got, err := SignJSON([]byte(in), specServerName, k); !errors.Is(err, ErrBadJSON) {
			t.Errorf("SignJSON(%s) = %s, %v; want ErrBadJSON", in, got, err)
		}
	}
	for _, key := range []SigningKey{{}, {ID: "ed25519:1"}, {ID: "rsa:1", Private: k.Private}, {ID: "ed25519:", Private: k.Private}, {ID: "ed25519:1", Private: k.Private[:10]}} {
		if _, err := SignJSON([]byte(`{}`), specServerName, key); !errors.Is(err, ErrBadSigningKey) {
			t.Errorf("SignJSON with key %q (%d bytes): %v; want ErrBadSigningKey", key.ID, len(key.Private), err)
		}
	}
}

func TestParseSigningKeyFile(t *testing.T) {
	pub := specKey(t).Public()
	good := []string{
		"ed25519 1 " + specSeed,
		"ed25519 1 " + specSeed + "\n",
		"ed25519 1 " + specSeed + "\r\n",
		"ed25519 1 " + specSeed + "=",
		"ed25519  1\t" + specSeed + " ",
	}
	for _, in := range good {
		k, err := ParseSigningKeyFile([]byte(in))
		if err != nil {
			t.Errorf("ParseSigningKeyFile(%q): %v", in, err)
			continue
		}
		if k.ID != "ed25519:1" || !k.Public().Equal(pub) {
			t.Errorf("ParseSigningKeyFile(%q) = %q, %x", in, k.ID, k.Public())
		}
	}
	bad := []string{
		"",
		"\n",
		"ed25519 1",
		"ed25519 " + specSeed,
		"ed25519 1 " + specSeed + " extra",
		"ed448 1 " + specSeed,
		"ED25519 1 " + specSeed,
		"ed25519 a:b " + specSeed,
		"ed25519 a-b " + specSeed,
		"ed25519 1 " + specSeed[:40],
		"ed25519 1 " + specSeed + "AAAA",
		"ed25519 1 not*base64",
		"ed25519 1 " + specSeed + "\n\n",
		"ed25519 1 " + specSeed + "\ned25519 2 " + specSeed + "\n",
	}
	for _, in := range bad {
		if k, err := ParseSigningKeyFile([]byte(in)); !errors.Is(err, ErrBadSigningKey) {
			t.Errorf("ParseSigningKeyFile(%q) = %q, %v; want ErrBadSigningKey", in, k.ID, err)
		}
	}
}

func TestSigningKeyFileRoundTrip(t *testing.T) {
	// The spec's seed has non-zero trailing bits ("...XA1"); they carry no
	// data, and the canonical encoding of the same 32 bytes ends in "XA0".
	if got, want := string(specKey(t).MarshalFile()), "ed25519 1 "+specSeed[:42]+"0\n"; got != want {
		t.Errorf("MarshalFile = %q, want %q", got, want)
	}
	k, err := GenerateSigningKey("a_Bc9")
	if err != nil {
		t.Fatal(err)
	}
	if k.ID != "ed25519:a_Bc9" || len(k.Public()) != ed25519.PublicKeySize {
		t.Fatalf("GenerateSigningKey = %q, %d-byte public key", k.ID, len(k.Public()))
	}
	back, err := ParseSigningKeyFile(k.MarshalFile())
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != k.ID || !back.Private.Equal(k.Private) {
		t.Errorf("round trip changed the key: %q -> %q", k.ID, back.ID)
	}
	for _, v := range []string{"", "a:b", "a b", "ä"} {
		if _, err := GenerateSigningKey(v); !errors.Is(err, ErrBadSigningKey) {
			t.Errorf("GenerateSigningKey(%q): %v, want ErrBadSigningKey", v, err)
		}
	}
	var zero SigningKey
	if zero.Public() != nil || zero.MarshalFile() != nil {
		t.Error("zero SigningKey has a public key or a file form")
	}
}
