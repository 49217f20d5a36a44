package mqttspec

// ServesClient reports whether h, a member of a group, serves clientID now.
func ServesClient(h *Handler, clientID string) bool {
	return h.group != nil && h.group.serves(clientID)
}
