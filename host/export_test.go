package host

// MaxIdleAcceptors is how many accept workers a listener may keep waiting
// once its connections are gone.
func MaxIdleAcceptors() int { return maxIdleAcceptors() }

// SetMaxIdleAcceptors changes it for the servers started next; the
// returned function restores it.
func SetMaxIdleAcceptors(n int) (restore func()) {
	old := maxIdleAcceptors
	maxIdleAcceptors = func() int { return n }
	return func() { maxIdleAcceptors = old }
}

// ListensOn reports whether node is one of the server's listeners.
func (s *Server) ListensOn(node string) bool { return s.listensOn(node) }
