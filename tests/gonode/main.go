// Command simd is the Go Cosmos SDK v0.50 node the ADR-038 plugin's end-to-end tests run:
// the simapp of ibc-go v8 (a stock SDK v0.50 application), started through the SDK's own
// server command. The Go module proxy refuses cosmossdk.io/simapp, so its sibling is used.
package main

import (
	"os"

	"cosmossdk.io/log"
	svrcmd "github.com/cosmos/cosmos-sdk/server/cmd"

	"github.com/cosmos/ibc-go/v8/testing/simapp"
	"github.com/cosmos/ibc-go/v8/testing/simapp/simd/cmd"
)

func main() {
	root := cmd.NewRootCmd()
	if err := svrcmd.Execute(root, "", simapp.DefaultNodeHome); err != nil {
		log.NewLogger(root.OutOrStderr()).Error("simd failed", "err", err)
		os.Exit(1)
	}
}
