package paho

import (
	"bytes"
	"net"
	"net/url"
	"testing"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/stretchr/testify/require"
)

// TestBufferedDialerChoosesPlainTCPOnly: plain TCP URLs are dialed behind
// a read buffer; TLS, WebSocket and Unix URLs, and any URL while a proxy is
// set in the environment, are left to paho.
func TestBufferedDialerChoosesPlainTCPOnly(t *testing.T) {
	for _, tc := range []struct {
		url      string
		proxy    string
		buffered bool
	}{
		{"tcp://127.0.0.1:1883", "", true},
		{"mqtt://broker.example:1883", "", true},
		{"ssl://broker.example:8883", "", false},
		{"tls://broker.example:8883", "", false},
		{"ws://broker.example:9001/mqtt", "", false},
		{"wss://broker.example/mqtt", "", false},
		{"unix:///run/mqtt.sock", "", false},
		{"tcp://127.0.0.1:1883", "socks5://127.0.0.1:1080", false},
	} {
		t.Run(tc.url+" "+tc.proxy, func(t *testing.T) {
			t.Setenv("all_proxy", tc.proxy)
			t.Setenv("ALL_PROXY", "")
			require.Equal(t, tc.buffered, bufferedDialer(tc.url) != nil)
		})
	}
}

// TestBufferedConnReadsPacketsThatArriveTogether: three PUBLISH packets
// written in one go are read back one by one, whole and in order, through
// the buffered connection, as paho reads them.
func TestBufferedConnReadsPacketsThatArriveTogether(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	var burst bytes.Buffer
	payloads := []string{"first", string(bytes.Repeat([]byte("x"), 3*connReadBuffer)), "third"}
	for i, p := range payloads {
		pk := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
		pk.TopicName, pk.Qos, pk.MessageID, pk.Payload = "spec/a/request", 1, uint16(i+1), []byte(p)
		require.NoError(t, pk.Write(&burst))
	}
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write(burst.Bytes())
	}()

	dial := bufferedDialer("tcp://" + l.Addr().String())
	require.NotNil(t, dial)
	u, err := url.Parse("tcp://" + l.Addr().String())
	require.NoError(t, err)
	nc, err := dial(u, *mqtt.NewClientOptions())
	require.NoError(t, err)
	defer nc.Close()
	require.IsType(t, &bufferedConn{}, nc)
	for i, want := range payloads {
		cp, err := packets.ReadPacket(nc)
		require.NoError(t, err)
		pk := cp.(*packets.PublishPacket)
		require.Equal(t, uint16(i+1), pk.MessageID)
		require.Equal(t, want, string(pk.Payload))
	}
}
