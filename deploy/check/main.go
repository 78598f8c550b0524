// Command check validates orderstream's deployment files without a Docker engine or a cluster:
// the compose file through compose-go (the loader `docker compose config` uses, with its JSON
// schema), and the kustomization built in process by kustomize and decoded strictly into the
// Kubernetes API types, plus the rules our manifests promise (probes, requests, non-root,
// secrets as files, a disruption budget per workload, the migration Job), and the Dockerfile's
// shape (no engine runs here to build it).
//
//	check compose <compose.yaml>
//	check k8s <kustomization dir>
//	check dockerfile <Dockerfile>
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: check compose <compose.yaml> | check k8s <kustomization dir> | check dockerfile <Dockerfile>")
		os.Exit(2)
	}
	var problems []string
	var err error
	switch os.Args[1] {
	case "compose":
		problems, err = checkCompose(os.Args[2])
	case "k8s":
		problems, err = checkKubernetes(os.Args[2])
	case "dockerfile":
		problems, err = checkDockerfile(os.Args[2])
	default:
		fmt.Fprintf(os.Stderr, "unknown check %q: compose, k8s or dockerfile\n", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[2], err)
		os.Exit(1)
	}
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "%s: %s\n", os.Args[2], p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
	fmt.Printf("%s: ok\n", os.Args[2])
}
