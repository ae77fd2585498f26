package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/store"
)

// The operations routes: status, dead letters, and the admin actions. They
// call what the CLI's status, dlq, pause and resume call.

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	if p := readParams(r.URL); p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	// Status matters most when something is down: each part is bounded,
	// and what cannot be read is reported in errors, not as a failure.
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	st, err := process.ReadStatus(ctx, s.rdb, s.db, s.cfg.Keys, s.cfg.Group, s.cfg.Windows)
	if err != nil {
		s.fail(w, r, "read the status from Redis", err)
		return
	}
	writeJSON(w, st)
}

// DeadLetter is a dead letter as the API shows it.
type DeadLetter struct {
	store.DeadLetter
	State string `json:"state"`
}

// DeadLetterDetail is one dead letter with its body.
type DeadLetterDetail struct {
	DeadLetter
	Body string `json:"body"`
}

func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL, "state", "limit", "cursor")
	state := p.choice("state", "open", "open", "replayed", "discarded", "all")
	limit := p.intIn("limit", 50, 1, 1000)
	var before int64
	p.cursor("dlq", &before)
	if p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	if state == "all" {
		state = ""
	}
	dls, err := store.ListDeadLettersBefore(r.Context(), s.db, state, before, limit+1)
	if err != nil {
		s.fail(w, r, "list dead letters", err)
		return
	}
	dls, next := page(dls, limit, "dlq", func(d store.DeadLetter) any { return d.ID })
	out := struct {
		DeadLetters []DeadLetter `json:"dead_letters"`
		NextCursor  *string      `json:"next_cursor"`
	}{DeadLetters: make([]DeadLetter, len(dls)), NextCursor: next}
	for i := range dls {
		out.DeadLetters[i] = DeadLetter{dls[i], dls[i].State()}
	}
	writeJSON(w, out)
}

// deadLetterID reads the {id} of a dead letter route; failing that, or when
// p holds a bad parameter, the error to answer.
func deadLetterID(r *http.Request, p *params) (int64, error) {
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, badParam("id", strconv.Quote(s)+" is not a dead letter id (a positive number; see GET /api/v1/dlq)")
	}
	return id, p.err
}

func (s *Server) getDeadLetter(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL)
	id, err := deadLetterID(r, p)
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	d, err := store.GetDeadLetter(r.Context(), s.db, id)
	if errors.Is(err, store.ErrNoDeadLetter) {
		err = notFound(err.Error())
	}
	if err != nil {
		s.fail(w, r, "read dead letter", err)
		return
	}
	writeJSON(w, DeadLetterDetail{DeadLetter{d, d.State()}, string(d.Body)})
}

// maxRepairedBody bounds a repaired body sent to requeue.
const maxRepairedBody = 1 << 20

// requeueDeadLetter puts a dead letter back on its partition stream; a
// request body, when given, is the repaired event body to store instead.
func (s *Server) requeueDeadLetter(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL)
	id, err := deadLetterID(r, p)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxRepairedBody))
		if err != nil {
			err = badParam("body", "cannot read the repaired body: "+err.Error())
		}
	}
	if err == nil && len(body) > 0 {
		if _, perr := dwolla.ParseEvent(body); perr != nil {
			err = badParam("body", "the repaired body is not a Dwolla event: "+perr.Error())
		}
	}
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	if len(body) == 0 {
		body = nil // the stored body
	}
	entry, err := process.RequeueDeadLetter(r.Context(), s.rdb, s.db, s.cfg.Keys, id, body)
	if s.deadLetterActionFailed(w, r, "requeue", err) {
		return
	}
	s.log.Info("dead letter requeued", "id", id, "entry", entry, "token", tokenOf(r.Context()).name, "repaired", body != nil)
	writeJSON(w, map[string]any{"id": id, "state": "replayed", "entry_id": entry})
}

func (s *Server) discardDeadLetter(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL)
	id, err := deadLetterID(r, p)
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	d, err := store.GetDeadLetter(r.Context(), s.db, id)
	if err == nil && d.State() != "open" {
		err = fmt.Errorf("dead letter %d is already %s: %w", id, d.State(), store.ErrDeadLetterNotOpen)
	}
	if err == nil {
		var ok bool
		if ok, err = store.MarkDeadLetter(r.Context(), s.db, id, "discarded"); err == nil && !ok {
			err = fmt.Errorf("dead letter %d was requeued or discarded meanwhile: %w", id, store.ErrDeadLetterNotOpen)
		}
	}
	if s.deadLetterActionFailed(w, r, "discard", err) {
		return
	}
	s.log.Info("dead letter discarded", "id", id, "token", tokenOf(r.Context()).name)
	writeJSON(w, map[string]any{"id": id, "state": "discarded"})
}

// deadLetterActionFailed answers a failed action on a dead letter: 404 when
// it does not exist, 409 when it is not open, 400 when its body cannot be
// requeued.
func (s *Server) deadLetterActionFailed(w http.ResponseWriter, r *http.Request, verb string, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, store.ErrNoDeadLetter):
		writeProblem(w, r, http.StatusNotFound, ProblemNotFound, err.Error(), "")
	case errors.Is(err, store.ErrDeadLetterNotOpen):
		writeProblem(w, r, http.StatusConflict, ProblemConflict, err.Error()+"; only open dead letters can be requeued or discarded", "")
	case errors.Is(err, process.ErrUnparsableBody):
		writeProblem(w, r, http.StatusBadRequest, ProblemBadParameter, err.Error(), "body")
	default:
		s.fail(w, r, verb+" dead letter", err)
	}
	return true
}

func (s *Server) pause(pause bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if p := readParams(r.URL); p.err != nil {
			s.fail(w, r, "", p.err)
			return
		}
		if err := process.SetPaused(r.Context(), s.rdb, s.cfg.Keys, s.cfg.Group, pause); err != nil {
			s.fail(w, r, "set the pause switch in Redis", err)
			return
		}
		s.log.Info("processing "+map[bool]string{true: "paused", false: "resumed"}[pause], "token", tokenOf(r.Context()).name)
		writeJSON(w, map[string]any{"paused": pause})
	}
}
