// Package netguard is the guarded outbound dialer: it refuses connections to
// internal addresses (loopback, private and shared networks, link-local,
// multicast, reserved and documentation ranges, and the IPv6 forms that
// embed such an IPv4 address), checking the IP actually dialled, after DNS,
// in the dialer's Control hook, so every connection is checked, redirects
// included. Operators widen it with Options.Allowed. It never resolves
// names itself, never reads configuration, and imports no project package;
// cmd/mxcas wires one into matrix (and URL previews).
package netguard
