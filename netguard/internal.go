package netguard

import "net/netip"

// deniedV4 is the built-in IPv4 deny list: Synapse's
// DEFAULT_IP_RANGE_BLACKLIST plus "this network" and the reserved 240/4
// (which holds the limited broadcast address).
var deniedV4 = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this network"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved or broadcast"},
}

// deniedV6 is the built-in IPv6 deny list, for addresses that do not embed
// an IPv4 address (those are checked as that IPv4 address).
var deniedV6 = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("::/96"), "unspecified, loopback or IPv4-compatible"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001:2::/48"), "benchmarking"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("fc00::/7"), "unique local"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

var (
	nat64   = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4  = netip.MustParsePrefix("2002::/16")
	teredo  = netip.MustParsePrefix("2001::/32")
	mapped  = netip.MustParsePrefix("::ffff:0:0/96")
	v4Embed = []netip.Prefix{nat64, mapped}
)

// Internal reports why ip is in the built-in deny list ("" when it is
// not). IPv6 forms that carry an IPv4 address (IPv4-mapped, NAT64 64:ff9b::/96,
// 6to4 2002::/16, Teredo 2001::/32) are judged by that IPv4 address.
func Internal(ip netip.Addr) string {
	ip = ip.WithZone("")
	if !ip.IsValid() {
		return "invalid"
	}
	if ip.Is6() {
		b := ip.As16()
		for _, p := range v4Embed {
			if p.Contains(ip) {
				if why := Internal(netip.AddrFrom4([4]byte(b[12:16]))); why != "" {
					return why + ", embedded in IPv6"
				}
				return ""
			}
		}
		if sixTo4.Contains(ip) {
			if why := Internal(netip.AddrFrom4([4]byte(b[2:6]))); why != "" {
				return why + ", embedded in 6to4"
			}
			return ""
		}
		if teredo.Contains(ip) {
			// The client's address is the last 32 bits, inverted; the
			// Teredo server's is bits 32 to 63.
			client := [4]byte{^b[12], ^b[13], ^b[14], ^b[15]}
			if why := Internal(netip.AddrFrom4(client)); why != "" {
				return why + ", embedded in Teredo"
			}
			if why := Internal(netip.AddrFrom4([4]byte(b[4:8]))); why != "" {
				return why + ", Teredo server"
			}
			return ""
		}
		for _, d := range deniedV6 {
			if d.prefix.Contains(ip) {
				return d.why
			}
		}
		return ""
	}
	for _, d := range deniedV4 {
		if d.prefix.Contains(ip) {
			return d.why
		}
	}
	return ""
}
