package mqttspec

import "strings"

// The topic layout: {prefix}/{client_id}/request, .../response and
// .../notify/{subscription_id}.

func (h *Handler) requestFilter() string { return h.config.Topics.Prefix + "/+/request" }

func (h *Handler) responseTopic(clientID string) string {
	return h.config.Topics.Prefix + "/" + clientID + "/response"
}

func (h *Handler) notifyTopic(clientID, subID string) string {
	return h.config.Topics.Prefix + "/" + clientID + "/notify/" + subID
}

// clientIDFromRequestTopic extracts {client_id} from {prefix}/{client_id}/request.
func (h *Handler) clientIDFromRequestTopic(topic string) (string, bool) {
	rest, ok := strings.CutPrefix(topic, h.config.Topics.Prefix+"/")
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, "/request")
	if !ok || !validClientID(id) {
		return "", false
	}
	return id, true
}

// validClientID reports whether id can be one topic level of its own.
func validClientID(id string) bool {
	return id != "" && !strings.ContainsAny(id, "/+#\x00")
}
