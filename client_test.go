package mqttspec

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClientManager(t *testing.T) {
	cm := NewClientManager(context.Background())
	c := cm.Register("a", "alice", nil)
	require.Equal(t, "alice", c.Username)
	got, ok := cm.GetClient("a")
	require.True(t, ok)
	require.Same(t, c, got)
	cm.Register("b", "bob", nil)
	require.Equal(t, 2, cm.Count())
	cm.Unregister("a")
	_, ok = cm.GetClient("a")
	require.False(t, ok)
	cm.Shutdown()
	require.Zero(t, cm.Count())
}

func TestClientMetadataAndSubscriptionsConcurrent(t *testing.T) {
	c := NewClient("x", "", nil)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c.SetMetadata(fmt.Sprint(i), i)
			c.AddSubscription(&Subscription{ID: fmt.Sprint(i)})
			_, _ = c.GetMetadata("0")
		}(i)
	}
	wg.Wait()
	v, ok := c.GetMetadata("7")
	require.True(t, ok)
	require.Equal(t, 7, v)
	require.Equal(t, 20, c.SubscriptionCount())
	c.RemoveSubscription("7")
	_, ok = c.GetSubscription("7")
	require.False(t, ok)
	c.Close()
	require.Zero(t, c.SubscriptionCount())
}
