package host

// ListensOn reports whether node is one of the server's listeners.
func (s *Server) ListensOn(node string) bool { return s.listensOn(node) }
