package mqttspec

import (
	"context"
	"log/slog"
)

// defaultLogs is the log handler of a Handler given no WithLogger: its
// warnings and errors (a refused connection and why, a dropped answer, a
// failed hook) go to slog.Default() as it is when they are logged, the
// rest is dropped. A service that never configures logging still sees why
// a client is refused.
type defaultLogs struct {
	with func(slog.Handler) slog.Handler // the WithAttrs/WithGroup calls, replayed on the default
}

func (d defaultLogs) target() slog.Handler {
	h := slog.Default().Handler()
	if d.with != nil {
		h = d.with(h)
	}
	return h
}

// Enabled reports warnings and errors the default logger takes.
func (d defaultLogs) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn && slog.Default().Handler().Enabled(ctx, level)
}

// Handle hands r to the default logger.
func (d defaultLogs) Handle(ctx context.Context, r slog.Record) error {
	return d.target().Handle(ctx, r)
}

// WithAttrs returns a handler that adds attrs on the default logger.
func (d defaultLogs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return d.then(func(h slog.Handler) slog.Handler { return h.WithAttrs(attrs) })
}

// WithGroup returns a handler that opens group name on the default logger.
func (d defaultLogs) WithGroup(name string) slog.Handler {
	return d.then(func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
}

func (d defaultLogs) then(step func(slog.Handler) slog.Handler) slog.Handler {
	prev := d.with
	return defaultLogs{with: func(h slog.Handler) slog.Handler {
		if prev != nil {
			h = prev(h)
		}
		return step(h)
	}}
}
