package query

// DescribeWhere renders where for failure messages of the external tests.
func DescribeWhere(where []Group) string { return qtDescribe(where) }
