package mqttspec

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/libtnb/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mqttspec/mqttspec/query"
)

// benchHandler returns a handler (not started) on a fresh SQLite file with
// iot.devices registered and rows 1..rows stored (row 1 in room "kitchen").
func benchHandler(b testing.TB, rows int) *Handler {
	b.Helper()
	dsn := "file:" + filepath.Join(b.TempDir(), "b.db") + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		b.Fatal(err)
	}
	if err := db.AutoMigrate(&device{}); err != nil {
		b.Fatal(err)
	}
	for i := 1; i <= rows; i++ {
		room := fmt.Sprint("r", i)
		if i == 1 {
			room = "kitchen"
		}
		if err := db.Create(&device{ID: int64(i), Room: room}).Error; err != nil {
			b.Fatal(err)
		}
	}
	h, err := NewHandlerWithGORM(db)
	if err != nil {
		b.Fatal(err)
	}
	if err := h.Registry().RegisterModel("iot.devices", &device{}); err != nil {
		b.Fatal(err)
	}
	return h
}

// BenchmarkWriteWithSubscriptions measures an update through the handler's
// request path (no MQTT) with 0 and with 10,000 equality subscriptions on
// other values of the filtered column plus one that matches. The index makes
// the 10,000 non-matching subscriptions cost close to nothing.
func BenchmarkWriteWithSubscriptions(b *testing.B) {
	for _, n := range []int{0, 10000} {
		b.Run(fmt.Sprintf("subscriptions=%d", n), func(b *testing.B) {
			h := benchHandler(b, 1)
			m, err := h.catalog.resolve("iot", "devices")
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < n; i++ {
				h.subs.add(newTestSub(b, m, fmt.Sprint("s", i), query.FilterOption{Column: "room", Operator: "eq", Value: fmt.Sprint("room-", i)}))
			}
			if n > 0 {
				h.subs.add(newTestSub(b, m, "match", query.FilterOption{Column: "room", Operator: "eq", Value: "kitchen"}))
			}
			client := NewClient("bench", "", h)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				payload := fmt.Appendf(nil, `{"id":"u","type":"request","operation":"update","schema":"iot","entity":"devices","record_id":"1","data":{"temp":%d}}`, i)
				resp, res := h.handle(context.Background(), client, payload)
				res.finish()
				if !resp.Success {
					b.Fatalf("update failed: %+v", resp)
				}
			}
		})
	}
}

// BenchmarkProcessReadByID measures the handler's request path for a read
// by id (no MQTT): parsing, hooks, query building, GORM on SQLite, response
// building. Compare with BenchmarkReadByID to see the transport's share.
func BenchmarkProcessReadByID(b *testing.B) {
	h := benchHandler(b, 100)
	client := NewClient("bench", "", h)
	payload := []byte(`{"id":"b","type":"request","operation":"read","schema":"iot","entity":"devices","record_id":"42"}`)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, res := h.handle(context.Background(), client, payload)
		res.finish()
		if !resp.Success {
			b.Fatalf("read failed: %+v", resp)
		}
		if _, err := resp.ToJSON(); err != nil {
			b.Fatal(err)
		}
	}
}
