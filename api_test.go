package mqttspec

import (
	"context"
	"reflect"

	"github.com/uptrace/bun"
	"gorm.io/gorm"

	"github.com/mqttspec/mqttspec/adapters"
)

// The public API listed in the contract, checked by the compiler: a change
// of any of these signatures breaks users switching to this package.
var (
	_ func(adapters.Database, adapters.ModelRegistry, *Config) (*Handler, error)   = NewHandler
	_ func(*gorm.DB, ...Option) (*Handler, error)                                  = NewHandlerWithGORM
	_ func(*bun.DB, ...Option) (*Handler, error)                                   = NewHandlerWithBun
	_ func(adapters.Database, adapters.ModelRegistry, ...Option) (*Handler, error) = NewHandlerWithDatabase

	_ func(BrokerConfig) Option                         = WithEmbeddedBroker
	_ func(ExternalBrokerConfig) Option                 = WithExternalBroker
	_ func(*HookRegistry) Option                        = WithHooks
	_ func(request, response, notification byte) Option = WithQoS
	_ func(string) Option                               = WithTopicPrefix
	_ func() *Config                                    = DefaultConfig

	_ func(*Handler) error                                   = (*Handler).Start
	_ func(*Handler) error                                   = (*Handler).Shutdown
	_ func(*Handler) *HookRegistry                           = (*Handler).Hooks
	_ func(*Handler) adapters.ModelRegistry                  = (*Handler).Registry
	_ func(*Handler) adapters.Database                       = (*Handler).GetDatabase
	_ func(*Handler, reflect.Type, string) *RelationshipInfo = (*Handler).GetRelationshipInfo

	_ func() *HookRegistry                              = NewHookRegistry
	_ func(*HookRegistry, HookType, HookFunc)           = (*HookRegistry).Register
	_ func(*HookRegistry, OperationType, HookFunc)      = (*HookRegistry).RegisterBefore
	_ func(*HookRegistry, OperationType, HookFunc)      = (*HookRegistry).RegisterAfter
	_ func(*HookRegistry, HookType, *HookContext) error = (*HookRegistry).Execute
	_ func(*HookRegistry, HookType) bool                = (*HookRegistry).HasHooks

	_ func(id, username string, handler *Handler) *Client    = NewClient
	_ func(*Client, string, any)                             = (*Client).SetMetadata
	_ func(*Client, string) (any, bool)                      = (*Client).GetMetadata
	_ func(*Client, *Subscription)                           = (*Client).AddSubscription
	_ func(*Client, string)                                  = (*Client).RemoveSubscription
	_ func(*Client, string) (*Subscription, bool)            = (*Client).GetSubscription
	_ func(*Client)                                          = (*Client).Close
	_ func(context.Context) *ClientManager                   = NewClientManager
	_ func(*ClientManager, string, string, *Handler) *Client = (*ClientManager).Register
	_ func(*ClientManager, string) (*Client, bool)           = (*ClientManager).GetClient
	_ func(*ClientManager, string)                           = (*ClientManager).Unregister
	_ func(*ClientManager) int                               = (*ClientManager).Count
	_ func(*ClientManager)                                   = (*ClientManager).Shutdown

	_ func() *SubscriptionManager                                                               = NewSubscriptionManager
	_ func(*SubscriptionManager, string, string, string, string, *RequestOptions) *Subscription = (*SubscriptionManager).Subscribe
	_ func(*SubscriptionManager, string) bool                                                   = (*SubscriptionManager).Unsubscribe
	_ func(*SubscriptionManager, string) (*Subscription, bool)                                  = (*SubscriptionManager).GetSubscription
	_ func(*SubscriptionManager, string, string) []*Subscription                                = (*SubscriptionManager).GetSubscriptionsByEntity
	_ func(*SubscriptionManager, string) []*Subscription                                        = (*SubscriptionManager).GetSubscriptionsByConnection
	_ func(*SubscriptionManager) int                                                            = (*SubscriptionManager).Count
	_ func(*SubscriptionManager, string, string) int                                            = (*SubscriptionManager).CountForEntity

	_ func([]byte) (*Message, error)                                        = ParseMessage
	_ func(string, bool, any) *ResponseMessage                              = NewResponseMessage
	_ func(string, string, string) *ResponseMessage                         = NewErrorResponse
	_ func(string, OperationType, string, string, any) *NotificationMessage = NewNotificationMessage

	_ func(BrokerConfig, *ClientManager) *EmbeddedBroker               = NewEmbeddedBroker
	_ func(ExternalBrokerConfig, *ClientManager) *ExternalBrokerClient = NewExternalBrokerClient
	_ BrokerInterface                                                  = (*EmbeddedBroker)(nil)
	_ BrokerInterface                                                  = (*ExternalBrokerClient)(nil)
	_ MessageCallback                                                  = func(topic string, payload []byte) {}

	_ = BrokerModeEmbedded
	_ = BrokerModeExternal
	_ = []HookType{BeforeConnect, AfterConnect, BeforeDisconnect, AfterDisconnect, BeforeRead, AfterRead,
		BeforeCreate, AfterCreate, BeforeUpdate, AfterUpdate, BeforeDelete, AfterDelete,
		BeforeSubscribe, AfterSubscribe, BeforeUnsubscribe, AfterUnsubscribe}
	_ = []MessageType{MessageTypeRequest, MessageTypeResponse, MessageTypeNotification, MessageTypeSubscription,
		MessageTypeError, MessageTypePing, MessageTypePong}
	_ = []OperationType{OperationRead, OperationCreate, OperationUpdate, OperationDelete,
		OperationSubscribe, OperationUnsubscribe, OperationMeta}
	_ = Config{BrokerMode: "", Broker: BrokerConfig{}, ExternalBroker: ExternalBrokerConfig{},
		Topics: TopicConfig{Prefix: ""}, QoS: QoSConfig{Request: 1, Response: 1, Notification: 1},
		Auth: AuthConfig{ValidateCredentials: nil}, Timeouts: TimeoutConfig{Connect: 0, Publish: 0, Disconnect: 0}}
	_ = BrokerConfig{Host: "", Port: 0, EnableWebSocket: false, WSPort: 0, MaxConnections: 0, KeepAlive: 0, EnableAuth: false}
	_ = ExternalBrokerConfig{BrokerURL: "", ClientID: "", Username: "", Password: "", CleanSession: false,
		KeepAlive: 0, ConnectTimeout: 0, ReconnectDelay: 0, MaxReconnect: 0, TLSConfig: nil}
	_ = Client{ID: "", Username: ""}.ConnectedAt
	_ = Subscription{ID: "", ConnectionID: "", Schema: "", Entity: "", Options: nil, Active: false}
	_ = ErrorInfo{Code: "", Message: "", Details: nil}
	_ = FilterOption{Column: "", Operator: "", Value: nil, LogicOperator: ""}
)
