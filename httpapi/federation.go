package httpapi

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

// KeySource gives the public key another server signs with (the key
// fetcher of package matrix, or a fixed table in tests).
type KeySource interface {
	PublicKey(ctx context.Context, serverName, keyID string) (ed25519.PublicKey, error)
}

// keyValidity is how long our key document says its keys are valid.
const keyValidity = 24 * time.Hour

// keyServer: GET /_matrix/key/v2/server, for a homeserver whose key we hold.
func (a *API) keyServer(w http.ResponseWriter, _ *http.Request, rc *reqCtx) error {
	k := rc.hs.SigningKey
	if k == nil {
		return errorf(http.StatusNotFound, "M_NOT_FOUND", "This server holds no signing key for %s", rc.hs.Name)
	}
	signed, err := matrix.KeyDocument(rc.hs.Name, *k, a.opts.Now().Add(keyValidity))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(signed)
	return nil
}

// federationAuth checks the request's X-Matrix signature: a destination
// that is this homeserver, an origin whose key verifies the signature.
// Anything else is 401.
func (a *API) federationAuth(r *http.Request, hs *Homeserver) (origin string, err error) {
	unauthorized := func(msg string) error { return errorf(http.StatusUnauthorized, "M_UNAUTHORIZED", "%s", msg) }
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", unauthorized("Missing X-Matrix authorization")
	}
	x, err := matrix.ParseXMatrix(h)
	if err != nil {
		return "", unauthorized("Malformed X-Matrix authorization")
	}
	if x.Destination == "" {
		x.Destination = hs.Name // older servers sign it without sending it
	}
	if !strings.EqualFold(x.Destination, hs.Name) {
		return "", unauthorized("The request's destination is not this server")
	}
	if err := matrix.ValidateServerName(x.Origin); err != nil {
		return "", unauthorized("The request's origin is not a server name")
	}
	if a.opts.Keys == nil {
		return "", unauthorized("This server cannot verify federation requests (no key source)")
	}
	pub, err := a.opts.Keys.PublicKey(r.Context(), x.Origin, x.KeyID)
	if err != nil {
		return "", unauthorized("Cannot get the origin's signing key")
	}
	// The signature covers the request target as sent (still escaped).
	if err := matrix.VerifyRequest(r.Method, r.RequestURI, nil, x, pub); err != nil {
		return "", unauthorized("Bad X-Matrix signature")
	}
	return x.Origin, nil
}

// fedDownload: GET /_matrix/federation/v1/media/download/{mediaId}
func (a *API) fedDownload(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	return a.serveFederation(w, r, rc, false)
}

// fedThumbnail: GET /_matrix/federation/v1/media/thumbnail/{mediaId}
func (a *API) fedThumbnail(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	return a.serveFederation(w, r, rc, true)
}

func (a *API) serveFederation(w http.ResponseWriter, r *http.Request, rc *reqCtx, thumb bool) error {
	origin, err := a.federationAuth(r, rc.hs)
	if err != nil {
		return err
	}
	kind := RateDownload
	if thumb {
		kind = RateThumbnail
	}
	if err := a.limitServer(origin, kind); err != nil {
		return err
	}
	m, err := matrix.NewMXC(rc.hs.Name, rc.param("id"))
	if err != nil {
		return err
	}
	wait, err := waitParam(r)
	if err != nil {
		return err
	}
	rec, err := a.opts.Store.Resolve(r.Context(), m, media.ReadOptions{Path: media.FederationRead, Wait: wait})
	if err != nil {
		return err
	}
	var (
		body        *media.Reader
		contentType string
		disposition string
	)
	if thumb {
		req, err := media.ParseThumbnailRequest(r.URL.Query())
		if err != nil {
			return err
		}
		rd, tr, err := a.opts.Store.Thumbnail(r.Context(), rec, req)
		if err != nil {
			return err
		}
		body, contentType, disposition = rd, tr.ContentType, contentDisposition(tr.ContentType, "", true)
	} else {
		rd, err := a.opts.Store.OpenMedia(rec)
		if err != nil {
			return err
		}
		contentType = rec.ContentType
		if contentType == "" {
			contentType = "application/octet-stream"
		}
		body, disposition = rd, contentDisposition(contentType, rec.UploadName, false)
	}
	defer body.Close()
	if err := body.Check(); err != nil {
		return err // damaged from the start: nothing sent yet
	}
	boundary := matrix.NewBoundary()
	w.Header().Set("Content-Type", matrix.MultipartContentType(boundary))
	w.WriteHeader(http.StatusOK)
	_, err = matrix.WriteMultipart(w, boundary, contentType, disposition, body)
	abortIfDamaged(err)
	if err != nil && !errors.Is(err, context.Canceled) {
		a.log.Warn("federation download cut short", "media", m.String(), "err", err)
	}
	return nil
}
