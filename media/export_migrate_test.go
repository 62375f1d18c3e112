package media

import "github.com/mxcas/mxcas/index"

// UserCounters reads the merged usage counters of user.
func (s *Store) UserCounters(user string) (index.Usage, error) { return s.idx.UserUsage(user) }
