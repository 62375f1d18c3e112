package preview_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"github.com/mxcas/mxcas/netguard"
	"github.com/mxcas/mxcas/preview"
)

func ExampleFetcher_Preview() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<meta property="og:title" content="Hello"><meta property="og:image" content="/hello.png">`)
	}))
	defer srv.Close()

	// cmd/mxcas passes the operator's guard; this one allows the loopback
	// server of the example.
	guard := netguard.New(netguard.Options{Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	f, err := preview.New(preview.Options{
		DialContext: guard.DialContext,
		Refused:     func(err error) bool { return errors.Is(err, netguard.ErrForbidden) },
	})
	if err != nil {
		panic(err)
	}
	r, err := f.Preview(context.Background(), srv.URL+"/page")
	fmt.Println(r.OG["og:title"], r.Image.URL == srv.URL+"/hello.png", err)

	_, err = f.Preview(context.Background(), "http://10.0.0.1/")
	fmt.Println(errors.Is(err, preview.ErrForbidden))
	// Output:
	// Hello true <nil>
	// true
}
