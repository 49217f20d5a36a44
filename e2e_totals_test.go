package mqttspec_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
)

// total reads a full page (limit 2) of users with status and returns its
// metadata.total.
func total(t *testing.T, c *mqtttest.Client, status string) float64 {
	t.Helper()
	resp := c.Request(mqtttest.Req("read", "users", map[string]any{"options": map[string]any{
		"filters": []any{map[string]any{"column": "status", "operator": "eq", "value": status}}, "limit": 2}}))
	mqtttest.OK(t, resp)
	return resp["metadata"].(map[string]any)["total"].(float64)
}

// TestTotalsOfFullPages: a full page's total is counted once and given
// again, exact after every write through the handler or NotifyChange,
// per filter, and at most TotalMaxAge late for writes behind the
// handler's back.
func TestTotalsOfFullPages(t *testing.T) {
	srv := startServer(t, nil, mqttspec.WithLimits(mqttspec.LimitConfig{TotalMaxAge: 300 * time.Millisecond}))
	for i := 0; i < 5; i++ {
		require.NoError(t, srv.db.Create(&User{Name: fmt.Sprint("a", i), Status: "a"}).Error)
	}
	require.NoError(t, srv.db.Create(&User{Name: "b", Status: "b"}).Error)
	require.NoError(t, srv.db.Create(&User{Name: "b2", Status: "b"}).Error)
	c := mqtttest.Connect(t, srv.url, "counter")
	require.EqualValues(t, 5, total(t, c, "a"))
	require.EqualValues(t, 2, total(t, c, "b"), "another filter, another total")

	// Through the handler: exact at once.
	mqtttest.OK(t, c.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "a5", "status": "a"}})))
	require.EqualValues(t, 6, total(t, c, "a"))
	u := User{Name: "a6", Status: "a"}
	require.NoError(t, srv.db.Create(&u).Error)
	require.NoError(t, srv.h.NotifyChange("public", "users", mqttspec.OperationCreate, &u, nil))
	require.EqualValues(t, 7, total(t, c, "a"), "a change reported with NotifyChange")

	// Behind its back: within TotalMaxAge.
	require.NoError(t, srv.db.Create(&User{Name: "a7", Status: "a"}).Error)
	mqtttest.Eventually(t, func() bool { return total(t, c, "a") == 8 }, "the total to count the hidden write")
}

// TestTotalsCountedEveryTime: with TotalMaxAge negative, every full page
// counts: a write behind the handler's back shows at once.
func TestTotalsCountedEveryTime(t *testing.T) {
	srv := startServer(t, nil, mqttspec.WithLimits(mqttspec.LimitConfig{TotalMaxAge: -1}))
	for i := 0; i < 3; i++ {
		require.NoError(t, srv.db.Create(&User{Name: fmt.Sprint("a", i), Status: "a"}).Error)
	}
	c := mqtttest.Connect(t, srv.url, "counter")
	require.EqualValues(t, 3, total(t, c, "a"))
	require.NoError(t, srv.db.Create(&User{Name: "a3", Status: "a"}).Error)
	require.EqualValues(t, 4, total(t, c, "a"))
}
