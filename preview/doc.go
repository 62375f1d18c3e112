// Package preview makes URL previews: the SSRF-safe fetcher (every
// connection through the guarded dialer it is given, checked on the IP
// actually dialled, redirects and images included; schemes, userinfo and
// domain globs checked before), and the extraction of OpenGraph, Twitter
// card and oEmbed data from what it fetched. It returns data and stores
// nothing; it must never pass a page's HTML or an oEmbed "html" on, and
// imports no project package.
package preview
