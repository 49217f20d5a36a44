package mqttspec

import (
	"github.com/mqttspec/mqttspec/query"
)

// operation is one entry of the operation table: what a request of that
// operation resolves, which hooks surround it, whether it writes, which
// validated input it needs and what it runs. The pipeline (serve) reads the
// table; adding an operation is adding an entry and its run function.
type operation struct {
	name OperationType
	// target is what the request names: a registered model (schema and
	// entity), one of the client's subscriptions, or nothing.
	target target
	// before and after are the operation's hooks ("" for none). Before
	// hooks may change Options and Data and may refuse; an After hook that
	// refuses undoes the operation (see the README's hook table).
	before, after HookType
	// record says whether the request names one record (record_id or
	// data.{primary key}).
	record recordUse
	// needsData: the request's data must be a JSON object.
	needsData bool
	// inputs are built from the request after the Before hooks ran.
	inputs inputs
	// writes: Before hooks, the statements and After hooks run in one
	// transaction that commits under the entity's commit lock, where the
	// change is notified.
	writes bool
	// run does the operation's own work between the hooks.
	run func(h *Handler, r *request) (*result, error)
	// byType: the operation is named by a message type of its own (see
	// typeOperations), never by an "operation" field.
	byType bool
}

type recordUse uint8

const (
	recordNone     recordUse = iota
	recordOptional           // read: one record when named, else a page
	recordRequired           // update, delete
)

type target uint8

const (
	targetNone         target = iota
	targetModel               // schema and entity name a registered model
	targetSubscription        // subscription_id names one of the client's subscriptions
)

// inputs says what validate builds from a request's options and data.
type inputs uint8

const (
	inPage     inputs = 1 << iota // options -> r.query (filters, sort, paging, projection, preloads)
	inWhere                       // options.filters -> r.where
	inData                        // data -> r.values (typed column values)
	inSnapshot                    // with options.snapshot, also inPage
)

// operations is the operation table.
var operations = map[OperationType]*operation{
	OperationRead: {name: OperationRead, target: targetModel, before: BeforeRead, after: AfterRead,
		record: recordOptional, inputs: inPage, run: (*Handler).runRead},
	OperationCreate: {name: OperationCreate, target: targetModel, before: BeforeCreate, after: AfterCreate,
		needsData: true, inputs: inData, writes: true, run: (*Handler).runCreate},
	OperationUpdate: {name: OperationUpdate, target: targetModel, before: BeforeUpdate, after: AfterUpdate,
		record: recordRequired, needsData: true, inputs: inData | inWhere, writes: true, run: (*Handler).runUpdate},
	OperationDelete: {name: OperationDelete, target: targetModel, before: BeforeDelete, after: AfterDelete,
		record: recordRequired, inputs: inWhere, writes: true, run: (*Handler).runDelete},
	OperationMeta: {name: OperationMeta, target: targetModel, run: (*Handler).runMeta},
	OperationSubscribe: {name: OperationSubscribe, target: targetModel, before: BeforeSubscribe, after: AfterSubscribe,
		inputs: inWhere | inSnapshot, run: (*Handler).runSubscribe},
	OperationUnsubscribe: {name: OperationUnsubscribe, target: targetSubscription,
		before: BeforeUnsubscribe, after: AfterUnsubscribe, run: (*Handler).runUnsubscribe},
	operationPing:       {name: operationPing, run: (*Handler).runPing, byType: true},
	operationDisconnect: {name: operationDisconnect, run: (*Handler).runDisconnect, byType: true},
}

// typeOperations are the operations a message type names by itself.
var typeOperations = map[MessageType]OperationType{
	MessageTypePing:       operationPing,
	MessageTypeDisconnect: operationDisconnect,
}

// operationPing and operationDisconnect are the table's names for messages
// of type "ping" and "disconnect".
const (
	operationPing       OperationType = "ping"
	operationDisconnect OperationType = "disconnect"
)

// result is what an operation leaves for the pipeline besides
// HookContext.Result (the answer's data, which After hooks may change).
type result struct {
	// meta is the answer's metadata (a list read's total, count, ...).
	meta map[string]any
	// columns is the projection applied to the answer's records (nil: all).
	columns []*query.Column
	// change is a write's change, notified when it commits.
	change *change
	// pong answers with a pong message instead of a response.
	pong bool
	// elsewhere: another member of the group ran this write already; it
	// is neither committed nor answered here.
	elsewhere bool
	// replay is the kept answer of a write delivered again, sent instead
	// of running it.
	replay []byte
	// undo reverts an operation that has already taken effect outside the
	// database (subscribe, unsubscribe) when an After hook refuses it.
	undo func()
	// notify matches a committed write's notifications and hands them to
	// the entity's lane, before the write is answered (see queue).
	notify func()
	// release runs once the answer has been published (or withheld): an
	// operation that must be answered before anything else can happen (a
	// subscription's first notification) holds the entity's commit lock
	// until then.
	release func()
}

// notifyChange runs res.notify once; res may be nil.
func (res *result) notifyChange() {
	if res != nil && res.notify != nil {
		res.notify()
		res.notify = nil
	}
}

// finish runs what res still holds (notify, then release); res may be nil.
func (res *result) finish() {
	res.notifyChange()
	if res != nil && res.release != nil {
		res.release()
		res.release = nil
	}
}
