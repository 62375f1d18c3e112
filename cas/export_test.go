package cas

// DamageMem replaces the stored bytes of chunk h in m with a copy whose
// middle byte is flipped (one extra byte for the empty chunk), as the disk
// might; tests only.
func DamageMem(m *MemStore, h Hash) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.chunks[h]
	if !ok {
		return false
	}
	data := append([]byte(nil), e.data...)
	if len(data) == 0 {
		data = append(data, 0)
	} else {
		data[len(data)/2] ^= 0x01
	}
	m.chunks[h] = &memEntry{data: data, mod: e.mod}
	return true
}
