package mqttspec_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
)

// Audit is written by hooks inside the operation's transaction.
type Audit struct {
	ID     uint `gorm:"primaryKey"`
	Action string
	Target string
}

func TestAuditRowCommitsAndRollsBackWithTheOperation(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		srv := start(t, func(h *mqttspec.Handler) {
			for _, ht := range []mqttspec.HookType{mqttspec.AfterCreate, mqttspec.AfterUpdate, mqttspec.AfterDelete} {
				ht := ht
				h.Hooks().Register(ht, func(ctx *mqttspec.HookContext) error {
					tx, ok := ctx.Tx.Native().(*gorm.DB)
					if !ok {
						return fmt.Errorf("no gorm transaction in hook")
					}
					if err := tx.Create(&Audit{Action: string(ht), Target: ctx.ID}).Error; err != nil {
						return err
					}
					if d, ok := ctx.Data.(map[string]any); ok && d["name"] == "fail-after" {
						return errors.New("audit policy refused the change")
					}
					return nil
				})
			}
		})
		require.NoError(t, srv.db.AutoMigrate(&Audit{}))
		sub := mqtttest.Connect(t, srv.url, "auditor")
		subscribe(t, sub)
		c := mqtttest.Connect(t, srv.url, "editor")

		rec := mqtttest.OK(t, c.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "ok"}}))).(map[string]any)
		id := fmt.Sprint(rec["id"])
		require.Equal(t, "create", sub.NextNote()["operation"])
		var audits []Audit
		require.NoError(t, srv.db.Find(&audits).Error)
		require.Equal(t, []Audit{{ID: 1, Action: "after_create", Target: id}}, audits)

		// An After* error rolls back the write and the audit row, answers an
		// error and sends no notification.
		mqtttest.Fails(t, c.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "fail-after"}})), "hook_rejected")
		mqtttest.Fails(t, c.Request(mqtttest.Req("update", "users", map[string]any{"record_id": id, "data": map[string]any{"name": "fail-after"}})), "hook_rejected")
		sub.NoNote(c)
		require.Equal(t, int64(1), countUsers(t, srv.db))
		var u User
		require.NoError(t, srv.db.First(&u, id).Error)
		require.Equal(t, "ok", u.Name)
		audits = nil
		require.NoError(t, srv.db.Find(&audits).Error)
		require.Len(t, audits, 1, "audit rows of failed operations must be rolled back")

		mqtttest.OK(t, c.Request(mqtttest.Req("delete", "users", map[string]any{"record_id": id})))
		require.NoError(t, srv.db.Find(&audits).Error)
		require.Len(t, audits, 2)
	})
}

type uniqueThing struct {
	ID   uint   `json:"id" gorm:"primaryKey"`
	Code string `json:"code" gorm:"uniqueIndex"`
}

func TestErrorsDoNotLeakInternals(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		srv := start(t, func(h *mqttspec.Handler) {
			require.NoError(t, h.Registry().RegisterModel("public.unique_things", &uniqueThing{}))
		})
		require.NoError(t, srv.db.AutoMigrate(&uniqueThing{}))
		c := mqtttest.Connect(t, srv.url, "leaky")
		mqtttest.OK(t, c.Request(mqtttest.Req("create", "unique_things", map[string]any{"data": map[string]any{"code": "A"}})))
		dup := c.Request(mqtttest.Req("create", "unique_things", map[string]any{"data": map[string]any{"code": "A"}}))
		mqtttest.Fails(t, dup, "conflict")

		require.NoError(t, srv.db.Migrator().DropTable(&uniqueThing{}))
		broken := c.Request(mqtttest.Req("read", "unique_things", nil))
		mqtttest.Fails(t, broken, "database_error")
		for _, resp := range []map[string]any{dup, broken} {
			msg := strings.ToLower(resp["error"].(map[string]any)["message"].(string))
			for _, leak := range []string{"select", "insert", "unique_things", "sqlite", "constraint failed", "goroutine", ".go:"} {
				require.NotContains(t, msg, leak)
			}
		}
	})
}
