package mqttspec

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"github.com/mqttspec/mqttspec/internal/broker"
)

// selfCheck proves, on an edge that reports no connections (an external
// broker, whose ACL the handler cannot see), that the handler receives
// requests and that its answers reach a client: it publishes a ping on the
// request topic of its own client id and waits for the pong on its own
// response topic. A broker that lets the handler connect but not read
// requests or write answers would otherwise leave a started handler that
// answers nothing. The ping is answered by onRequest directly, without
// hooks (see selfCheckAnswer).
func (h *Handler) selfCheck(ctx context.Context, t transport, clientID string) error {
	id := selfCheckPrefix + uuid.NewString()
	h.selfCheckID.Store(&id)
	defer h.selfCheckID.Store(nil)
	answered := make(chan struct{})
	var once sync.Once
	response := h.responseTopic(clientID)
	if err := t.Subscribe(response, h.config.QoS.Response, func(m broker.Message) bool {
		if requestID(m.Payload) == id {
			once.Do(func() { close(answered) })
		}
		return true
	}); err != nil {
		return fmt.Errorf("self-check: subscribe %s: %w", response, err)
	}
	defer func() { _ = t.Unsubscribe(response) }()
	request := h.config.Topics.Prefix + "/" + clientID + "/request"
	if err := t.Publish(request, h.config.QoS.Request, fmt.Appendf(nil, `{"id":%q,"type":"ping"}`, id)); err != nil {
		return fmt.Errorf("self-check: publish %s: %w", request, err)
	}
	select {
	case <-answered:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("self-check: a ping the handler sent itself on %s got no answer on %s (%w): "+
			"the broker must let the handler's user read %s and write %s/+/response and %s/+/notify/+ (see README, \"Identity and the ACL\"), "+
			"and know the handler as client %q (a broker that makes usernames the client ids needs ClientIDIsUsername)",
			request, response, ctx.Err(), h.requestFilter(), h.config.Topics.Prefix, h.config.Topics.Prefix, clientID)
	}
}

// ownClientID returns the client id the broker knows the handler's own
// connection by: the edge's, or its username where the broker makes
// usernames the ids (ExternalBrokerConfig.ClientIDIsUsername).
func (h *Handler) ownClientID(t transport) (string, bool) {
	own, ok := t.(interface{ ClientID() string })
	if !ok {
		return "", false
	}
	id := own.ClientID()
	if ext := h.config.ExternalBroker; ext.ClientIDIsUsername && ext.Username != "" {
		id = ext.Username
	}
	return id, validClientID(id)
}

// selfCheckPrefix starts the id of a self-check's ping.
const selfCheckPrefix = "mqttspec-self-check-"

// othersSelfCheck reports whether payload is the self-check ping of
// another handler (a member of this one's group starting up, whose id this
// one may not know yet): it must be answered by that handler alone.
func othersSelfCheck(payload []byte) bool {
	return bytes.HasPrefix(payload, []byte(`{"id":"`+selfCheckPrefix))
}

// selfCheckAnswer answers the self-check's ping, if payload on clientID's
// request topic is it.
func (h *Handler) selfCheckAnswer(clientID string, payload []byte) bool {
	want := h.selfCheckID.Load()
	if want == nil || requestID(payload) != *want {
		return false
	}
	pong, _ := (&ResponseMessage{ID: *want, Type: MessageTypePong, Success: true, Timestamp: nowUTC()}).ToJSON()
	h.send(h.responseTopic(clientID), h.config.QoS.Response, pong)
	return true
}
