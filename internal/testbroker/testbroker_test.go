package testbroker

import (
	"net"
	"strings"
	"testing"
	"time"
)

func dialable(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

func TestBrokerStopAndRestartOnSamePort(t *testing.T) {
	b := NewMosquitto(t, "")
	if !strings.HasPrefix(b.URL, "tcp://127.0.0.1:") || b.URL != "tcp://"+b.Addr {
		t.Fatalf("unexpected URL %q (addr %q)", b.URL, b.Addr)
	}
	if !dialable(b.Addr) {
		t.Fatalf("mosquitto on %s does not accept connections", b.Addr)
	}
	b.Stop()
	if dialable(b.Addr) {
		t.Fatalf("mosquitto on %s still accepts connections after Stop", b.Addr)
	}
	b.Stop() // idempotent
	b.Start()
	if !dialable(b.Addr) {
		t.Fatalf("mosquitto on %s does not accept connections after restart", b.Addr)
	}
}

func TestBrokerWithConfigAppliesExtraLines(t *testing.T) {
	url := MosquittoWithConfig(t, "max_keepalive 30")
	if !dialable(strings.TrimPrefix(url, "tcp://")) {
		t.Fatalf("mosquitto at %s does not accept connections", url)
	}
}
