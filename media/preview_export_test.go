package media

// OnPreviewJoined makes fn run whenever a PreviewURL call has joined the
// flight that makes its preview (leading it or waiting for it).
func (s *Store) OnPreviewJoined(fn func()) {
	s.previews.mu.Lock()
	defer s.previews.mu.Unlock()
	s.previews.joined = fn
}
