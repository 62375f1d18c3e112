package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/mxcas/mxcas/matrix"
)

// FederationFetcher fetches remote media over federation: the signed v1
// endpoint first, the legacy one (allow_remote=false) when the origin does
// not know it. It turns the protocol's answers into this package's errors.
type FederationFetcher struct {
	Client *matrix.FedClient
}

var _ RemoteFetcher = FederationFetcher{}

// Fetch implements RemoteFetcher.
func (f FederationFetcher) Fetch(ctx context.Context, m matrix.MXC) (RemoteMedia, error) {
	part, closer, err := f.Client.DownloadMedia(ctx, m.Server(), m.MediaID(), nil)
	if errors.Is(err, matrix.ErrFederationUnsupported) {
		return f.legacy(ctx, m)
	}
	if err != nil {
		return RemoteMedia{}, remoteErr(m, err)
	}
	return RemoteMedia{
		Body:        readCloser{part.Body, closer},
		ContentType: part.ContentType,
		UploadName:  dispositionName(part.ContentDisposition),
		Size:        -1,
	}, nil
}

func (f FederationFetcher) legacy(ctx context.Context, m matrix.MXC) (RemoteMedia, error) {
	resp, err := f.Client.DownloadLegacy(ctx, m.Server(), m.Server(), m.MediaID())
	if err != nil {
		return RemoteMedia{}, remoteErr(m, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return RemoteMedia{}, fmt.Errorf("%w: %s (legacy download)", ErrNotFound, m)
		}
		return RemoteMedia{}, fmt.Errorf("%s: legacy download answered %s", m, resp.Status)
	}
	return RemoteMedia{
		Body:        resp.Body,
		ContentType: resp.Header.Get("Content-Type"),
		UploadName:  dispositionName(resp.Header.Get("Content-Disposition")),
		Size:        resp.ContentLength,
	}, nil
}

func remoteErr(m matrix.MXC, err error) error {
	var re *matrix.RemoteError
	if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w: %s: %v", ErrNotFound, m, err)
	}
	return err
}

// dispositionName is the file name of a Content-Disposition, "" when none.
func dispositionName(cd string) string {
	if cd == "" {
		return ""
	}
	_, params, err := mime.ParseMediaType(cd)
	if err != nil {
		return ""
	}
	return params["filename"] // mime decodes filename* too
}

type readCloser struct {
	io.Reader
	c io.Closer
}

func (r readCloser) Close() error {
	if r.c == nil {
		return nil
	}
	return r.c.Close()
}
