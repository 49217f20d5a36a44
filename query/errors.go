package query

import "errors"

// Errors of the package. Validation errors are always returned wrapped
// with a message naming the offending column, operator or value; the whole
// text is safe to show to a client.
var (
	// ErrUnknownColumn reports a name that is not a visible column of the model.
	ErrUnknownColumn = errors.New("unknown column")
	// ErrUnknownOperator reports a filter operator that is not one of the Op constants.
	ErrUnknownOperator = errors.New("unknown operator")
	// ErrUnknownRelation reports a preload that is not a relation of the model.
	ErrUnknownRelation = errors.New("unknown relation")
	// ErrInvalidValue reports a value that does not fit its column or operator.
	ErrInvalidValue = errors.New("invalid value")
	// ErrInvalidOptions reports malformed options: a bad sort direction,
	// logic operator or offset.
	ErrInvalidOptions = errors.New("invalid options")
	// ErrInvalidModel reports a value that cannot be described as a model.
	ErrInvalidModel = errors.New("invalid model")
)
