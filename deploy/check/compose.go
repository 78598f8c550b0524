package main

import (
	"context"
	"fmt"
	"sort"

	"github.com/compose-spec/compose-go/v2/cli"
)

// The services that must be in the compose project, each with the image that runs it.
var composeServices = map[string]string{
	"kafka-1": "", "kafka-2": "", "kafka-3": "", "postgres": "", "prometheus": "", "jaeger": "",
	"migrate": "orderstream:latest", "command-api": "orderstream:latest", "query-api": "orderstream:latest",
	"projectors": "orderstream:latest", "notifier": "orderstream:latest",
}

func checkCompose(file string) ([]string, error) {
	options, err := cli.NewProjectOptions([]string{file}, cli.WithName("orderstream"))
	if err != nil {
		return nil, err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return nil, err
	}
	var problems []string
	names := make([]string, 0, len(composeServices))
	for name := range composeServices {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		service, ok := project.Services[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("service %s is missing", name))
			continue
		}
		if want := composeServices[name]; want != "" && service.Image != want {
			problems = append(problems, fmt.Sprintf("service %s runs %q, want %q", name, service.Image, want))
		}
		if composeServices[name] == "" {
			continue
		}
		for key := range service.Environment {
			if secretVariables[key] {
				problems = append(problems, fmt.Sprintf("service %s gets the secret %s as a variable: mount it and set %s_FILE", name, key, key))
			}
		}
	}
	return problems, nil
}

// Settings that hold a secret: they must arrive as files (`…_FILE`), never inline.
var secretVariables = map[string]bool{"JWT_SECRET": true, "CARD_FINGERPRINT_KEY": true, "DATABASE_URL": true}
