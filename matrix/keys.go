package matrix

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrBadSigningKey is wrapped by the errors of a signing key file, key ID or
// key that cannot be used.
var ErrBadSigningKey = errors.New("matrix: bad signing key")

// ErrBadSignature is wrapped when a signature is missing, undecodable or does
// not match the signed data.
var ErrBadSignature = errors.New("matrix: bad signature")

// keyAlgorithm is the only signing algorithm Matrix defines.
const keyAlgorithm = "ed25519"

// SigningKey is a homeserver's ed25519 signing key. The zero value is not a
// usable key; get one from ParseSigningKeyFile or GenerateSigningKey.
type SigningKey struct {
	// ID is the key identifier, algorithm and version: "ed25519:a_abcd".
	ID string
	// Private is the key itself (seed and public half, as crypto/ed25519
	// stores it).
	Private ed25519.PrivateKey
}

// ParseSigningKeyFile parses a key in Synapse's signing key file format: one
// line "ed25519 <version> <unpadded base64 seed>", optionally ended by a
// newline. The version is 1 or more characters of [A-Za-z0-9_]; padded base64
// is accepted too. Files with several keys are refused rather than read in
// part. Errors wrap ErrBadSigningKey.
func ParseSigningKeyFile(data []byte) (SigningKey, error) {
	line := bytes.TrimSuffix(data, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if bytes.ContainsAny(line, "\r\n") {
		return SigningKey{}, fmt.Errorf("%w: key file must hold exactly one line", ErrBadSigningKey)
	}
	fields := strings.Fields(string(line))
	if len(fields) != 3 {
		return SigningKey{}, fmt.Errorf("%w: key file line must be \"ed25519 <version> <base64 seed>\", got %d fields", ErrBadSigningKey, len(fields))
	}
	if fields[0] != keyAlgorithm {
		return SigningKey{}, fmt.Errorf("%w: unsupported algorithm %q (want %s)", ErrBadSigningKey, fields[0], keyAlgorithm)
	}
	if err := validateKeyVersion(fields[1]); err != nil {
		return SigningKey{}, err
	}
	seed, err := decodeBase64(fields[2])
	if err != nil {
		return SigningKey{}, fmt.Errorf("%w: seed is not base64: %v", ErrBadSigningKey, err)
	}
	if len(seed) != ed25519.SeedSize {
		return SigningKey{}, fmt.Errorf("%w: seed has %d bytes, want %d", ErrBadSigningKey, len(seed), ed25519.SeedSize)
	}
	return SigningKey{ID: keyAlgorithm + ":" + fields[1], Private: ed25519.NewKeyFromSeed(seed)}, nil
}

// GenerateSigningKey makes a new random key with the given version (1 or more
// characters of [A-Za-z0-9_]), so its ID is "ed25519:<version>".
func GenerateSigningKey(version string) (SigningKey, error) {
	if err := validateKeyVersion(version); err != nil {
		return SigningKey{}, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return SigningKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	return SigningKey{ID: keyAlgorithm + ":" + version, Private: priv}, nil
}

// MarshalFile returns the key in Synapse's signing key file format, ending
// with a newline; ParseSigningKeyFile reads it back. It returns nil for a key
// that is not a valid ed25519 private key.
func (k SigningKey) MarshalFile() []byte {
	if len(k.Private) != ed25519.PrivateKeySize {
		return nil
	}
	version := strings.TrimPrefix(k.ID, keyAlgorithm+":")
	return []byte(keyAlgorithm + " " + version + " " + base64.RawStdEncoding.EncodeToString(k.Private.Seed()) + "\n")
}

// Public returns the public half of the key, or nil for a key that is not a
// valid ed25519 private key.
func (k SigningKey) Public() ed25519.PublicKey {
	if len(k.Private) != ed25519.PrivateKeySize {
		return nil
	}
	return k.Private.Public().(ed25519.PublicKey)
}

// check reports whether k can sign.
func (k SigningKey) check() error {
	version, ok := strings.CutPrefix(k.ID, keyAlgorithm+":")
	if !ok {
		return fmt.Errorf("%w: key ID %q does not start with %q", ErrBadSigningKey, k.ID, keyAlgorithm+":")
	}
	if err := validateKeyVersion(version); err != nil {
		return err
	}
	if len(k.Private) != ed25519.PrivateKeySize {
		return fmt.Errorf("%w: private key has %d bytes, want %d", ErrBadSigningKey, len(k.Private), ed25519.PrivateKeySize)
	}
	return nil
}

// sign returns the unpadded base64 signature of msg.
func (k SigningKey) sign(msg []byte) string {
	return base64.RawStdEncoding.EncodeToString(ed25519.Sign(k.Private, msg))
}

// validateKeyVersion accepts the key versions the spec allows: [A-Za-z0-9_]+.
func validateKeyVersion(v string) error {
	if v == "" {
		return fmt.Errorf("%w: empty key version", ErrBadSigningKey)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !isAlnum(c) && c != '_' {
			return fmt.Errorf("%w: key version %q has a character outside [A-Za-z0-9_]", ErrBadSigningKey, v)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// decodeBase64 decodes standard base64 with or without padding, as the spec
// asks receivers to accept.
func decodeBase64(s string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

// SignJSON signs the JSON object obj as serverName with k, following the
// spec's "Signing JSON": the object without its "signatures" and "unsigned"
// members is signed in canonical form, and the unpadded base64 signature is
// stored at signatures[serverName][k.ID]. Other signatures and "unsigned" are
// kept. The result is the whole signed object in canonical form.
//
// obj must be canonicalisable (see CanonicalJSON); errors wrap ErrBadJSON or
// ErrBadSigningKey.
func SignJSON(obj []byte, serverName string, k SigningKey) ([]byte, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	ms, err := canonicalMembers(obj)
	if err != nil {
		return nil, err
	}
	sig := k.sign(appendObject(nil, withoutMembers(ms, "signatures", "unsigned")))

	var sigs, mine []member
	if raw, ok := findMember(ms, "signatures"); ok {
		if sigs, err = canonicalMembers(raw); err != nil {
			return nil, fmt.Errorf("%w: \"signatures\" is not an object", ErrBadJSON)
		}
		if raw, ok := findMember(sigs, serverName); ok {
			if mine, err = canonicalMembers(raw); err != nil {
				return nil, fmt.Errorf("%w: signatures of %q are not an object", ErrBadJSON, serverName)
			}
		}
	}
	mine = setMember(mine, k.ID, appendString(nil, sig))
	sigs = setMember(sigs, serverName, appendObject(nil, mine))
	ms = setMember(ms, "signatures", appendObject(nil, sigs))
	return appendObject(nil, ms), nil
}

// VerifyJSON checks the signature signatures[serverName][keyID] of the JSON
// object obj against pub, following the spec's "Checking for a Signature".
// Only ed25519 keys are understood; base64 with or without padding is
// accepted. A missing, undecodable or wrong signature and an unsupported
// algorithm give an error wrapping ErrBadSignature; obj that is not
// canonicalisable one wrapping ErrBadJSON.
func VerifyJSON(obj []byte, serverName, keyID string, pub ed25519.PublicKey) error {
	ms, err := canonicalMembers(obj)
	if err != nil {
		return err
	}
	sig, err := findSignature(ms, serverName, keyID)
	if err != nil {
		return err
	}
	return verify(appendObject(nil, withoutMembers(ms, "signatures", "unsigned")), keyID, sig, pub)
}

// findSignature returns signatures[serverName][keyID] of an object.
func findSignature(ms []member, serverName, keyID string) (string, error) {
	missing := fmt.Errorf("%w: no signature by %s with key %s", ErrBadSignature, serverName, keyID)
	raw, ok := findMember(ms, "signatures")
	if !ok {
		return "", missing
	}
	sigs, err := canonicalMembers(raw)
	if err != nil {
		return "", fmt.Errorf("%w: \"signatures\" is not an object", ErrBadSignature)
	}
	if raw, ok = findMember(sigs, serverName); !ok {
		return "", missing
	}
	mine, err := canonicalMembers(raw)
	if err != nil {
		return "", fmt.Errorf("%w: signatures of %q are not an object", ErrBadSignature, serverName)
	}
	if raw, ok = findMember(mine, keyID); !ok {
		return "", missing
	}
	var sig string
	if err := json.Unmarshal(raw, &sig); err != nil {
		return "", fmt.Errorf("%w: signature is not a string", ErrBadSignature)
	}
	return sig, nil
}

// verify checks the base64 signature sig of msg made with key keyID.
func verify(msg []byte, keyID, sig string, pub ed25519.PublicKey) error {
	if !strings.HasPrefix(keyID, keyAlgorithm+":") {
		return fmt.Errorf("%w: unsupported key algorithm in %q", ErrBadSignature, keyID)
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key has %d bytes, want %d", ErrBadSigningKey, len(pub), ed25519.PublicKeySize)
	}
	raw, err := decodeBase64(sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return fmt.Errorf("%w: signature is not %d bytes of base64", ErrBadSignature, ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, msg, raw) {
		return fmt.Errorf("%w: signature by %s does not match", ErrBadSignature, keyID)
	}
	return nil
}

// findMember returns the value of key in canonically ordered members.
func findMember(ms []member, key string) ([]byte, bool) {
	for _, m := range ms {
		if m.key == key {
			return m.value, true
		}
	}
	return nil, false
}
