package httpapi

import (
	"errors"
	"strings"
)

// SetHomeservers replaces the homeservers served (their names, admins,
// static tokens, whoami address and signing keys). A request uses the
// table it started with; later requests see the new one whole. The
// whoami cache is kept: it maps tokens to users, which a reload does not
// change (static tokens are checked before it). list must not be changed
// afterwards. An empty list is refused and changes nothing. Safe for
// concurrent use.
func (a *API) SetHomeservers(list []Homeserver) error {
	if len(list) == 0 {
		return errors.New("httpapi: no homeserver configured")
	}
	hosts := make(map[string]*Homeserver, len(list))
	for i := range list {
		hs := &list[i]
		hosts[strings.ToLower(hs.Name)] = hs
	}
	a.hosts.Store(&hosts)
	return nil
}
