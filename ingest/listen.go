//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package ingest

import (
	"context"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// Listen listens on TCP addr. With reusePort it sets SO_REUSEPORT first, so
// several processes can listen on one port and the kernel spreads new
// connections over them: a rolling restart then stops one receiver while
// another keeps accepting, with no proxy in front. Without it a second
// listener on the port fails, which is what an operator who did not ask for
// sharing wants to hear.
func Listen(addr string, reusePort bool) (net.Listener, error) {
	var lc net.ListenConfig
	if reusePort {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	return lc.Listen(context.Background(), "tcp", addr)
}
