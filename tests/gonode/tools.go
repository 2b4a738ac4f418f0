//go:build tools

// Package gonode pins the Go Cosmos SDK v0.50 node the end-to-end tests run
// (ibc-go v8's simd, a stock SDK v0.50 simapp) so `go build` can build it.
package gonode

import _ "github.com/cosmos/ibc-go/v8/testing/simapp/simd"
