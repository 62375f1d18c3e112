package preview_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/netguard"
	"github.com/mxcas/mxcas/preview"
)

// loopback is a guard that lets the tests reach their own servers on
// 127.0.0.1 (and nothing else internal).
var loopback = netguard.New(netguard.Options{Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})

// refused is what cmd/mxcas wires as Options.Refused.
func refused(err error) bool { return errors.Is(err, netguard.ErrForbidden) }

// newFetcher returns a Fetcher dialling through g, with opts applied.
func newFetcher(t *testing.T, g *netguard.Guard, opts ...func(*preview.Options)) *preview.Fetcher {
	t.Helper()
	o := preview.Options{DialContext: g.DialContext, Refused: refused, Providers: []preview.Provider{}}
	for _, fn := range opts {
		fn(&o)
	}
	f, err := preview.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// serve starts a loopback server of mux for the test.
func serve(t *testing.T, mux http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// page answers body with content type ct.
func page(ct, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ct)
		w.Write([]byte(body))
	}
}

// resolving is a DialContext that resolves every host name to ip (a
// resolver the test controls) and dials through g.
func resolving(g *netguard.Guard, ip string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		return g.DialContext(ctx, network, net.JoinHostPort(ip, port))
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

// checkResult compares a preview with the OG wanted and the URL of its
// image ("" for none); a page's image comes without a body.
func checkResult(t *testing.T, got preview.Result, wantOG map[string]string, wantImage string) {
	t.Helper()
	if !reflect.DeepEqual(got.OG, wantOG) {
		t.Errorf("OG = %q, want %q", got.OG, wantOG)
	}
	gotImage := ""
	if got.Image != nil {
		gotImage = got.Image.URL
		if got.Image.Body != nil {
			t.Errorf("Image.Body set for a page's image")
		}
	}
	if gotImage != wantImage {
		t.Errorf("image = %q, want %q", gotImage, wantImage)
	}
}

// pageTest is a page to serve and preview: its Content-Type and body, the
// OG wanted and its image's URL (a path on the server, an absolute URL,
// or "").
type pageTest struct {
	name, ct, body string
	want           map[string]string
	wantImage      string
}

// runPageTests serves every page of tests on loopback and checks its
// preview, each in a subtest.
func runPageTests(t *testing.T, tests []pageTest) {
	t.Helper()
	mux := http.NewServeMux()
	for i, tt := range tests {
		mux.Handle("/p/"+strconv.Itoa(i), page(tt.ct, tt.body))
	}
	srv := serve(t, mux)
	f := newFetcher(t, loopback)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.Preview(context.Background(), srv.URL+"/p/"+strconv.Itoa(i))
			if err != nil {
				t.Fatal(err)
			}
			wantImage := tt.wantImage
			if strings.HasPrefix(wantImage, "/") {
				wantImage = srv.URL + wantImage
			}
			checkResult(t, got, tt.want, wantImage)
		})
	}
}
