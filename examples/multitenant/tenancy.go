package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mqttspec/mqttspec"
)

// Claims is what a token says about its holder.
type Claims struct {
	UserID   string   `json:"sub"`
	TenantID string   `json:"tenant"`
	Roles    []string `json:"roles"`
	Expires  int64    `json:"exp"` // Unix seconds
}

// SignToken returns "payload.signature", both base64url: a minimal
// HMAC-SHA256 token (the shape of a JWT without its header).
func SignToken(secret []byte, c Claims) string {
	payload, _ := json.Marshal(c)
	p := base64.RawURLEncoding.EncodeToString(payload)
	return p + "." + sign(secret, p)
}

// VerifyToken checks the signature and expiry of token.
func VerifyToken(secret []byte, token string, now time.Time) (Claims, error) {
	var c Claims
	p, sig, ok := strings.Cut(token, ".")
	if !ok {
		return c, errors.New("malformed token")
	}
	if !hmac.Equal([]byte(sig), []byte(sign(secret, p))) {
		return c, errors.New("bad token signature")
	}
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return c, fmt.Errorf("token payload: %w", err)
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("token payload: %w", err)
	}
	if c.TenantID == "" || c.UserID == "" {
		return c, errors.New("token without tenant or user")
	}
	if strings.ContainsAny(c.TenantID+c.UserID, idForbidden) {
		return c, errors.New("tenant or user contains '.', '/', '+' or '#'")
	}
	if now.Unix() >= c.Expires {
		return c, errors.New("token expired")
	}
	return c, nil
}

// idForbidden are the characters a tenant or user name cannot hold: the
// separator of client ids and those MQTT gives a meaning in topics.
const idForbidden = "./+#"

// ClientIDAllowed reports whether a client with claims may connect with
// the MQTT client id id: "{tenant}.{user}", or that followed by ".{device}"
// for a user with several connections. Neither name may contain '.', so
// no other tenant or user can form the same id.
func ClientIDAllowed(c Claims, id string) bool {
	own := c.TenantID + "." + c.UserID
	return id == own || (strings.HasPrefix(id, own+".") && len(id) > len(own)+1)
}

func sign(secret []byte, payload string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// InstallTenancy registers the hooks that make every operation of every
// model with a tenant_id column act inside the caller's tenant:
//   - BeforeConnect: the MQTT username must be a valid token and the client
//     id must belong to it (ClientIDAllowed); its claims become client
//     metadata (user_id, tenant_id, roles) and "{tenant}/{user}" the
//     client's principal. The principal, not the token, decides who may
//     take over a session: a device that reconnects with a renewed token
//     gets its session and queued notifications back.
//   - BeforeRead/Update/Delete/Subscribe: a tenant_id filter is appended, so
//     another tenant's records are not found and never notified.
//   - BeforeCreate: tenant_id is set from the token, whatever the client sent.
//   - BeforeUpdate: tenant_id cannot be changed.
//   - BeforeDelete: only the "admin" role may delete (RBAC).
func InstallTenancy(h *mqttspec.Handler, secret []byte) {
	hooks := h.Hooks()
	hooks.Register(mqttspec.BeforeConnect, func(ctx *mqttspec.HookContext) error {
		claims, err := VerifyToken(secret, ctx.Client.Username, time.Now())
		if err != nil {
			return fmt.Errorf("invalid token: %w", err)
		}
		if !ClientIDAllowed(claims, ctx.Client.ID) {
			return fmt.Errorf("client id %q does not belong to %s.%s", ctx.Client.ID, claims.TenantID, claims.UserID)
		}
		ctx.Client.SetPrincipal(claims.TenantID + "/" + claims.UserID)
		ctx.Client.SetMetadata("user_id", claims.UserID)
		ctx.Client.SetMetadata("tenant_id", claims.TenantID)
		ctx.Client.SetMetadata("roles", claims.Roles)
		return nil
	})
	scope := func(ctx *mqttspec.HookContext) error {
		tenant, ok := ctx.Client.GetMetadata("tenant_id")
		if !ok {
			return mqttspec.ErrForbidden
		}
		ctx.Options.Filters = append(ctx.Options.Filters, mqttspec.FilterOption{
			Column: "tenant_id", Operator: "eq", Value: tenant,
		})
		return nil
	}
	for _, ht := range []mqttspec.HookType{mqttspec.BeforeRead, mqttspec.BeforeUpdate, mqttspec.BeforeDelete, mqttspec.BeforeSubscribe} {
		hooks.Register(ht, scope)
	}
	hooks.Register(mqttspec.BeforeCreate, func(ctx *mqttspec.HookContext) error {
		tenant, _ := ctx.Client.GetMetadata("tenant_id")
		if data, ok := ctx.Data.(map[string]any); ok {
			data["tenant_id"] = tenant
		}
		return nil
	})
	hooks.Register(mqttspec.BeforeUpdate, func(ctx *mqttspec.HookContext) error {
		if data, ok := ctx.Data.(map[string]any); ok {
			if _, ok := data["tenant_id"]; ok {
				return mqttspec.NewError(mqttspec.CodeForbidden, "tenant_id cannot be changed")
			}
		}
		return nil
	})
	hooks.Register(mqttspec.BeforeDelete, func(ctx *mqttspec.HookContext) error {
		roles, _ := ctx.Client.GetMetadata("roles")
		if list, _ := roles.([]string); !slices.Contains(list, "admin") {
			return mqttspec.NewError(mqttspec.CodeForbidden, "delete requires the admin role")
		}
		return nil
	})
}
