package client

// Waiting returns how many calls wait for an answer.
func Waiting(c *Client) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiting)
}

// Connects returns how many times the client has connected.
func Connects(c *Client) int64 { return c.conns.Load() }
