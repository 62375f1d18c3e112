package netguard_test

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/mxcas/mxcas/netguard"
)

func ExampleGuard_Check() {
	g := netguard.New(netguard.Options{Allowed: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}})
	for _, s := range []string{"8.8.8.8", "127.0.0.1", "::ffff:169.254.169.254", "10.20.1.2"} {
		err := g.Check(netip.MustParseAddr(s))
		fmt.Println(s, errors.Is(err, netguard.ErrForbidden))
	}
	// Output:
	// 8.8.8.8 false
	// 127.0.0.1 true
	// ::ffff:169.254.169.254 true
	// 10.20.1.2 false
}
