package mqttspec_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
)

// principalByUsername is what examples/multitenant does with a verified
// token: the username is the principal (the default), and the tenant is
// kept in metadata.
func principalByUsername(h *mqttspec.Handler) {
	h.Hooks().Register(mqttspec.BeforeConnect, func(ctx *mqttspec.HookContext) error {
		ctx.Client.SetMetadata("tenant_id", ctx.Client.Username)
		return nil
	})
}

// TestTakeoverDuringANotification: a change committed while B was
// subscribed is still being prepared when another principal takes B's
// client id over; its notification does not reach the newcomer, who
// subscribes to the same topics. Control: B's own reconnect gets it.
func TestTakeoverDuringANotification(t *testing.T) {
	for _, tc := range []struct {
		name     string
		newcomer string
		gets     bool
	}{{"another principal", "tenant-a", false}, {"the same principal", "tenant-b", true}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startWithGadgets(t, principalByUsername)
			b := mqtttest.Connect(t, srv.url, "dev-b", mqtttest.Credentials("tenant-b", ""), mqtttest.Persistent)
			mqtttest.OK(t, b.Request(map[string]any{"type": "subscription", "operation": "subscribe", "schema": "public", "entity": "gadgets"}))
			writer := mqtttest.Connect(t, srv.url, "writer")
			gate, held := holdGadget(t, writer)

			b.Disconnect(50)
			newcomer := mqtttest.Connect(t, srv.url, "dev-b", mqtttest.Credentials(tc.newcomer, ""), mqtttest.Persistent)
			close(gate.open)
			mqtttest.OK(t, writer.Await(held))
			if tc.gets {
				require.Equal(t, "hold", newcomer.NextNote()["data"].(map[string]any)["mark"])
				return
			}
			newcomer.NoNote(writer)
			require.Zero(t, srv.h.Stats().DroppedNotifications)
		})
	}
}

