// The test bed's Argo CD binary: only the components the test bed runs (the application
// controller, the repo-server, and the git credential helper the repo-server calls), each picked
// by ARGOCD_BINARY_NAME as in Argo CD's own multi-call binary. Leaving out the CLI, the API
// server, Dex, notifications and the ApplicationSet controller (with its SCM providers' SDKs)
// makes the cold build much shorter. install.sh builds it inside the module, as cmd/testbed.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	appcontroller "github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands"
	gitaskpass "github.com/argoproj/argo-cd/v3/cmd/argocd-git-ask-pass/commands"
	reposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
	"github.com/argoproj/argo-cd/v3/common"
	"github.com/argoproj/argo-cd/v3/util/log"
)

func main() {
	klog.SetLogger(log.NewLogrusLogger(log.NewWithCurrentConfig()))
	// Argo CD's main turns off gRPC's SRV lookups, which its grpclb import turns on; without the
	// API server and CLI nothing here turns them on (and DisableSRVLookups panics when off).
	role := filepath.Base(os.Args[0])
	if name := os.Getenv("ARGOCD_BINARY_NAME"); name != "" {
		role = name
	}
	var command *cobra.Command
	switch role {
	case common.CommandApplicationController:
		command = appcontroller.NewCommand()
	case common.CommandRepoServer:
		command = reposerver.NewCommand()
	case common.CommandGitAskPass:
		command = gitaskpass.NewCommand()
	default:
		fmt.Fprintf(os.Stderr, "argocd (helm-envs test bed): no component %q here; set ARGOCD_BINARY_NAME to %s, %s or %s\n",
			role, common.CommandApplicationController, common.CommandRepoServer, common.CommandGitAskPass)
		os.Exit(2)
	}
	if err := command.Execute(); err != nil {
		os.Exit(1)
	}
}
