package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
	"github.com/sony/gobreaker/v2"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	fold := func(err error) error { return &foldError{fold: "f", err: err} }
	pg := func(code string) error { return &pgconn.PgError{Code: code, Message: "m"} }
	f := func(name string, err error, want failure) {
		t.Helper()
		if got := classify(err); got != want {
			t.Errorf("%s: classify(%v) = %d, want %d", name, err, got, want)
		}
	}
	// A folding step that loses PostgreSQL is an outage, not a bug.
	f("fold: conn closed", fold(fmt.Errorf("read: %w", pgconn.ErrConnClosed)), transient)
	f("fold: closed pool", fold(fmt.Errorf("acquire: %w", puddle.ErrClosedPool)), transient)
	f("fold: network", fold(&net.OpError{Op: "read", Err: errors.New("connection reset by peer")}), transient)
	f("fold: EOF", fold(fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF)), transient)
	f("fold: deadline", fold(context.DeadlineExceeded), transient)
	f("fold: canceled", fold(context.Canceled), transient)
	f("fold: its own error", fold(errors.New("bad state")), unexplained)
	f("fold: a message that merely mentions a closed conn", fold(errors.New("journey conn closed early")), unexplained)
	f("fold: PostgreSQL rejects", fold(pg("23505")), rejected)
	f("breaker open", gobreaker.ErrOpenState, transient)
	f("data exception", pg("22P05"), rejected)
	f("value too large for an index", pg("54000"), rejected)
	f("admin shutdown", pg("57P01"), transient)
	f("connection failure", pg("08006"), transient)
	f("serialization", pg("40001"), transient)
	f("deadlock", pg("40P01"), transient)
	f("missing table", pg("42P01"), unexplained)
	f("statement timeout", pg("57014"), unexplained)
}
