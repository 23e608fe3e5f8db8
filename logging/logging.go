// Package logging builds the process's logger: one JSON object per line
// (or text, for a person at a terminal) whose lines carry the ids of the
// request or task in hand, taken from the context they are logged with.
// A request's ids (request, workspace, API key, transaction) are added as
// the request learns them, so the access line written at its end and any
// error logged on the way name the same request and workspace.
//
// What is logged is chosen where it is logged: routes, never paths (a
// consumer link's path is its token); ids, never keys, secrets, tokens or
// card codes.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// Formats and levels ORBT_LOG_FORMAT and ORBT_LOG_LEVEL take.
const (
	FormatJSON = "json"
	FormatText = "text"
)

// New returns a logger writing format ("json" or "text") lines at level
// ("debug", "info", "warn", "error") and above to w.
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler
	switch strings.ToLower(format) {
	case FormatJSON:
		h = slog.NewJSONHandler(w, opts)
	case FormatText:
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q: want json or text", format)
	}
	return slog.New(Handler(h)), nil
}

// Handler wraps h so that each line logged with a context carries the ids
// the context holds (Start and Add put them there).
func Handler(h slog.Handler) slog.Handler { return contextHandler{h} }

type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if f, ok := ctx.Value(fieldsKey{}).(*fields); ok {
		r.AddAttrs(f.list()...)
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}

type fieldsKey struct{}

// fields are the ids of one request or task; Add may grow them while the
// request runs (after authentication, say), so they are guarded.
type fields struct {
	mu    sync.Mutex
	attrs []slog.Attr
}

func (f *fields) list() []slog.Attr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.attrs)
}

// Start returns ctx carrying attrs on every line logged with it, and open
// to Add: a request or a task begins with it.
func Start(ctx context.Context, attrs ...slog.Attr) context.Context {
	return context.WithValue(ctx, fieldsKey{}, &fields{attrs: attrs})
}

// Add adds attrs to the fields ctx's request or task began with (Start);
// without them it does nothing.
func Add(ctx context.Context, attrs ...slog.Attr) {
	if f, ok := ctx.Value(fieldsKey{}).(*fields); ok {
		f.mu.Lock()
		f.attrs = append(f.attrs, attrs...)
		f.mu.Unlock()
	}
}

// Names of the ids, the same on every line that carries them.
const (
	RequestID     = "request_id"
	WorkspaceID   = "workspace_id"
	KeyID         = "key_id"
	TransactionID = "transaction_id"
	BatchID       = "batch_id"
	RedemptionID  = "redemption_id"
	ConsumerID    = "consumer_id"
	MemberID      = "member_id"
	TaskType      = "task"
	TaskID        = "task_id"
)

// RedisLogger routes go-redis's own messages (a dial that failed, a
// sentinel's new master) into log: redis.SetLogger(logging.RedisLogger{Log: log}).
type RedisLogger struct{ Log *slog.Logger }

// Printf is go-redis's logging interface.
func (r RedisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.Log.WarnContext(ctx, fmt.Sprintf(format, v...))
}
