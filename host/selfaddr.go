package host

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// Telling this host's own addresses apart, so that uwsgi.rpc to them runs
// in-process: over the network such a call would wait for an interpreter
// while its caller holds one, and a chain of them as deep as the pool
// deadlocks.

// listensOn reports whether node (an address as uwsgi.rpc takes it) is one
// of the server's listeners. A listener on 0.0.0.0 or [::] answers on
// every local address; unix socket paths are compared cleaned.
func (s *Server) listensOn(node string) bool {
	s.init()
	s.mu.Lock()
	addrs := make([]net.Addr, 0, len(s.listeners))
	for l := range s.listeners {
		addrs = append(addrs, (*l).Addr())
	}
	s.mu.Unlock()
	network, address, err := uwsgi.SplitAddr(node)
	if err != nil {
		return false
	}
	if network == "unix" {
		for _, a := range addrs {
			if ua, ok := a.(*net.UnixAddr); ok && sameSocketPath(ua.Name, address) {
				return true
			}
		}
		return false
	}
	hostName, portName, err := net.SplitHostPort(address)
	if err != nil {
		return false
	}
	port, err := net.LookupPort("tcp", portName)
	if err != nil {
		return false
	}
	var ips []net.IP
	for _, a := range addrs {
		ta, ok := a.(*net.TCPAddr)
		if !ok || ta.Port != port {
			continue
		}
		if ips == nil {
			if ips = resolveNode(hostName); len(ips) == 0 {
				return false
			}
		}
		for _, ip := range ips {
			// An unspecified node address dials this machine too.
			if ip.Equal(ta.IP) || ip.IsUnspecified() || (ta.IP.IsUnspecified() && isLocalIP(ip)) {
				return true
			}
		}
	}
	return false
}

func sameSocketPath(a, b string) bool {
	if len(a) > 0 && a[0] == '@' || len(b) > 0 && b[0] == '@' {
		return a == b // abstract names are not paths
	}
	if aa, err := filepath.Abs(a); err == nil {
		a = aa
	}
	if bb, err := filepath.Abs(b); err == nil {
		b = bb
	}
	return filepath.Clean(a) == filepath.Clean(b)
}

// Node host names are resolved once and kept: scripts call few nodes, and
// a lookup per call would cost more than the call.
var (
	nodeIPsMu sync.Mutex
	nodeIPs   = map[string][]net.IP{}
)

const maxNodeIPs = 256

func resolveNode(hostName string) []net.IP {
	if hostName == "" {
		return []net.IP{net.IPv4zero} // ":port" dials this machine
	}
	if ip := net.ParseIP(hostName); ip != nil {
		return []net.IP{ip}
	}
	nodeIPsMu.Lock()
	ips, ok := nodeIPs[hostName]
	nodeIPsMu.Unlock()
	if ok {
		return ips
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	found, _ := net.DefaultResolver.LookupIPAddr(ctx, hostName)
	for _, a := range found {
		ips = append(ips, a.IP)
	}
	nodeIPsMu.Lock()
	if len(nodeIPs) >= maxNodeIPs {
		clear(nodeIPs)
	}
	nodeIPs[hostName] = ips
	nodeIPsMu.Unlock()
	return ips
}

// isLocalIP reports whether ip reaches this machine: loopback, unspecified
// or one of its interfaces' addresses.
func isLocalIP(ip net.IP) bool {
	if ip.IsLoopback() || ip.IsUnspecified() {
		return true
	}
	for _, a := range interfaceIPs() {
		if a.Equal(ip) {
			return true
		}
	}
	return false
}

var interfaceIPs = sync.OnceValue(func() []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var ips []net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			ips = append(ips, n.IP)
		}
	}
	return ips
})
