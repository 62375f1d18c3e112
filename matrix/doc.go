// Package matrix holds the Matrix protocol pieces mxcas needs: mxc URIs,
// server names and media IDs, validated once at the edge so the rest of the
// code can trust them; and for federation, canonical JSON, signing keys in
// Synapse's format, JSON and X-Matrix request signatures, and the
// multipart/mixed media responses. It is a leaf: it knows nothing of storage or HTTP
// routing, and it never turns an untrusted name into a file-system path. It
// does not decide which addresses may be dialled: the federation client takes
// its dialer as an option (cmd/mxcas gives it netguard's), and its caches
// keyed by remote server names are bounded.
package matrix