// TestTakeoverByAnotherPrincipalStartsClean: a connection that takes over
// a client id resumes the earlier session only when it is the same
// principal. Another principal gets none of the earlier session's queued
// notifications, subscriptions or answers, and the earlier connection's
// queued requests do not run.
func TestTakeoverByAnotherPrincipalStartsClean(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	gone := make(chan string, 10)
	srv := startServer(t, func(h *mqttspec.Handler) {
		principalByUsername(h)
		h.Hooks().Register(mqttspec.AfterDisconnect, func(ctx *mqttspec.HookContext) error {
			gone <- ctx.Client.ID
			return nil
		})
		h.Hooks().Register(mqttspec.BeforeCreate, func(ctx *mqttspec.HookContext) error {
			if d, _ := ctx.Data.(map[string]any); d["name"] == "slow" {
				entered <- struct{}{}
				<-release
			}
			return nil
		})
	})
	writer := mqtttest.Connect(t, srv.url, "writer")
	create := func(name string) {
		t.Helper()
		mqtttest.OK(t, writer.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": name, "status": "active"}})))
	}
	asB := mqtttest.Credentials("tenant-b", "")
	asA := mqtttest.Credentials("tenant-a", "")

	// Control: B's own reconnect resumes its session and gets what it missed.
	b := mqtttest.Connect(t, srv.url, "dev-b", asB, mqtttest.Persistent)
	subscribe(t, b, map[string]any{"column": "status", "operator": "eq", "value": "active"})
	b.Disconnect(50)
	require.Equal(t, "dev-b", mqtttest.Recv(t, gone, "B's disconnect"))
	create("while B was away")
	b = mqtttest.Connect(t, srv.url, "dev-b", asB, mqtttest.Persistent)
	require.Equal(t, "while B was away", b.NextNote()["data"].(map[string]any)["name"])

	// B goes away again; more of its notifications are queued.
	b.Disconnect(50)
	require.Equal(t, "dev-b", mqtttest.Recv(t, gone, "B's disconnect"))
	create("secret of B")

	// A takes over B's id: nothing of B's session reaches it.
	a := mqtttest.Connect(t, srv.url, "dev-b", asA, mqtttest.Persistent)
	require.Zero(t, srv.h.Subscriptions().Count(), "B's subscription ended with its session")
	create("after the takeover")
	a.NoNote(writer)
	mqtttest.Nothing(t, a.Orphans, "an answer meant for B")

	// A request of B running at the takeover, and one queued behind it: the
	// first completes but its answer is withheld, the second never runs.
	a.Disconnect(50)
	b = mqtttest.Connect(t, srv.url, "dev-b2", asB) // B again, under another id for the slow requests
	running := b.Send("slow", []byte(`{"id":"slow","type":"request","operation":"create","schema":"public","entity":"users","data":{"name":"slow"}}`))
	<-entered
	queued := b.Send("queued", []byte(`{"id":"queued","type":"request","operation":"create","schema":"public","entity":"users","data":{"name":"queued"}}`))
	intruder := mqtttest.Connect(t, srv.url, "dev-b2", asA)
	close(release)
	pong := intruder.Request(map[string]any{"type": "ping"}) // answered after both requests of B were dealt with
	require.Equal(t, "pong", pong["type"])
	mqtttest.Nothing(t, intruder.Orphans, "an answer to B's requests")
	mqtttest.Nothing(t, running, "answer on B's closed connection")
	mqtttest.Nothing(t, queued, "answer on B's closed connection")
	var names []string
	require.NoError(t, srv.db.Model(&User{}).Order("id").Pluck("name", &names).Error)
	require.Contains(t, names, "slow", "the request that was running completed")
	require.NotContains(t, names, "queued", "the queued request of the superseded session did not run")
	require.EqualValues(t, 2, srv.h.Stats().Superseded, "one answer withheld, one request dropped")
}

// TestWillRunsAsItsOwnConnection: a will on the client's request topic is
// a request of the connection that ended: it runs when that connection
// drops, and is dropped when another principal has taken over the id.
func TestWillRunsAsItsOwnConnection(t *testing.T) {
	srv := startServer(t, principalByUsername)
	addr := strings.TrimPrefix(srv.url, "tcp://")
	willConnect := func(id, user, name string) packets.Packet {
		pk := mqtttest.ConnectPacket(id)
		pk.Connect.UsernameFlag, pk.Connect.Username = true, []byte(user)
		pk.Connect.WillFlag, pk.Connect.WillQos = true, 1
		pk.Connect.WillTopic = "spec/" + id + "/request"
		pk.Connect.WillPayload = fmt.Appendf(nil, `{"id":"will-%s","type":"request","operation":"create","schema":"public","entity":"users","data":{"name":%q}}`, name, name)
		return pk
	}
	names := func() []string {
		var out []string
		require.NoError(t, srv.db.Model(&User{}).Order("id").Pluck("name", &out).Error)
		return out
	}

	// Control: the device drops (reset): its will runs, as the device.
	dev := mqtttest.DialRawTCP(t, addr)
	dev.MustConnect(willConnect("dev-1", "tenant-b", "dev-1 went offline"))
	dev.Reset()
	mqtttest.Eventually(t, func() bool { return len(names()) == 1 }, "the will ran")
	require.Equal(t, []string{"dev-1 went offline"}, names())

	// Another principal takes over a live connection with a will: the will
	// ends with the taken-over connection and does not run as the newcomer.
	victim := mqtttest.DialRawTCP(t, addr)
	victim.MustConnect(willConnect("dev-2", "tenant-b", "forged by takeover"))
	mqtttest.Connect(t, srv.url, "dev-2", mqtttest.Credentials("tenant-a", ""))
	mqtttest.Eventually(t, func() bool { return srv.h.Stats().Superseded == 1 }, "the will was dropped")
	require.Equal(t, []string{"dev-1 went offline"}, names())
}

// TestWriteDeliveredAgainAppliedOnce: a QoS 1 create re-sent with DUP and
// the same packet id (what a client does after a reconnect) creates one
// row and is answered again with the first answer; the same request id
// with another payload, or another id with the same payload, is a new
// write.
func TestWriteDeliveredAgainAppliedOnce(t *testing.T) {
	srv := startServer(t, nil)
	c := rawClient(t, srv, "retrier")
	send := func(packetID uint16, dup bool, payload string) map[string]any {
		t.Helper()
		require.NoError(t, c.Write(mqtttest.PublishPacket("spec/retrier/request", 1, packetID, dup, []byte(payload))))
		for {
			pk, _ := c.Expect(packets.Publish)
			_ = c.Write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
			var resp map[string]any
			require.NoError(t, json.Unmarshal(pk.Payload, &resp))
			return resp
		}
	}
	create := `{"id":"c-1","type":"request","operation":"create","schema":"public","entity":"users","data":{"name":"once"}}`
	first := send(7, false, create)
	again := send(7, true, create)
	require.Equal(t, first, again, "the first answer is sent again")
	require.EqualValues(t, 1, countUsers(t, srv.db))
	require.EqualValues(t, 1, srv.h.Stats().Duplicates)

	// Controls: a new id, or the same id with another payload, is a new write.
	mqtttest.OK(t, send(8, false, strings.Replace(create, `"c-1"`, `"c-2"`, 1)))
	mqtttest.OK(t, send(9, false, strings.Replace(create, `"once"`, `"other"`, 1)))
	require.EqualValues(t, 3, countUsers(t, srv.db))
}

// TestWriteRetriedWithTheSameIDAppliedOnce: the same on both transports,
// with a client that retries a write itself.
func TestWriteRetriedWithTheSameIDAppliedOnce(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		srv := start(t, nil)
		c := mqtttest.Connect(t, srv.url, "retrier")
		msg := func() map[string]any {
			return mqtttest.Req("create", "users", map[string]any{"id": "r-1", "data": map[string]any{"name": "retried"}})
		}
		first := c.Request(msg())
		second := c.Request(msg())
		delete(first, "_topic")
		delete(second, "_topic")
		require.Equal(t, first, second)
		require.EqualValues(t, 1, countUsers(t, srv.db))
		// Reads are not deduplicated: they may run again.
		mqtttest.OK(t, c.Request(mqtttest.Req("read", "users", map[string]any{"id": "r-2"})))
		mqtttest.OK(t, c.Request(mqtttest.Req("read", "users", map[string]any{"id": "r-2"})))
	})
}
