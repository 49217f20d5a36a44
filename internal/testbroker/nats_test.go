package testbroker

import "testing"

func TestNATSClusterCarriesMessages(t *testing.T) {
	urls := NATSCluster(t, 3)
	if len(urls) != 3 {
		t.Fatalf("urls = %v", urls)
	}
	if err := natsRoundTrip(urls[1], urls[2], 999); err != nil {
		t.Fatalf("node 3 -> node 2: %v", err)
	}
}
