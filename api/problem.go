package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
)

// Problem is an RFC 9457 problem detail, the body of every error answer
// (Content-Type application/problem+json).
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Param names the query parameter (or header, or path segment) at fault.
	Param string `json:"param,omitempty"`
}

// problemBase is where the problem types are documented (docs/api.md, one
// heading each).
const problemBase = "https://github.com/hookstream/hookstream/blob/main/docs/api.md#"

// Problem types.
const (
	ProblemBadParameter = "bad-parameter"
	ProblemUnauthorized = "unauthorized"
	ProblemForbidden    = "forbidden"
	ProblemNotFound     = "not-found"
	ProblemConflict     = "conflict"
	ProblemUnavailable  = "unavailable"
	ProblemInternal     = "internal"
	ProblemTooMany      = "too-many-clients"
)

func writeProblem(w http.ResponseWriter, r *http.Request, status int, kind, detail, param string) {
	p := Problem{Type: problemBase + kind, Title: http.StatusText(status), Status: status, Detail: detail, Instance: r.URL.Path, Param: param}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(p)
}

// paramError is a request parameter that cannot be answered.
type paramError struct {
	param, detail string
}

func (e *paramError) Error() string { return e.param + ": " + e.detail }

func badParam(param, detail string) error { return &paramError{param, detail} }

// fail answers err: 400 for a parameter, 404 for what does not exist
// (notFound), 503 when PostgreSQL or Redis cannot be reached or did not
// answer in time, 500 otherwise; the server log gets the last two.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	var pe *paramError
	var nf *notFoundError
	var conn *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &pe):
		writeProblem(w, r, http.StatusBadRequest, ProblemBadParameter, pe.Error(), pe.param)
	case errors.As(err, &nf):
		writeProblem(w, r, http.StatusNotFound, ProblemNotFound, nf.Error(), "")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads an answer.
	case errors.As(err, &conn) || errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) || pgconn.SafeToRetry(err):
		s.log.Warn("api: "+what, "err", err, "path", r.URL.Path)
		w.Header().Set("Retry-After", strconv.Itoa(5))
		writeProblem(w, r, http.StatusServiceUnavailable, ProblemUnavailable, what+": "+err.Error()+"; the server log has more", "")
	default:
		s.log.Error("api: "+what, "err", err, "path", r.URL.Path)
		writeProblem(w, r, http.StatusInternalServerError, ProblemInternal, what+": "+err.Error(), "")
	}
}

type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }

func notFound(msg string) error { return &notFoundError{msg} }

// writeJSON answers v as JSON with status 200. A value that marshals
// itself is written as it marshals (encoding/json would validate and
// compact its output again: for a day of 1m metrics over 50 topics that
// costs more than writing it).
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if m, ok := v.(json.Marshaler); ok {
		b, err := m.MarshalJSON()
		if err == nil {
			w.Write(append(b, '\n'))
			return
		}
		slog.Warn("api: encode answer", "err", err)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		slog.Debug("api: write answer", "err", err)
	}
}
