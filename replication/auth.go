package replication

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// authScheme is the Authorization scheme of every replication request.
const authScheme = "MXCAS-HMAC"

// maxClockSkew is how far a request's timestamp may be from the primary's
// clock.
const maxClockSkew = 5 * time.Minute

var (
	// ErrUnauthorized means the primary refused the request's signature:
	// the secrets differ (or the clocks are more than 5 minutes apart).
	ErrUnauthorized = errors.New("replication: unauthorized (wrong secret or clock skew)")
	// ErrTrimmed means the primary's log no longer holds the changes the
	// standby needs: it must be seeded again from a backup.
	ErrTrimmed = errors.New("replication: the primary's change log is trimmed past this standby's head")
	// ErrDiverged: the primary's change at the standby's head is not the
	// one the standby applied (a primary restored from an older backup, or
	// another store's): the standby must be seeded again.
	ErrDiverged = errors.New("replication: the primary's history diverged from this standby's")
)

// mac returns the hex HMAC-SHA256 of a request (see doc.go).
func mac(secret []byte, method, requestURI string, ts int64, bodySHA256 string) string {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "MXCAS-HMAC-v1\n%s\n%s\n%d\n%s", method, requestURI, ts, bodySHA256)
	return hex.EncodeToString(m.Sum(nil))
}

// bodyDigest is the lower-case hex SHA-256 of body.
func bodyDigest(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// authorization returns the Authorization header value of a request.
func authorization(secret []byte, method, requestURI string, now time.Time, body []byte) string {
	ts := now.Unix()
	return fmt.Sprintf("%s ts=%d,mac=%s", authScheme, ts, mac(secret, method, requestURI, ts, bodyDigest(body)))
}

// checkAuthorization checks header against the request; nil when it is
// signed with secret within maxClockSkew of now.
func checkAuthorization(secret []byte, header, method, requestURI string, now time.Time, body []byte) error {
	rest, ok := strings.CutPrefix(header, authScheme+" ")
	if !ok {
		return errors.New("missing " + authScheme + " authorization")
	}
	var tsText, macText string
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "ts":
			tsText = v
		case "mac":
			macText = v
		}
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return errors.New("bad timestamp")
	}
	got, err := hex.DecodeString(macText)
	if err != nil || len(got) != sha256.Size {
		return errors.New("bad mac")
	}
	want, _ := hex.DecodeString(mac(secret, method, requestURI, ts, bodyDigest(body)))
	if !hmac.Equal(got, want) {
		return errors.New("mac mismatch")
	}
	if skew := now.Sub(time.Unix(ts, 0)); skew > maxClockSkew || skew < -maxClockSkew {
		return fmt.Errorf("timestamp %d is %s from the primary's clock", ts, skew.Round(time.Second))
	}
	return nil
}
