package mqttspec_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/mqttspec/mqttspec/internal/mqtttest"
)

// BenchmarkReadByID measures a QoS 1 read-by-id round trip through the
// embedded broker and GORM on SQLite: "serial" is one client waiting for
// each answer (ns/op = round-trip time); "parallel" is 16 such clients
// (requests/s = 1e9 / ns/op).
func BenchmarkReadByID(b *testing.B) {
	srv := startServer(b, nil)
	for i := 0; i < 100; i++ {
		if err := srv.db.Create(&User{Name: fmt.Sprint("u", i), Status: "active"}).Error; err != nil {
			b.Fatal(err)
		}
	}
	payload := []byte(`{"id":"b","type":"request","operation":"read","schema":"public","entity":"users","record_id":"42"}`)
	roundTrip := func(b *testing.B, c *mqtttest.Client) {
		if resp := c.Await(c.Send("b", payload)); resp["success"] != true {
			b.Fatalf("bad answer %v", resp)
		}
	}
	b.Run("serial", func(b *testing.B) {
		c := mqtttest.Connect(b, srv.url, "bench-serial")
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			roundTrip(b, c)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var n atomic.Int32
		b.SetParallelism(8) // 8 × GOMAXPROCS clients
		b.RunParallel(func(pb *testing.PB) {
			c := mqtttest.Connect(b, srv.url, fmt.Sprint("bench-par-", n.Add(1)))
			for pb.Next() {
				roundTrip(b, c)
			}
		})
	})
}
