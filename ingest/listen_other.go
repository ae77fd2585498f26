//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package ingest

import (
	"errors"
	"net"
)

// Listen listens on TCP addr. reusePort (SO_REUSEPORT) is not supported on
// this system: asking for it is an error rather than a silent single
// listener.
func Listen(addr string, reusePort bool) (net.Listener, error) {
	if reusePort {
		return nil, errors.New("--reuse-port (SO_REUSEPORT) is not supported on this operating system; run one receiver per port behind a load balancer")
	}
	return net.Listen("tcp", addr)
}
