package netguard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/testkit"
)

func TestInternal(t *testing.T) {
	tests := []struct {
		ip       string
		internal bool
	}{
		{"127.0.0.1", true},
		{"127.255.255.254", true},
		{"10.1.2.3", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"172.32.0.1", false},
		{"192.168.1.1", true},
		{"169.254.169.254", true},
		{"100.64.0.1", true},
		{"100.127.255.255", true},
		{"100.128.0.1", false},
		{"0.0.0.0", true},
		{"255.255.255.255", true},
		{"224.0.0.1", true},
		{"239.255.255.250", true},
		{"192.0.2.1", true},
		{"198.18.0.1", true},
		{"203.0.113.9", true},
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"::", true},
		{"::1", true},
		{"::127.0.0.1", true},
		{"::ffff:127.0.0.1", true},
		{"::ffff:169.254.169.254", true},
		{"::ffff:8.8.8.8", false},
		{"64:ff9b::127.0.0.1", true},
		{"64:ff9b::10.0.0.1", true},
		{"64:ff9b::8.8.8.8", false},
		{"64:ff9b:1::1", true},
		{"2002:7f00:1::", true},                         // 6to4 of 127.0.0.1
		{"2002:0808:0808::", false},                     // 6to4 of 8.8.8.8
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", true},  // Teredo, client 127.0.0.1
		{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", false}, // Teredo, client 8.8.8.8
		{"fc00::1", true},
		{"fd12:3456::1", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"fec0::1", true},
		{"ff02::1", true},
		{"2001:db8::1", true},
		{"100::1", true},
		{"2a00:1450:4001:80b::200e", false},
		{"2606:4700:4700::1111", false},
	}
	for _, tt := range tests {
		ip := netip.MustParseAddr(tt.ip)
		if got := Internal(ip) != ""; got != tt.internal {
			t.Errorf("Internal(%s) = %q, want internal %v", tt.ip, Internal(ip), tt.internal)
		}
		err := New(Options{}).Check(ip)
		if got := errors.Is(err, ErrForbidden); got != tt.internal {
			t.Errorf("Check(%s) = %v, want forbidden %v", tt.ip, err, tt.internal)
		}
		if err != nil && !strings.Contains(err.Error(), ip.WithZone("").String()) {
			t.Errorf("Check(%s) = %v: does not name the address", tt.ip, err)
		}
	}
}

func TestCheckOptions(t *testing.T) {
	g := New(Options{
		Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.1.0.0/16")},
		Denied:  []netip.Prefix{netip.MustParsePrefix("8.8.8.0/24"), netip.MustParsePrefix("10.0.0.0/8")},
	})
	tests := []struct {
		ip      string
		allowed bool
	}{
		{"127.0.0.1", true},
		{"::ffff:127.0.0.1", true},
		{"::1", false},
		{"10.1.2.3", true}, // allowed is checked before denied
		{"10.2.0.1", false},
		{"8.8.8.8", false},
		{"8.8.4.4", true},
		{"192.168.0.1", false},
	}
	for _, tt := range tests {
		err := g.Check(netip.MustParseAddr(tt.ip))
		if (err == nil) != tt.allowed {
			t.Errorf("Check(%s) = %v, want allowed %v", tt.ip, err, tt.allowed)
		}
	}
	if err := g.Check(netip.Addr{}); !errors.Is(err, ErrForbidden) {
		t.Errorf("Check(invalid) = %v", err)
	}
	if err := g.Control("tcp", "localhost:80", nil); !errors.Is(err, ErrForbidden) {
		t.Errorf("Control on a name = %v", err)
	}
}

func TestDialRefusesLoopback(t *testing.T) {
	srv, cl := testkit.NewCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	for _, host := range []string{"127.0.0.1", "localhost"} {
		_, err := New(Options{}).DialContext(context.Background(), "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if !errors.Is(err, ErrForbidden) {
			t.Errorf("dial %s: %v, want ErrForbidden", host, err)
		}
	}
	resp, err := (&http.Client{Transport: New(Options{}).Transport()}).Get(srv.URL)
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, ErrForbidden) {
		t.Errorf("GET %s: %v, want ErrForbidden", srv.URL, err)
	}
	if n := cl.Accepts(); n != 0 {
		t.Errorf("%d connections reached the loopback listener", n)
	}
	allowed := New(Options{Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	resp, err = (&http.Client{Transport: allowed.Transport()}).Get(srv.URL)
	if err != nil {
		t.Fatalf("allowed GET: %v", err)
	}
	resp.Body.Close()
	if cl.Accepts() != 1 {
		t.Errorf("allowed GET: %d accepts, want 1", cl.Accepts())
	}
}

// TestRedirectToLoopbackRefused: an allowed server redirecting to a
// loopback one is refused by the dial, not by the redirect policy.
func TestRedirectToLoopbackRefused(t *testing.T) {
	internal, cl := testkit.NewCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	public, _ := testkit.NewCountingServer(t, http.RedirectHandler(internal.URL+"/secret", http.StatusFound))
	tr := New(Options{}).Transport()
	hc := &http.Client{Transport: tr}
	dial := tr.DialContext
	publicAddr := public.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == publicAddr {
			var d net.Dialer // the "public" server: not checked
			return d.DialContext(ctx, network, addr)
		}
		return dial(ctx, network, addr)
	}
	resp, err := hc.Get(public.URL)
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, ErrForbidden) {
		t.Errorf("redirect to loopback: %v, want ErrForbidden", err)
	}
	if n := cl.Accepts(); n != 0 {
		t.Errorf("%d connections reached the internal listener", n)
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::7f00:1", "2002:a00:1::", "2001:0:1:2:3:4:80ff:fffe", "8.8.8.8", "2606:4700::1", "fe80::1%eth0"} {
		f.Add(s)
	}
	g := New(Options{})
	f.Fuzz(func(t *testing.T, s string) {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return
		}
		internal := Internal(ip) != ""
		if errors.Is(g.Check(ip), ErrForbidden) != internal {
			t.Fatalf("Check and Internal disagree on %s", ip)
		}
		// A v4 address and its mapped, NAT64 and 6to4 forms agree.
		if ip.Is4() {
			b := ip.As4()
			forms := []netip.Addr{
				netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: b[0], 13: b[1], 14: b[2], 15: b[3]}),
				netip.AddrFrom16([16]byte{0: 0, 1: 0x64, 2: 0xff, 3: 0x9b, 12: b[0], 13: b[1], 14: b[2], 15: b[3]}),
				netip.AddrFrom16([16]byte{0: 0x20, 1: 0x02, 2: b[0], 3: b[1], 4: b[2], 5: b[3]}),
			}
			for _, v6 := range forms {
				if (Internal(v6) != "") != internal {
					t.Fatalf("%s internal %v but %s is not", ip, internal, v6)
				}
			}
		}
		// Internal IPv4 addresses are internal in every IPv4-mapped form.
		if ip.Is4In6() && (Internal(ip.Unmap()) != "") != internal {
			t.Fatalf("%s and %s disagree", ip, ip.Unmap())
		}
	})
}
