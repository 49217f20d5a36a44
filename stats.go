package mqttspec

import (
	"strings"
	"sync/atomic"
	"time"
)

// Stats counts what a handler refused, dropped or did not run since it
// was created. Nothing is dropped silently: every count here is also
// logged (at Warn, at most once a second per kind, with the count since).
type Stats struct {
	// Overloaded counts requests answered "overloaded" (external broker:
	// the client's queue was full).
	Overloaded uint64
	// Refused counts requests left unacknowledged while the handler shut
	// down (embedded broker): the client keeps and sends them again.
	Refused uint64
	// Superseded counts requests dropped because another principal took
	// over the client id before they ran.
	Superseded uint64
	// Duplicates counts writes delivered again and answered from the
	// deduplication cache instead of running twice.
	Duplicates uint64
	// Timeouts counts requests answered "timeout".
	Timeouts uint64
	// DroppedAnswers and DroppedNotifications count answers and
	// notifications the broker could not deliver (a session at its limits,
	// a full write queue); DroppedOther counts other messages it dropped.
	DroppedAnswers       uint64
	DroppedNotifications uint64
	DroppedOther         uint64
}

// Stats returns the handler's counters.
func (h *Handler) Stats() Stats {
	c := &h.counters
	return Stats{
		Overloaded: c.overloaded.Load(), Refused: c.refused.Load(), Superseded: c.superseded.Load(),
		Duplicates: c.duplicates.Load(), Timeouts: c.timeouts.Load(),
		DroppedAnswers: c.droppedAnswers.Load(), DroppedNotifications: c.droppedNotes.Load(),
		DroppedOther: c.droppedOther.Load(),
	}
}

// counters are the live values behind Stats.
type counters struct {
	overloaded, refused, superseded, duplicates, timeouts atomic.Uint64
	droppedAnswers, droppedNotes, droppedOther            atomic.Uint64
	dropLog                                               rateLimit
}

// dropped counts and logs a message the broker could not deliver.
func (h *Handler) dropped(clientID, topic, reason string) {
	own := h.config.Topics.Prefix + "/" + clientID + "/"
	kind := "message"
	switch {
	case topic == own+"response":
		h.counters.droppedAnswers.Add(1)
		kind = "answer"
	case strings.HasPrefix(topic, own+"notify/"):
		h.counters.droppedNotes.Add(1)
		kind = "notification"
	default:
		h.counters.droppedOther.Add(1)
	}
	if n, ok := h.counters.dropLog.allow(); ok {
		h.logger.Warn("broker dropped a "+kind+" for a client", "client", clientID, "topic", topic,
			"reason", reason, "dropped_since_last_log", n)
	}
}

// rateLimit lets one event through per second and counts the rest.
type rateLimit struct {
	last    atomic.Int64 // unix nanoseconds of the last event let through
	skipped atomic.Uint64
}

// allow reports whether to log now, with how many events were not logged
// since the last time (this one included).
func (r *rateLimit) allow() (uint64, bool) {
	now := time.Now().UnixNano()
	last := r.last.Load()
	if now-last < int64(time.Second) || !r.last.CompareAndSwap(last, now) {
		r.skipped.Add(1)
		return 0, false
	}
	return r.skipped.Swap(0) + 1, true
}
